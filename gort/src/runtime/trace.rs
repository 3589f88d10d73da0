//! `GORT_TRACE=path.json`: a scheduler trace in Chrome's Trace Event
//! format (the `{"traceEvents": [...]}` form), which Perfetto,
//! chrome://tracing and speedscope open.
//!
//! What is in it:
//!
//! * one track per thread: pid is the runtime's id, tid the M's id (tid 0
//!   is the runtime's sysmon, tids from 1,000,000 threads outside the
//!   scheduler that readied goroutines), named by `thread_name` metadata
//!   as the threads are (`gort-1-m3`, `gort-1-sysmon`);
//! * a run slice (`B`/`E` pair, cat `run`) each time an M runs a
//!   goroutine, named `g7 worker` (`g7` for an unnamed one), args `g`
//!   (the goroutine's id) and `name`;
//! * instants (`i`, thread scope) for `park` (args `g`, `reason`: Go's
//!   wait-reason words, `at`: the user's call that parked), `ready` (`g`
//!   readied by the goroutine `by`, absent when a timer, the netpoller or
//!   a plain thread readied it), `steal` (`g` and the P it came from,
//!   `from_p`, to `to_p`), `handoff` (a P given away by `handoffp`); and on
//!   sysmon's track `retake` (a P taken from the M `m` whose goroutine was
//!   in a `blocking` call or hogging), `slice end` (a 10 ms slice ended:
//!   the goroutine's preempt flag was set), `preempt` (a hog's thread was
//!   asked to stop) and `hog stopped` (a stopped hog's P handed on).
//!
//! How it is recorded: every event site calls a hook here that is one
//! predictable branch on a process-wide `static` flag, set once (from the
//! environment, when the first runtime is built); the work is in a
//! `#[cold]`, never-inlined slow path. Each thread appends its events,
//! already formatted, to its own buffer (a thread-local `Arc`, also listed
//! in a registry so that the end of the process can reach buffers of
//! threads still running); the buffer's lock is taken only by its thread
//! and by a final flush, so there is no global lock per event. A buffer
//! that reaches `FLUSH_AT` bytes is written to the file in one go (under
//! the sink's lock), as is every buffer when a runtime shuts down, when a
//! thread ends, and when the process exits (an `atexit` hook, so a
//! `#[gort::main]` program's trace is complete: its default runtime is
//! never dropped). Each thread's events are in time order in the file.
//!
//! The file is always well-formed after a write: the closing `]}` is
//! rewritten after each bulk write (a file that cannot seek, such as a
//! pipe, gets it at exit). A write that fails drops that bulk and counts
//! its events; the count is reported on stderr at the next runtime
//! shutdown or exit. A path that cannot be created is one line on stderr
//! naming the variable, and the program runs on untraced.
//!
//! Events are never written from the preemption signal handler (which may
//! only do async-signal-safe work); sysmon records the stop requests.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write as _};
use std::panic::Location;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::Instant;

use super::g::{self, GRef, WaitReason};
use super::lock::Lock;

/// Tracing is on (set once, before the first runtime's threads start).
static ON: AtomicBool = AtomicBool::new(false);
/// The process is exiting and the trace was finished: record no more.
static CLOSED: AtomicBool = AtomicBool::new(false);
static SINK: Lock<Option<Sink>> = Lock::new(None);
static THREADS: Lock<Vec<Arc<Buf>>> = Lock::new(Vec::new());
static EPOCH: OnceLock<Instant> = OnceLock::new();
static NEXT_OUTSIDE_TID: AtomicU64 = AtomicU64::new(OUTSIDE_TID);

/// A thread's buffer is written out when it holds this many bytes.
const FLUSH_AT: usize = 1 << 20;
/// sysmon's tid on its runtime's track group.
const SYSMON_TID: u64 = 0;
/// The first tid given to a thread outside the scheduler.
const OUTSIDE_TID: u64 = 1_000_000;
const HEADER: &str =
    "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"gort\"},\"traceEvents\":[\n";
const TAIL: &str = "\n]}\n";

