//! Behaviour tests of `gort::net`: TCP connect/accept/echo between
//! goroutines and plain threads, `incoming`, `Read`/`Write` through
//! `&TcpStream` and generic library code, read/write/connect timeouts,
//! `try_clone`, half-close, peer resets, socket options, UDP, Unix sockets,
//! conversion from std's types, a blocked reader not stopping others,
//! parked readers not holding threads, many concurrent connections, and an
//! accept loop that survives EMFILE.
//!
//! Nothing here asserts a wall-clock upper bound: timeouts are checked by
//! their error kinds and by never firing early (a timed-out call returns no
//! sooner than its timeout: a lower bound, measured from an `Instant` taken
//! before the call), progress by counts, data by every byte.

mod common;
use common::{rt, watchdog};

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan;
use gort::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use gort::runtime::Builder as RtBuilder;
use gort::sync::WaitGroup;

const LOCAL: &str = "127.0.0.1:0";

/// A deterministic byte pattern that differs per `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// std's timeout kinds on Unix: a timed-out read or write reports either.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Runs `op`, which must time out after `d`: checks the error kind and that
/// it did not give up early (the clock is read before the call and after
/// it returns; no slack). Returns the error.
#[track_caller]
fn times_out<T: std::fmt::Debug>(
    d: Duration,
    what: &str,
    op: impl FnOnce() -> io::Result<T>,
) -> io::Error {
    let start = Instant::now();
    let r = op();
    let took = start.elapsed();
    let err = r.expect_err(what);
    assert!(is_timeout(&err), "{what}: expected a timeout, got {err:?}");
    assert!(
        took >= d,
        "{what}: timed out after {took:?}, before its {d:?} timeout"
    );
    err
}

/// Echoes until EOF through generic `Read + Write` code; returns the bytes echoed.
fn echo_loop<S: Read + Write>(mut s: S) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        s.write_all(&buf[..n])?;
        total += n;
    }
}

/// Sends `data` and reads the echo back at the same time (from a scoped
/// goroutine, so an echo larger than the socket buffers cannot deadlock),
/// then half-closes: returns everything read until EOF.
fn roundtrip_in_goroutine(s: &TcpStream, data: &[u8]) -> Vec<u8> {
    gort::scope(|sc| {
        sc.go(|| {
            (&*s).write_all(data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(data.len());
        (&*s).read_to_end(&mut got).unwrap();
        got
    })
}

/// As `roundtrip_in_goroutine`, with a plain OS thread as the writer.
fn roundtrip_on_threads(s: &TcpStream, data: &[u8]) -> Vec<u8> {
    std::thread::scope(|sc| {
        sc.spawn(|| {
            (&*s).write_all(data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(data.len());
        (&*s).read_to_end(&mut got).unwrap();
        got
    })
}

/// Raises RLIMIT_NOFILE's soft limit to at least `need` (to the hard limit,
/// and the hard limit too when permitted). Raising is harmless to tests
/// running beside this one.
fn raise_nofile(need: u64) {
    // SAFETY: getrlimit/setrlimit get a pointer to a live, zero-initialised
    // rlimit (a plain C struct for which all zeros is valid).
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur >= need {
            return;
        }
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max.max(need),
            rlim_max: lim.rlim_max.max(need),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
            return;
        }
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        assert!(
            lim.rlim_cur >= need,
            "this test needs {need} file descriptors; the hard RLIMIT_NOFILE is {}",
            lim.rlim_max
        );
    }
}

// ---------------------------------------------------------------------------
// TCP basics

#[test]
fn tcp_echo_between_goroutines() {
    let _w = watchdog("tcp echo between goroutines");
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let server = gort::go(move || {
            let (s, peer) = l.accept().unwrap();
            assert_eq!(s.peer_addr().unwrap(), peer);
            assert_eq!(s.local_addr().unwrap(), addr);
            (peer, echo_loop(s).unwrap())
        });
        let data = pattern(1, 1 << 20);
        let d2 = data.clone();
        let client = gort::go(move || {
            let s = TcpStream::connect(addr).unwrap();
            assert_eq!(s.peer_addr().unwrap(), addr);
            (s.local_addr().unwrap(), roundtrip_in_goroutine(&s, &d2))
        });
        let (client_addr, got) = client.join().unwrap();
        let (peer, echoed) = server.join().unwrap();
        assert_eq!(peer, client_addr);
        assert_eq!(echoed, data.len());
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echoed bytes differ");
    });
}

#[test]
fn goroutine_server_and_plain_thread_client() {
    let _w = watchdog("goroutine server, thread client");
    let r = rt(2);
    let l = TcpListener::bind(LOCAL).unwrap();
    let addr = l.local_addr().unwrap();
    let server = r.go(move || {
        let (s, _) = l.accept().unwrap();
        echo_loop(s).unwrap()
    });
    // The client is a plain OS thread using gort's stream: it blocks.
    let data = pattern(2, 512 << 10);
    let s = TcpStream::connect(addr).unwrap();
    let got = roundtrip_on_threads(&s, &data);
    assert!(got == data, "echoed bytes differ");
    assert_eq!(server.join().unwrap(), data.len());
}

/// Issue 11 (found by the 10,000-connection test's first version): a
/// socket registered with the default runtime's netpoller (bound on a plain
/// thread) and waited on by an explicit runtime's goroutine: the default
/// runtime, idle, had no M polling, so the goroutine was never woken. A
/// waiter from outside a netpoller's runtime now makes one of its Ms poll.
#[test]
fn a_plain_thread_listener_serves_an_explicit_runtimes_goroutine() {
    let _w = watchdog("plain-thread listener, explicit runtime");
    let r = rt(2);
    let l = TcpListener::bind(LOCAL).unwrap(); // on this plain thread
    let addr = l.local_addr().unwrap();
    let (accepted_tx, accepted) = chan::bounded::<()>(1);
    let server = r.go(move || {
        let (s, _) = l.accept().unwrap();
        accepted_tx.send(()).unwrap();
        echo_loop(s).unwrap()
    });
    // Let the goroutine park in accept (had it not yet, accept would succeed
    // at once and this test would pass without waiting on the netpoller).
    std::thread::sleep(Duration::from_millis(100));
    // A std client: nothing on this side waits on gort's netpoller.
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    // A hang detector (the watchdog would abort every test), not a timing.
    assert_eq!(
        accepted.recv_timeout(Duration::from_secs(60)),
        Ok(()),
        "the accepting goroutine was never woken"
    );
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"ping");
    assert_eq!(server.join().unwrap(), 4);
}

#[test]
fn plain_thread_server_and_goroutine_clients() {
    let _w = watchdog("thread server, goroutine clients");
    let l = TcpListener::bind(LOCAL).unwrap();
    let addr = l.local_addr().unwrap();
    // The server is a plain OS thread accepting on gort's listener.
    let server = std::thread::spawn(move || {
        let mut total = 0;
        for _ in 0..3 {
            let (s, _) = l.accept().unwrap();
            total += echo_loop(s).unwrap();
        }
        total
    });
    let lens = rt(2).run(move || {
        let mut lens = 0;
        for i in 0..3u64 {
            let data = pattern(10 + i, 100_000 + i as usize);
            let got = gort::go(move || {
                let s = TcpStream::connect(addr).unwrap();
                let got = roundtrip_in_goroutine(&s, &data);
                got == data
            })
            .join()
            .unwrap();
            assert!(got, "client {i}: echoed bytes differ");
            lens += 100_000 + i as usize;
        }
        lens
    });
    assert_eq!(server.join().unwrap(), lens);
}

#[test]
fn incoming_yields_each_connection() {
    let _w = watchdog("incoming");
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            let total = Arc::new(AtomicUsize::new(0));
            for s in l.incoming().take(5) {
                let s = s.unwrap();
                let total = total.clone();
                handlers.go(move || total.fetch_add(echo_loop(s).unwrap(), Ordering::SeqCst));
            }
            handlers.wait();
            total.load(Ordering::SeqCst)
        });
        let clients: Vec<_> = (0..5u64)
            .map(|i| {
                gort::go(move || {
                    let data = pattern(20 + i, 1000 * (i as usize + 1));
                    let s = TcpStream::connect(addr).unwrap();
                    roundtrip_in_goroutine(&s, &data) == data
                })
            })
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            assert!(c.join().unwrap(), "client {i}: echoed bytes differ");
        }
        assert_eq!(server.join().unwrap(), 1000 * (1 + 2 + 3 + 4 + 5));
    });
}

