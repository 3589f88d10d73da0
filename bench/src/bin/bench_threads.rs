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
//!
//! Channels are `crossbeam_channel`'s (`bounded(0)` is its rendezvous
//! channel, `select!` its select), locks `std::sync`'s:
//!
//! - `chan_pingpong`: the main thread sends `i` on one `bounded(0)` channel,
//!   a second thread echoes it back on another; ns per round trip.
//! - `chan_buffered_1x1` / `chan_unbuffered_1x1`: one producer thread sends
//!   `0..n` through one `bounded(1024)` / `bounded(0)` channel to the main
//!   thread; M msgs/s resp. ns per message.
//! - `chan_buffered_4x4`: 4 producer threads send `n/4` each into one
//!   `bounded(1024)` channel, 4 consumer threads share clones of its
//!   receiver and drain it until it disconnects; M msgs/s.
//! - `select2` / `select4`: 2 / 4 producer threads each feed their own
//!   `bounded(64)` channel with `n/k` values; the main thread receives all
//!   `n` through `select!` over the 2 / 4 receivers (the senders stay
//!   connected until it is done, so every ready case carries a value).
//! - `mutex_contended` / `mutex_uncontended`: 4 threads / 1 thread each lock
//!   a shared `std::sync::Mutex<u64>` and increment it `n` times.
//! - `rwlock_read_mostly`: 4 threads each do `n` operations on a shared
//!   `std::sync::RwLock<u64>`, every 100th a write (increment), the rest
//!   reads.
//! - `timers`: `n` threads each `std::thread::sleep` for their
//!   `timer_delay(i)` and record how late they woke.
//! - `ctx_cancel_fanout`: `n` threads each block in `recv` on a clone of one
//!   `bounded::<()>(0)` receiver (no context in std); dropping the only
//!   sender is the cancel; time from the drop until every thread has seen
//!   the disconnect and counted down a latch.
//! - `blocking_call`: `n` direct `libc::getppid()` calls (threads have no
//!   runtime to go through: the baseline cost of the system call); ns per
//!   call.
//! - `fs_read_4k`: `n` times `std::fs::read` of a 4 KiB file in the page
//!   cache, on the main thread; ns per read.
//!
//! Servers (`bench_threads echo_server|http_server <port>`; protocol in
//! `src/lib.rs`): a `std::net::TcpListener` accept loop on the main thread
//! and one `std::thread::spawn`ed thread per connection, running
//! `gort_bench::echo_conn` / `gort_bench::http_conn` (the very code the
//! gort peer runs on `gort::net`) on a `std::net::TcpStream`.

use std::hint::black_box;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, select, Receiver, Sender};
use gort_bench::{
    announce, echo_conn, http_conn, lateness_ns, main_with_servers, mmsgs_per_s, ns_per,
    parked_metrics, rss_bytes, rw_is_write, rw_writes, sum_below, timed, timer_delay,
    timers_metrics, tree_metrics, tree_warmup_depth, unsupported, Metric, SmallFile, ACCEPT_RETRY,
    BUFFERED_CAP, CONTENDERS, SELECT_CAP,
};

fn main() {
    main_with_servers("threads", serve, |a| match a.workload.as_str() {
        "spawn_join_inside" => Ok(spawn_join(a.n)),
        "yield_ping" => yield_ping(a.n),
        "parked" => Ok(parked(a.n)),
        "spawn_tree" => spawn_tree(a.n),
        "chan_pingpong" => Ok(warm_timed(a.n, pingpong, |d, n| {
            vec![("ns_per_op", ns_per(d, n))]
        })),
        "chan_buffered_1x1" => Ok(warm_timed(
            a.n,
            |k| one_to_one(k, BUFFERED_CAP),
            |d, n| vec![("mmsgs_per_s", mmsgs_per_s(d, n))],
        )),
        "chan_unbuffered_1x1" => Ok(warm_timed(
            a.n,
            |k| one_to_one(k, 0),
            |d, n| vec![("ns_per_op", ns_per(d, n))],
        )),
        "chan_buffered_4x4" => {
            let n = a.n / CONTENDERS * CONTENDERS;
            Ok(warm_timed(n, four_by_four, |d, n| {
                vec![("mmsgs_per_s", mmsgs_per_s(d, n))]
            }))
        }
        "select2" => {
            let n = a.n / 2 * 2;
            Ok(warm_timed(n, select2, |d, n| {
                vec![("ns_per_op", ns_per(d, n))]
            }))
        }
        "select4" => {
            let n = a.n / 4 * 4;
            Ok(warm_timed(n, select4, |d, n| {
                vec![("ns_per_op", ns_per(d, n))]
            }))
        }
        "mutex_contended" => Ok(warm_timed(
            a.n,
            |k| mutex_rounds(k, CONTENDERS),
            |d, n| vec![("ns_per_op", ns_per(d, n * CONTENDERS))],
        )),
        "mutex_uncontended" => Ok(warm_timed(
            a.n,
            |k| mutex_rounds(k, 1),
            |d, n| vec![("ns_per_op", ns_per(d, n))],
        )),
        "rwlock_read_mostly" => Ok(warm_timed(a.n, rwlock_read_mostly, |d, n| {
            vec![("ns_per_op", ns_per(d, n * CONTENDERS))]
        })),
        "timers" => Ok(timers(a.n)),
        "ctx_cancel_fanout" => Ok(cancel_fanout(a.n)),
        "blocking_call" => Ok(warm_timed(a.n, direct_calls, |d, n| {
            vec![("ns_per_op", ns_per(d, n))]
        })),
        "fs_read_4k" => fs_reads(a.n),
        w => unsupported(w),
    });
}

