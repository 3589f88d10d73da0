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
//!
//! The channel, lock, timer and context workloads run inside `gort::run`
//! (the main goroutine measures) with `gort::chan`, `gort::select!`,
//! `gort::sync`, `gort::time` and `gort::context`:
//!
//! - `chan_pingpong`: the main goroutine sends `i` on one `bounded(0)`
//!   channel, a second goroutine echoes it back on another; ns per round trip.
//! - `chan_buffered_1x1` / `chan_unbuffered_1x1`: one producer goroutine
//!   sends `0..n` through one `bounded(1024)` / `bounded(0)` channel to the
//!   main goroutine; M msgs/s resp. ns per message.
//! - `chan_buffered_4x4`: 4 producers send `n/4` each into one
//!   `bounded(1024)` channel; 4 consumers share clones of its `Receiver`
//!   and drain it until the last `Sender` is dropped; M msgs/s.
//! - `select2` / `select4`: 2 / 4 producers each feed their own
//!   `bounded(64)` channel with `n/k` values; the main goroutine receives
//!   all `n` through `gort::select!` over the 2 / 4 receivers (the senders
//!   stay open until it is done, so every ready case carries a value).
//! - `mutex_contended` / `mutex_uncontended`: 4 goroutines / the main one
//!   each lock a shared `gort::sync::Mutex<u64>` and increment it `n` times.
//! - `rwlock_read_mostly`: 4 goroutines each do `n` operations on a shared
//!   `gort::sync::RwLock<u64>`, every 100th a write, the rest reads.
//! - `timers`: `n` goroutines each `gort::time::sleep` for their
//!   `timer_delay(i)` and record how late they woke.
//! - `ctx_cancel_fanout`: `n` goroutines each block in `ctx.done().recv()`
//!   on one `context::background().with_cancel()`; time from `cancel()`
//!   until all have counted down a `WaitGroup`.
//! - `blocking_call`: the main goroutine calls
//!   `gort::blocking(|| libc::getppid())` `n` times (gort's path for a
//!   system call that may block: the processor is handed to another thread
//!   if the call blocks); ns per call.
//! - `fs_read_4k` / `fs_read_4k_std`: the main goroutine reads a 4 KiB
//!   file from the page cache `n` times with `gort::fs::read` (every call
//!   through the blocking hand-off) / with plain `std::fs::read` (no
//!   hand-off: the P is held during the calls); ns per read.
//!
//! Servers (`bench_gort echo_server|http_server <port>`; protocol in
//! `src/lib.rs`): inside `gort::run`, the main goroutine runs a
//! `gort::net::TcpListener` accept loop and `gort::go`es one goroutine per
//! accepted `gort::net::TcpStream`, which runs `gort_bench::echo_conn` /
//! `gort_bench::http_conn` (plain blocking `Read`/`Write` code, the same
//! the threads peer runs on `std::net`; `http_conn` is the logic of
//! `gort/examples/http.rs`). An accept error is logged and the loop sleeps
//! 10 ms with `gort::time::sleep`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{bounded, Receiver, Sender};
use gort::sync::{Mutex, RwLock, WaitGroup};
use gort_bench::{
    announce, echo_conn, http_conn, lateness_ns, main_with_servers, mmsgs_per_s, ns_per,
    parked_metrics, rss_bytes, rw_is_write, rw_writes, sum_below, timed, timer_delay,
    timers_metrics, tree_metrics, tree_warmup_depth, unsupported, Metric, SmallFile, ACCEPT_RETRY,
    BUFFERED_CAP, CONTENDERS, SELECT_CAP,
};

fn main() {
    main_with_servers("gort", serve, |a| match a.workload.as_str() {
        "spawn_join_inside" => Ok(gort::run(spawn_join_measured(a.n))),
        "spawn_join_outside" => Ok(spawn_join_measured(a.n)()),
        "yield_ping" => yield_ping(a.n),
        "parked" => Ok(gort::run(parked(a.n))),
        "spawn_tree" => gort::run(spawn_tree(a.n)),
        w => other(w, a.n),
    });
}

