//! A program that deadlocks, and what gort says about it.
//!
//! `main` waits for a result from a worker that waits for a job nobody
//! sends: every goroutine is asleep and nothing can wake one, so main's
//! `recv` panics with Go's message and the report of every goroutine, and
//! the program exits with status 101:
//!
//! ```text
//! $ RUST_BACKTRACE=0 cargo run -p gort --example deadlock
//! goroutine 1 "main" (spawned at gort/examples/deadlock.rs:28:1) panicked:
//!
//! thread 'gort-1-m3' (24025) panicked at gort/src/runtime/deadlock.rs:224:5:
//! gort: all goroutines are asleep - deadlock!
//!
//! goroutine 1 "main" [chan receive, 0ms]:
//!     waiting at gort/examples/deadlock.rs:42:24
//!     spawned at gort/examples/deadlock.rs:28:1
//!
//! goroutine 2 "worker" [chan receive, 0ms]:
//!     waiting at gort/examples/deadlock.rs:35:13
//!     spawned at gort/examples/deadlock.rs:34:10
//! ```
//!
//! `kill -QUIT` (Ctrl-\) on a running `#[gort::main]` program prints the
//! same report and exits with status 2; `GORT_SCHEDTRACE=100` prints the
//! scheduler's state every 100 ms.

#[gort::main]
fn main() {
    let (jobs_tx, jobs_rx) = gort::chan::bounded::<u32>(0);
    let (results_tx, results_rx) = gort::chan::bounded::<u32>(0);
    gort::Builder::new()
        .name("worker")
        .spawn(move || {
            for job in jobs_rx.iter() {
                results_tx.send(job * 2).unwrap();
            }
        })
        .unwrap();
    // The bug: no job is ever sent, and `jobs_tx` stays open.
    let _keep = jobs_tx;
    let r = results_rx.recv().unwrap();
    println!("result: {r}");
}
