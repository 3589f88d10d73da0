//! Tokio's side of the side-by-side benchmarks: `bench_tokio <workload> <n>`
//! runs one workload once and prints one `RESULT` line (protocol, sizes and
//! warm-up policy: `src/lib.rs`; runner: `bench/run.py`). The multi-thread
//! runtime has Tokio's default worker count (one per core), like gort's and
//! Go's default processor count.
//!
//! - `spawn_join_inside`: from a task on a worker thread (the analogue of a
//!   goroutine; `block_on`'s own future runs on the caller's thread), spawn
//!   `n` empty tasks with `tokio::spawn`, keep the handles, await them.
//! - `spawn_join_outside`: `rt.spawn` from `main`'s plain thread, then
//!   `block_on` awaiting the handles.
//! - `yield_ping`: two tasks on a `current_thread` runtime each await
//!   `tokio::task::yield_now` `n` times; ns per yield (total / 2n).
//! - `parked`: `n` tasks each create a `Notified` future of one shared
//!   `Notify`, count down an atomic latch and await it; create time is until
//!   the latch hits zero, RSS per task is the `VmRSS` growth / n; then
//!   `notify_waiters` releases all and a second latch waits for them.
//! - `spawn_tree`: every node of a depth-`n` tree spawns its two children
//!   (boxed recursive futures) and awaits them; leaves return 1.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use gort_bench::{
    main_with, ns_per, parked_metrics, rss_bytes, tree_metrics, tree_warmup_depth, unsupported,
    Metric,
};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

fn main() {
    main_with("tokio", |a| {
        let n = a.n;
        match a.workload.as_str() {
            "spawn_join_inside" => on_worker(async move {
                spawn_join(n).await;
                let t = Instant::now();
                spawn_join(n).await;
                Ok(vec![("ns_per_op", ns_per(t.elapsed(), n))])
            }),
            "spawn_join_outside" => spawn_join_outside(n),
            "yield_ping" => yield_ping(n),
            "parked" => on_worker(parked(n)),
            "spawn_tree" => on_worker(async move {
                tree(tree_warmup_depth(n)).await;
                let t = Instant::now();
                let sum = tree(n).await;
                let d = t.elapsed();
                if sum != 1u64 << n {
                    return Err(format!("tree sum {sum}, expected {}", 1u64 << n));
                }
                Ok(tree_metrics(n, d))
            }),
            w => unsupported(w),
        }
    });
}

fn multi_thread() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// Runs `fut` as a task on a worker thread of a fresh multi-thread runtime.
fn on_worker<F>(fut: F) -> Result<Vec<Metric>, String>
where
    F: Future<Output = Result<Vec<Metric>, String>> + Send + 'static,
{
    let rt = multi_thread()?;
    let task = rt.spawn(fut);
    rt.block_on(task).map_err(|e| format!("task failed: {e}"))?
}

async fn spawn_join(n: usize) {
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
    for h in handles {
        h.await.expect("empty task failed");
    }
}

fn spawn_join_outside(n: usize) -> Result<Vec<Metric>, String> {
    let rt = multi_thread()?;
    let round = || {
        let handles: Vec<_> = (0..n).map(|_| rt.spawn(async {})).collect();
        rt.block_on(async {
            for h in handles {
                h.await.expect("empty task failed");
            }
        });
    };
    round();
    let t = Instant::now();
    round();
    Ok(vec![("ns_per_op", ns_per(t.elapsed(), n))])
}

fn yield_ping(n: usize) -> Result<Vec<Metric>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let ping = |k: usize| async move {
        let pinger = move || async move {
            for _ in 0..k {
                tokio::task::yield_now().await;
            }
        };
        let a = tokio::spawn(pinger());
        let b = tokio::spawn(pinger());
        a.await.expect("pinger failed");
        b.await.expect("pinger failed");
    };
    let d = rt.block_on(async move {
        ping((n / 10).max(1)).await;
        let t = Instant::now();
        ping(n).await;
        t.elapsed()
    });
    Ok(vec![("ns_per_op", ns_per(d, 2 * n))])
}

/// Counts down from `n`; `wait` returns once it reached zero.
struct Latch {
    left: AtomicUsize,
    zero: Notify,
}

impl Latch {
    fn new(n: usize) -> Arc<Latch> {
        Arc::new(Latch {
            left: AtomicUsize::new(n),
            zero: Notify::new(),
        })
    }

    fn count_down(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stores a permit if `wait` is not polled yet.
            self.zero.notify_one();
        }
    }

    async fn wait(&self) {
        if self.left.load(Ordering::Acquire) != 0 {
            self.zero.notified().await;
        }
    }
}

async fn parked(n: usize) -> Result<Vec<Metric>, String> {
    let release = Arc::new(Notify::new());
    let ready = Latch::new(n);
    let finished = Latch::new(n);
    let rss_before = rss_bytes();
    let t = Instant::now();
    for _ in 0..n {
        let (release, ready, finished) = (release.clone(), ready.clone(), finished.clone());
        // The handle is dropped (detached); `finished` tracks the end.
        tokio::spawn(async move {
            // Created before the count-down, so `notify_waiters` reaches it.
            let released = release.notified();
            ready.count_down();
            released.await;
            finished.count_down();
        });
    }
    ready.wait().await;
    let create = t.elapsed();
    let rss_parked = rss_bytes();
    let t = Instant::now();
    release.notify_waiters();
    finished.wait().await;
    let release_time = t.elapsed();
    Ok(parked_metrics(
        n,
        create,
        rss_before,
        rss_parked,
        release_time,
    ))
}

fn tree(depth: usize) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if depth == 0 {
            return 1;
        }
        let a = tokio::spawn(tree(depth - 1));
        let b = tokio::spawn(tree(depth - 1));
        a.await.expect("tree node failed") + b.await.expect("tree node failed")
    })
}
