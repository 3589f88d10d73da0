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
//!
//! Channels are `tokio::sync::mpsc`'s, locks `tokio::sync`'s, sleeps
//! `tokio::time`'s; every workload runs as tasks on the multi-thread runtime
//! (the measuring one a spawned task, as in `spawn_join_inside`):
//!
//! - `chan_pingpong`: one task sends `i` on one `mpsc::channel(1)`, a second
//!   task echoes it back on another; ns per round trip. Tokio has no
//!   unbuffered (rendezvous) channel: capacity 1 is the closest.
//! - `chan_buffered_1x1` / `chan_unbuffered_1x1`: one producer task sends
//!   `0..n` through one `mpsc::channel(1024)` / `mpsc::channel(1)` to the
//!   measuring task; M msgs/s resp. ns per message.
//! - `chan_buffered_4x4`: 4 producer tasks send `n/4` each into one
//!   `mpsc::channel(1024)`; mpsc has a single receiver, so the 4 consumer
//!   tasks share it behind an `Arc<tokio::sync::Mutex<Receiver>>`, each
//!   locking it for every `recv` (no MPMC channel in tokio itself).
//! - `select2` / `select4`: 2 / 4 producer tasks each feed their own
//!   `mpsc::channel(64)` with `n/k` values; the measuring task receives all
//!   `n` through `tokio::select!` (random branch order, its default) over
//!   the 2 / 4 receivers.
//! - `mutex_contended` / `mutex_uncontended`: 4 tasks / 1 task each
//!   `lock().await` a shared `tokio::sync::Mutex<u64>` and increment it `n`
//!   times.
//! - `rwlock_read_mostly`: 4 tasks each do `n` operations on a shared
//!   `tokio::sync::RwLock<u64>`, every 100th a write, the rest reads.
//! - `timers`: `n` tasks each `tokio::time::sleep` for their
//!   `timer_delay(i)` (Tokio's timer wheel has 1 ms resolution) and record
//!   how late they woke.
//! - `ctx_cancel_fanout`: `n` tasks each await `cancelled()` on a clone of
//!   one `tokio_util::sync::CancellationToken`; time from `cancel()` until
//!   every task has counted down a latch.
//! - `blocking_call`: from a task on a worker thread, `n` times
//!   `tokio::task::block_in_place(|| libc::getppid())` (Tokio's way to block
//!   inside a worker: the worker's core is handed to another thread for the
//!   call); ns per call.
//! - `fs_read_4k`: from a task, `n` times `tokio::fs::read(path).await` of
//!   a 4 KiB file in the page cache (Tokio runs each on its blocking thread
//!   pool through `spawn_blocking`); ns per read.
//!
//! Servers (`bench_tokio echo_server|http_server <port>`; protocol in
//! `src/lib.rs`): the accept loop runs in `block_on` on the multi-thread
//! runtime (default worker count), every accepted connection gets its own
//! `tokio::spawn`ed task. `echo_server`: `tokio::net` streams, a 4 KiB
//! `read` / `write_all` loop. `http_server`: hyper 1.x's
//! `server::conn::http1` (keep-alive on, its default) through
//! `hyper_util::rt::TokioIo`, a `service_fn` answering `Hello, World!`
//! with `Content-Type: text/plain` (hyper adds `Date` and
//! `Content-Length`).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort_bench::{
    announce, lateness_ns, main_with_servers, mmsgs_per_s, ns_per, parked_metrics, rss_bytes,
    rw_is_write, rw_writes, sum_below, timer_delay, timers_metrics, tree_metrics,
    tree_warmup_depth, unsupported, Metric, SmallFile, ACCEPT_RETRY, BUFFERED_CAP, CONTENDERS,
    ECHO_BUF, HTTP_BODY, SELECT_CAP,
};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex, Notify, RwLock};
use tokio_util::sync::CancellationToken;

