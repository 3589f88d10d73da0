//! `gort::debug`: snapshots, the report, stats, and wait sites (every
//! blocking call records the user's line it parks at).

#![allow(clippy::blocks_in_conditions)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::debug::{self, GoroutineInfo, GoroutineState};

/// `site!(l, call)`: stores the invocation's line in `l`, then runs `call`
/// (one line, so the call's own location is that line).
macro_rules! site {
    ($l:expr, $e:expr) => {{
        $l.store(line!(), Ordering::SeqCst);
        $e
    }};
}

/// Polls the snapshot until the goroutine named `name` is in `state`.
fn eventually_in(name: &str, state: GoroutineState) -> GoroutineInfo {
    let t = Instant::now();
    loop {
        if let Some(g) = debug::goroutines()
            .into_iter()
            .find(|g| g.name.as_deref() == Some(name) && g.state == state)
        {
            return g;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{name} never reached {state:?}: {:#?}",
            debug::goroutines()
        );
        gort::time::sleep(Duration::from_millis(1));
    }
}

/// Runs `block` in a goroutine named `name`; `block` stores `line!()` on
/// the line of its blocking call. Checks that the goroutine shows as
/// waiting for `reason` at that line of this file, then `unblock`s it.
fn check_site(
    name: &'static str,
    reason: &str,
    block: impl FnOnce(&AtomicU32) + Send + 'static,
    unblock: impl FnOnce(),
) {
    let line = Arc::new(AtomicU32::new(0));
    let l2 = line.clone();
    let h = gort::Builder::new()
        .name(name)
        .spawn(move || block(&l2))
        .unwrap();
    let g = eventually_in(name, GoroutineState::Waiting);
    assert_eq!(g.wait_reason, Some(reason), "{name}: {g:?}");
    let at = g
        .waiting_at
        .unwrap_or_else(|| panic!("{name}: no wait site"));
    assert_eq!(
        (at.file(), at.line()),
        (file!(), line.load(Ordering::SeqCst)),
        "{name} waits at {at}, not at its call"
    );
    unblock();
    h.join().unwrap();
}

#[test]
fn every_blocking_call_records_the_users_line() {
    let _w = common::watchdog("every_blocking_call_records_the_users_line");
    common::rt(2).run(|| {
        use gort::chan;
        use gort::sync::{Condvar, Mutex, RwLock, Semaphore, WaitGroup};

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "recv",
            "chan receive",
            move |l| {
                site!(l, rx.recv().unwrap());
            },
            move || tx.send(1).unwrap(),
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "send",
            "chan send",
            move |l| {
                site!(l, tx.send(1).unwrap());
            },
            move || {
                rx.recv().unwrap();
            },
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "recv_timeout",
            "chan receive",
            move |l| {
                site!(l, rx.recv_timeout(Duration::from_secs(60)).unwrap());
            },
            move || tx.send(1).unwrap(),
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "send_timeout",
            "chan send",
            move |l| {
                site!(l, tx.send_timeout(1, Duration::from_secs(60)).unwrap());
            },
            move || {
                rx.recv().unwrap();
            },
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        let (_tx2, rx2) = chan::bounded::<u8>(0);
        check_site(
            "select!",
            "select",
            move |l| {
                // The call is on the next line.
                l.store(line!() + 1, Ordering::SeqCst);
                gort::select! { recv(rx) -> v => { v.unwrap(); } recv(rx2) -> _ => {} }
            },
            move || tx.send(1).unwrap(),
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "Select",
            "select",
            move |l| {
                let mut sel = chan::Select::new();
                sel.recv(&rx);
                let op = site!(l, sel.select());
                op.recv(&rx).unwrap();
            },
            move || tx.send(1).unwrap(),
        );

        let m = Arc::new(Mutex::new(()));
        let guard = m.lock();
        let m2 = m.clone();
        check_site(
            "lock",
            "sync.Mutex.Lock",
            move |l| {
                site!(l, drop(m2.lock()));
            },
            move || drop(guard),
        );

        let rw = Arc::new(RwLock::new(()));
        let w = rw.write();
        let rw2 = rw.clone();
        check_site(
            "read",
            "sync.RWMutex.RLock",
            move |l| {
                site!(l, drop(rw2.read()));
            },
            move || drop(w),
        );

        let r = rw.read();
        let rw2 = rw.clone();
        check_site(
            "write",
            "sync.RWMutex.Lock",
            move |l| {
                site!(l, drop(rw2.write()));
            },
            move || drop(r),
        );

        let wg = WaitGroup::new();
        wg.add(1);
        let wg2 = wg.clone();
        check_site(
            "WaitGroup",
            "sync.WaitGroup.Wait",
            move |l| {
                site!(l, wg2.wait());
            },
            move || wg.done(),
        );

        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        check_site(
            "Condvar",
            "sync.Cond.Wait",
            move |l| {
                let (m, c) = &*p2;
                let mut ready = m.lock();
                while !*ready {
                    ready = site!(l, c.wait(ready));
                }
            },
            move || {
                *pair.0.lock() = true;
                pair.1.notify_all();
            },
        );

        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        check_site(
            "acquire",
            "semacquire",
            move |l| {
                site!(l, drop(s2.acquire()));
            },
            move || sem.add_permits(1),
        );

        let (tx, rx) = chan::bounded::<()>(0);
        check_site(
            "sleep",
            "sleep",
            move |l| {
                site!(l, gort::time::sleep(Duration::from_millis(300)));
                drop(tx);
            },
            move || {
                let _ = rx.recv();
            },
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        check_site(
            "scope",
            "scope",
            move |l| {
                // The call is on the next line.
                l.store(line!() + 1, Ordering::SeqCst);
                gort::scope(|s| {
                    s.go(|| rx.recv().unwrap());
                });
            },
            move || tx.send(1).unwrap(),
        );

        let (tx, rx) = chan::bounded::<u8>(0);
        let inner = gort::go(move || rx.recv().unwrap());
        check_site(
            "join",
            "join",
            move |l| {
                site!(l, inner.join().unwrap());
            },
            move || tx.send(1).unwrap(),
        );
    });
}

#[test]
fn socket_calls_record_the_users_line() {
    use std::io::{Read, Write};
    let _w = common::watchdog("socket_calls_record_the_users_line");
    common::rt(2).run(|| {
        let ln = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let ln = Arc::new(ln);
        let l2 = ln.clone();
        let (tx, rx) = gort::chan::bounded(1);
        check_site(
            "accept",
            "IO wait",
            move |l| {
                let (s, _) = site!(l, l2.accept().unwrap());
                tx.send(s).unwrap();
            },
            move || drop(gort::net::TcpStream::connect(addr).unwrap()),
        );
        let _server_side = rx.recv().unwrap();

        let (tx, rx) = gort::chan::bounded(1);
        let l2 = ln.clone();
        let acceptor = gort::go(move || tx.send(l2.accept().unwrap().0).unwrap());
        let mut client = gort::net::TcpStream::connect(addr).unwrap();
        acceptor.join().unwrap();
        let mut server: gort::net::TcpStream = rx.recv().unwrap();
        check_site(
            "read",
            "IO wait",
            move |l| {
                let mut b = [0u8; 1];
                site!(l, assert_eq!(server.read(&mut b).unwrap(), 1));
            },
            move || client.write_all(b"x").unwrap(),
        );
    });
}

#[test]
fn the_report_has_gos_shape() {
    common::rt(1).run(|| {
        let (tx, rx) = gort::chan::bounded::<()>(0);
        let h = gort::Builder::new()
            .name("worker")
            .spawn(move || {
                let _ = rx.recv();
            })
            .unwrap();
        let g = eventually_in("worker", GoroutineState::Waiting);
        let mut out = Vec::new();
        debug::write_dump(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let head = format!("goroutine {} \"worker\" [chan receive, ", g.id.as_u64());
        let block = text
            .split("\n\n")
            .find(|b| b.starts_with(&head))
            .unwrap_or_else(|| panic!("no block starting {head:?} in:\n{text}"));
        let lines: Vec<&str> = block.lines().collect();
        assert!(lines[0].ends_with("]:"), "{block}");
        assert!(
            lines[1].starts_with("    waiting at gort/tests/debug.rs:"),
            "{block}"
        );
        assert!(
            lines[2].starts_with("    spawned at gort/tests/debug.rs:"),
            "{block}"
        );
        // The main goroutine is in the report too, running.
        assert!(text.contains("[running]:"), "{text}");
        drop(tx);
        h.join().unwrap();
    });
}

#[test]
fn waiting_time_never_runs_ahead() {
    // A lower bound only: a goroutine parked for at least 100 ms reports
    // at least that long.
    common::rt(1).run(|| {
        let (tx, rx) = gort::chan::bounded::<()>(0);
        let h = gort::Builder::new()
            .name("sleeper")
            .spawn(move || {
                let _ = rx.recv();
            })
            .unwrap();
        eventually_in("sleeper", GoroutineState::Waiting);
        let t = Instant::now();
        gort::time::sleep(Duration::from_millis(100));
        let g = eventually_in("sleeper", GoroutineState::Waiting);
        assert!(
            g.since >= t.elapsed().min(Duration::from_millis(100)),
            "{g:?}"
        );
        drop(tx);
        h.join().unwrap();
    });
}

#[test]
fn blocking_and_locked_goroutines_are_shown_as_such() {
    let _w = common::watchdog("blocking_and_locked_goroutines_are_shown_as_such");
    common::rt(2).run(|| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let line = Arc::new(AtomicU32::new(0));
        let l2 = line.clone();
        let h = gort::Builder::new()
            .name("in-blocking")
            .spawn(move || site!(l2, gort::blocking(move || rx.recv().unwrap())))
            .unwrap();
        let g = eventually_in("in-blocking", GoroutineState::Blocking);
        let at = g.waiting_at.expect("a blocking call has a site");
        assert_eq!(
            (at.file(), at.line()),
            (file!(), line.load(Ordering::SeqCst)),
            "{g:?}"
        );
        tx.send(()).unwrap();
        h.join().unwrap();

        let (tx, rx) = gort::chan::bounded::<()>(0);
        let h = gort::Builder::new()
            .name("locked")
            .spawn(move || {
                gort::lock_os_thread();
                let _ = rx.recv();
                gort::unlock_os_thread();
            })
            .unwrap();
        let g = eventually_in("locked", GoroutineState::Waiting);
        assert!(g.locked_to_thread, "{g:?}");
        drop(tx);
        h.join().unwrap();
    });
}

#[test]
fn stats_count_what_the_scheduler_did() {
    let s = common::rt(2).run(|| {
        let hs: Vec<_> = (0..100).map(|_| gort::go(gort::yield_now)).collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        debug::stats()
    });
    assert_eq!(s.procs, 2);
    assert_eq!(s.local_queues.len(), 2);
    assert!(s.spawned >= 101, "{s:?}");
    assert!(s.goroutines >= 1, "{s:?}");
    assert!(s.threads >= 1, "{s:?}");
}

#[test]
fn from_a_plain_thread_it_reports_the_default_runtime() {
    // The default runtime may not have started in this process: then the
    // report is empty, and it must not start it.
    gort::go(|| ()).join().unwrap();
    let s = debug::stats();
    assert!(s.procs >= 1, "{s:?}");
    assert!(s.spawned >= 1, "{s:?}");
}

// ---- GORT_SCHEDTRACE and SIGQUIT (child processes) ------------------------------

use common::{child, is_child, text};

#[test]
fn schedtrace_prints_gos_line_and_bad_values_say_so() {
    let name = "schedtrace_prints_gos_line_and_bad_values_say_so";
    if is_child(name) {
        common::rt(2).run(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(600) {
                gort::time::sleep(Duration::from_millis(5));
            }
        });
        return;
    }
    let out = child(name, &[("GORT_SCHEDTRACE", "50")]);
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 2, "{err}");
    for l in &lines {
        // SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 idlethreads=2 runqueue=0 [0 0]
        let (head, rest) = l.split_once(": ").unwrap_or_else(|| panic!("{l}"));
        assert!(head.ends_with("ms"), "{l}");
        let fields: Vec<&str> = rest.split(' ').collect();
        let names: Vec<&str> = fields
            .iter()
            .take(6)
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "gomaxprocs",
                "idleprocs",
                "threads",
                "spinningthreads",
                "idlethreads",
                "runqueue"
            ],
            "{l}"
        );
        assert_eq!(fields[0], "gomaxprocs=2", "{l}");
        assert!(l.ends_with(']') && rest.contains(" ["), "{l}");
    }
    let out = child(name, &[("GORT_SCHEDTRACE", "abc")]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("GORT_SCHEDTRACE=\"abc\" is not a period in milliseconds"),
        "{err}"
    );
    assert!(!err.contains("SCHED "), "{err}");
}