/// The channel, lock, timer and context workloads, each inside `gort::run`.
fn other(workload: &str, n: usize) -> Result<Vec<Metric>, String> {
    let per_msg = |d: Duration, n: usize| vec![("ns_per_op", ns_per(d, n))];
    let rate = |d: Duration, n: usize| vec![("mmsgs_per_s", mmsgs_per_s(d, n))];
    let per_lock = |d: Duration, n: usize| vec![("ns_per_op", ns_per(d, n * CONTENDERS))];
    Ok(match workload {
        "chan_pingpong" => gort::run(move || warm_timed(n, pingpong, per_msg)),
        "chan_buffered_1x1" => {
            gort::run(move || warm_timed(n, |k| one_to_one(k, BUFFERED_CAP), rate))
        }
        "chan_unbuffered_1x1" => gort::run(move || warm_timed(n, |k| one_to_one(k, 0), per_msg)),
        "chan_buffered_4x4" => {
            gort::run(move || warm_timed(n / CONTENDERS * CONTENDERS, four_by_four, rate))
        }
        "select2" => gort::run(move || warm_timed(n / 2 * 2, select2, per_msg)),
        "select4" => gort::run(move || warm_timed(n / 4 * 4, select4, per_msg)),
        "mutex_contended" => {
            gort::run(move || warm_timed(n, |k| mutex_rounds(k, CONTENDERS), per_lock))
        }
        "mutex_uncontended" => gort::run(move || warm_timed(n, |k| mutex_rounds(k, 1), per_msg)),
        "rwlock_read_mostly" => gort::run(move || warm_timed(n, rwlock_read_mostly, per_lock)),
        "timers" => gort::run(move || timers(n)),
        "ctx_cancel_fanout" => gort::run(move || cancel_fanout(n)),
        "blocking_call" => gort::run(move || warm_timed(n, blocking_calls, per_msg)),
        "fs_read_4k" => gort::run(move || fs_reads(n, |p| gort::fs::read(p)))?,
        "fs_read_4k_std" => gort::run(move || fs_reads(n, |p| std::fs::read(p)))?,
        w => return unsupported(w),
    })
}

/// One untimed round of `n / 10`, then one timed round of `n`; `metrics`
/// turns the timed round's duration and `n` into the metrics.
fn warm_timed(
    n: usize,
    round: impl Fn(usize),
    metrics: impl FnOnce(Duration, usize) -> Vec<Metric>,
) -> Vec<Metric> {
    round((n / 10).max(1));
    let ((), d) = timed(|| round(n));
    metrics(d, n)
}

fn pingpong(k: usize) {
    let (ping_tx, ping_rx) = bounded::<u64>(0);
    let (pong_tx, pong_rx) = bounded::<u64>(0);
    let echo = gort::go(move || {
        for _ in 0..k {
            let v = ping_rx.recv().expect("ping channel closed");
            pong_tx.send(v).expect("pong channel closed");
        }
    });
    for i in 0..k as u64 {
        ping_tx.send(i).expect("ping channel closed");
        let v = pong_rx.recv().expect("pong channel closed");
        assert_eq!(v, i);
    }
    echo.join().expect("echo goroutine panicked");
}

fn one_to_one(k: usize, cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let producer = gort::go(move || {
        for i in 0..k as u64 {
            tx.send(i).expect("receiver gone");
        }
    });
    let mut sum = 0u64;
    for _ in 0..k {
        sum += rx.recv().expect("sender gone");
    }
    producer.join().expect("producer panicked");
    assert_eq!(sum, sum_below(k));
}

