//! `gort-compare`: measures, live on this machine, what gort's pitch claims
//! about goroutines versus OS threads, and prints each claim beside the
//! measurement.
//!
//! 1. start + join cost: 100k empty goroutines vs 10k `std::thread`s (ns each);
//! 2. memory per parked unit: RSS and virtual-size growth over 100k parked
//!    goroutines vs 10k parked threads (bytes each);
//! 3. switch cost: two goroutines yielding to each other on one processor vs
//!    two threads handing a token back and forth through a Mutex + Condvar on
//!    one CPU (ns per switch);
//! 4. how many fit: up to 1M parked goroutines vs threads started until the
//!    OS refuses one (or a cap), with the OS's reason.
//!
//! Every measurement runs in a fresh child process (this binary re-executed
//! with `--child`), so RSS baselines are clean and one exhausted resource or
//! crash cannot distort the next measurement. Progress goes to stderr; the
//! table goes to stdout. Nothing printed is made up: only the "claim" column
//! is quoted text.
//!
//! Flags: `--quick` (10x smaller counts), `--goroutines N` (budget for 4),
//! `--max-threads N` (cap for 4), `--thread-stack BYTES` (stack for the
//! threads; std's default otherwise).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const CHILD_FLAG: &str = "--child";
const REPS: usize = 3;

// ---------------------------------------------------------------------------
// /proc helpers

/// A field of /proc/self/status in its unit (kB for the Vm* fields).
fn self_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Memory of this process (bytes): resident, virtual size, page tables, and
/// the kernel stacks of the whole system (threads' kernel stacks are not in
/// any per-process figure).
struct Mem {
    rss: u64,
    vm: u64,
    pte: u64,
    kstack: u64,
}

fn mem_now() -> Mem {
    Mem {
        rss: self_status("VmRSS") * 1024,
        vm: self_status("VmSize") * 1024,
        pte: self_status("VmPTE") * 1024,
        kstack: meminfo_kb("KernelStack").unwrap_or(0) * 1024,
    }
}

/// Prints the memory growth from `before` to now over `count` units.
fn put_mem_growth(before: &Mem, count: usize) {
    let after = mem_now();
    let n = count.max(1) as f64;
    let grow = |a: u64, b: u64| a.saturating_sub(b);
    put("rss_total", grow(after.rss, before.rss));
    put("vm_total", grow(after.vm, before.vm));
    put("rss_per", grow(after.rss, before.rss) as f64 / n);
    put("vm_per", grow(after.vm, before.vm) as f64 / n);
    put("pte_per", grow(after.pte, before.pte) as f64 / n);
    put("kstack_per", grow(after.kstack, before.kstack) as f64 / n);
    put("maps", map_count());
}

/// Progress on stderr: rewritten in place on a terminal, one line otherwise.
fn progress(what: &str, n: usize) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprint!("\r    {what} started: {:>10}", group(n as u64));
    } else {
        eprintln!("    {what} started: {:>10}", group(n as u64));
    }
    put("progress", n);
}

fn progress_end() {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(path: &str) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

fn meminfo_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return None;
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(r.rlim_cur)
    }
}

/// Number of threads on the whole system (4th field of /proc/loadavg: "running/total").
fn system_threads() -> Option<u64> {
    let s = read_trim("/proc/loadavg")?;
    s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

fn map_count() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}

/// (pids.current, pids.max) of this process's cgroup, if there is a limit.
fn cgroup_pids() -> Option<(u64, u64)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut dirs = Vec::new();
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrl.is_empty() {
            dirs.push(format!("/sys/fs/cgroup{path}"));
        } else if ctrl.split(',').any(|c| c == "pids") {
            dirs.push(format!("/sys/fs/cgroup/pids{path}"));
        }
    }
    dirs.iter().find_map(|d| {
        let max = read_u64(&format!("{d}/pids.max"))?; // "max" fails to parse: no limit
        let cur = read_u64(&format!("{d}/pids.current"))?;
        Some((cur, max))
    })
}

// ---------------------------------------------------------------------------
// child side: each measurement prints `result key=value` lines on stdout