#[test]
fn shared_references_and_generic_library_code_read_and_write() {
    // The server is `io::copy(&mut &s, &mut &s)`; the client writes lines
    // through a BufWriter over `&TcpStream` from one goroutine while another
    // reads them back with `BufReader::lines` over `&TcpStream`.
    let _w = watchdog("&TcpStream and generic code");
    const LINES: usize = 2000;
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let server = gort::go(move || {
            let (s, _) = l.accept().unwrap();
            io::copy(&mut &s, &mut &s).unwrap()
        });
        fn write_lines<W: Write>(w: W, n: usize) -> io::Result<usize> {
            let mut w = BufWriter::new(w);
            let mut bytes = 0;
            for i in 0..n {
                let line = format!("line {i} {}\n", "x".repeat(i % 50));
                w.write_all(line.as_bytes())?;
                bytes += line.len();
            }
            w.flush()?;
            Ok(bytes)
        }
        let s = TcpStream::connect(addr).unwrap();
        let (sent, lines) = gort::scope(|sc| {
            let writer = sc.go(|| {
                let n = write_lines(&s, LINES).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                n
            });
            let lines: Vec<String> = BufReader::new(&s).lines().map(Result::unwrap).collect();
            (writer.join().unwrap(), lines)
        });
        assert_eq!(lines.len(), LINES);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(*line, format!("line {i} {}", "x".repeat(i % 50)));
        }
        assert_eq!(server.join().unwrap(), sent as u64);
    });
}

// ---------------------------------------------------------------------------
// Timeouts

/// A connected pair: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(LOCAL).unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Read timeout fires with nothing to read; after the peer writes, a later
/// read (with a longer timeout) gets the data; the short timeout then fires
/// again (the deadline re-arms). Works the same in a goroutine and a thread.
fn read_timeout_then_data(reader: &TcpStream, peer: &TcpStream) {
    let short = Duration::from_millis(30);
    reader.set_read_timeout(Some(short)).unwrap();
    assert_eq!(reader.read_timeout().unwrap(), Some(short));
    let mut buf = [0u8; 16];
    times_out(short, "read", || (&*reader).read(&mut buf));

    (&*peer).write_all(b"later").unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut got = [0u8; 5];
    (&*reader).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"later");

    reader.set_read_timeout(Some(short)).unwrap();
    times_out(short, "second read", || (&*reader).read(&mut buf));

    reader.set_read_timeout(None).unwrap();
    assert_eq!(reader.read_timeout().unwrap(), None);
    (&*peer).write_all(b"!").unwrap();
    assert_eq!((&*reader).read(&mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'!');
}