fn main() {
    main_with_servers("tokio", serve, |a| {
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
            "chan_pingpong" => on_worker(warm_timed(n, pingpong, |d, n| {
                vec![("ns_per_op", ns_per(d, n))]
            })),
            "chan_buffered_1x1" => on_worker(warm_timed(
                n,
                |k| one_to_one(k, BUFFERED_CAP),
                |d, n| vec![("mmsgs_per_s", mmsgs_per_s(d, n))],
            )),
            "chan_unbuffered_1x1" => on_worker(warm_timed(
                n,
                |k| one_to_one(k, 1),
                |d, n| vec![("ns_per_op", ns_per(d, n))],
            )),
            "chan_buffered_4x4" => on_worker(warm_timed(
                n / CONTENDERS * CONTENDERS,
                four_by_four,
                |d, n| vec![("mmsgs_per_s", mmsgs_per_s(d, n))],
            )),
            "select2" => on_worker(warm_timed(n / 2 * 2, select2, |d, n| {
                vec![("ns_per_op", ns_per(d, n))]
            })),
            "select4" => on_worker(warm_timed(n / 4 * 4, select4, |d, n| {
                vec![("ns_per_op", ns_per(d, n))]
            })),
            "mutex_contended" => on_worker(warm_timed(
                n,
                |k| mutex_rounds(k, CONTENDERS),
                |d, n| vec![("ns_per_op", ns_per(d, n * CONTENDERS))],
            )),
            "mutex_uncontended" => on_worker(warm_timed(
                n,
                |k| mutex_rounds(k, 1),
                |d, n| vec![("ns_per_op", ns_per(d, n))],
            )),
            "rwlock_read_mostly" => on_worker(warm_timed(n, rwlock_read_mostly, |d, n| {
                vec![("ns_per_op", ns_per(d, n * CONTENDERS))]
            })),
            "timers" => on_worker_with_time(timers(n)),
            "ctx_cancel_fanout" => on_worker(cancel_fanout(n)),
            "blocking_call" => on_worker(async move {
                blocking_calls((n / 10).max(1));
                let t = Instant::now();
                blocking_calls(n);
                Ok(vec![("ns_per_op", ns_per(t.elapsed(), n))])
            }),
            "fs_read_4k" => on_worker(async move {
                let file = SmallFile::new("tokio")?;
                fs_reads(&file, (n / 10).max(1)).await?;
                let t = Instant::now();
                fs_reads(&file, n).await?;
                Ok(vec![("ns_per_op", ns_per(t.elapsed(), n))])
            }),
            w => unsupported(w),
        }
    });
}

/// One untimed round of `n / 10`, then one timed round of `n`; `metrics`
/// turns the timed round's duration and `n` into the metrics.
async fn warm_timed<R, F>(
    n: usize,
    round: R,
    metrics: impl FnOnce(Duration, usize) -> Vec<Metric>,
) -> Result<Vec<Metric>, String>
where
    R: Fn(usize) -> F,
    F: Future<Output = ()>,
{
    round((n / 10).max(1)).await;
    let t = Instant::now();
    round(n).await;
    Ok(metrics(t.elapsed(), n))
}

async fn pingpong(k: usize) {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let echo = tokio::spawn(async move {
        for _ in 0..k {
            let v = ping_rx.recv().await.expect("ping channel closed");
            pong_tx.send(v).await.expect("pong channel closed");
        }
    });
    for i in 0..k as u64 {
        ping_tx.send(i).await.expect("ping channel closed");
        let v = pong_rx.recv().await.expect("pong channel closed");
        assert_eq!(v, i);
    }
    echo.await.expect("echo task failed");
}

async fn one_to_one(k: usize, cap: usize) {
    let (tx, mut rx) = mpsc::channel::<u64>(cap);
    let producer = tokio::spawn(async move {
        for i in 0..k as u64 {
            tx.send(i).await.expect("receiver gone");
        }
    });
    let mut sum = 0u64;
    for _ in 0..k {
        sum += rx.recv().await.expect("sender gone");
    }
    producer.await.expect("producer failed");
    assert_eq!(sum, sum_below(k));
}