fn put(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "result {key}={value}");
    let _ = out.flush();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn child_create_go(n: usize) {
    let (spawn, total) = gort::run(move || {
        let round = |n: usize| {
            let mut hs = Vec::with_capacity(n);
            let t0 = Instant::now();
            for _ in 0..n {
                hs.push(gort::go(|| ()));
            }
            let spawned = t0.elapsed();
            for h in hs {
                h.join().expect("empty goroutine panicked");
            }
            (spawned, t0.elapsed())
        };
        round(n / 10 + 1); // warm-up: stack chunks, run queues
        let (mut s, mut t) = (Vec::new(), Vec::new());
        for _ in 0..REPS {
            let (a, b) = round(n);
            s.push(a);
            t.push(b);
        }
        (median(s), median(t))
    });
    put("spawn_ns", spawn.as_nanos() as f64 / n as f64);
    put("total_ns", total.as_nanos() as f64 / n as f64);
}

fn child_create_thread(n: usize) {
    let round = |n: usize| {
        let mut hs = Vec::with_capacity(n);
        let t0 = Instant::now();
        for _ in 0..n {
            hs.push(std::thread::spawn(|| ()));
        }
        let spawned = t0.elapsed();
        for h in hs {
            h.join().expect("empty thread panicked");
        }
        (spawned, t0.elapsed())
    };
    round(n / 10 + 1);
    let (mut s, mut t) = (Vec::new(), Vec::new());
    for _ in 0..REPS {
        let (a, b) = round(n);
        s.push(a);
        t.push(b);
    }
    put("spawn_ns", median(s).as_nanos() as f64 / n as f64);
    put("total_ns", median(t).as_nanos() as f64 / n as f64);
}

/// Parks up to `n` goroutines on one release WaitGroup and reports the memory
/// they took. With `until_error`, spawns through `gort::Builder` and stops at
/// the first refusal instead of panicking.
fn child_parked_go(n: usize, until_error: bool) {
    gort::run(move || {
        let release = gort::sync::WaitGroup::new();
        release.add(1);
        let started = gort::sync::WaitGroup::new();
        let mut hs = Vec::with_capacity(n);
        let before = mem_now();
        let t0 = Instant::now();
        let mut error = None;
        let step = (n / 10).max(1);
        for i in 0..n {
            let (r, s) = (release.clone(), started.clone());
            started.add(1);
            let body = move || {
                s.done();
                r.wait();
            };
            if until_error {
                match gort::Builder::new().spawn(body) {
                    Ok(h) => hs.push(h),
                    Err(e) => {
                        started.done();
                        error = Some(e);
                        break;
                    }
                }
            } else {
                hs.push(gort::go(body));
            }
            if (i + 1) % step == 0 {
                progress("goroutines", i + 1);
            }
        }
        progress_end();
        let spawned = t0.elapsed();
        started.wait();
        // Everyone has called done(); let the last few reach their wait().
        for _ in 0..100 {
            gort::yield_now();
        }
        let count = hs.len();
        put_mem_growth(&before, count);
        put("count", count);
        put("live", gort::num_goroutines());
        put("spawn_ns", spawned.as_nanos() as f64 / count.max(1) as f64);
        if let Some(e) = error {
            put("error", e);
        }
        eprintln!(
            "    all {} parked; releasing and joining",
            group(count as u64)
        );
        let t1 = Instant::now();
        release.done();
        for h in hs {
            h.join().expect("parked goroutine panicked");
        }
        put("release_join_ms", t1.elapsed().as_secs_f64() * 1e3);
    });
}

struct Gate {
    state: Mutex<(usize, bool)>, // (parked, released)
    parked: Condvar,
    release: Condvar,
}