#[test]
fn read_timeout_fires_in_a_goroutine_and_a_later_read_works() {
    let _w = watchdog("read timeout in a goroutine");
    rt(1).run(|| {
        let (c, s) = pair();
        // Another goroutine keeps running while the reader waits.
        let stop = Arc::new(AtomicBool::new(false));
        let spins = Arc::new(AtomicUsize::new(0));
        let (st, sp) = (stop.clone(), spins.clone());
        let spinner = gort::go(move || {
            while !st.load(Ordering::SeqCst) {
                sp.fetch_add(1, Ordering::SeqCst);
                gort::yield_now();
            }
        });
        read_timeout_then_data(&c, &s);
        read_timeout_then_data(&s, &c);
        stop.store(true, Ordering::SeqCst);
        spinner.join().unwrap();
        assert!(spins.load(Ordering::SeqCst) > 0);
    });
}

#[test]
fn read_timeout_fires_on_a_plain_thread_and_a_later_read_works() {
    let _w = watchdog("read timeout on a thread");
    let (c, s) = pair();
    read_timeout_then_data(&c, &s);
    read_timeout_then_data(&s, &c);
}

#[test]
fn zero_timeouts_are_rejected_like_std() {
    let (c, _s) = pair();
    let e = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = c.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let addr = c.peer_addr().unwrap();
    let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let u = UdpSocket::bind(LOCAL).unwrap();
    let e = u.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn write_timeout_fires_when_the_peer_does_not_read_and_no_byte_is_lost() {
    // The server does not read until told: the client's writes fill both
    // socket buffers and one times out. Then the server drains, the client
    // finishes, and the server has exactly the bytes the client was told
    // were written, in order.
    let _w = watchdog("write timeout");
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let (go_tx, go_rx) = chan::bounded::<()>(1);
        let server = gort::go(move || {
            let (mut s, _) = l.accept().unwrap();
            go_rx.recv().unwrap();
            let mut buf = vec![0u8; 64 << 10];
            let mut total = 0usize;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, ((total + k) % 251) as u8, "byte {}", total + k);
                }
                total += n;
            }
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let timeout = Duration::from_millis(50);
        c.set_write_timeout(Some(timeout)).unwrap();
        let mut written = 0usize;
        let chunk = 64 << 10;
        let (err, took) = loop {
            let data: Vec<u8> = (written..written + chunk)
                .map(|i| (i % 251) as u8)
                .collect();
            let start = Instant::now();
            match c.write(&data) {
                Ok(n) => {
                    assert!(n > 0);
                    written += n;
                }
                Err(e) => break (e, start.elapsed()),
            }
        };
        assert!(is_timeout(&err), "expected a timeout, got {err:?}");
        assert!(
            took >= timeout,
            "the write timed out after {took:?}, before its {timeout:?} timeout"
        );
        assert!(written > 0);
        go_tx.send(()).unwrap();
        c.set_write_timeout(None).unwrap();
        let tail: Vec<u8> = (written..written + 1000).map(|i| (i % 251) as u8).collect();
        c.write_all(&tail).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(server.join().unwrap(), written + 1000);
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let _w = watchdog("connect refused");
    let addr = {
        let l = TcpListener::bind(LOCAL).unwrap();
        l.local_addr().unwrap()
    }; // closed again
    let in_goroutine = rt(1).run(move || {
        (
            TcpStream::connect(addr).unwrap_err().kind(),
            TcpStream::connect_timeout(&addr, Duration::from_secs(30))
                .unwrap_err()
                .kind(),
        )
    });
    let on_thread = (
        TcpStream::connect(addr).unwrap_err().kind(),
        TcpStream::connect_timeout(&addr, Duration::from_secs(30))
            .unwrap_err()
            .kind(),
    );
    let refused = io::ErrorKind::ConnectionRefused;
    assert_eq!(in_goroutine, (refused, refused));
    assert_eq!(on_thread, (refused, refused));
}

#[test]
fn connect_timeout_to_a_listener_that_drops_syns_times_out() {
    // A listener with backlog 0 that never accepts: once its accept queue
    // holds a connection, Linux drops further SYNs unanswered, exactly as a
    // non-routable address does (a fixed address such as 10.255.255.1 is
    // not reliable: some sandboxes proxy every outgoing connection).
    let _w = watchdog("connect_timeout");
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind(LOCAL).unwrap();
    // SAFETY: listen on a socket fd the listener owns (alive until the end
    // of the test); no pointers are passed.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let short = Duration::from_millis(100);
    let mut queued = Vec::new();
    let (err, took) = loop {
        let start = Instant::now();
        match TcpStream::connect_timeout(&addr, short) {
            Ok(s) => {
                queued.push(s);
                assert!(queued.len() < 16, "the accept queue never filled");
            }
            Err(e) => break (e, start.elapsed()),
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "thread: {err:?}");
    assert!(took >= short, "thread: connect timed out after {took:?}");
    // Again from a goroutine, on one processor, while another goroutine
    // keeps running.
    let (err, spins) = rt(1).run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let spins = Arc::new(AtomicUsize::new(0));
        let (st, sp) = (stop.clone(), spins.clone());
        let spinner = gort::go(move || {
            while !st.load(Ordering::SeqCst) {
                sp.fetch_add(1, Ordering::SeqCst);
                gort::yield_now();
            }
        });
        let start = Instant::now();
        let r = TcpStream::connect_timeout(&addr, short);
        let took = start.elapsed();
        stop.store(true, Ordering::SeqCst);
        spinner.join().unwrap();
        (
            r.map(drop).map_err(|e| (e, took)).unwrap_err(),
            spins.load(Ordering::SeqCst),
        )
    });
    let (err, took) = err;
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "goroutine: {err:?}");
    assert!(took >= short, "goroutine: connect timed out after {took:?}");
    assert!(spins > 0);
    drop(l);
}