/// Whether tracing is on: the one branch at every event site.
#[inline(always)]
fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Reads `GORT_TRACE` once per process and opens the file.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Some(path) = std::env::var_os("GORT_TRACE").filter(|p| !p.is_empty()) else {
            return;
        };
        let path = PathBuf::from(path);
        match Sink::create(path.clone()) {
            Ok(sink) => {
                EPOCH.get_or_init(Instant::now);
                *SINK.lock() = Some(sink);
                // SAFETY: `at_exit` is an `extern "C" fn()` that never
                // unwinds; registering it has no other precondition.
                if unsafe { libc::atexit(at_exit) } != 0 {
                    eprintln!(
                        "gort: GORT_TRACE: cannot register the exit hook; the trace is written \
                         when a runtime shuts down"
                    );
                }
                ON.store(true, Ordering::Release);
            }
            Err(e) => eprintln!(
                "gort: GORT_TRACE={}: cannot create the trace file ({e}); tracing is off",
                path.display()
            ),
        }
    });
}

// ---- hooks: one branch each, the work out of line -----------------------

/// This thread is M `m` of runtime `rt`.
#[inline(always)]
pub(crate) fn thread_m(rt: usize, m: usize) {
    if on() {
        register(rt, m as u64);
    }
}

/// This thread is runtime `rt`'s sysmon.
#[inline(always)]
pub(crate) fn thread_sysmon(rt: usize) {
    if on() {
        register(rt, SYSMON_TID);
    }
}

/// This M starts running `g` (which it owns).
#[inline(always)]
pub(crate) fn run_begin(g: GRef) {
    if on() {
        run_begin_slow(g);
    }
}

/// This M's goroutine stopped running (yielded, parked or returned).
#[inline(always)]
pub(crate) fn run_end() {
    if on() {
        run_end_slow();
    }
}

/// The running goroutine `g` parks for `reason` at `at`.
#[inline(always)]
pub(crate) fn park(g: GRef, reason: WaitReason, at: &'static Location<'static>) {
    if on() {
        park_slow(g, reason, at);
    }
}

/// `g` was made runnable (by the goroutine running here, if any).
#[inline(always)]
pub(crate) fn ready(g: GRef) {
    if on() {
        ready_slow(g);
    }
}

/// This M stole `g` (and half a queue) from P `from` into P `to`.
#[inline(always)]
pub(crate) fn steal(rt: usize, from: usize, to: usize, g: *mut g::G) {
    if on() {
        steal_slow(rt, from, to, g);
    }
}

/// P `p` is being placed by `handoffp`.
#[inline(always)]
pub(crate) fn handoff(rt: usize, p: usize) {
    if on() {
        handoff_slow(rt, p);
    }
}

/// sysmon took P `p` from M `m` (in a `blocking` call, or a hog).
#[inline(always)]
pub(crate) fn retake(m: usize, p: usize, hog: bool) {
    if on() {
        sysmon_event(
            "retake",
            m,
            p,
            Some(if hog { "hog" } else { "blocking" }),
            None,
        );
    }
}

/// sysmon ended the 10 ms slice on P `p` of M `m` (goroutine `g`, if any).
#[inline(always)]
pub(crate) fn slice_end(m: usize, p: usize, g: *mut g::G) {
    if on() {
        sysmon_event("slice end", m, p, None, goid(g));
    }
}

/// sysmon asked M `m`'s hog to stop (`preempt.rs`).
#[inline(always)]
pub(crate) fn preempt(m: usize) {
    if on() {
        sysmon_event("preempt", m, usize::MAX, None, None);
    }
}

/// sysmon queued stopped M `m`'s turn and hands on its P `p`.
#[inline(always)]
pub(crate) fn hog_stopped(m: usize, p: usize) {
    if on() {
        sysmon_event("hog stopped", m, p, None, None);
    }
}

/// Writes every thread's buffer out (a runtime shut down).
#[inline(always)]
pub(crate) fn flush() {
    if on() {
        flush_all(false);
    }
}

// ---- the slow paths -------------------------------------------------------

