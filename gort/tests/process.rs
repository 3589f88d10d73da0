//! Tests of `gort::process`: with one processor, 50 goroutines each
//! waiting on a `sleep 1` child, and a goroutine reading a child's stdout
//! line by line, leave a ticker goroutine running (its ticks are counted
//! while the waits and reads are parked), and the waits hold no thread per
//! child; errors are std's (a missing program, one that is not
//! executable); pipes closed early (the child sees EOF; a dead child's
//! stdout reads EOF; its stdin is a broken pipe); a killed child's status;
//! dropped children are reaped, never left zombies; `output` drains both
//! pipes at once; plain threads work too.
//!
//! No wall-clock upper bounds: progress is counted, "eventually" is a
//! generous give-up bound, and the one duration asserted is a lower bound
//! (50 children sleeping 1 s cannot all be done in under 1 s).

mod common;
use common::{rt, watchdog, Ticker};

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::process::{Child, Command, Stdio};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Whether `pid` is a zombie child of this process now.
fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false; // reaped and gone
    };
    // "pid (comm) S ppid ...": comm may hold spaces or parentheses.
    let mut rest = stat.rsplit(')').next().unwrap().split_whitespace();
    let state = rest.next();
    let ppid = rest.next();
    state == Some("Z") && ppid == Some(&std::process::id().to_string())
}

/// Polls `cond` every 10 ms for up to 20 s.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

#[test]
fn fifty_goroutines_wait_for_sleep_1_children_on_one_processor() {
    let _w = watchdog("50 waits");
    let (ticks, threads_before, threads_during, elapsed, all_ok) = rt(1).run(|| {
        let ticker = Ticker::start(|| gort::time::sleep(Duration::from_millis(1)));
        let start = Instant::now();
        // Spawned here, one by one, so that spawning's own hand-offs do
        // not add threads while the waits are measured.
        let children: Vec<Child> = (0..50)
            .map(|_| Command::new("sleep").arg("1").spawn().unwrap())
            .collect();
        let threads_before = threads();
        let t0 = ticker.now();
        let waiting = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = children
            .into_iter()
            .map(|mut c| {
                let waiting = waiting.clone();
                gort::go(move || {
                    waiting.fetch_add(1, Ordering::Relaxed);
                    c.wait().map(|s| s.success())
                })
            })
            .collect();
        // Every waiter has started (and parked: procs 1, so the ticker
        // runs only when they have).
        while waiting.load(Ordering::Relaxed) < 50 {
            gort::time::sleep(Duration::from_millis(1));
        }
        let threads_during = threads();
        let all_ok = hs.into_iter().all(|h| h.join().unwrap().unwrap());
        (
            ticker.now() - t0,
            threads_before,
            threads_during,
            start.elapsed(),
            all_ok,
        )
    });
    assert!(all_ok, "a `sleep 1` child failed");
    eprintln!(
        "ticks while 50 children slept: {ticks}; threads {threads_before} -> {threads_during}"
    );
    // A lower bound only: every child started after `start` and slept 1 s.
    assert!(elapsed >= Duration::from_secs(1), "done after {elapsed:?}");
    assert!(ticks > 20, "ticker ran {ticks} times during the waits");
    assert!(
        threads_during < threads_before + 10,
        "waiting took threads: {threads_before} -> {threads_during}"
    );
}