/// Why spawning a thread failed, judged from the limits it is nearest to.
fn thread_limit_diagnosis() -> (String, String) {
    let mut facts = Vec::new();
    let mut likely = Vec::new();
    let near = |used: u64, max: u64| used + 64 >= max || used as f64 >= max as f64 * 0.98;

    let proc_threads = self_status("Threads");
    facts.push(format!("this process has {proc_threads} threads"));
    if let (Some(sys), Some(max)) = (system_threads(), read_u64("/proc/sys/kernel/threads-max")) {
        facts.push(format!("system {sys} of kernel.threads-max {max}"));
        if near(sys, max) {
            likely.push("kernel.threads-max");
        }
    }
    if let Some(nproc) = rlimit(libc::RLIMIT_NPROC) {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        facts.push(format!(
            "RLIMIT_NPROC {nproc}{}",
            if root { " (root: not enforced)" } else { "" }
        ));
        if !root {
            if let Some(sys) = system_threads() {
                if near(sys, nproc) {
                    likely.push("RLIMIT_NPROC (ulimit -u)");
                }
            }
        }
    }
    let maps = map_count();
    if let Some(max) = read_u64("/proc/sys/vm/max_map_count") {
        facts.push(format!("{maps} memory mappings of vm.max_map_count {max}"));
        if near(maps, max) {
            likely.push("vm.max_map_count");
        }
    }
    if let Some((cur, max)) = cgroup_pids() {
        facts.push(format!("cgroup pids {cur} of {max}"));
        if near(cur, max) {
            likely.push("cgroup pids.max");
        }
    }
    if let (Some(avail), Some(total)) = (meminfo_kb("MemAvailable"), meminfo_kb("MemTotal")) {
        facts.push(format!(
            "MemAvailable {} of {}",
            bytes(avail as f64 * 1024.0),
            bytes(total as f64 * 1024.0)
        ));
        if avail * 50 < total {
            likely.push("memory");
        }
    }
    if read_trim("/proc/sys/vm/overcommit_memory").as_deref() == Some("2") {
        if let (Some(c), Some(l)) = (meminfo_kb("Committed_AS"), meminfo_kb("CommitLimit")) {
            facts.push(format!("Committed_AS {c} kB of CommitLimit {l} kB"));
            if near(c, l) {
                likely.push("memory (overcommit mode 2: CommitLimit)");
            }
        }
    }
    let likely = if likely.is_empty() {
        "none of threads-max, RLIMIT_NPROC, vm.max_map_count, cgroup pids, memory is near its limit"
            .to_string()
    } else {
        likely.join(" + ")
    };
    (likely, facts.join("; "))
}

/// Parks up to `n` threads on a shared condition and reports the memory they
/// took. With `until_error`, stops cleanly at the first refused spawn and
/// reports the OS's reason, or just short of `vm.max_map_count` (see below).
fn child_parked_thread(n: usize, until_error: bool, stack: Option<usize>) {
    let gate = Arc::new(Gate {
        state: Mutex::new((0, false)),
        parked: Condvar::new(),
        release: Condvar::new(),
    });
    // Each thread counts itself in under the lock and releases it only inside
    // Condvar::wait, so parked == count (seen under the lock) means all wait.
    let wait_parked = |count: usize| {
        let mut st = gate.state.lock().unwrap();
        while st.0 < count {
            st = gate.parked.wait(st).unwrap();
        }
    };
    // A std thread takes several memory mappings (stack, guard page, and the
    // signal stack std maps, with its own guard, when the thread starts). If
    // that last mapping fails, std panics inside the new thread and the whole
    // process aborts, so near vm.max_map_count this looks at the real count
    // before each spawn and stops while every thread can still be whole.
    let max_maps = if until_error {
        read_u64("/proc/sys/vm/max_map_count")
    } else {
        None
    };
    let maps_base = map_count();
    let mut maps_per_thread = 0u64;
    let mut next_check = 256;

    let mut hs = Vec::with_capacity(n);
    let before = mem_now();
    let t0 = Instant::now();
    let step = if until_error { 2000 } else { (n / 10).max(1) };
    let mut ended = false;
    for i in 0..n {
        if let (Some(max), true) = (max_maps, i == next_check) {
            wait_parked(i);
            let used = map_count();
            if maps_per_thread == 0 {
                // +1 for the occasional malloc arena.
                maps_per_thread = (used.saturating_sub(maps_base)).div_ceil(i as u64) + 1;
            }
            let reserve = 16;
            let free = max.saturating_sub(used);
            if free < maps_per_thread + reserve {
                let avg = used.saturating_sub(maps_base) as f64 / i as f64;
                put(
                    "stopped",
                    format!(
                        "{used} of vm.max_map_count {max} memory mappings in use, {avg:.1} per \
                         thread (stack, guard page, signal stack and its guard); \
                         std aborts the process when a new thread cannot map its signal stack, \
                         so the next spawn was not attempted"
                    ),
                );
                ended = true;
                break;
            }
            next_check = i + ((free - reserve) / (2 * maps_per_thread)).max(1) as usize;
        }
        let g = gate.clone();
        let mut b = std::thread::Builder::new();
        if let Some(s) = stack {
            b = b.stack_size(s);
        }
        let spawned = b.spawn(move || {
            let mut st = g.state.lock().unwrap();
            st.0 += 1;
            g.parked.notify_one();
            while !st.1 {
                st = g.release.wait(st).unwrap();
            }
        });
        match spawned {
            Ok(h) => hs.push(h),
            Err(e) if until_error => {
                let (likely, facts) = thread_limit_diagnosis();
                put("error", &e);
                put("likely", likely);
                put("facts", facts);
                ended = true;
                break;
            }
            Err(e) => panic!("thread spawn {i} failed: {e}"),
        }
        if (i + 1) % step == 0 {
            progress("threads", i + 1);
        }
    }
    progress_end();
    let spawned = t0.elapsed();
    let count = hs.len();
    wait_parked(count);
    put_mem_growth(&before, count);
    put("count", count);
    put("spawn_ns", spawned.as_nanos() as f64 / count.max(1) as f64);
    if until_error && !ended {
        put("capped", 1);
    }
    eprintln!(
        "    all {} parked; releasing and joining",
        group(count as u64)
    );
    let t1 = Instant::now();
    gate.state.lock().unwrap().1 = true;
    gate.release.notify_all();
    for h in hs {
        h.join().expect("parked thread panicked");
    }
    put("release_join_ms", t1.elapsed().as_secs_f64() * 1e3);
}