/// One untimed round of `n / 10`, then one timed round of `n`; `metrics`
/// turns the timed round's duration and `n` into the metrics.
fn warm_timed(
    n: usize,
    round: impl Fn(usize),
    metrics: impl FnOnce(std::time::Duration, usize) -> Vec<Metric>,
) -> Vec<Metric> {
    round((n / 10).max(1));
    let ((), d) = timed(|| round(n));
    metrics(d, n)
}

fn pingpong(k: usize) {
    let (ping_tx, ping_rx) = bounded::<u64>(0);
    let (pong_tx, pong_rx) = bounded::<u64>(0);
    let echo = thread::spawn(move || {
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
    echo.join().expect("echo thread panicked");
}

fn one_to_one(k: usize, cap: usize) {
    let (tx, rx) = bounded::<u64>(cap);
    let producer = thread::spawn(move || {
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
            thread::spawn(move || {
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
            thread::spawn(move || rx.iter().fold((0usize, 0u64), |(c, s), v| (c + 1, s + v)))
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

/// `k` producers' channels of capacity `SELECT_CAP`, each fed `per` values
/// by its own thread; the senders are returned too so the channels stay
/// connected while the consumer selects.
#[allow(clippy::type_complexity)]
fn select_producers(
    k: usize,
    per: usize,
) -> (
    Vec<Receiver<u64>>,
    Vec<Sender<u64>>,
    Vec<thread::JoinHandle<()>>,
) {
    let mut rxs = Vec::new();
    let mut keep = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..k {
        let (tx, rx) = bounded::<u64>(SELECT_CAP);
        keep.push(tx.clone());
        rxs.push(rx);
        handles.push(thread::spawn(move || {
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
        select! {
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
        select! {
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

/// `threads` threads each lock and increment one shared mutex `k` times.
fn mutex_rounds(k: usize, threads: usize) {
    let m = Arc::new(Mutex::new(0u64));
    let run = {
        let m = m.clone();
        move || {
            for _ in 0..k {
                *m.lock().unwrap() += 1;
            }
        }
    };
    if threads == 1 {
        run();
    } else {
        let hs: Vec<_> = (0..threads).map(|_| thread::spawn(run.clone())).collect();
        for h in hs {
            h.join().expect("locker panicked");
        }
    }
    assert_eq!(*m.lock().unwrap(), (k * threads) as u64);
}

fn rwlock_read_mostly(k: usize) {
    let l = Arc::new(RwLock::new(0u64));
    let hs: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let l = l.clone();
            thread::spawn(move || {
                for i in 0..k {
                    if rw_is_write(i) {
                        *l.write().unwrap() += 1;
                    } else {
                        black_box(*l.read().unwrap());
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("rwlock thread panicked");
    }
    assert_eq!(*l.read().unwrap(), (rw_writes(k) * CONTENDERS) as u64);
}

fn timers(n: usize) -> Vec<Metric> {
    let late: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let early = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (late, early) = (late.clone(), early.clone());
            thread::spawn(move || {
                let d = timer_delay(i);
                let intended = Instant::now() + d;
                thread::sleep(d);
                let (ns, was_early) = lateness_ns(intended, Instant::now());
                late[i].store(ns, Ordering::Relaxed);
                if was_early {
                    early.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("sleeper panicked");
    }
    let total = t.elapsed();
    let late = late.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    timers_metrics(late, early.load(Ordering::Relaxed) as usize, total)
}

fn cancel_fanout(n: usize) -> Vec<Metric> {
    let (cancel, done) = bounded::<()>(0);
    let ready = Latch::new(n);
    let finished = Latch::new(n);
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (done, ready, finished) = (done.clone(), ready.clone(), finished.clone());
            thread::spawn(move || {
                ready.count_down();
                assert!(done.recv().is_err(), "nothing is ever sent");
                finished.count_down();
            })
        })
        .collect();
    ready.wait();
    let ((), d) = timed(|| {
        drop(cancel);
        finished.wait();
    });
    for h in hs {
        h.join().expect("waiter panicked");
    }
    vec![("ns_per_op", ns_per(d, n))]
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

/// `n` direct trivial system calls.
fn direct_calls(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions and cannot fail.
        black_box(unsafe { libc::getppid() });
    }
}

/// `echo_server` / `http_server`: binds `addr`, announces the port, and
/// serves every connection on its own thread until the process is killed.
fn serve(server: &str, addr: SocketAddr) -> Result<(), String> {
    let conn: fn(std::net::TcpStream) = if server == "http_server" {
        |s| drop(http_conn(s))
    } else {
        |s| drop(echo_conn(s))
    };
    let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    announce(listener.local_addr().map_err(|e| e.to_string())?);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                if let Err(e) = thread::Builder::new().spawn(move || conn(s)) {
                    eprintln!("threads: spawn: {e}");
                }
            }
            Err(e) => {
                eprintln!("threads: accept: {e}");
                thread::sleep(ACCEPT_RETRY);
            }
        }
    }
}

/// `n` times `std::fs::read` of a 4 KiB file, after `n / 10` untimed reads.
fn fs_reads(n: usize) -> Result<Vec<Metric>, String> {
    let file = SmallFile::new("threads")?;
    let round = |k: usize| -> Result<(), String> {
        for _ in 0..k {
            black_box(std::fs::read(file.path()).map_err(|e| e.to_string())?);
        }
        file.check(&std::fs::read(file.path()).map_err(|e| e.to_string())?)
    };
    round((n / 10).max(1))?;
    let (r, d) = timed(|| round(n));
    r?;
    Ok(vec![("ns_per_op", ns_per(d, n))])
}