// ---------------------------------------------------------------------------
// Clones, half-close, resets, options

#[test]
fn try_clone_reads_and_writes_concurrently_from_two_goroutines() {
    let _w = watchdog("try_clone");
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let server = gort::go(move || echo_loop(l.accept().unwrap().0).unwrap());
        let mut w = TcpStream::connect(addr).unwrap();
        let mut r = w.try_clone().unwrap();
        assert_eq!(r.peer_addr().unwrap(), addr);
        assert_eq!(r.local_addr().unwrap(), w.local_addr().unwrap());
        let data = pattern(3, 2 << 20);
        let d2 = data.clone();
        let writer = gort::go(move || {
            for c in d2.chunks(10_000) {
                w.write_all(c).unwrap();
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        let reader = gort::go(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echoed bytes differ");
        assert_eq!(server.join().unwrap(), data.len());
    });
}

#[test]
fn shutdown_write_gives_the_peer_eof_and_keeps_the_other_direction() {
    let _w = watchdog("shutdown");
    rt(2).run(|| {
        let (mut c, mut s) = pair();
        let server = gort::go(move || {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // ends at the client's FIN
            let mut buf = [0u8; 1];
            assert_eq!(s.read(&mut buf).unwrap(), 0, "EOF again");
            // The other direction still works after the peer's half-close.
            s.write_all(b"reply after eof").unwrap();
            s.shutdown(Shutdown::Both).unwrap();
            got
        });
        c.write_all(b"request").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let err = c.write(b"more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "reply after eof");
        assert_eq!(server.join().unwrap(), b"request");
    });
}

/// The server side drops its stream while the client's data is unread:
/// Linux then resets the connection (RST) instead of closing it cleanly.
fn reset_by_peer(c: &mut TcpStream, s: TcpStream) {
    c.write_all(b"unread").unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(s.peek(&mut buf).unwrap(), 6); // the data is there, unread
    drop(s);
}

#[test]
fn a_peer_reset_is_an_error_not_a_hang() {
    let _w = watchdog("peer reset");
    let check = |c: &mut TcpStream| {
        let mut buf = [0u8; 8];
        let err = c.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
        let err = c.write_all(b"after reset").unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    };
    rt(1).run(move || {
        // The reader is parked in read when the reset arrives.
        let (mut c, s) = pair();
        let (tx, rx) = chan::bounded::<TcpStream>(0);
        let resetter = gort::go(move || {
            let s = rx.recv().unwrap();
            gort::yield_now();
            drop(s);
        });
        c.write_all(b"unread").unwrap();
        let mut buf = [0u8; 6];
        assert_eq!(s.peek(&mut buf).unwrap(), 6);
        tx.send(s).unwrap();
        check(&mut c);
        resetter.join().unwrap();
        // The reset has already arrived when read is called.
        let (mut c, s) = pair();
        reset_by_peer(&mut c, s);
        check(&mut c);
    });
    // And on a plain thread.
    let (mut c, s) = pair();
    reset_by_peer(&mut c, s);
    check(&mut c);
}

#[test]
fn a_server_keeps_serving_after_a_client_resets_mid_request() {
    // Protocol: the server greets each connection with "hi\n", then answers
    // requests [len: u32 BE][body] with the body reversed; len 0 ends. One
    // client sends half a request and resets (it never read the greeting);
    // its handler gets an error, and the server goes on serving a client
    // connected before the reset and clients connected after it.
    let _w = watchdog("serving after a reset");
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let (err_tx, err_rx) = chan::unbounded::<io::ErrorKind>();
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            for _ in 0..7 {
                let (mut s, _) = l.accept().unwrap();
                let err_tx = err_tx.clone();
                handlers.go(move || {
                    let res = (|| -> io::Result<()> {
                        s.write_all(b"hi\n")?;
                        loop {
                            let mut len = [0u8; 4];
                            s.read_exact(&mut len)?;
                            let len = u32::from_be_bytes(len) as usize;
                            if len == 0 {
                                return Ok(());
                            }
                            let mut body = vec![0u8; len];
                            s.read_exact(&mut body)?;
                            body.reverse();
                            s.write_all(&body)?;
                        }
                    })();
                    if let Err(e) = res {
                        err_tx.send(e.kind()).unwrap();
                    }
                });
            }
            handlers.wait();
        });
        fn client(addr: SocketAddr, seed: u64, requests: usize) -> bool {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut hi = [0u8; 3];
            s.read_exact(&mut hi).unwrap();
            assert_eq!(&hi, b"hi\n");
            for i in 0..requests {
                let body = pattern(seed * 100 + i as u64, 1 + i * 37);
                s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
                s.write_all(&body).unwrap();
                let mut back = vec![0u8; body.len()];
                s.read_exact(&mut back).unwrap();
                back.reverse();
                if back != body {
                    return false;
                }
                if i == 0 {
                    gort::yield_now();
                }
            }
            s.write_all(&0u32.to_be_bytes()).unwrap();
            true
        }
        // A long-lived client, connected before the reset.
        let (mid_tx, mid_rx) = chan::bounded::<()>(0);
        let early = gort::go(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut hi = [0u8; 3];
            s.read_exact(&mut hi).unwrap();
            mid_rx.recv().unwrap(); // wait for the reset to happen
            for i in 0..20usize {
                let body = pattern(999 + i as u64, 10 + i);
                s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
                s.write_all(&body).unwrap();
                let mut back = vec![0u8; body.len()];
                s.read_exact(&mut back).unwrap();
                back.reverse();
                assert_eq!(back, body);
            }
            s.write_all(&0u32.to_be_bytes()).unwrap();
        });
        assert!(gort::go(move || client(addr, 1, 5)).join().unwrap());
        // The resetting client.
        {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut hi = [0u8; 3];
            assert_eq!(s.peek(&mut hi).unwrap(), 3); // greeting arrived, unread
            s.write_all(&1000u32.to_be_bytes()).unwrap();
            s.write_all(&[7u8; 10]).unwrap();
        } // dropped with unread data: RST
        let kind = err_rx.recv().unwrap();
        assert!(
            matches!(
                kind,
                io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
            ),
            "{kind:?}"
        );
        mid_tx.send(()).unwrap();
        let later: Vec<_> = (2..6u64)
            .map(|seed| gort::go(move || client(addr, seed, 10)))
            .collect();
        for h in later {
            assert!(h.join().unwrap(), "a later client got a wrong answer");
        }
        early.join().unwrap();
        server.join().unwrap();
        assert!(err_rx.try_recv().is_err(), "only one handler failed");
    });
}