#[test]
fn reading_a_childs_stdout_line_by_line_parks() {
    let _w = watchdog("stdout lines");
    let (lines, ticks) = rt(1).run(|| {
        let ticker = Ticker::start(|| gort::time::sleep(Duration::from_millis(1)));
        let mut child = Command::new("sh")
            .args([
                "-c",
                "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.05; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = ticker.now();
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap)
            .collect();
        let ticks = ticker.now() - t0;
        assert!(child.wait().unwrap().success());
        (lines, ticks)
    });
    let want: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    // Ten 50 ms pauses between lines: the reader parked through them.
    assert!(
        ticks > 20,
        "ticker ran {ticks} times while the reader waited"
    );
}

#[test]
fn spawn_errors_are_std_errors() {
    let _w = watchdog("spawn errors");
    let dir = std::env::temp_dir().join(format!("gort-proc-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let noexec = dir.join("not-executable");
    std::fs::write(&noexec, "#!/bin/sh\necho hi\n").unwrap();
    let d = dir.clone();
    rt(1).run(move || {
        let e = Command::new("gort-no-such-program").spawn().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let std_e = std::process::Command::new("gort-no-such-program")
            .spawn()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), std_e.raw_os_error());
        assert_eq!(
            Command::new("gort-no-such-program")
                .output()
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        // Mode 0644: even root may not execute a file with no x bit.
        let e = Command::new(&noexec).status().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let e = Command::new("true")
            .current_dir(d.join("missing-dir"))
            .spawn()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pipes_closed_early() {
    let _w = watchdog("pipes closed early");
    rt(1).run(|| {
        // Closing the child's stdin: `cat` sees EOF and exits.
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = cat.stdin.take().unwrap();
        stdin.write_all(b"partial").unwrap();
        drop(stdin);
        let mut out = String::new();
        cat.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "partial");
        assert!(cat.wait().unwrap().success());

        // `wait` closes stdin itself (std does too), so waiting on a child
        // that reads stdin to EOF does not deadlock.
        let mut cat = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
        assert!(cat.wait().unwrap().success());
        assert!(cat.stdin.is_none());

        // A dead child's stdout reads what it wrote, then EOF.
        let mut echo = Command::new("echo")
            .arg("last words")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        echo.wait().unwrap();
        let mut out = echo.stdout.take().unwrap();
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        assert_eq!(s, "last words\n");
        assert_eq!(out.read(&mut [0; 16]).unwrap(), 0);

        // A killed child's stdout: EOF; its stdin: a broken pipe.
        let mut sleeper = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = sleeper.stdin.take().unwrap();
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert_eq!(
            sleeper.stdout.take().unwrap().read(&mut [0; 16]).unwrap(),
            0
        );
        let e = (&stdin).write_all(b"anyone?").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn killed_child_status_is_signal_9() {
    let _w = watchdog("kill");
    rt(2).run(|| {
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(c.try_wait().unwrap().is_none());
        c.kill().unwrap();
        let st = c.wait().unwrap();
        assert_eq!(st.signal(), Some(libc::SIGKILL));
        assert_eq!(st.code(), None);
        assert!(!st.success());
        assert_eq!(c.try_wait().unwrap(), Some(st));
        c.kill().unwrap(); // reaped: Ok, and no signal to a recycled pid
        assert_eq!(c.wait().unwrap(), st);

        // Killed from another goroutine while this one waits.
        let c = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = c.id() as i32;
        let (tx, rx) = gort::chan::bounded(0);
        let h = gort::go(move || {
            let mut c = c;
            tx.send(()).unwrap();
            c.wait().unwrap()
        });
        rx.recv().unwrap();
        // SAFETY: kill(2) on our child, which is not reaped before the
        // waiter returns (joined below).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        assert_eq!(h.join().unwrap().signal(), Some(libc::SIGTERM));
        let st = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(st.code(), Some(7));
    });
}

#[test]
fn dropped_children_are_reaped_not_left_zombies() {
    let _w = watchdog("zombies");
    let pids = rt(1).run(|| {
        let mut pids = Vec::new();
        // Still running when dropped (with a pipe, closed by the drop).
        for _ in 0..5 {
            let c = Command::new("sleep")
                .arg("0.2")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            pids.push(c.id());
        }
        // Exited (a zombie) but never waited for when dropped.
        let exited = Command::new("true").spawn().unwrap();
        let pid = exited.id();
        assert!(eventually(|| is_our_zombie(pid)));
        pids.push(pid);
        drop(exited);
        // A child whose output nobody reads: dropping closes the pipe, so
        // `yes` dies of SIGPIPE and is reaped.
        let yes = Command::new("yes").stdout(Stdio::piped()).spawn().unwrap();
        pids.push(yes.id());
        drop(yes);
        pids
    });
    // `run` has returned and its runtime is gone; the reaper is not tied
    // to it.
    for pid in pids {
        assert!(
            eventually(|| !is_our_zombie(pid)
                && std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                    // Either gone, or reused by a process that is not our child.
                    s.rsplit(')').next().unwrap().split_whitespace().nth(1)
                        != Some(&std::process::id().to_string())
                })),
            "child {pid} still ours after 20 s (zombie: {})",
            is_our_zombie(pid)
        );
    }
}

#[test]
fn output_drains_both_pipes_at_once() {
    let _w = watchdog("output");
    let out = rt(1).run(|| {
        // 1 MiB to stderr first, then 1 MiB to stdout: reading only stdout
        // first would deadlock with the child blocked on a full stderr.
        Command::new("sh")
            .args([
                "-c",
                "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero; echo done >&2",
            ])
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_eq!(out.stderr.len(), (1 << 20) + 5);
    assert!(out.stderr.ends_with(b"done\n"));
}

#[test]
fn writing_more_than_a_pipe_holds_parks_until_the_child_reads() {
    let _w = watchdog("stdin flow control");
    let n = rt(1).run(|| {
        let mut c = Command::new("wc")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        let w = gort::go(move || stdin.write_all(&vec![b'x'; 4 << 20]).unwrap());
        w.join().unwrap();
        let out = c.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    });
    assert_eq!(n, (4 << 20).to_string());
}

#[test]
fn env_and_dir_and_reuse() {
    let _w = watchdog("builder");
    rt(1).run(|| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo $GORT_X:$PWD"])
            .env("GORT_X", "1")
            .current_dir("/");
        let a = cmd.output().unwrap();
        assert_eq!(a.stdout, b"1:/\n");
        // `output`'s capture defaults do not stick: `status` inherits again.
        assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
        let b = cmd
            .env_remove("GORT_X")
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(b.stdout, b":/\n");
        let c = Command::new("/usr/bin/env").env_clear().output().unwrap();
        assert!(c.stdout.is_empty());
    });
}

#[test]
fn plain_threads_spawn_read_and_wait() {
    let _w = watchdog("plain thread");
    let out = Command::new("echo").arg("from a thread").output().unwrap();
    assert_eq!(out.stdout, b"from a thread\n");
    let mut c = Command::new("sleep").arg("0.05").spawn().unwrap();
    assert!(c.wait().unwrap().success());
    let mut c = Command::new("seq")
        .arg("3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = String::new();
    c.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "1\n2\n3\n");
    c.wait().unwrap();
}

#[test]
fn a_pipe_end_becomes_another_childs_stdin() {
    let _w = watchdog("pipeline");
    let out = rt(1).run(|| {
        let mut seq = Command::new("seq")
            .arg("100")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let wc = Command::new("wc")
            .arg("-l")
            .stdin(Stdio::from(seq.stdout.take().unwrap()))
            .output()
            .unwrap();
        seq.wait().unwrap();
        String::from_utf8(wc.stdout).unwrap()
    });
    assert_eq!(out.trim(), "100");
}