#[test]
fn sigquit_prints_the_report_and_exits_2() {
    use std::io::{BufRead, BufReader};
    let name = "sigquit_prints_the_report_and_exits_2";
    if is_child(name) {
        debug::dump_on_sigquit();
        common::rt(1).run(|| {
            let (_tx, rx) = gort::chan::bounded::<u8>(0);
            gort::Builder::new()
                .name("napper")
                .spawn(move || {
                    let _ = rx.recv();
                })
                .unwrap();
            // READY once main and the napper are both parked, so the
            // signal finds them there (a lookout tells, then sleeps too).
            gort::go(|| {
                let parked = |n: &str| {
                    debug::goroutines()
                        .iter()
                        .any(|g| g.name.as_deref() == Some(n) && g.state == GoroutineState::Waiting)
                };
                while !(parked("main") && parked("napper")) {
                    gort::time::sleep(Duration::from_millis(1));
                }
                eprintln!("READY");
                gort::time::sleep(Duration::from_secs(60));
            });
            gort::time::sleep(Duration::from_secs(60));
        });
        return;
    }
    let mut c = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("GORT_TEST_CHILD", name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.trim() == "READY" {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("READY"), "{seen}");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGQUIT) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = c.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(rest.starts_with("SIGQUIT: quit\n\n"), "{rest}");
    assert!(rest.contains("\"napper\" [chan receive"), "{rest}");
    assert!(rest.contains("\"main\" [sleep"), "{rest}");
}