#[cold]
#[inline(never)]
fn register(rt: usize, tid: u64) {
    with_buf(usize::MAX, |b| {
        b.pid = Some(rt);
        b.tid = tid;
        b.name = if tid == SYSMON_TID {
            format!("gort-{rt}-sysmon")
        } else {
            format!("gort-{rt}-m{tid}")
        };
        b.named.clear();
        b.name_track(rt);
        if tid == SYSMON_TID {
            b.meta(rt, 0, "process_name", &format!("gort runtime {rt}"));
        }
    });
}

#[cold]
#[inline(never)]
fn run_begin_slow(g: GRef) {
    // SAFETY: the M about to run `g` owns it, and with it `info`.
    let info = unsafe { &*g.info.get() };
    let (id, name) = (info.id, info.name);
    with_buf(g.sched().id, |b| {
        b.slice.clear();
        let _ = write!(b.slice, "g{id}");
        b.slice_args.clear();
        let _ = write!(b.slice_args, "{{\"g\":{id}");
        if let Some(n) = name {
            b.slice.push(' ');
            escape_into(&mut b.slice, n);
            b.slice_args.push_str(",\"name\":\"");
            escape_into(&mut b.slice_args, n);
            b.slice_args.push('"');
        }
        b.slice_args.push('}');
        b.slice_event("B");
    });
}

#[cold]
#[inline(never)]
fn run_end_slow() {
    // The end repeats the beginning's name and args (speedscope matches
    // them).
    with_buf(usize::MAX, |b| b.slice_event("E"));
}

#[cold]
#[inline(never)]
fn park_slow(g: GRef, reason: WaitReason, at: &'static Location<'static>) {
    let id = g.id.load(Ordering::Relaxed);
    with_buf(g.sched().id, |b| {
        b.instant("park", "park");
        let _ = write!(b.text, ",\"args\":{{\"g\":{id},\"reason\":\"");
        escape_into(&mut b.text, reason.as_str());
        b.text.push_str("\",\"at\":\"");
        escape_into(&mut b.text, at.file());
        let _ = write!(b.text, ":{}:{}\"}}}}", at.line(), at.column());
    });
}

#[cold]
#[inline(never)]
fn ready_slow(g: GRef) {
    let id = g.id.load(Ordering::Relaxed);
    let by = g::current().map(|c| c.id.load(Ordering::Relaxed));
    with_buf(g.sched().id, |b| {
        b.instant("ready", "ready");
        let _ = write!(b.text, ",\"args\":{{\"g\":{id}");
        if let Some(by) = by {
            let _ = write!(b.text, ",\"by\":{by}");
        }
        b.text.push_str("}}");
    });
}

#[cold]
#[inline(never)]
fn steal_slow(rt: usize, from: usize, to: usize, g: *mut g::G) {
    let id = goid(g);
    with_buf(rt, |b| {
        b.instant("steal", "steal");
        let _ = write!(b.text, ",\"args\":{{\"from_p\":{from},\"to_p\":{to}");
        if let Some(id) = id {
            let _ = write!(b.text, ",\"g\":{id}");
        }
        b.text.push_str("}}");
    });
}

#[cold]
#[inline(never)]
fn handoff_slow(rt: usize, p: usize) {
    with_buf(rt, |b| {
        b.instant("handoff", "handoff");
        let _ = write!(b.text, ",\"args\":{{\"p\":{p}}}}}");
    });
}

/// An event on sysmon's track (`p` `usize::MAX`: none).
#[cold]
#[inline(never)]
fn sysmon_event(name: &str, m: usize, p: usize, why: Option<&str>, g: Option<u64>) {
    with_buf(usize::MAX, |b| {
        b.instant(name, "sysmon");
        let _ = write!(b.text, ",\"args\":{{\"m\":{m}");
        if p != usize::MAX {
            let _ = write!(b.text, ",\"p\":{p}");
        }
        if let Some(why) = why {
            let _ = write!(b.text, ",\"why\":\"{why}\"");
        }
        if let Some(g) = g {
            let _ = write!(b.text, ",\"g\":{g}");
        }
        b.text.push_str("}}");
    });
}

