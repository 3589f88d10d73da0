//! Helpers shared by the integration tests (`mod common;` in each).

#![allow(dead_code)] // each test file uses its own subset

use std::fmt::Display;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A runtime with `procs` processors.
pub fn rt(procs: usize) -> gort::runtime::Runtime {
    gort::runtime::Builder::new().procs(procs).build().unwrap()
}

/// Aborts the test process if the test holding it hangs for 120 s: a hang
/// becomes a failure that names the test (it is not a timing check).
/// Dropping it (also during a panic) disarms it.
pub struct Watchdog(Arc<AtomicBool>);

pub fn watchdog(what: impl Display + Send + 'static) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for _ in 0..1200 {
            std::thread::sleep(Duration::from_millis(100));
            if d.load(Ordering::Relaxed) {
                return;
            }
        }
        // Straight to stderr: `eprintln!` in a thread spawned by a test is
        // captured by the test harness, and the abort would lose it.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "watchdog: {what} hung for 120 s");
        std::process::abort();
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// True in the child process started by [`child`] for `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var("GORT_TEST_CHILD").is_ok_and(|v| v == name)
}

/// Runs test `name` of this binary in a child process (with extra
/// environment `env`), killing it if it has not finished in 60 s (a hang
/// is then a failure that says so, not a timing check).
pub fn child(name: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("GORT_TEST_CHILD", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let c = cmd.spawn().unwrap();
    let pid = c.id() as i32;
    // Drained while it runs (a child filling a pipe would block on it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(c.wait_with_output().unwrap()));
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().unwrap();
            panic!(
                "{name}: child hung for 60 s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A goroutine that counts ticks, running `step` after each (a yield: as
/// fast as it is scheduled; a 1 ms sleep: a timer wait), until dropped:
/// "another goroutine kept making progress" in the hand-off tests.
pub struct Ticker {
    ticks: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    h: Option<gort::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(step: fn()) -> Ticker {
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (ticks.clone(), stop.clone());
        let h = gort::go(move || {
            while !s.load(Ordering::Relaxed) {
                t.fetch_add(1, Ordering::Relaxed);
                step();
            }
        });
        // Running before anything is measured.
        while ticks.load(Ordering::Relaxed) == 0 {
            gort::yield_now();
        }
        Ticker {
            ticks,
            stop,
            h: Some(h),
        }
    }

    pub fn now(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.h.take().unwrap().join().unwrap();
    }
}
