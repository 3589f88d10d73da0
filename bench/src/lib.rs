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
//! | `blocking_call`      | calls                  | one round of `n / 10`    |
//! | `fs_read_4k`, `fs_read_4k_std` | whole-file reads of a 4 KiB file | one round of `n / 10` |
//!
//! ## Servers
//!
//! The network workloads measure a *server*; the load comes from a separate
//! process that is the same for every peer (`bench_load` for `tcp_echo`,
//! `wrk` or `bench_load` for `http_hello`), so only the server differs.
//! `<binary> echo_server <port>` and `<binary> http_server <port>` bind
//! `127.0.0.1:<port>` (0: any free port), print one line
//!
//! ```text
//! LISTENING 40321
//! ```
//!
//! on stdout once they accept connections, and serve until killed (the
//! runner kills them after the load ran). Both serve every connection on
//! its own goroutine / task / thread and set `TCP_NODELAY` on it (Go's
//! default). `echo_server` writes back whatever it reads, through a
//! 4 KiB buffer ([`echo_conn`]); `http_server` answers every HTTP/1.1
//! request with `Hello, World!` keeping the connection alive
//! ([`http_conn`] for gort and threads, `net/http` for Go, hyper for Tokio).
//! An accept error (e.g. `EMFILE`) is logged to stderr and the server
//! sleeps 10 ms and accepts again.
//!
//! Sizes that split across goroutines (`chan_buffered_4x4`, `select2`,
//! `select4`) are rounded down to a multiple of the goroutine count; the
//! per-message metrics divide by the number actually sent.
//!
//! Errors (unknown workload, bad args) go to stderr with exit status 2; the
//! runner shows them as "failed".

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    "blocking_call",
    "fs_read_4k",
    "fs_read_4k_std",
];

/// The server modes a binary may be given (`<binary> <server> <port>`; see
/// the module docs).
pub const SERVERS: &[&str] = &["echo_server", "http_server"];

/// As [`main_with`], but first checks whether the binary was started as a
/// server (`<binary> <server> <port>`, a name from [`SERVERS`]): then it
/// calls `serve` with the server's name and `127.0.0.1:<port>`, which
/// serves until the process is killed; an `Err` (e.g. the port is taken)
/// goes to stderr with exit status 2.
pub fn main_with_servers(
    peer: &str,
    serve: impl FnOnce(&str, SocketAddr) -> Result<(), String>,
    body: impl FnOnce(&Args) -> Result<Vec<Metric>, String>,
) {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(server) = argv.first().filter(|a| SERVERS.contains(&a.as_str())) else {
        return main_with(peer, body);
    };
    let port = match argv.get(1).map(|p| p.parse::<u16>()) {
        Some(Ok(p)) if argv.len() == 2 => p,
        _ => {
            eprintln!("{peer}: usage: bench_{peer} {server} <port> (0: any free port)");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(server, SocketAddr::from(([127, 0, 0, 1], port))) {
        eprintln!("{peer}: {server}: {e}");
        std::process::exit(2);
    }
}

/// Prints the `LISTENING <port>` line the runner waits for (stdout is
/// line-buffered, so it leaves at once).
pub fn announce(addr: SocketAddr) {
    println!("LISTENING {}", addr.port());
}

/// How long a server sleeps after a failed `accept` before trying again.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// Size of the echo servers' read buffer.
pub const ECHO_BUF: usize = 4096;

/// Writes back everything read from `s` until end of stream; the echo
/// servers of gort (on a `gort::net::TcpStream`) and threads (on a
/// `std::net::TcpStream`) both run exactly this.
pub fn echo_conn<S: Read + Write>(mut s: S) -> io::Result<()> {
    let mut buf = [0u8; ECHO_BUF];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.write_all(&buf[..n])?;
    }
}

/// The body of every `http_server` response.
pub const HTTP_BODY: &[u8] = b"Hello, World!";

/// Longest request head (request line and headers) `http_conn` accepts.
pub const HTTP_MAX_HEAD: usize = 8192;

/// Most headers `http_conn` accepts in one request.
pub const HTTP_MAX_HEADERS: usize = 32;

/// What `http_conn` gathered from one request head.
struct Head {
    keep_alive: bool,
    http10: bool,
    head_only: bool,
    body_len: u64,
}

/// Why a request is refused: the status line to answer with.
type Refusal = &'static str;

const BAD_REQUEST: Refusal = "400 Bad Request";
const NOT_IMPLEMENTED: Refusal = "501 Not Implemented";
const TOO_LARGE: Refusal = "431 Request Header Fields Too Large";

fn inspect(req: &httparse::Request<'_, '_>) -> Result<Head, Refusal> {
    let http10 = req.version == Some(0);
    let (mut close, mut keep) = (false, false);
    let mut body_len: Option<u64> = None;
    let mut host = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let v = std::str::from_utf8(h.value).map_err(|_| BAD_REQUEST)?;
            for token in v.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .map_err(|_| BAD_REQUEST)?
                .trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD_REQUEST);
            }
            let len = v.parse::<u64>().map_err(|_| BAD_REQUEST)?;
            if body_len.is_some_and(|l| l != len) {
                return Err(BAD_REQUEST);
            }
            body_len = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(NOT_IMPLEMENTED);
        } else if h.name.eq_ignore_ascii_case("host") {
            host = true;
        }
    }
    if !http10 && !host {
        return Err(BAD_REQUEST); // RFC 9112 3.2: HTTP/1.1 requires Host
    }
    Ok(Head {
        keep_alive: if http10 { keep && !close } else { !close },
        http10,
        head_only: req.method == Some("HEAD"),
        body_len: body_len.unwrap_or(0),
    })
}