#[test]
fn snapshots_are_safe_while_goroutines_spawn_exit_and_migrate() {
    let _w = common::watchdog("snapshots_are_safe_while_goroutines_spawn_exit_and_migrate");
    let rt = common::rt(3);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let check = |gs: &[GoroutineInfo]| {
        let ids: Vec<u64> = gs.iter().map(|g| g.id.as_u64()).collect();
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(ids, sorted, "ids sorted and unique");
        for g in gs {
            assert_eq!(
                g.wait_reason.is_some(),
                g.state == GoroutineState::Waiting,
                "{g:?}"
            );
        }
    };
    // Snapshots and dumps taken by main while three goroutines churn
    // through spawns, yields, parks and exits on three processors.
    let s2 = stop.clone();
    let snaps = rt.run(move || {
        let churn: Vec<_> = (0..3)
            .map(|_| {
                let s = s2.clone();
                gort::go(move || {
                    while !s.load(Ordering::Relaxed) {
                        let hs: Vec<_> = (0..20)
                            .map(|i| {
                                gort::go(move || {
                                    if i % 2 == 0 {
                                        gort::yield_now();
                                    }
                                    gort::time::sleep(Duration::from_micros(50));
                                })
                            })
                            .collect();
                        hs.into_iter().for_each(|h| h.join().unwrap());
                    }
                })
            })
            .collect();
        let mut snaps = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(500) {
            check(&debug::goroutines());
            let mut sink = Vec::new();
            debug::write_dump(&mut sink).unwrap();
            snaps += 1;
            gort::yield_now();
        }
        s2.store(true, Ordering::Relaxed);
        churn.into_iter().for_each(|h| h.join().unwrap());
        snaps
    });
    assert!(snaps > 10, "{snaps} snapshots");
}