#[test]
fn socket_options_and_peek_round_trip() {
    let _w = watchdog("socket options");
    rt(1).run(|| {
        let (c, s) = pair();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        assert!(c.take_error().unwrap().is_none());
        assert_eq!(c.read_timeout().unwrap(), None);
        let d = Duration::from_millis(1500);
        c.set_read_timeout(Some(d)).unwrap();
        assert_eq!(c.read_timeout().unwrap(), Some(d));

        (&c).write_all(b"abc").unwrap();
        let mut buf = [0u8; 3];
        // peek waits for data and leaves it in place.
        assert_eq!(s.peek(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"abc");
        assert_eq!(s.peek(&mut buf).unwrap(), 3);
        let mut got = [0u8; 3];
        (&s).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abc");
    });
}

#[test]
fn std_sockets_convert_into_gort_ones() {
    let _w = watchdog("TryFrom<std::net::*>");
    rt(2).run(|| {
        let l = TcpListener::try_from(std::net::TcpListener::bind(LOCAL).unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let server = gort::go(move || {
            let mut total = 0;
            for _ in 0..2 {
                total += echo_loop(l.accept().unwrap().0).unwrap();
            }
            total
        });
        // A std client on a plain thread, talking to the converted listener.
        let std_client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"from std").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        // A std stream converted inside a goroutine: it parks like a gort one
        // (the read timeout fires, then data arrives).
        let s = TcpStream::try_from(std::net::TcpStream::connect(addr).unwrap()).unwrap();
        let d = Duration::from_millis(20);
        s.set_read_timeout(Some(d)).unwrap();
        times_out(d, "converted read", || (&s).read(&mut [0u8; 4]));
        s.set_read_timeout(None).unwrap();
        let got = roundtrip_in_goroutine(&s, b"converted");
        assert_eq!(got, b"converted");
        assert_eq!(std_client.join().unwrap(), "from std");
        assert_eq!(server.join().unwrap(), "from std".len() + "converted".len());

        let a = UdpSocket::try_from(std::net::UdpSocket::bind(LOCAL).unwrap()).unwrap();
        let b = UdpSocket::bind(LOCAL).unwrap();
        b.send_to(b"dgram", a.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        assert_eq!(from, b.local_addr().unwrap());
    });
}

// ---------------------------------------------------------------------------
// UDP

#[test]
fn udp_send_to_and_recv_from_between_goroutines() {
    let _w = watchdog("udp send_to/recv_from");
    rt(2).run(|| {
        let server = UdpSocket::bind(LOCAL).unwrap();
        let saddr = server.local_addr().unwrap();
        let echo = gort::go(move || {
            let mut buf = [0u8; 2048];
            let mut n_dgrams = 0;
            loop {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                if &buf[..n] == b"quit" {
                    return n_dgrams;
                }
                n_dgrams += 1;
                assert_eq!(server.send_to(&buf[..n], from).unwrap(), n);
            }
        });
        let clients: Vec<_> = (0..4u64)
            .map(|c| {
                gort::go(move || {
                    let sock = UdpSocket::bind(LOCAL).unwrap();
                    let mut buf = [0u8; 2048];
                    for i in 0..50 {
                        let data = pattern(c * 1000 + i, 1 + (i as usize * 31) % 1400);
                        assert_eq!(sock.send_to(&data, saddr).unwrap(), data.len());
                        let (n, from) = sock.recv_from(&mut buf).unwrap();
                        assert_eq!(from, saddr);
                        assert_eq!(&buf[..n], &data[..]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        UdpSocket::bind(LOCAL)
            .unwrap()
            .send_to(b"quit", saddr)
            .unwrap();
        assert_eq!(echo.join().unwrap(), 4 * 50);
    });
}

#[test]
fn udp_connected_send_recv_and_recv_timeout() {
    let _w = watchdog("udp connect/send/recv");
    rt(1).run(|| {
        let a = UdpSocket::bind(LOCAL).unwrap();
        let b = UdpSocket::bind(LOCAL).unwrap();
        let stranger = UdpSocket::bind(LOCAL).unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();

        // The receiver parks in recv; the sender is another goroutine.
        let a2 = Arc::new(a);
        let a3 = a2.clone();
        let receiver = gort::go(move || {
            let mut buf = [0u8; 64];
            let n = a3.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        gort::yield_now();
        // A datagram from an address `a` is not connected to is filtered out.
        stranger
            .send_to(b"stray", a2.local_addr().unwrap())
            .unwrap();
        assert_eq!(b.send(b"to a").unwrap(), 4);
        assert_eq!(receiver.join().unwrap(), b"to a");
        assert_eq!(a2.send(b"to b").unwrap(), 4);
        let mut buf = [0u8; 64];
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to b");

        // recv timeout, in a goroutine and then on a plain thread.
        let d = Duration::from_millis(30);
        b.set_read_timeout(Some(d)).unwrap();
        times_out(d, "udp recv", || b.recv(&mut buf));
        times_out(d, "udp recv_from", || b.recv_from(&mut buf));
        let b = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            times_out(d, "udp recv on a thread", || b.recv(&mut buf));
            b
        })
        .join()
        .unwrap();
        // A later recv still works.
        a2.send(b"again").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"again");
    });
}

// ---------------------------------------------------------------------------
// Unix sockets

#[test]
fn unix_stream_pair_echo_between_goroutines() {
    let _w = watchdog("UnixStream::pair");
    rt(2).run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let server = gort::go(move || echo_loop(b).unwrap());
        let data = pattern(4, 300_000);
        let mut w = a.try_clone().unwrap();
        let mut r = a;
        let d2 = data.clone();
        let writer = gort::go(move || {
            w.write_all(&d2).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == data, "echoed bytes differ");
        assert_eq!(server.join().unwrap(), data.len());
    });
}

#[test]
fn unix_listener_and_stream_on_a_temp_path() {
    let _w = watchdog("UnixListener");
    let path = std::env::temp_dir().join(format!("gort-net-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p2 = path.clone();
    rt(2).run(move || {
        let l = UnixListener::bind(&p2).unwrap();
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            let total = Arc::new(AtomicUsize::new(0));
            for _ in 0..4 {
                let (s, _) = l.accept().unwrap();
                let t = total.clone();
                handlers.go(move || t.fetch_add(echo_loop(s).unwrap(), Ordering::SeqCst));
            }
            handlers.wait();
            total.load(Ordering::SeqCst)
        });
        let clients: Vec<_> = (0..3u64)
            .map(|i| {
                let p = p2.clone();
                gort::go(move || {
                    let data = pattern(40 + i, 5000);
                    let mut s = UnixStream::connect(&p).unwrap();
                    s.write_all(&data).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).unwrap();
                    got == data
                })
            })
            .collect();
        // And a plain-thread client.
        let p3 = p2.clone();
        let thread_client = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p3).unwrap();
            s.write_all(b"thread").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        let ok: Vec<bool> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(thread_client.join().unwrap(), "thread");
        assert!(ok.iter().all(|&b| b), "{ok:?}");
        assert_eq!(server.join().unwrap(), 3 * 5000 + "thread".len());
    });
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------
// Scheduling

#[test]
fn a_goroutine_blocked_in_read_does_not_stop_others_on_one_proc() {
    let _w = watchdog("blocked reader on procs=1");
    rt(1).run(|| {
        let (mut c, s) = pair();
        let entered = Arc::new(AtomicBool::new(false));
        let e2 = entered.clone();
        let reader = gort::go(move || {
            let mut buf = [0u8; 5];
            e2.store(true, Ordering::SeqCst);
            (&s).read_exact(&mut buf).unwrap();
            buf
        });
        while !entered.load(Ordering::SeqCst) {
            gort::yield_now();
        }
        // The reader is in read (or parked there): a ping-pong still runs.
        let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
        let ponger = gort::go(move || {
            for v in ping_rx {
                pong_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..1000 {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i + 1);
        }
        drop(ping_tx);
        ponger.join().unwrap();
        assert!(!reader.is_finished(), "the reader had nothing to read");
        c.write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap(), b"hello");
    });
}

#[test]
fn parked_readers_do_not_hold_threads() {
    // 300 goroutines wait in read on a runtime capped at 32 OS threads: a
    // reader parked on the netpoller costs no thread (one that held its
    // thread would make the runtime exceed max_threads and panic).
    let _w = watchdog("parked readers");
    const N: usize = 300;
    raise_nofile(2 * N as u64 + 256);
    let r = RtBuilder::new().procs(2).max_threads(32).build().unwrap();
    r.run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let parked = WaitGroup::new();
        let mut clients = Vec::new();
        let mut readers = Vec::new();
        for i in 0..N {
            let c = TcpStream::connect(addr).unwrap();
            let (mut s, _) = l.accept().unwrap();
            let p = parked.clone();
            p.add(1);
            readers.push(gort::go(move || {
                p.done();
                let mut buf = [0u8; 8];
                s.read_exact(&mut buf).unwrap();
                u64::from_le_bytes(buf) == i as u64
            }));
            clients.push(c);
        }
        parked.wait();
        for _ in 0..10 {
            gort::yield_now();
        }
        for (i, c) in clients.iter().enumerate() {
            (&*c).write_all(&(i as u64).to_le_bytes()).unwrap();
        }
        for h in readers {
            assert!(h.join().unwrap());
        }
    });
}

// ---------------------------------------------------------------------------
// Scale

/// `n` client goroutines connect to a goroutine-per-connection echo server;
/// once all `n` are connected (all open at once) each sends its own bytes,
/// half-closes and checks every byte of the echo. Failures are collected
/// (by error kind) so a failing run reports a summary, not `n` panics.
fn many_connections(n: usize) {
    raise_nofile(2 * n as u64 + 256);
    let (wrong, errors, sent, echoed) = rt(2).run(move || {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            let total = Arc::new(AtomicUsize::new(0));
            for _ in 0..n {
                let (s, _) = l.accept().unwrap();
                let t = total.clone();
                handlers.go(move || t.fetch_add(echo_loop(s).unwrap(), Ordering::Relaxed));
            }
            handlers.wait();
            total.load(Ordering::Relaxed)
        });
        let connected = WaitGroup::new();
        connected.add(n as isize);
        let clients: Vec<_> = (0..n)
            .map(|i| {
                let connected = connected.clone();
                gort::go(move || {
                    let s = TcpStream::connect(addr);
                    connected.done();
                    connected.wait();
                    let mut s = s?;
                    let data = pattern(i as u64, 2048 + i % 97);
                    s.write_all(&data)?;
                    s.shutdown(Shutdown::Write)?;
                    let mut got = Vec::with_capacity(data.len());
                    s.read_to_end(&mut got)?;
                    Ok::<_, io::Error>((got == data, data.len()))
                })
            })
            .collect();
        let mut wrong = 0;
        let mut sent = 0;
        let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
        for c in clients {
            match c.join().unwrap() {
                Ok((ok, len)) => {
                    wrong += usize::from(!ok);
                    sent += len;
                }
                Err(e) => *errors.entry(format!("{:?}", e.kind())).or_default() += 1,
            }
        }
        // With failed clients the server may wait for connections that never
        // came: the end of `run` cancels it.
        let echoed = if errors.is_empty() {
            Some(server.join().unwrap())
        } else {
            None
        };
        (wrong, errors, sent, echoed)
    });
    assert!(errors.is_empty(), "clients failed ({n} in all): {errors:?}");
    assert_eq!(wrong, 0, "connections with wrong echoes");
    assert_eq!(echoed, Some(sent));
}

#[test]
fn a_thousand_concurrent_connections_every_byte_checked() {
    let _w = watchdog("1,000 connections");
    many_connections(1000);
}

/// Failures counted by what failed and how ("connect: ConnectionRefused"),
/// so a failing run reports a summary, not thousands of panics.
type Failures = std::collections::BTreeMap<String, usize>;

/// 10,000 connections need ~20,000 descriptors in one process, beyond the
/// hard RLIMIT_NOFILE of some machines (20,000 here): the server (a gort
/// goroutine per connection) runs in this process and the 10,000 clients
/// in a child process (this test binary re-run on this test, the role
/// chosen by `CLIENTS_ENV`), so each side needs ~10,000.
const TEN_K: usize = 10_000;
/// Set in the child: the server's address.
const CLIENTS_ENV: &str = "GORT_NET_TEST_CLIENTS_OF";
const TEN_K_TEST: &str = "ten_thousand_concurrent_connections_every_byte_checked";

#[test]
fn ten_thousand_concurrent_connections_every_byte_checked() {
    if let Ok(addr) = std::env::var(CLIENTS_ENV) {
        return ten_k_clients(addr.parse().unwrap());
    }
    let _w = watchdog("10,000 connections: server");
    raise_nofile(TEN_K as u64 + 256);
    rt(2).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        // The server: accepts TEN_K connections, one echo goroutine each.
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            let echoed = Arc::new(AtomicUsize::new(0));
            let failures = Arc::new(gort::sync::Mutex::new(Failures::new()));
            for _ in 0..TEN_K {
                let s = match l.accept() {
                    Ok((s, _)) => s,
                    Err(e) => {
                        *failures
                            .lock()
                            .entry(format!("accept: {:?}", e.kind()))
                            .or_default() += 1;
                        continue;
                    }
                };
                let (echoed, failures) = (echoed.clone(), failures.clone());
                handlers.go(move || match echo_loop(s) {
                    Ok(n) => {
                        echoed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        *failures
                            .lock()
                            .entry(format!("echo: {:?}", e.kind()))
                            .or_default() += 1;
                    }
                });
            }
            handlers.wait();
            let failures = failures.lock().clone();
            (echoed.load(Ordering::Relaxed), failures)
        });
        // The clients: a child process, waited for in a blocking call.
        let out = gort::blocking(move || {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    TEN_K_TEST,
                    "--include-ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CLIENTS_ENV, addr.to_string())
                .output()
                .unwrap()
        });
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = stdout
            .lines()
            .find_map(|l| Some(l.split_once("10k clients: ")?.1))
            .unwrap_or_else(|| {
                panic!(
                    "the client process reported nothing ({}):\n{stdout}\n{stderr}",
                    out.status
                )
            });
        // "<sent bytes> <wrong echoes> <failures as Debug>"
        let mut fields = report.splitn(3, ' ');
        let sent: usize = fields.next().unwrap().parse().unwrap();
        let wrong: usize = fields.next().unwrap().parse().unwrap();
        let client_failures = fields.next().unwrap();
        assert!(
            out.status.success(),
            "client process failed ({}): {report}\n{stderr}",
            out.status
        );
        // (On a failure the server is not waited for: the end of `run`
        // cancels it.)
        assert_eq!(
            client_failures, "{}",
            "clients failed ({TEN_K} in all), by stage and error kind"
        );
        assert_eq!(wrong, 0, "connections with wrong echoes");
        // Every client finished, so every connection reached the server.
        let (echoed, server_failures) = server.join().unwrap();
        assert!(
            server_failures.is_empty(),
            "server failures ({TEN_K} connections): {server_failures:?}"
        );
        assert_eq!(
            echoed, sent,
            "bytes echoed by the server vs sent by the clients"
        );
    });
}