fn child_switch_go(n: usize) {
    let rt = gort::runtime::Builder::new()
        .procs(1)
        .build()
        .expect("gort runtime with procs(1)");
    let per = rt.run(move || {
        let ping = |n: usize| {
            let t0 = Instant::now();
            let a = gort::go(move || (0..n).for_each(|_| gort::yield_now()));
            let b = gort::go(move || (0..n).for_each(|_| gort::yield_now()));
            a.join().expect("yielder a panicked");
            b.join().expect("yielder b panicked");
            t0.elapsed()
        };
        ping(n / 10 + 1);
        let v: Vec<_> = (0..REPS).map(|_| ping(n)).collect();
        median(v).as_nanos() as f64 / (2 * n) as f64
    });
    put("switch_ns", per);
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; the libc macros index within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The first CPU this process may run on.
fn first_cpu() -> usize {
    // SAFETY: as in pin_to.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            for c in 0..libc::CPU_SETSIZE as usize {
                if libc::CPU_ISSET(c, &set) {
                    return c;
                }
            }
        }
    }
    0
}

fn child_switch_thread(n: usize, pin: bool) {
    let cpu = first_cpu();
    let ping = |n: usize| {
        let turn = Arc::new((Mutex::new(0u64), Condvar::new()));
        let go = Arc::new(AtomicBool::new(false));
        let side = |me: u64| {
            let turn = turn.clone();
            let go = go.clone();
            std::thread::spawn(move || {
                if pin {
                    pin_to(cpu);
                }
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                let (m, cv) = &*turn;
                let mut t = m.lock().unwrap();
                for _ in 0..n {
                    while *t % 2 != me {
                        t = cv.wait(t).unwrap();
                    }
                    *t += 1;
                    cv.notify_one();
                }
            })
        };
        let (a, b) = (side(0), side(1));
        std::thread::sleep(Duration::from_millis(5));
        let t0 = Instant::now();
        go.store(true, Ordering::Release);
        a.join().expect("ping thread panicked");
        b.join().expect("pong thread panicked");
        t0.elapsed()
    };
    ping(n / 10 + 1);
    let v: Vec<_> = (0..REPS).map(|_| ping(n)).collect();
    put("switch_ns", median(v).as_nanos() as f64 / (2 * n) as f64);
}

fn child_main(args: &[String]) {
    let arg = |i: usize| -> usize {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("child: bad argument {i} in {args:?}"))
    };
    let stack = args.get(2).and_then(|s| s.parse().ok()).filter(|&s| s > 0);
    match args[0].as_str() {
        "create-go" => child_create_go(arg(1)),
        "create-thread" => child_create_thread(arg(1)),
        "mem-go" => child_parked_go(arg(1), false),
        "mem-thread" => child_parked_thread(arg(1), false, stack),
        "count-go" => child_parked_go(arg(1), true),
        "count-thread" => child_parked_thread(arg(1), true, stack),
        "switch-go" => child_switch_go(arg(1)),
        "switch-thread" => child_switch_thread(arg(1), true),
        "switch-thread-free" => child_switch_thread(arg(1), false),
        other => panic!("child: unknown measurement {other}"),
    }
}

