//! Shared helpers for the side-by-side benchmark binaries (`bench_gort`,
//! `bench_tokio`, `bench_threads`; Go's twin is `bench/go/main.go`).
//!
//! Every binary is invoked as `<binary> <workload> <n>` by `bench/run.py`,
//! runs exactly one workload once in a fresh process (so RSS baselines are
//! clean), and prints one machine-readable line:
//!
//! ```text
//! RESULT workload=parked peer=gort n=100000 create_ns_per_op=812.3 rss_bytes_per_op=4321.0 ...
//! ```
//!
//! Workloads (what `n` means) and the warm-up policy shared by all peers:
//!
//! | workload             | n                      | warm-up (untimed)        |
//! |----------------------|------------------------|--------------------------|
//! | `spawn_join_inside`  | goroutines             | one round of `n`         |
//! | `spawn_join_outside` | goroutines             | one round of `n`         |
//! | `yield_ping`         | yields per goroutine   | one round of `n / 10`    |
//! | `parked`             | goroutines             | none (measures cold RSS) |
//! | `spawn_tree`         | depth                  | one tree of depth `n-4`  |
//!
//! Errors (unknown workload, bad args) go to stderr with exit status 2; the
//! runner shows them as "failed".

use std::time::{Duration, Instant};

/// The arguments every benchmark binary takes: `<workload> <n>`.
#[derive(Debug, Clone)]
pub struct Args {
    /// Workload name, e.g. `spawn_join_inside`.
    pub workload: String,
    /// Size; its meaning depends on the workload (see the module docs).
    pub n: usize,
}

/// One named measurement, e.g. `("ns_per_op", 123.4)`.
pub type Metric = (&'static str, f64);

/// Parses `<workload> <n>` from the command line, runs `body`, and prints
/// the `RESULT` line; exits with status 2 on usage errors or when `body`
/// returns `Err` (e.g. a workload this peer does not implement).
pub fn main_with(peer: &str, body: impl FnOnce(&Args) -> Result<Vec<Metric>, String>) {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{peer}: {e}");
            eprintln!(
                "usage: bench_{peer} <spawn_join_inside|spawn_join_outside|yield_ping|parked|spawn_tree> <n>"
            );
            std::process::exit(2);
        }
    };
    match body(&args) {
        Ok(metrics) => println!("{}", result_line(&args, peer, &metrics)),
        Err(e) => {
            eprintln!("{peer}: {}: {e}", args.workload);
            std::process::exit(2);
        }
    }
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let workload = it.next().ok_or("missing <workload>")?;
    let n = it
        .next()
        .ok_or("missing <n>")?
        .parse::<usize>()
        .map_err(|e| format!("bad <n>: {e}"))?;
    if n == 0 {
        return Err("<n> must be at least 1".into());
    }
    Ok(Args { workload, n })
}

/// Formats the `RESULT` line the runner parses.
pub fn result_line(args: &Args, peer: &str, metrics: &[Metric]) -> String {
    let mut line = format!(
        "RESULT workload={} peer={} n={}",
        args.workload, peer, args.n
    );
    for (name, value) in metrics {
        line.push_str(&format!(" {name}={value:.1}"));
    }
    line
}

/// The error a binary returns for a workload it does not implement.
pub fn unsupported(workload: &str) -> Result<Vec<Metric>, String> {
    Err(format!("unknown or unsupported workload `{workload}`"))
}

/// Nanoseconds per operation.
pub fn ns_per(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

/// Runs `f` and returns its value with the time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

/// Number of spawns in a full binary spawn tree of `depth` (every node but
/// the root is spawned): `2^(depth+1) - 2`.
pub fn tree_spawns(depth: usize) -> usize {
    (1usize << (depth + 1)) - 2
}

/// Depth of the untimed warm-up tree for a timed tree of `depth`.
pub fn tree_warmup_depth(depth: usize) -> usize {
    depth.saturating_sub(4)
}

/// A field of `/proc/self/status` in bytes (the `Vm*` fields are in kB).
/// Returns 0 when the field is missing.
pub fn proc_status_bytes(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size now, in bytes (`VmRSS`).
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS")
}

/// Peak resident set size so far, in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM")
}

/// RSS growth per unit between two readings, in bytes (never negative).
pub fn bytes_per(before: u64, after: u64, units: usize) -> f64 {
    after.saturating_sub(before) as f64 / units as f64
}

/// Bytes to MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The metrics of the `parked` workload, in the same order for every peer.
pub fn parked_metrics(
    n: usize,
    create: Duration,
    rss_before: u64,
    rss_parked: u64,
    release: Duration,
) -> Vec<Metric> {
    vec![
        ("create_ns_per_op", ns_per(create, n)),
        ("rss_bytes_per_op", bytes_per(rss_before, rss_parked, n)),
        ("release_ns_per_op", ns_per(release, n)),
    ]
}

/// The metrics of the `spawn_tree` workload, in the same order for every peer.
pub fn tree_metrics(depth: usize, total: Duration) -> Vec<Metric> {
    vec![
        ("total_ms", total.as_secs_f64() * 1e3),
        ("ns_per_op", ns_per(total, tree_spawns(depth))),
        ("peak_rss_mib", mib(peak_rss_bytes())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args() {
        let a = parse_args(["parked".to_string(), "10".to_string()].into_iter()).unwrap();
        assert_eq!(a.workload, "parked");
        assert_eq!(a.n, 10);
        assert!(parse_args(["parked".to_string()].into_iter()).is_err());
        assert!(parse_args(["parked".to_string(), "x".to_string()].into_iter()).is_err());
        assert!(parse_args(["parked".to_string(), "0".to_string()].into_iter()).is_err());
    }

    #[test]
    fn formats_result_line() {
        let a = Args {
            workload: "yield_ping".into(),
            n: 5,
        };
        assert_eq!(
            result_line(&a, "gort", &[("ns_per_op", 12.345)]),
            "RESULT workload=yield_ping peer=gort n=5 ns_per_op=12.3"
        );
    }

    #[test]
    fn reads_proc_status() {
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() > 0);
        assert_eq!(tree_spawns(1), 2);
        assert_eq!(tree_spawns(20), (1 << 21) - 2);
    }
}
