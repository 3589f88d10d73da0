//! A keep-alive HTTP/1.1 "Hello, World!" server: one goroutine per
//! connection running plain blocking `Read`/`Write` code, with requests
//! parsed by the `httparse` crate.
//!
//! There is no `async` anywhere: `serve` reads into a buffer, parses, writes
//! the answers, and reads again, exactly as it would on an OS thread. The
//! difference is underneath: `gort::net::TcpStream` parks the goroutine on
//! the netpoller while no bytes are there, so thousands of keep-alive
//! connections need thousands of small goroutine stacks, not threads.
//!
//! What it handles:
//!
//! - keep-alive (HTTP/1.1's default) and pipelining: every complete request
//!   in the buffer is answered in order, and the answers to what one read
//!   brought in go out in one write;
//! - `Connection: close` (and HTTP/1.0 without `Connection: keep-alive`):
//!   the answer says `Connection: close` and the server closes after it;
//! - partial reads: a request split over any number of reads (down to one
//!   byte each) is put together in the buffer before it is parsed;
//! - request bodies with `Content-Length` are read and dropped;
//! - bad requests (unparsable, HTTP/1.1 without `Host`, a bad
//!   `Content-Length`) get `400 Bad Request`, an oversized head `431`,
//!   chunked bodies `501`, and the connection is closed;
//! - a client that resets the connection mid-request ends only its own
//!   goroutine (the read or write fails and `serve` returns).
//!
//! Run it (the address is optional, 127.0.0.1:8080 by default):
//!
//! ```text
//! cargo run --release -p gort --example http -- 127.0.0.1:8080
//! curl -v http://127.0.0.1:8080/
//! wrk -t2 -c100 -d5s http://127.0.0.1:8080/
//! ```
//!
//! `bench/run.py --only http_hello` measures this logic
//! (`gort_bench::http_conn`, run by `bench_gort http_server`) against Go's
//! net/http, hyper on Tokio and a thread per connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gort::net::{TcpListener, TcpStream};

const BODY: &[u8] = b"Hello, World!";
/// Longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8192;
/// Most headers accepted in one request.
const MAX_HEADERS: usize = 32;
/// Pause after a failed `accept` before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

#[gort::main]
fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(addr.as_str())?;
    println!("http: listening on http://{}/", listener.local_addr()?);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                gort::go(move || serve(stream, peer));
            }
            Err(e) => {
                // E.g. EMFILE: log, let some connections finish, go on.
                eprintln!("http: accept: {e}");
                gort::time::sleep(ACCEPT_RETRY);
            }
        }
    }
}

/// One connection's goroutine.
fn serve(stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    match http_conn(&stream) {
        Ok(()) => {
            // We may be closing with bytes of the client still unread (a
            // pipelined request after `Connection: close`, the rest of a bad
            // one); closing then would reset the connection and could destroy
            // our last answer before the client read it. So: send FIN, read
            // and drop what still comes for a moment, then close.
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut sink = [0u8; 4096];
            let mut left = 64 * 1024;
            while let Ok(n @ 1..) = (&stream).read(&mut sink) {
                left -= n.min(left);
                if left == 0 {
                    break;
                }
            }
        }
        Err(e) if quiet(&e) => {}
        Err(e) => eprintln!("http: {peer}: {e}"),
    }
}

/// Errors that only mean the client went away.
fn quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// What one request head asks for.
struct Head {
    keep_alive: bool,
    http10: bool,
    head_only: bool,
    body_len: u64,
}

/// The status line of a refused request.
type Refusal = &'static str;
const BAD_REQUEST: Refusal = "400 Bad Request";
const NOT_IMPLEMENTED: Refusal = "501 Not Implemented";
const TOO_LARGE: Refusal = "431 Request Header Fields Too Large";

/// Serves requests on `s` until the client closes, asks to close, sends a
/// bad request, or an I/O error (returned) ends the connection.
fn http_conn<S: Read + Write>(mut s: S) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let (mut start, mut end) = (0usize, 0usize); // unparsed bytes: buf[start..end]
    let mut skip: u64 = 0; // body bytes of the last request still to drop
    let mut out = Vec::with_capacity(4096); // answers not yet written
    let mut date = DateCache::new();
    loop {
        // Answer every complete request already in the buffer.
        loop {
            let dropped = skip.min((end - start) as u64);
            start += dropped as usize;
            skip -= dropped;
            if skip > 0 || start == end {
                break;
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
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
                // Not all of the head is here yet: read more.
                Ok(httparse::Status::Partial) if end - start < MAX_HEAD => break,
                Ok(httparse::Status::Partial) => TOO_LARGE,
                Err(httparse::Error::TooManyHeaders) => TOO_LARGE,
                Err(_) => BAD_REQUEST,
            };
            refuse(&mut out, &mut date, refusal);
            return s.write_all(&out);
        }
        // Write the answers before waiting for more requests.
        if !out.is_empty() {
            s.write_all(&out)?;
            out.clear();
        }
        // Move a partial head to the front of the buffer, then read more.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        match s.read(&mut buf[end..]) {
            Ok(0) => return Ok(()), // the client closed (maybe mid-request)
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e), // e.g. reset by the client
        }
    }
}

fn inspect(req: &httparse::Request<'_, '_>) -> Result<Head, Refusal> {
    let http10 = req.version == Some(0);
    let (mut close, mut keep, mut host) = (false, false, false);
    let mut body_len: Option<u64> = None;
    for h in req.headers.iter() {
        let value = || std::str::from_utf8(h.value).map_err(|_| BAD_REQUEST);
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value()?.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = value()?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD_REQUEST);
            }
            let len = v.parse::<u64>().map_err(|_| BAD_REQUEST)?;
            if body_len.is_some_and(|l| l != len) {
                return Err(BAD_REQUEST); // two different lengths
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

fn respond(out: &mut Vec<u8>, date: &mut DateCache, head: &Head) {
    // RFC 9110 2.5: answer with the highest version we support, 1.0 too.
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nDate: ");
    out.extend_from_slice(date.now());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice(BODY.len().to_string().as_bytes());
    if !head.keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if head.http10 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !head.head_only {
        out.extend_from_slice(BODY);
    }
}

fn refuse(out: &mut Vec<u8>, date: &mut DateCache, status: Refusal) {
    let body = &status[4..]; // the reason phrase
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date.now());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// The `Date` header's value, formatted once per second.
struct DateCache {
    secs: u64,
    text: Vec<u8>,
}

impl DateCache {
    fn new() -> Self {
        DateCache {
            secs: u64::MAX,
            text: Vec::new(),
        }
    }

    fn now(&mut self) -> &[u8] {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            self.text = http_date(secs).into_bytes();
        }
        &self.text
    }
}

/// An IMF-fixdate (RFC 9110 5.6.7) such as `Sun, 06 Nov 1994 08:49:37 GMT`
/// for `secs` seconds after the Unix epoch.
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days (days since 1970-01-01).
    let z = days as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
