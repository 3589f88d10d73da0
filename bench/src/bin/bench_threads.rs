//! std threads' side of the side-by-side benchmarks:
//! `bench_threads <workload> <n>` runs one workload once and prints one
//! `RESULT` line (protocol, sizes and warm-up policy: `src/lib.rs`; runner:
//! `bench/run.py`, which passes smaller `n` here: OS threads cost far more).
//! Threads use std's default stack size (2 MiB of address space).
//!
//! - `spawn_join_inside`: `std::thread::spawn` `n` empty threads, keep the
//!   handles, join them (there is no "inside": threads need no runtime, so
//!   the runner reports no `spawn_join_outside` for them).
//! - `yield_ping`: two threads pinned to the same CPU each call
//!   `std::thread::yield_now` (`sched_yield`) `n` times; ns per yield.
//! - `parked`: `n` threads each count down a latch and block on a gate
//!   (Mutex + Condvar); create time is until the latch hits zero, RSS per
//!   thread is the `VmRSS` growth / n; then the gate opens and all are joined.
//! - `spawn_tree`: every node of a depth-`n` tree spawns its two children as
//!   threads and joins them; leaves return 1.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use gort_bench::{
    main_with, ns_per, parked_metrics, rss_bytes, timed, tree_metrics, tree_warmup_depth,
    unsupported, Metric,
};

fn main() {
    main_with("threads", |a| match a.workload.as_str() {
        "spawn_join_inside" => Ok(spawn_join(a.n)),
        "yield_ping" => yield_ping(a.n),
        "parked" => Ok(parked(a.n)),
        "spawn_tree" => spawn_tree(a.n),
        w => unsupported(w),
    });
}

fn spawn_join(n: usize) -> Vec<Metric> {
    let round = || {
        let handles: Vec<_> = (0..n).map(|_| thread::spawn(|| ())).collect();
        for h in handles {
            h.join().expect("empty thread panicked");
        }
    };
    round();
    let ((), d) = timed(round);
    vec![("ns_per_op", ns_per(d, n))]
}

/// The first CPU this process may run on.
fn first_allowed_cpu() -> Result<usize, String> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills in.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return Err(format!(
                "sched_getaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .ok_or_else(|| "empty CPU affinity mask".to_string())
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: `set` is a plain bit set; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn yield_ping(n: usize) -> Result<Vec<Metric>, String> {
    let cpu = first_allowed_cpu()?;
    let ping = |k: usize| {
        let pinger = move || {
            pin_to(cpu);
            for _ in 0..k {
                thread::yield_now();
            }
        };
        let a = thread::spawn(pinger);
        let b = thread::spawn(pinger);
        a.join().expect("pinger panicked");
        b.join().expect("pinger panicked");
    };
    ping((n / 10).max(1));
    let ((), d) = timed(|| ping(n));
    Ok(vec![("ns_per_op", ns_per(d, 2 * n))])
}

/// Counts down from `n`; `wait` blocks until it reached zero.
struct Latch {
    left: Mutex<usize>,
    zero: Condvar,
}

impl Latch {
    fn new(n: usize) -> Arc<Latch> {
        Arc::new(Latch {
            left: Mutex::new(n),
            zero: Condvar::new(),
        })
    }

    fn count_down(&self) {
        let mut left = self.left.lock().unwrap();
        *left -= 1;
        if *left == 0 {
            self.zero.notify_all();
        }
    }

    fn wait(&self) {
        let mut left = self.left.lock().unwrap();
        while *left != 0 {
            left = self.zero.wait(left).unwrap();
        }
    }
}

fn parked(n: usize) -> Vec<Metric> {
    let ready = Latch::new(n);
    let release = Latch::new(1);
    let rss_before = rss_bytes();
    let (handles, create) = timed(|| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (ready, release) = (ready.clone(), release.clone());
                thread::spawn(move || {
                    ready.count_down();
                    release.wait();
                })
            })
            .collect();
        ready.wait();
        handles
    });
    let rss_parked = rss_bytes();
    let ((), release_time) = timed(|| {
        release.count_down();
        for h in handles {
            h.join().expect("parked thread panicked");
        }
    });
    parked_metrics(n, create, rss_before, rss_parked, release_time)
}

fn tree(depth: usize) -> u64 {
    if depth == 0 {
        return 1;
    }
    let a = thread::spawn(move || tree(depth - 1));
    let b = thread::spawn(move || tree(depth - 1));
    a.join().expect("tree node panicked") + b.join().expect("tree node panicked")
}

fn spawn_tree(depth: usize) -> Result<Vec<Metric>, String> {
    tree(tree_warmup_depth(depth));
    let (sum, d) = timed(|| tree(depth));
    if sum != 1u64 << depth {
        return Err(format!("tree sum {sum}, expected {}", 1u64 << depth));
    }
    Ok(tree_metrics(depth, d))
}