// ---------------------------------------------------------------------------
// parent side

/// What a child reported: its `result` lines, and how it ended.
struct Outcome {
    vals: HashMap<String, String>,
    failure: Option<String>,
}

impl Outcome {
    fn num(&self, k: &str) -> Option<f64> {
        self.vals.get(k)?.parse().ok()
    }
    fn text(&self, k: &str) -> Option<&str> {
        self.vals.get(k).map(|s| s.as_str())
    }
}

fn run_child(what: &str, args: &[String], timeout: Duration) -> Outcome {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = match Command::new(exe)
        .arg(CHILD_FLAG)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                vals: HashMap::new(),
                failure: Some(format!("could not start child: {e}")),
            }
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut vals = HashMap::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((k, v)) = line.strip_prefix("result ").and_then(|l| l.split_once('=')) {
                vals.insert(k.to_string(), v.to_string());
            }
        }
        vals
    });
    let t0 = Instant::now();
    let mut failure = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    use std::os::unix::process::ExitStatusExt;
                    failure = Some(match status.signal() {
                        Some(sig) => format!("{what}: child killed by signal {sig}"),
                        None => format!("{what}: child exited with {status}"),
                    });
                }
                break;
            }
            Ok(None) if t0.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                failure = Some(format!(
                    "{what}: timed out after {}s (hang?)",
                    timeout.as_secs()
                ));
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                failure = Some(format!("{what}: wait failed: {e}"));
                break;
            }
        }
    }
    let vals = reader.join().unwrap_or_default();
    if let Some(f) = &failure {
        eprintln!("  !! {f}");
    }
    Outcome { vals, failure }
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ns(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ns")
    } else if v < 1e3 {
        format!("{v:.0} ns")
    } else if v < 1e6 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{:.1} ms", v / 1e6)
    }
}

fn bytes(v: f64) -> String {
    const K: f64 = 1024.0;
    if v < K {
        format!("{v:.0} B")
    } else if v < K * K {
        format!("{:.1} KiB", v / K)
    } else if v < K * K * K {
        format!("{:.1} MiB", v / (K * K))
    } else {
        format!("{:.2} GiB", v / (K * K * K))
    }
}

fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        // Below one unit (a byte, a nanosecond) the goroutine side is nil:
        // a ratio to it would only measure noise.
        (Some(a), Some(b)) if b >= 1.0 && a > 0.0 => {
            let r = a / b;
            if r >= 100.0 {
                format!("{r:.0}x")
            } else {
                format!("{r:.1}x")
            }
        }
        _ => "-".to_string(),
    }
}

fn cell(o: &Outcome, key: &str, f: fn(f64) -> String) -> String {
    match (o.num(key), &o.failure) {
        (Some(v), _) => f(v),
        (None, Some(_)) => "FAILED".to_string(),
        (None, None) => "-".to_string(),
    }
}

struct Opts {
    quick: bool,
    goroutines: usize,
    max_threads: usize,
    thread_stack: Option<usize>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        quick: false,
        goroutines: 0,
        max_threads: 0,
        thread_stack: None,
    };
    let mut args = std::env::args().skip(1);
    let num = |flag: &str, v: Option<String>| -> usize {
        v.and_then(|s| s.replace('_', "").parse().ok())
            .unwrap_or_else(|| {
                eprintln!("gort-compare: {flag} needs a number");
                std::process::exit(2)
            })
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--goroutines" => o.goroutines = num("--goroutines", args.next()),
            "--max-threads" => o.max_threads = num("--max-threads", args.next()),
            "--thread-stack" => o.thread_stack = Some(num("--thread-stack", args.next())),
            "-h" | "--help" => {
                println!(
                    "usage: gort-compare [--quick] [--goroutines N] [--max-threads N] [--thread-stack BYTES]\n\
                     Measures goroutines (gort) against OS threads on this machine."
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("gort-compare: unknown argument {other} (try --help)");
                std::process::exit(2);
            }
        }
    }
    let div = if o.quick { 10 } else { 1 };
    if o.goroutines == 0 {
        o.goroutines = 1_000_000 / div;
    }
    if o.max_threads == 0 {
        o.max_threads = 100_000 / div;
    }
    o
}