/// The child's role: TEN_K client goroutines connect to `addr`; once all are
/// connected (all open at once) each sends its own bytes, half-closes and
/// checks every byte of the echo. Prints one line for the parent:
/// `10k clients: <bytes sent> <wrong echoes> <failures by kind>`.
fn ten_k_clients(addr: SocketAddr) {
    let _w = watchdog("10,000 connections: clients");
    raise_nofile(TEN_K as u64 + 256);
    let (sent, wrong, failures) = rt(2).run(move || {
        let connected = WaitGroup::new();
        connected.add(TEN_K as isize);
        let clients: Vec<_> = (0..TEN_K)
            .map(|i| {
                let connected = connected.clone();
                gort::go(move || {
                    let s = TcpStream::connect(addr);
                    connected.done();
                    connected.wait();
                    let at = |stage: &'static str| move |e: io::Error| (stage, e);
                    let mut s = s.map_err(at("connect"))?;
                    let data = pattern(i as u64, 2048 + i % 97);
                    s.write_all(&data).map_err(at("write"))?;
                    s.shutdown(Shutdown::Write).map_err(at("shutdown"))?;
                    let mut got = Vec::with_capacity(data.len());
                    s.read_to_end(&mut got).map_err(at("read"))?;
                    Ok::<_, (&str, io::Error)>((got == data, data.len()))
                })
            })
            .collect();
        let (mut sent, mut wrong) = (0, 0);
        let mut failures = Failures::new();
        for c in clients {
            match c.join().unwrap() {
                Ok((ok, len)) => {
                    wrong += usize::from(!ok);
                    sent += len;
                }
                Err((stage, e)) => {
                    *failures
                        .entry(format!("{stage}: {:?}", e.kind()))
                        .or_default() += 1
                }
            }
        }
        (sent, wrong, failures)
    });
    // On a line of its own (the harness's "test ... " has no newline yet).
    println!("\n10k clients: {sent} {wrong} {failures:?}");
}