/// The id of the goroutine at `g` (null: none). Gs are immortal, so a
/// stale pointer reads some goroutine's id, which is all a trace needs.
fn goid(g: *mut g::G) -> Option<u64> {
    // SAFETY: G structs are never freed (g.rs); `id` is atomic.
    (!g.is_null()).then(|| unsafe { &*g }.id.load(Ordering::Relaxed))
}

// ---- per-thread buffers ---------------------------------------------------

/// A thread's buffer (shared with the registry for the final flush).
#[derive(Default)]
struct Buf {
    inner: Lock<Chunk>,
}

#[derive(Default)]
struct Chunk {
    /// Formatted events, comma-separated.
    text: String,
    events: u64,
    /// The runtime this thread belongs to (an M, a sysmon), if any.
    pid: Option<usize>,
    tid: u64,
    name: String,
    /// The pids this thread's `thread_name` was written under.
    named: Vec<usize>,
    /// The name and args of the run slice open on this thread.
    slice: String,
    slice_args: String,
    /// The pid of the event being written.
    event_pid: usize,
}

impl Chunk {
    /// The pid of an event about runtime `rt` (`usize::MAX`: none in
    /// particular): the thread's own runtime if it has one; names the
    /// track the first time.
    fn pid(&mut self, rt: usize) -> usize {
        let pid = match (self.pid, rt) {
            (Some(own), _) => own,
            (None, usize::MAX) => return 0, // registering: named then
            (None, rt) => rt,
        };
        if !self.named.contains(&pid) {
            self.name_track(pid);
        }
        pid
    }

    fn name_track(&mut self, pid: usize) {
        self.named.push(pid);
        let (tid, name) = (self.tid, std::mem::take(&mut self.name));
        self.meta(pid, tid, "thread_name", &name);
        self.name = name;
    }

    fn meta(&mut self, pid: usize, tid: u64, what: &str, name: &str) {
        self.sep();
        let _ = write!(
            self.text,
            "{{\"ph\":\"M\",\"name\":\"{what}\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\""
        );
        escape_into(&mut self.text, name);
        self.text.push_str("\"}}");
    }

    fn sep(&mut self) {
        if !self.text.is_empty() {
            self.text.push_str(",\n");
        }
        self.events += 1;
    }

    /// The open run slice's beginning (`ph` "B") or end ("E"), now.
    fn slice_event(&mut self, ph: &str) {
        let (ts, pid) = (now_ns(), self.event_pid);
        self.sep();
        let _ = write!(self.text, "{{\"ph\":\"{ph}\",\"cat\":\"run\",\"name\":\"");
        // Both escaped when they were built.
        self.text.push_str(&self.slice);
        let _ = write!(
            self.text,
            "\",\"pid\":{pid},\"tid\":{},\"ts\":{}.{:03},\"args\":{}}}",
            self.tid,
            ts / 1000,
            ts % 1000,
            self.slice_args
        );
    }

    /// Starts an instant named `name` (no quotes or escapes in it).
    fn instant(&mut self, name: &str, cat: &str) {
        let (ts, pid) = (now_ns(), self.event_pid);
        self.sep();
        let _ = write!(
            self.text,
            "{{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"{cat}\",\"name\":\"{name}\",\"pid\":{pid},\
             \"tid\":{},\"ts\":{}.{:03}",
            self.tid,
            ts / 1000,
            ts % 1000
        );
    }
}

/// This thread's buffer; dropping it (the thread ends) writes it out.
struct Local(Arc<Buf>);

impl Drop for Local {
    fn drop(&mut self) {
        write_out(&mut self.0.inner.lock());
        THREADS.lock().retain(|b| !Arc::ptr_eq(b, &self.0));
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's buffer (made on first use), for an event
/// about runtime `rt`; writes the buffer out when it is full.
fn with_buf(rt: usize, f: impl FnOnce(&mut Chunk)) {
    if CLOSED.load(Ordering::Acquire) {
        return;
    }
    // Ignored when the thread is ending (its buffer was written out).
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let buf = &l
            .get_or_insert_with(|| {
                let buf = Arc::new(Buf::default());
                {
                    let mut c = buf.inner.lock();
                    c.tid = NEXT_OUTSIDE_TID.fetch_add(1, Ordering::Relaxed);
                    c.name = std::thread::current().name().unwrap_or("thread").to_owned();
                }
                THREADS.lock().push(buf.clone());
                Local(buf)
            })
            .0;
        let mut c = buf.inner.lock();
        let pid = c.pid(rt);
        c.event_pid = pid;
        f(&mut c);
        if c.text.len() >= FLUSH_AT {
            write_out(&mut c);
        }
    });
}

