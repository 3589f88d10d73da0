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
//! | `chan_pingpong`      | round trips            | one round of `n / 10`    |
//! | `chan_buffered_1x1`  | messages               | one round of `n / 10`    |
//! | `chan_buffered_4x4`  | messages (all 4 producers) | one round of `n / 10` |
//! | `chan_unbuffered_1x1`| messages               | one round of `n / 10`    |
//! | `select2`, `select4` | messages (all producers) | one round of `n / 10`  |
//! | `mutex_contended`    | lock/unlock per goroutine (4 goroutines) | one round of `n / 10` |
//! | `mutex_uncontended`  | lock/unlock            | one round of `n / 10`    |
//! | `rwlock_read_mostly` | ops per goroutine (4 goroutines) | one round of `n / 10` |
//! | `timers`             | sleeping goroutines    | none                     |
//! | `ctx_cancel_fanout`  | waiting goroutines     | none                     |
//!
//! Sizes that split across goroutines (`chan_buffered_4x4`, `select2`,
//! `select4`) are rounded down to a multiple of the goroutine count; the
//! per-message metrics divide by the number actually sent.
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

/// Every workload name a binary may be given (a peer may still answer
/// "unsupported" for some).
pub const WORKLOADS: &[&str] = &[
    "spawn_join_inside",
    "spawn_join_outside",
    "yield_ping",
    "parked",
    "spawn_tree",
    "chan_pingpong",
    "chan_buffered_1x1",
    "chan_buffered_4x4",
    "chan_unbuffered_1x1",
    "select2",
    "select4",
    "mutex_contended",
    "mutex_uncontended",
    "rwlock_read_mostly",
    "timers",
    "ctx_cancel_fanout",
];

/// Parses `<workload> <n>` from the command line, runs `body`, and prints
/// the `RESULT` line; exits with status 2 on usage errors or when `body`
/// returns `Err` (e.g. a workload this peer does not implement).
pub fn main_with(peer: &str, body: impl FnOnce(&Args) -> Result<Vec<Metric>, String>) {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{peer}: {e}");
            eprintln!(
                "usage: bench_{peer} <workload> <n>; workloads: {}",
                WORKLOADS.join(", ")
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

/// Capacity of the buffered channels of `chan_buffered_*`.
pub const BUFFERED_CAP: usize = 1024;

/// Capacity of each producer's channel in `select2` / `select4`.
pub const SELECT_CAP: usize = 64;

/// Goroutines (and, for `chan_buffered_4x4`, producers and consumers each)
/// of the contended workloads.
pub const CONTENDERS: usize = 4;

/// In `rwlock_read_mostly`, operation `i` of a goroutine is a write when
/// `i % RW_WRITE_EVERY == RW_WRITE_EVERY - 1` (1 write per 99 reads),
/// otherwise a read.
pub const RW_WRITE_EVERY: usize = 100;

/// Whether operation `i` of `rwlock_read_mostly` is a write.
pub fn rw_is_write(i: usize) -> bool {
    i % RW_WRITE_EVERY == RW_WRITE_EVERY - 1
}

/// Writes each goroutine of `rwlock_read_mostly` does in `ops` operations.
pub fn rw_writes(ops: usize) -> usize {
    ops / RW_WRITE_EVERY
}

/// Sum of `0..k` (what a consumer of the values `0..k` must see).
pub fn sum_below(k: usize) -> u64 {
    let k = k as u64;
    k * k.saturating_sub(1) / 2
}

/// Millions of messages per second.
pub fn mmsgs_per_s(d: Duration, msgs: usize) -> f64 {
    msgs as f64 / d.as_secs_f64() / 1e6
}

/// The sleep of goroutine `i` in `timers`: deterministic, spread over
/// [10 ms, 1 s) in microseconds, from one LCG step and an xorshift of `i`
/// (Go computes the same numbers).
pub fn timer_delay(i: usize) -> Duration {
    let mut x = (i as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    x ^= x >> 33;
    Duration::from_micros(10_000 + x % 990_000)
}

/// Lateness of a wake-up in nanoseconds: how long after `intended` the
/// sleeper ran again; 0 (and `early` set) if it ran before.
pub fn lateness_ns(intended: Instant, woke: Instant) -> (u64, bool) {
    match woke.checked_duration_since(intended) {
        Some(d) => (d.as_nanos() as u64, false),
        None => (0, true),
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The metrics of the `timers` workload, in the same order for every peer:
/// lateness p50 and p99 in microseconds, and the time from the first spawn
/// until every sleeper woke. `early` (how many woke before their intended
/// instant; 0 unless a timer fires early) goes on the `RESULT` line too but
/// is not a table metric.
pub fn timers_metrics(mut lateness: Vec<u64>, early: usize, total: Duration) -> Vec<Metric> {
    lateness.sort_unstable();
    vec![
        ("late_p50_us", percentile(&lateness, 50.0) as f64 / 1e3),
        ("late_p99_us", percentile(&lateness, 99.0) as f64 / 1e3),
        ("total_ms", total.as_secs_f64() * 1e3),
        ("early", early as f64),
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
    fn timer_delays_in_range_and_spread() {
        let ds: Vec<_> = (0..10_000).map(timer_delay).collect();
        assert!(ds.iter().all(|d| *d >= Duration::from_millis(10)));
        assert!(ds.iter().all(|d| *d < Duration::from_secs(1)));
        let below_half = ds
            .iter()
            .filter(|d| **d < Duration::from_millis(505))
            .count();
        assert!((4_000..6_000).contains(&below_half), "{below_half}");
        // The same numbers as bench/go/main.go's timerDelay.
        let us: Vec<_> = [0, 1, 2, 12345]
            .into_iter()
            .map(|i| timer_delay(i).as_micros())
            .collect();
        assert_eq!(us, [198_128, 538_202, 54_581, 361_484]);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(sum_below(4), 6);
        assert_eq!(sum_below(0), 0);
        assert_eq!(rw_writes(1000), 10);
        assert_eq!((0..1000).filter(|&i| rw_is_write(i)).count(), 10);
    }

    #[test]
    fn reads_proc_status() {
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() > 0);
        assert_eq!(tree_spawns(1), 2);
        assert_eq!(tree_spawns(20), (1 << 21) - 2);
    }
}