/// The `Date` header's value for the current second, formatted once per
/// second per connection.
struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    fn new() -> Self {
        DateCache {
            secs: u64::MAX,
            text: [b' '; 29],
        }
    }

    fn now(&mut self) -> &[u8] {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            self.text = http_date(secs);
        }
        &self.text
    }
}

/// An IMF-fixdate (RFC 9110 5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`,
/// for `secs` seconds after the Unix epoch.
pub fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let mut out = [b' '; 29];
    let n = s.len().min(29);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

fn respond(out: &mut Vec<u8>, date: &mut DateCache, head: &Head) {
    // RFC 9110 2.5: answer with the highest version supported, 1.0 requests too.
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nDate: ");
    out.extend_from_slice(date.now());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice(HTTP_BODY.len().to_string().as_bytes());
    if !head.keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if head.http10 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !head.head_only {
        out.extend_from_slice(HTTP_BODY);
    }
}

fn refuse(out: &mut Vec<u8>, date: &mut DateCache, status: Refusal) {
    let body = &status[4..];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date.now());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// Serves one HTTP/1.1 connection: answers every request (any method and
/// path) with `200 OK` and [`HTTP_BODY`], keeping the connection open
/// unless the client asks to close it (`Connection: close`, or HTTP/1.0
/// without `Connection: keep-alive`). Pipelined requests are answered in
/// order, and all answers to the requests one read brought in go out in
/// one write. Request bodies (`Content-Length`) are read and dropped; a
/// malformed head gets `400 Bad Request` (a head over [`HTTP_MAX_HEAD`]
/// bytes `431`, chunked bodies `501`) and the connection is closed. Returns
/// when the client closes (a request cut short included) or on an I/O
/// error (e.g. the client reset the connection), which is returned.
///
/// Plain blocking `Read`/`Write` code: gort runs it on a `gort::net::TcpStream`
/// in a goroutine (as `gort/examples/http.rs` does), threads on a
/// `std::net::TcpStream` in a thread.
pub fn http_conn<S: Read + Write>(mut s: S) -> io::Result<()> {
    let mut buf = vec![0u8; HTTP_MAX_HEAD];
    let (mut start, mut end) = (0usize, 0usize);
    let mut skip: u64 = 0; // body bytes of the last request still to drop
    let mut out = Vec::with_capacity(4096);
    let mut date = DateCache::new();
    loop {
        // Answer every complete request already buffered.
        loop {
            let drop_now = skip.min((end - start) as u64);
            start += drop_now as usize;
            skip -= drop_now;
            if skip > 0 || start == end {
                break;
            }
            let mut headers = [httparse::EMPTY_HEADER; HTTP_MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let refusal = match req.parse(&buf[start..end]) {
                Ok(httparse::Status::Complete(len)) => match inspect(&req) {
                    Ok(head) => {
                        start += len;
                        respond(&mut out, &mut date, &head);
                        if !head.keep_alive {
                            return s.write_all(&out);
                        }
                        skip = head.body_len;
                        continue;
                    }
                    Err(status) => status,
                },
                Ok(httparse::Status::Partial) if end - start < HTTP_MAX_HEAD => break,
                Ok(httparse::Status::Partial) => TOO_LARGE,
                Err(httparse::Error::TooManyHeaders) => TOO_LARGE,
                Err(_) => BAD_REQUEST,
            };
            refuse(&mut out, &mut date, refusal);
            return s.write_all(&out);
        }
        if !out.is_empty() {
            s.write_all(&out)?;
            out.clear();
        }
        // Keep a partial head at the front of the buffer, then read more.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        match s.read(&mut buf[end..]) {
            Ok(0) => return Ok(()),
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Connections `bench_load` opens for `tcp_echo`.
pub const ECHO_CONNS: usize = 100;

/// Bytes written (and read back) per `tcp_echo` round trip.
pub const ECHO_MSG: usize = 64;

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
            eprintln!(
                "   or: bench_{peer} <server> <port>; servers: {}",
                SERVERS.join(", ")
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

/// Size of the file the `fs_read_4k` workloads read.
pub const SMALL_FILE: usize = 4096;

/// A 4 KiB file in the temporary directory, read once so that it is in the
/// page cache; removed on drop. The `fs_read_4k` workloads read it whole,
/// `n` times (open, read, close each time: `std::fs::read`'s shape).
pub struct SmallFile {
    path: std::path::PathBuf,
}

impl SmallFile {
    /// Creates the file for peer `peer` (the name keeps concurrent peers
    /// apart).
    pub fn new(peer: &str) -> Result<SmallFile, String> {
        let path = std::env::temp_dir().join(format!(
            "gort-bench-fs-read-4k-{peer}-{}",
            std::process::id()
        ));
        let data: Vec<u8> = (0..SMALL_FILE).map(|i| i as u8).collect();
        std::fs::write(&path, &data).map_err(|e| format!("write {}: {e}", path.display()))?;
        let f = SmallFile { path };
        f.check(&std::fs::read(&f.path).map_err(|e| e.to_string())?)?;
        Ok(f)
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Checks that a read returned the whole file.
    pub fn check(&self, got: &[u8]) -> Result<(), String> {
        if got.len() == SMALL_FILE && got.iter().enumerate().all(|(i, &b)| b == i as u8) {
            Ok(())
        } else {
            Err(format!("read {} bytes, not the 4 KiB written", got.len()))
        }
    }
}

impl Drop for SmallFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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

    /// An in-memory connection: `read` hands out the scripted chunks in
    /// order (an `Err` chunk is returned as that error), then end of stream;
    /// everything written is kept.
    struct Script {
        chunks: std::collections::VecDeque<io::Result<Vec<u8>>>,
        written: Vec<u8>,
        writes: usize,
    }

    impl Script {
        fn new(chunks: Vec<io::Result<&[u8]>>) -> Self {
            Script {
                chunks: chunks.into_iter().map(|c| c.map(<[u8]>::to_vec)).collect(),
                written: Vec::new(),
                writes: 0,
            }
        }

        fn bytewise(input: &[u8]) -> Self {
            Script::new(input.chunks(1).map(Ok).collect())
        }

        fn text(&self) -> String {
            String::from_utf8(self.written.clone()).unwrap()
        }
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.chunks.pop_front() {
                None => Ok(0),
                Some(Err(e)) => Err(e),
                Some(Ok(mut c)) => {
                    let n = c.len().min(buf.len());
                    buf[..n].copy_from_slice(&c[..n]);
                    if n < c.len() {
                        self.chunks.push_front(Ok(c.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            self.writes += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    fn oks(text: &str) -> usize {
        text.matches("HTTP/1.1 200 OK\r\n").count()
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn http_keep_alive_and_pipelining() {
        let mut three = GET.repeat(3);
        three.extend_from_slice(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        three.extend_from_slice(GET);
        let mut s = Script::new(vec![Ok(GET), Ok(&three)]);
        http_conn(&mut s).unwrap();
        let text = s.text();
        assert_eq!(oks(&text), 6, "{text}");
        assert_eq!(text.matches("\r\n\r\nHello, World!").count(), 6);
        assert!(!text.contains("Connection: close"));
        // All answers to one read go out in one write.
        assert_eq!(s.writes, 2);
    }

    #[test]
    fn http_partial_reads() {
        let mut input = b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec();
        input.extend_from_slice(GET);
        let mut s = Script::bytewise(&input);
        http_conn(&mut s).unwrap();
        assert_eq!(oks(&s.text()), 2, "{}", s.text());
    }

    #[test]
    fn http_connection_close() {
        let mut input = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
        input.extend_from_slice(GET); // never answered: the connection closed
        let mut s = Script::new(vec![Ok(&input)]);
        http_conn(&mut s).unwrap();
        let text = s.text();
        assert_eq!(oks(&text), 1, "{text}");
        assert!(text.contains("Connection: close\r\n"));
        // HTTP/1.0 closes unless asked to keep alive.
        let mut s = Script::new(vec![Ok(b"GET / HTTP/1.0\r\n\r\n"), Ok(GET)]);
        http_conn(&mut s).unwrap();
        assert_eq!(oks(&s.text()), 1);
        let ka = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        let mut s = Script::new(vec![Ok(ka), Ok(GET)]);
        http_conn(&mut s).unwrap();
        assert_eq!(oks(&s.text()), 2);
        assert!(s.text().contains("Connection: keep-alive\r\n"));
    }

    #[test]
    fn http_bad_requests() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n", // no Host
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let mut s = Script::new(vec![Ok(GET), Ok(bad), Ok(GET)]);
            http_conn(&mut s).unwrap();
            let text = s.text();
            assert_eq!(oks(&text), 1, "{text}");
            assert!(
                text.ends_with("Connection: close\r\n\r\nBad Request"),
                "{text}"
            );
        }
        let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut s = Script::new(vec![Ok(chunked)]);
        http_conn(&mut s).unwrap();
        assert!(s.text().starts_with("HTTP/1.1 501 Not Implemented\r\n"));
        let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        huge.resize(HTTP_MAX_HEAD + 10, b'a');
        let mut s = Script::new(vec![Ok(&huge)]);
        http_conn(&mut s).unwrap();
        assert!(s.text().starts_with("HTTP/1.1 431 "), "{}", s.text());
    }

    #[test]
    fn http_client_reset_mid_request() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let mut s = Script::new(vec![Ok(GET), Ok(b"GET / HT"), Err(reset)]);
        let e = http_conn(&mut s).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(oks(&s.text()), 1);
        // A request cut short by end of stream is dropped quietly.
        let mut s = Script::new(vec![Ok(GET), Ok(b"GET / HTTP/1.1\r\nHo")]);
        http_conn(&mut s).unwrap();
        assert_eq!(oks(&s.text()), 1);
    }

    #[test]
    fn echoes() {
        let mut s = Script::new(vec![Ok(b"abc"), Ok(&[7u8; 10_000])]);
        echo_conn(&mut s).unwrap();
        assert_eq!(s.written.len(), 10_003);
        assert_eq!(&s.written[..3], b"abc");
    }

    #[test]
    fn reads_proc_status() {
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() > 0);
        assert_eq!(tree_spawns(1), 2);
        assert_eq!(tree_spawns(20), (1 << 21) - 2);
    }
}