async fn four_by_four(k: usize) {
    let per = k / CONTENDERS;
    let (tx, rx) = mpsc::channel::<u64>(BUFFERED_CAP);
    let rx = Arc::new(Mutex::new(rx));
    let producers: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0..per as u64 {
                    tx.send(i).await.expect("receiver gone");
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let (mut count, mut sum) = (0usize, 0u64);
                loop {
                    let v = rx.lock().await.recv().await;
                    match v {
                        Some(v) => {
                            count += 1;
                            sum += v;
                        }
                        None => return (count, sum),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("producer failed");
    }
    let (mut count, mut sum) = (0, 0);
    for c in consumers {
        let (c, s) = c.await.expect("consumer failed");
        count += c;
        sum += s;
    }
    assert_eq!(count, per * CONTENDERS);
    assert_eq!(sum, sum_below(per) * CONTENDERS as u64);
}

/// `k` channels of capacity `SELECT_CAP`, each fed `per` values by its own
/// task; the senders are returned too so the channels stay open while the
/// consumer selects.
#[allow(clippy::type_complexity)]
fn select_producers(
    k: usize,
    per: usize,
) -> (
    Vec<mpsc::Receiver<u64>>,
    Vec<mpsc::Sender<u64>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let mut rxs = Vec::new();
    let mut keep = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..k {
        let (tx, rx) = mpsc::channel::<u64>(SELECT_CAP);
        keep.push(tx.clone());
        rxs.push(rx);
        handles.push(tokio::spawn(async move {
            for i in 0..per as u64 {
                tx.send(i).await.expect("consumer gone");
            }
        }));
    }
    (rxs, keep, handles)
}

async fn select2(k: usize) {
    let per = k / 2;
    let (mut rxs, keep, handles) = select_producers(2, per);
    let [r0, r1] = &mut rxs[..] else {
        unreachable!()
    };
    let mut sum = 0u64;
    for _ in 0..per * 2 {
        tokio::select! {
            v = r0.recv() => sum += v.expect("closed"),
            v = r1.recv() => sum += v.expect("closed"),
        }
    }
    for h in handles {
        h.await.expect("producer failed");
    }
    drop(keep);
    assert_eq!(sum, sum_below(per) * 2);
}

async fn select4(k: usize) {
    let per = k / 4;
    let (mut rxs, keep, handles) = select_producers(4, per);
    let [r0, r1, r2, r3] = &mut rxs[..] else {
        unreachable!()
    };
    let mut sum = 0u64;
    for _ in 0..per * 4 {
        tokio::select! {
            v = r0.recv() => sum += v.expect("closed"),
            v = r1.recv() => sum += v.expect("closed"),
            v = r2.recv() => sum += v.expect("closed"),
            v = r3.recv() => sum += v.expect("closed"),
        }
    }
    for h in handles {
        h.await.expect("producer failed");
    }
    drop(keep);
    assert_eq!(sum, sum_below(per) * 4);
}

/// `tasks` tasks each lock and increment one shared mutex `k` times (one
/// task: the measuring task itself).
async fn mutex_rounds(k: usize, tasks: usize) {
    let m = Arc::new(Mutex::new(0u64));
    let run = |m: Arc<Mutex<u64>>| async move {
        for _ in 0..k {
            *m.lock().await += 1;
        }
    };
    if tasks == 1 {
        run(m.clone()).await;
    } else {
        let hs: Vec<_> = (0..tasks).map(|_| tokio::spawn(run(m.clone()))).collect();
        for h in hs {
            h.await.expect("locker failed");
        }
    }
    assert_eq!(*m.lock().await, (k * tasks) as u64);
}

async fn rwlock_read_mostly(k: usize) {
    let l = Arc::new(RwLock::new(0u64));
    let hs: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let l = l.clone();
            tokio::spawn(async move {
                for i in 0..k {
                    if rw_is_write(i) {
                        *l.write().await += 1;
                    } else {
                        black_box(*l.read().await);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.await.expect("rwlock task failed");
    }
    assert_eq!(*l.read().await, (rw_writes(k) * CONTENDERS) as u64);
}

async fn timers(n: usize) -> Result<Vec<Metric>, String> {
    let late: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let early = Arc::new(AtomicUsize::new(0));
    let finished = Latch::new(n);
    let t = Instant::now();
    for i in 0..n {
        let (late, early, finished) = (late.clone(), early.clone(), finished.clone());
        tokio::spawn(async move {
            let d = timer_delay(i);
            let intended = Instant::now() + d;
            tokio::time::sleep(d).await;
            let (ns, was_early) = lateness_ns(intended, Instant::now());
            late[i].store(ns, Ordering::Relaxed);
            if was_early {
                early.fetch_add(1, Ordering::Relaxed);
            }
            finished.count_down();
        });
    }
    finished.wait().await;
    let total = t.elapsed();
    let late = late.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    Ok(timers_metrics(late, early.load(Ordering::Relaxed), total))
}

async fn cancel_fanout(n: usize) -> Result<Vec<Metric>, String> {
    let token = CancellationToken::new();
    let ready = Latch::new(n);
    let finished = Latch::new(n);
    for _ in 0..n {
        let (token, ready, finished) = (token.clone(), ready.clone(), finished.clone());
        tokio::spawn(async move {
            let cancelled = token.cancelled();
            ready.count_down();
            cancelled.await;
            finished.count_down();
        });
    }
    ready.wait().await;
    let t = Instant::now();
    token.cancel();
    finished.wait().await;
    Ok(vec![("ns_per_op", ns_per(t.elapsed(), n))])
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
    run_on(multi_thread()?, fut)
}

/// As `on_worker`, on a runtime with the timer driver enabled (only the
/// `timers` workload sleeps; the others run without the driver, as before).
fn on_worker_with_time<F>(fut: F) -> Result<Vec<Metric>, String>
where
    F: Future<Output = Result<Vec<Metric>, String>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    run_on(rt, fut)
}

fn run_on<F>(rt: Runtime, fut: F) -> Result<Vec<Metric>, String>
where
    F: Future<Output = Result<Vec<Metric>, String>> + Send + 'static,
{
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

/// `k` times `tokio::fs::read` of the 4 KiB file, then one more, checked.
async fn fs_reads(file: &SmallFile, k: usize) -> Result<(), String> {
    for _ in 0..k {
        black_box(
            tokio::fs::read(file.path())
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    file.check(
        &tokio::fs::read(file.path())
            .await
            .map_err(|e| e.to_string())?,
    )
}

/// `n` trivial system calls, each through `block_in_place`.
fn blocking_calls(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions and cannot fail.
        black_box(tokio::task::block_in_place(|| unsafe { libc::getppid() }));
    }
}

/// `echo_server` / `http_server`: binds `addr`, announces the port, and
/// serves every connection on its own task until the process is killed.
fn serve(server: &str, addr: SocketAddr) -> Result<(), String> {
    let http = server == "http_server";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        announce(listener.local_addr().map_err(|e| e.to_string())?);
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    eprintln!("tokio: accept: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if http {
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
                        .await;
                });
            } else {
                tokio::spawn(echo(stream));
            }
        }
    })
}

async fn echo(mut s: tokio::net::TcpStream) {
    let mut buf = [0u8; ECHO_BUF];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(HTTP_BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}