// ---------------------------------------------------------------------------
// EMFILE

const CHILD_ENV: &str = "GORT_NET_TEST_CHILD";

#[test]
fn an_accept_loop_survives_emfile() {
    // RLIMIT_NOFILE is process-wide: the real test runs in a child process
    // (this test binary re-run on this test alone).
    if std::env::var(CHILD_ENV).is_ok() {
        return emfile_child();
    }
    let _w = watchdog("EMFILE parent");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_accept_loop_survives_emfile",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("emfile child: done"), "{stdout}\n{stderr}");
}

fn emfile_child() {
    let _w = watchdog("EMFILE child");
    rt(1).run(|| {
        let l = TcpListener::bind(LOCAL).unwrap();
        let addr = l.local_addr().unwrap();
        // A connection waits in the backlog before the fds run out.
        let mut first = TcpStream::connect(addr).unwrap();
        // Lower the soft limit near the fds in use, then use up the rest.
        let highest = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap();
        // SAFETY: as in `raise_nofile`: a live, zeroed rlimit struct.
        unsafe {
            let mut lim: libc::rlimit = std::mem::zeroed();
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
            lim.rlim_cur = highest + 16;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
        let mut hog = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e:?}");
                    break;
                }
            }
        }
        let (err_tx, err_rx) = chan::bounded::<io::Error>(1);
        let server = gort::go(move || {
            let handlers = WaitGroup::new();
            let mut served = 0;
            let mut errors = 0;
            while served < 2 {
                match l.accept() {
                    Ok((s, _)) => {
                        served += 1;
                        handlers.go(move || echo_loop(s).unwrap());
                    }
                    Err(e) => {
                        // Go's servers back off and retry on EMFILE.
                        errors += 1;
                        let _ = err_tx.try_send(e);
                        gort::time::sleep(Duration::from_millis(1));
                    }
                }
            }
            handlers.wait();
            errors
        });
        let e = err_rx.recv().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e:?}");
        drop(hog); // fds free again: the waiting connection is accepted
        first.write_all(b"first").unwrap();
        first.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        first.read_to_string(&mut got).unwrap();
        assert_eq!(got, "first");
        let mut second = TcpStream::connect(addr).unwrap();
        second.write_all(b"second").unwrap();
        second.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        second.read_to_string(&mut got).unwrap();
        assert_eq!(got, "second");
        assert!(server.join().unwrap() >= 1);
    });
    eprintln!("emfile child: done");
}