fn machine_lines(o: &Opts) -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mem = meminfo_kb("MemTotal").map_or("?".into(), |k| bytes(k as f64 * 1024.0));
    let opt = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    let page = {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) }
    };
    let thread_stack = match o.thread_stack {
        Some(s) => format!("{} (--thread-stack)", bytes(s as f64)),
        None => match std::env::var("RUST_MIN_STACK") {
            Ok(v) => format!("{v} bytes (RUST_MIN_STACK)"),
            Err(_) => "std default (2 MiB)".to_string(),
        },
    };
    vec![
        format!("machine: {cores} cores (nproc), {cpu}, {mem} RAM, Linux {kernel}, page {page} B"),
        format!(
            "limits:  kernel.threads-max {}, RLIMIT_NPROC {}, vm.max_map_count {}, ulimit -s {}, overcommit_memory {}",
            read_trim("/proc/sys/kernel/threads-max").unwrap_or_else(|| "?".into()),
            opt(rlimit(libc::RLIMIT_NPROC)),
            read_trim("/proc/sys/vm/max_map_count").unwrap_or_else(|| "?".into()),
            rlimit(libc::RLIMIT_STACK).map_or("unlimited".into(), |s| bytes(s as f64)),
            read_trim("/proc/sys/vm/overcommit_memory").unwrap_or_else(|| "?".into()),
        ),
        format!(
            "gort:    GOMAXPROCS {}; OS threads: stack {thread_stack}",
            std::env::var("GOMAXPROCS").unwrap_or_else(|_| format!("unset (procs = {cores})"))
        ),
    ]
}

