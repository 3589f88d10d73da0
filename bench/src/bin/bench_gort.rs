//! gort's side of the side-by-side benchmarks: `bench_gort <workload> <n>`
//! runs one workload once and prints one `RESULT` line (protocol, sizes and
//! warm-up policy: `src/lib.rs`; runner: `bench/run.py`).
//!
//! - `spawn_join_inside`: inside `gort::run`, spawn `n` empty goroutines with
//!   `gort::go`, collect the handles, join them; ns per goroutine.
//! - `spawn_join_outside`: the same from `main`'s plain OS thread, which
//!   starts the default runtime in the background (the warm-up round pays
//!   for that start); ns per goroutine.
//! - `yield_ping`: two goroutines on a one-processor runtime
//!   (`Builder::new().procs(1)`) each call `gort::yield_now` `n` times;
//!   ns per yield (total time / 2n).
//! - `parked`: `n` goroutines (default 256 KiB lazily committed stacks) each
//!   count down a `WaitGroup` and park on a second one; create time is from
//!   the first spawn until all have counted down, RSS per goroutine is the
//!   `VmRSS` growth over that span / n; then all are released and awaited.
//! - `spawn_tree`: every node of a depth-`n` binary tree spawns its two
//!   children with `gort::go` and joins them; leaves return 1.

use gort::sync::WaitGroup;
use gort_bench::{
    main_with, ns_per, parked_metrics, rss_bytes, timed, tree_metrics, tree_warmup_depth,
    unsupported, Metric,
};

fn main() {
    main_with("gort", |a| match a.workload.as_str() {
        "spawn_join_inside" => Ok(gort::run(spawn_join_measured(a.n))),
        "spawn_join_outside" => Ok(spawn_join_measured(a.n)()),
        "yield_ping" => yield_ping(a.n),
        "parked" => Ok(gort::run(parked(a.n))),
        "spawn_tree" => gort::run(spawn_tree(a.n)),
        w => unsupported(w),
    });
}

/// Spawns `n` empty goroutines, then joins them in spawn order.
fn spawn_join(n: usize) {
    let handles: Vec<_> = (0..n).map(|_| gort::go(|| ())).collect();
    for h in handles {
        h.join().expect("empty goroutine panicked");
    }
}

/// One untimed round, then one timed round; works both inside a goroutine
/// and on a plain thread (where `gort::go` uses the default runtime).
fn spawn_join_measured(n: usize) -> impl FnOnce() -> Vec<Metric> + Send + 'static {
    move || {
        spawn_join(n);
        let ((), d) = timed(|| spawn_join(n));
        vec![("ns_per_op", ns_per(d, n))]
    }
}

fn yield_ping(n: usize) -> Result<Vec<Metric>, String> {
    let rt = gort::runtime::Builder::new()
        .procs(1)
        .build()
        .map_err(|e| format!("Builder::build: {e}"))?;
    let ping = |k: usize| {
        let pinger = move || {
            for _ in 0..k {
                gort::yield_now();
            }
        };
        let a = gort::go(pinger);
        let b = gort::go(pinger);
        a.join().expect("pinger panicked");
        b.join().expect("pinger panicked");
    };
    let d = rt.run(move || {
        ping((n / 10).max(1));
        timed(|| ping(n)).1
    });
    Ok(vec![("ns_per_op", ns_per(d, 2 * n))])
}

fn parked(n: usize) -> impl FnOnce() -> Vec<Metric> + Send + 'static {
    move || {
        let ready = WaitGroup::new();
        let release = WaitGroup::new();
        let finished = WaitGroup::new();
        ready.add(n as isize);
        release.add(1);
        let rss_before = rss_bytes();
        let ((), create) = timed(|| {
            for _ in 0..n {
                let (ready, release) = (ready.clone(), release.clone());
                // The handle is dropped (detached); `finished` tracks the end.
                finished.go(move || {
                    ready.done();
                    release.wait();
                });
            }
            ready.wait();
        });
        let rss_parked = rss_bytes();
        let ((), release_time) = timed(|| {
            release.done();
            finished.wait();
        });
        parked_metrics(n, create, rss_before, rss_parked, release_time)
    }
}

fn tree(depth: usize) -> u64 {
    if depth == 0 {
        return 1;
    }
    let a = gort::go(move || tree(depth - 1));
    let b = gort::go(move || tree(depth - 1));
    a.join().expect("tree node panicked") + b.join().expect("tree node panicked")
}

fn spawn_tree(depth: usize) -> impl FnOnce() -> Result<Vec<Metric>, String> + Send + 'static {
    move || {
        tree(tree_warmup_depth(depth));
        let (sum, d) = timed(|| tree(depth));
        if sum != 1u64 << depth {
            return Err(format!("tree sum {sum}, expected {}", 1u64 << depth));
        }
        Ok(tree_metrics(depth, d))
    }
}