/// Writes a buffer's events to the file (its lock held: each thread's
/// events reach the file in order).
fn write_out(c: &mut Chunk) {
    if c.text.is_empty() {
        return;
    }
    if let Some(sink) = SINK.lock().as_mut() {
        sink.write(&c.text, c.events);
    }
    c.text.clear();
    c.events = 0;
}

/// Writes out every thread's buffer; `last`: the process is exiting.
#[cold]
fn flush_all(last: bool) {
    let bufs: Vec<Arc<Buf>> = THREADS.lock().clone();
    for b in bufs {
        write_out(&mut b.inner.lock());
    }
    if let Some(sink) = SINK.lock().as_mut() {
        sink.finish(last);
    }
}

extern "C" fn at_exit() {
    if on() && !CLOSED.load(Ordering::Acquire) {
        flush_all(true);
        CLOSED.store(true, Ordering::Release);
    }
}

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Appends `s` to `out` as the inside of a JSON string.
fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

// ---- the file -------------------------------------------------------------

struct Sink {
    file: File,
    path: PathBuf,
    /// A regular file: the tail is rewritten after every write.
    seekable: bool,
    /// Where the tail starts.
    end: u64,
    first: bool,
    tail_written: bool,
    lost: u64,
    reported: u64,
    error: Option<io::Error>,
}

impl Sink {
    fn create(path: PathBuf) -> io::Result<Sink> {
        let mut file = File::create(&path)?;
        let seekable = file.metadata()?.is_file();
        file.write_all(HEADER.as_bytes())?;
        if seekable {
            file.write_all(TAIL.as_bytes())?;
        }
        Ok(Sink {
            file,
            path,
            seekable,
            end: HEADER.len() as u64,
            first: true,
            tail_written: false,
            lost: 0,
            reported: 0,
            error: None,
        })
    }

    /// Appends `text` (`events` events), keeping the file well-formed.
    fn write(&mut self, text: &str, events: u64) {
        if self.tail_written && !self.seekable {
            self.lost += events;
            return;
        }
        let sep = if self.first { "" } else { ",\n" };
        let r = (|| {
            if self.seekable {
                self.file.seek(SeekFrom::Start(self.end))?;
            }
            self.file.write_all(sep.as_bytes())?;
            self.file.write_all(text.as_bytes())?;
            if self.seekable {
                self.file.write_all(TAIL.as_bytes())?;
            }
            Ok::<(), io::Error>(())
        })();
        match r {
            Ok(()) => {
                self.end += (sep.len() + text.len()) as u64;
                self.first = false;
            }
            Err(e) => {
                self.lost += events;
                self.error.get_or_insert(e);
                if self.seekable {
                    // Back to the last complete state.
                    let _ = self.file.set_len(self.end);
                    let _ = self.file.seek(SeekFrom::Start(self.end));
                    let _ = self.file.write_all(TAIL.as_bytes());
                }
            }
        }
    }

    /// A flush point: the tail for an unseekable file at the end, and the
    /// events lost since the last report on stderr.
    fn finish(&mut self, last: bool) {
        if last && !self.seekable && !self.tail_written {
            self.tail_written = true;
            if let Err(e) = self.file.write_all(TAIL.as_bytes()) {
                self.error.get_or_insert(e);
            }
        }
        let _ = self.file.flush();
        if self.lost > self.reported {
            self.reported = self.lost;
            let why = self
                .error
                .as_ref()
                .map_or_else(String::new, |e| format!(" ({e})"));
            eprintln!(
                "gort: GORT_TRACE={}: {} trace events could not be written{why}; the trace is incomplete",
                self.path.display(),
                self.lost
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_json() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001é");
    }
}
