//! `bench_load`: the load generator of the network workloads, the same
//! program for every peer, so only the server differs (`bench/run.py` starts
//! a peer's server, which prints `LISTENING <port>`, runs this against it,
//! then kills the server; protocol in `src/lib.rs`).
//!
//! ```text
//! bench_load tcp_echo   <host:port> <conns> <n>       [threads]
//! bench_load http_hello <host:port> <conns> <seconds> [threads]
//! ```
//!
//! - `tcp_echo`: opens `conns` connections (`TCP_NODELAY` set), then each
//!   does its share of `n` round trips: write 64 bytes, read the 64 bytes
//!   back (checked). One untimed round of `n / 10` round trips first (at
//!   least one per connection), then the timed round of `n`. Prints round
//!   trips per second (all connections together) and the p50/p99 of the
//!   single round trips' latencies in µs.
//! - `http_hello`: the fallback when `wrk` is not installed: `conns`
//!   keep-alive connections each send `GET / HTTP/1.1` and read the whole
//!   response (`Content-Length` body) in a loop for `seconds`; prints
//!   requests per second, latency p50/p99 in µs and how many responses
//!   were not 2xx (`non2xx`). No warm-up of its own (the runner does one
//!   short untimed run first).
//!
//! The client side is Tokio's multi-thread runtime with `threads` workers
//! (default 1: it keeps to one core, leaving the other cores to the
//! server), one task per connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gort_bench::{percentile, Metric, ECHO_MSG};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Default number of client threads.
const THREADS: usize = 1;

fn usage() -> ! {
    eprintln!(
        "usage: bench_load tcp_echo <host:port> <conns> <n> [threads]\n       \
         bench_load http_hello <host:port> <conns> <seconds> [threads]"
    );
    std::process::exit(2);
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() < 4 || argv.len() > 5 {
        usage();
    }
    let workload = argv[0].as_str();
    let addr: SocketAddr = argv[1].parse().unwrap_or_else(|_| usage());
    let conns: usize = argv[2].parse().unwrap_or_else(|_| usage());
    let n: usize = argv[3].parse().unwrap_or_else(|_| usage());
    let threads: usize = argv
        .get(4)
        .map_or(Ok(THREADS), |t| t.parse())
        .unwrap_or_else(|_| usage());
    if conns == 0 || n == 0 || threads == 0 {
        usage();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_io()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("load: tokio runtime: {e}");
            std::process::exit(2);
        });
    let result = match workload {
        "tcp_echo" => rt.block_on(rt.spawn(echo_load(addr, conns, n))),
        "http_hello" => {
            rt.block_on(rt.spawn(http_load(addr, conns, Duration::from_secs(n as u64))))
        }
        _ => usage(),
    };
    match result
        .map_err(|e| format!("load task failed: {e}"))
        .and_then(|r| r)
    {
        Ok(metrics) => {
            let mut line = format!("RESULT workload={workload} peer=load n={n} conns={conns}");
            for (name, value) in metrics {
                line.push_str(&format!(" {name}={value:.1}"));
            }
            println!("{line}");
        }
        Err(e) => {
            eprintln!("load: {workload}: {e}");
            std::process::exit(1);
        }
    }
}

async fn connect(addr: SocketAddr, conns: usize) -> Result<Vec<TcpStream>, String> {
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connection {i} to {addr}: {e}"))?;
        s.set_nodelay(true)
            .map_err(|e| format!("set_nodelay: {e}"))?;
        streams.push(s);
    }
    Ok(streams)
}

/// Every connection does its share of `total` round trips at once (its own
/// task); returns the connections again and all latencies in ns.
async fn echo_round(
    streams: Vec<TcpStream>,
    total: usize,
) -> Result<(Vec<TcpStream>, Vec<u64>), String> {
    let conns = streams.len();
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, mut s)| {
            let count = total / conns + usize::from(c < total % conns);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(count);
                let mut msg = [0u8; ECHO_MSG];
                let mut back = [0u8; ECHO_MSG];
                for k in 0..count {
                    msg.fill((c + k) as u8);
                    let t = Instant::now();
                    s.write_all(&msg).await.map_err(|e| format!("write: {e}"))?;
                    s.read_exact(&mut back)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    lat.push(t.elapsed().as_nanos() as u64);
                    if back != msg {
                        return Err("echoed bytes differ from the bytes sent".to_string());
                    }
                }
                Ok((s, lat))
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(conns);
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        let (s, lat) = t.await.map_err(|e| format!("connection task: {e}"))??;
        streams.push(s);
        all.extend(lat);
    }
    Ok((streams, all))
}

async fn echo_load(addr: SocketAddr, conns: usize, n: usize) -> Result<Vec<Metric>, String> {
    let streams = connect(addr, conns).await?;
    let (streams, _) = echo_round(streams, (n / 10).max(conns)).await?;
    let t = Instant::now();
    let (_streams, mut lat) = echo_round(streams, n).await?;
    let d = t.elapsed();
    lat.sort_unstable();
    Ok(vec![
        ("rtt_per_s", n as f64 / d.as_secs_f64()),
        ("p50_us", percentile(&lat, 50.0) as f64 / 1e3),
        ("p99_us", percentile(&lat, 99.0) as f64 / 1e3),
    ])
}

/// Reads one response (head and `Content-Length` body) from `s`; `buf`
/// keeps bytes read past it. Returns the status code.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(head)) => {
                let code = resp.code.unwrap_or(0);
                let body = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .ok_or("response without Content-Length")?;
                while buf.len() < head + body {
                    read_more(s, buf).await?;
                }
                buf.drain(..head + body);
                return Ok(code);
            }
            Ok(httparse::Status::Partial) => read_more(s, buf).await?,
            Err(e) => return Err(format!("bad response: {e}")),
        }
    }
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) => Err("server closed the connection".to_string()),
        Ok(k) => {
            buf.extend_from_slice(&chunk[..k]);
            Ok(())
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

async fn http_load(addr: SocketAddr, conns: usize, dur: Duration) -> Result<Vec<Metric>, String> {
    let streams = connect(addr, conns).await?;
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let t = Instant::now();
    let deadline = t + dur;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let request = request.clone();
            tokio::spawn(async move {
                let (mut lat, mut non2xx) = (Vec::new(), 0usize);
                let mut buf = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    s.write_all(&request)
                        .await
                        .map_err(|e| format!("write: {e}"))?;
                    let code = read_response(&mut s, &mut buf).await?;
                    lat.push(t.elapsed().as_nanos() as u64);
                    non2xx += usize::from(!(200..300).contains(&code));
                }
                Ok::<_, String>((lat, non2xx))
            })
        })
        .collect();
    let (mut lat, mut non2xx) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.map_err(|e| format!("connection task: {e}"))??;
        lat.extend(l);
        non2xx += e;
    }
    let d = t.elapsed();
    lat.sort_unstable();
    Ok(vec![
        ("req_per_s", lat.len() as f64 / d.as_secs_f64()),
        ("p50_us", percentile(&lat, 50.0) as f64 / 1e3),
        ("p99_us", percentile(&lat, 99.0) as f64 / 1e3),
        ("non2xx", non2xx as f64),
    ])
}