fn print_table(rows: &[[String; 5]]) {
    let header = [
        "measure",
        "goroutines (gort)",
        "OS threads",
        "ratio",
        "claim",
    ];
    let mut w = [0usize; 5];
    for r in rows
        .iter()
        .map(|r| r.each_ref().map(|s| s.as_str()))
        .chain([header])
    {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |r: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            match i {
                0 | 4 => s.push_str(&format!("{c}{}", " ".repeat(pad))),
                _ => s.push_str(&format!("{}{c}", " ".repeat(pad))),
            }
            if i < 4 {
                s.push_str(" | ");
            }
        }
        println!("{}", s.trim_end());
    };
    line(header);
    println!(
        "{}",
        w.iter()
            .map(|&n| "-".repeat(n))
            .collect::<Vec<_>>()
            .join("-|-")
    );
    for r in rows {
        line(r.each_ref().map(|s| s.as_str()));
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD_FLAG) {
        child_main(&argv[2..]);
        return;
    }
    let o = parse_opts();
    let div = if o.quick { 10 } else { 1 };
    let (n_go, n_th) = (100_000 / div, 10_000 / div);
    let (sw_go, sw_th) = (1_000_000 / div, 100_000 / div);
    let stack_arg = o.thread_stack.unwrap_or(0).to_string();
    let short = Duration::from_secs(300);
    let long = Duration::from_secs(900);

    let machine = machine_lines(&o);
    for l in &machine {
        eprintln!("{l}");
    }
    let s = |v: usize| v.to_string();

    eprintln!(
        "[1/4] spawn + join: {} empty goroutines ...",
        group(n_go as u64)
    );
    let c_go = run_child("create goroutines", &["create-go".into(), s(n_go)], short);
    eprintln!(
        "[1/4] spawn + join: {} empty threads ...",
        group(n_th as u64)
    );
    let c_th = run_child("create threads", &["create-thread".into(), s(n_th)], short);

    eprintln!("[2/4] memory: {} parked goroutines ...", group(n_go as u64));
    let m_go = run_child("parked goroutines", &["mem-go".into(), s(n_go)], short);
    eprintln!("[2/4] memory: {} parked threads ...", group(n_th as u64));
    let m_th = run_child(
        "parked threads",
        &["mem-thread".into(), s(n_th), stack_arg.clone()],
        short,
    );

    eprintln!(
        "[3/4] switch: 2 goroutines x {} yields, procs(1) ...",
        group(sw_go as u64)
    );
    let s_go = run_child("goroutine switch", &["switch-go".into(), s(sw_go)], short);
    eprintln!(
        "[3/4] switch: 2 threads x {} handoffs, one CPU ...",
        group(sw_th as u64)
    );
    let s_th = run_child("thread switch", &["switch-thread".into(), s(sw_th)], short);
    eprintln!(
        "[3/4] switch: 2 threads x {} handoffs, free to use every CPU ...",
        group(sw_th as u64)
    );
    let s_thf = run_child(
        "thread switch (unpinned)",
        &["switch-thread-free".into(), s(sw_th)],
        short,
    );

    eprintln!(
        "[4/4] how many fit: up to {} parked goroutines ...",
        group(o.goroutines as u64)
    );
    let k_go = run_child(
        "goroutine count",
        &["count-go".into(), s(o.goroutines)],
        long,
    );
    eprintln!(
        "[4/4] how many fit: parked threads until the OS refuses (cap {}) ...",
        group(o.max_threads as u64)
    );
    let k_th = run_child(
        "thread count",
        &["count-thread".into(), s(o.max_threads), stack_arg],
        long,
    );

    // ---- the table
    let count_cell = |o: &Outcome, what: &str| -> String {
        match (o.num("count"), &o.failure) {
            (Some(c), _) => group(c as u64),
            (None, Some(_)) => format!(
                "FAILED after {}",
                group(o.num("progress").unwrap_or(0.0) as u64)
            ),
            (None, None) => format!("no {what} count"),
        }
    };
    let go_count_cell = {
        let mut c = count_cell(&k_go, "goroutine");
        if k_go.text("error").is_some() {
            c.push_str(" (refused)");
        } else if k_go.num("count") == Some(o.goroutines as f64) {
            c.push_str(" (budget)");
        }
        c
    };
    let th_count_cell = {
        let mut c = count_cell(&k_th, "thread");
        if k_th.num("capped").is_some() {
            c = format!(">= {c} (cap)");
        } else if k_th.text("error").is_some() {
            c.push_str(" (refused)");
        } else if k_th.text("stopped").is_some() {
            c.push_str(" (map limit)");
        }
        c
    };
    let per = |o: &Outcome| -> String {
        match (o.num("rss_total"), o.num("rss_per")) {
            (Some(t), Some(p)) => format!("{} ({} each)", bytes(t), bytes(p)),
            _ if o.failure.is_some() => "FAILED".into(),
            _ => "-".into(),
        }
    };

    let total_mem = |o: &Outcome| -> Option<f64> {
        Some(o.num("rss_per")? + o.num("pte_per")? + o.num("kstack_per")?)
    };
    let all_told = |o: &Outcome| -> String {
        match total_mem(o) {
            Some(v) => bytes(v),
            None if o.failure.is_some() => "FAILED".into(),
            None => "-".into(),
        }
    };
    let rows: Vec<[String; 5]> = vec![
        [
            format!(
                "spawn + join, empty ({}k gor. / {}k thr.)",
                n_go / 1000,
                n_th / 1000
            ),
            cell(&c_go, "total_ns", ns),
            cell(&c_th, "total_ns", ns),
            ratio(c_th.num("total_ns"), c_go.num("total_ns")),
            "goroutine: well under 1 µs to start; thread: tens of µs to create".into(),
        ],
        [
            "  of which the spawn call".into(),
            cell(&c_go, "spawn_ns", ns),
            cell(&c_th, "spawn_ns", ns),
            ratio(c_th.num("spawn_ns"), c_go.num("spawn_ns")),
            String::new(),
        ],
        [
            format!(
                "memory per parked unit, RSS ({}k / {}k)",
                n_go / 1000,
                n_th / 1000
            ),
            cell(&m_go, "rss_per", bytes),
            cell(&m_th, "rss_per", bytes),
            ratio(m_th.num("rss_per"), m_go.num("rss_per")),
            "goroutine: about one page (4 KiB)".into(),
        ],
        [
            "  + page tables (VmPTE)".into(),
            cell(&m_go, "pte_per", bytes),
            cell(&m_th, "pte_per", bytes),
            ratio(m_th.num("pte_per"), m_go.num("pte_per")),
            String::new(),
        ],
        [
            "  + kernel stack (KernelStack, system)".into(),
            cell(&m_go, "kstack_per", bytes),
            cell(&m_th, "kstack_per", bytes),
            // gort adds no kernel threads: its column is system-wide noise.
            "-".into(),
            String::new(),
        ],
        [
            "  = memory per parked unit, all told".into(),
            all_told(&m_go),
            all_told(&m_th),
            ratio(total_mem(&m_th), total_mem(&m_go)),
            String::new(),
        ],
        [
            "virtual memory reserved per unit".into(),
            cell(&m_go, "vm_per", bytes),
            cell(&m_th, "vm_per", bytes),
            ratio(m_th.num("vm_per"), m_go.num("vm_per")),
            "thread: ~8 MiB of virtual stack reserved".into(),
        ],
        [
            "switch, one CPU (yield / condvar handoff)".into(),
            cell(&s_go, "switch_ns", ns),
            cell(&s_th, "switch_ns", ns),
            ratio(s_th.num("switch_ns"), s_go.num("switch_ns")),
            "switching goroutines is much cheaper than switching threads".into(),
        ],
        [
            "  threads free to run on every CPU".into(),
            String::new(),
            cell(&s_thf, "switch_ns", ns),
            ratio(s_thf.num("switch_ns"), s_go.num("switch_ns")),
            String::new(),
        ],
        [
            "most parked units started".into(),
            go_count_cell,
            th_count_cell,
            ratio(k_go.num("count"), k_th.num("count")),
            "millions of goroutines; threads stop at thousands to tens of thousands".into(),
        ],
        [
            "  RSS they took (each)".into(),
            per(&k_go),
            per(&k_th),
            ratio(k_th.num("rss_per"), k_go.num("rss_per")),
            String::new(),
        ],
        [
            "  time to start each (fresh stacks)".into(),
            cell(&k_go, "spawn_ns", ns),
            cell(&k_th, "spawn_ns", ns),
            ratio(k_th.num("spawn_ns"), k_go.num("spawn_ns")),
            String::new(),
        ],
    ];

    println!();
    println!("gort-compare: goroutines (gort) vs OS threads, measured on this machine");
    for l in &machine {
        println!("{l}");
    }
    println!();
    print_table(&rows);
    println!();
    println!("ratio: how many times cheaper (or, for counts, more) the goroutine side is.");
    println!(
        "spawn + join: median of {REPS} rounds after a warm-up; memory: growth of VmRSS, VmPTE, \
         VmSize (/proc/self/status) and KernelStack (/proc/meminfo) until every unit is parked, \
         divided by the count;"
    );
    println!(
        "switch: elapsed / (2 x rounds), goroutines on a procs(1) runtime, threads pinned to one CPU \
         (unpinned: each handoff is a cross-CPU wake-up)."
    );
    if o.thread_stack.is_none() {
        println!(
            "threads: std::thread reserves 2 MiB of stack unless told otherwise; C's pthread \
             default is `ulimit -s` ({}); --thread-stack BYTES changes it.",
            rlimit(libc::RLIMIT_STACK).map_or("unlimited".into(), |s| bytes(s as f64))
        );
    }
    if let Some(e) = k_th.text("error") {
        println!("thread spawn refused by the OS: {e}");
        if let Some(l) = k_th.text("likely") {
            println!("  likely limit: {l}");
        }
        if let Some(f) = k_th.text("facts") {
            println!("  at that moment: {f}");
        }
    } else if let Some(why) = k_th.text("stopped") {
        println!("threads: stopped just short of the mapping limit: {why}.");
    } else if k_th.num("capped").is_some() {
        println!(
            "threads: the cap of {} (--max-threads) was reached before the OS refused one.",
            group(o.max_threads as u64)
        );
    }
    if let Some(e) = k_go.text("error") {
        println!("goroutine spawn refused: {e}");
    }
    if let Some(ms) = k_go.num("release_join_ms") {
        println!(
            "releasing and joining: {} goroutines in {ms:.0} ms, {} threads in {:.0} ms.",
            group(k_go.num("count").unwrap_or(0.0) as u64),
            group(k_th.num("count").unwrap_or(0.0) as u64),
            k_th.num("release_join_ms").unwrap_or(f64::NAN)
        );
    }
    if let (Some(c), Some(l)) = (m_go.num("count"), m_go.num("live")) {
        if l < c {
            println!("note: gort::num_goroutines() said {l} while {c} goroutines were parked.");
        }
    }
    let failures: Vec<&str> = [
        &c_go, &c_th, &m_go, &m_th, &s_go, &s_th, &s_thf, &k_go, &k_th,
    ]
    .iter()
    .filter_map(|o| o.failure.as_deref())
    .collect();
    for f in &failures {
        println!("FAILED: {f}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