fn four_by_four(k: usize) {
    let per = k / CONTENDERS;
    let (tx, rx) = bounded::<u64>(BUFFERED_CAP);
    let producers: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let tx = tx.clone();
            gort::go(move || {
                for i in 0..per as u64 {
                    tx.send(i).expect("receivers gone");
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let rx = rx.clone();
            gort::go(move || rx.iter().fold((0usize, 0u64), |(c, s), v| (c + 1, s + v)))
        })
        .collect();
    drop(rx);
    for p in producers {
        p.join().expect("producer panicked");
    }
    let (count, sum) = consumers
        .into_iter()
        .map(|c| c.join().expect("consumer panicked"))
        .fold((0, 0), |(c, s), (c1, s1)| (c + c1, s + s1));
    assert_eq!(count, per * CONTENDERS);
    assert_eq!(sum, sum_below(per) * CONTENDERS as u64);
}

/// `k` channels of capacity `SELECT_CAP`, each fed `per` values by its own
/// goroutine; the senders are returned too so the channels stay open while
/// the consumer selects.
#[allow(clippy::type_complexity)]
fn select_producers(
    k: usize,
    per: usize,
) -> (
    Vec<Receiver<u64>>,
    Vec<Sender<u64>>,
    Vec<gort::JoinHandle<()>>,
) {
    let mut rxs = Vec::new();
    let mut keep = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..k {
        let (tx, rx) = bounded::<u64>(SELECT_CAP);
        keep.push(tx.clone());
        rxs.push(rx);
        handles.push(gort::go(move || {
            for i in 0..per as u64 {
                tx.send(i).expect("consumer gone");
            }
        }));
    }
    (rxs, keep, handles)
}

fn select2(k: usize) {
    let per = k / 2;
    let (rxs, keep, handles) = select_producers(2, per);
    let (r0, r1) = (&rxs[0], &rxs[1]);
    let mut sum = 0u64;
    for _ in 0..per * 2 {
        gort::select! {
            recv(r0) -> v => sum += v.expect("closed"),
            recv(r1) -> v => sum += v.expect("closed"),
        }
    }
    for h in handles {
        h.join().expect("producer panicked");
    }
    drop(keep);
    assert_eq!(sum, sum_below(per) * 2);
}

fn select4(k: usize) {
    let per = k / 4;
    let (rxs, keep, handles) = select_producers(4, per);
    let (r0, r1, r2, r3) = (&rxs[0], &rxs[1], &rxs[2], &rxs[3]);
    let mut sum = 0u64;
    for _ in 0..per * 4 {
        gort::select! {
            recv(r0) -> v => sum += v.expect("closed"),
            recv(r1) -> v => sum += v.expect("closed"),
            recv(r2) -> v => sum += v.expect("closed"),
            recv(r3) -> v => sum += v.expect("closed"),
        }
    }
    for h in handles {
        h.join().expect("producer panicked");
    }
    drop(keep);
    assert_eq!(sum, sum_below(per) * 4);
}

/// `goroutines` goroutines (1: the caller itself) each lock and increment
/// one shared mutex `k` times.
fn mutex_rounds(k: usize, goroutines: usize) {
    let m = Arc::new(Mutex::new(0u64));
    let run = {
        let m = m.clone();
        move || {
            for _ in 0..k {
                *m.lock() += 1;
            }
        }
    };
    if goroutines == 1 {
        run();
    } else {
        let hs: Vec<_> = (0..goroutines).map(|_| gort::go(run.clone())).collect();
        for h in hs {
            h.join().expect("locker panicked");
        }
    }
    assert_eq!(*m.lock(), (k * goroutines) as u64);
}

fn rwlock_read_mostly(k: usize) {
    let l = Arc::new(RwLock::new(0u64));
    let hs: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let l = l.clone();
            gort::go(move || {
                for i in 0..k {
                    if rw_is_write(i) {
                        *l.write() += 1;
                    } else {
                        black_box(*l.read());
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("rwlock goroutine panicked");
    }
    assert_eq!(*l.read(), (rw_writes(k) * CONTENDERS) as u64);
}

fn timers(n: usize) -> Vec<Metric> {
    let late: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let early = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    let t = Instant::now();
    for i in 0..n {
        let (late, early) = (late.clone(), early.clone());
        wg.go(move || {
            let d = timer_delay(i);
            let intended = Instant::now() + d;
            gort::time::sleep(d);
            let (ns, was_early) = lateness_ns(intended, Instant::now());
            late[i].store(ns, Ordering::Relaxed);
            if was_early {
                early.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    wg.wait();
    let total = t.elapsed();
    let late = late.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    timers_metrics(late, early.load(Ordering::Relaxed), total)
}

fn cancel_fanout(n: usize) -> Vec<Metric> {
    let (ctx, cancel) = gort::context::background().with_cancel();
    let ready = WaitGroup::new();
    let finished = WaitGroup::new();
    ready.add(n as isize);
    for _ in 0..n {
        let (ctx, ready) = (ctx.clone(), ready.clone());
        finished.go(move || {
            ready.done();
            assert!(ctx.done().recv().is_err(), "nothing is ever sent on done");
        });
    }
    ready.wait();
    let ((), d) = timed(|| {
        cancel.cancel();
        finished.wait();
    });
    vec![("ns_per_op", ns_per(d, n))]
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

/// `n` trivial system calls, each through `gort::blocking`.
fn blocking_calls(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions and cannot fail.
        black_box(gort::blocking(|| unsafe { libc::getppid() }));
    }
}

/// `n` whole-file reads of a 4 KiB file with `read`, after `n / 10`
/// untimed ones; ns per read.
fn fs_reads(
    n: usize,
    read: impl Fn(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<Metric>, String> {
    let file = SmallFile::new("gort")?;
    let round = |k: usize| -> Result<(), String> {
        for _ in 0..k {
            let v = read(file.path()).map_err(|e| e.to_string())?;
            black_box(&v);
        }
        file.check(&read(file.path()).map_err(|e| e.to_string())?)
    };
    round((n / 10).max(1))?;
    let (r, d) = timed(|| round(n));
    r?;
    Ok(vec![("ns_per_op", ns_per(d, n))])
}

/// `echo_server` / `http_server`: binds `addr`, announces the port, and
/// serves every connection on its own goroutine until the process is
/// killed.
fn serve(server: &str, addr: SocketAddr) -> Result<(), String> {
    let conn: fn(gort::net::TcpStream) = if server == "http_server" {
        |s| drop(http_conn(s))
    } else {
        |s| drop(echo_conn(s))
    };
    gort::run(move || {
        let listener =
            gort::net::TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        announce(listener.local_addr().map_err(|e| e.to_string())?);
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    gort::go(move || conn(s));
                }
                Err(e) => {
                    eprintln!("gort: accept: {e}");
                    gort::time::sleep(ACCEPT_RETRY);
                }
            }
        }
    })
}
