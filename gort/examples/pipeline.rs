//! A Go-style pipeline (the pattern of the Go blog's "Go Concurrency
//! Patterns: Pipelines and cancellation"): a generator goroutine, a fan-out
//! of worker goroutines for a slow stage, a fan-in merge, a second stage, and
//! a sink, all connected by channels. Closing flows downstream: each stage
//! ends its `for v in &input` loop when its input closes, and its output
//! closes when the stage's last sender is dropped.
//!
//! ```text
//! generate(1..=N) -> [square] x WORKERS -> merge -> keep_odd -> sink
//! ```
//!
//! Bounded channels give back-pressure: a fast generator parks when the
//! workers fall behind, so memory stays flat whatever N is.
//!
//! Run with `cargo run --release -p gort --example pipeline`
//! (optionally `-- N WORKERS`; defaults 1000 and 4).

use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, Sender};
use gort::sync::WaitGroup;

/// Stage 0: emits 1..=n, then closes its output (by dropping the sender).
fn generate(n: u64) -> Receiver<u64> {
    let (tx, rx) = chan::bounded(16);
    gort::go(move || {
        for i in 1..=n {
            if tx.send(i).is_err() {
                return; // downstream went away
            }
        }
    });
    rx
}

/// Stage 1: a slow per-item computation, run by several workers reading
/// the same input channel (fan-out).
fn square(worker: usize, input: Receiver<u64>, out: Sender<(usize, u64, u64)>) {
    for v in &input {
        gort::time::sleep(Duration::from_micros(200)); // simulated work
        if out.send((worker, v, v * v)).is_err() {
            return;
        }
    }
}

/// Fan-in: the workers share one output channel; it closes when the last
/// worker's sender is dropped. A WaitGroup reports when all are done.
fn fan_out(input: Receiver<u64>, workers: usize) -> (Receiver<(usize, u64, u64)>, WaitGroup) {
    let (tx, rx) = chan::bounded(16);
    let wg = WaitGroup::new();
    for w in 0..workers {
        let (input, tx) = (input.clone(), tx.clone());
        wg.go(move || square(w, input, tx));
    }
    (rx, wg)
}

/// Stage 2: keeps the odd squares.
fn keep_odd(input: Receiver<(usize, u64, u64)>) -> Receiver<(usize, u64, u64)> {
    let (tx, rx) = chan::bounded(16);
    gort::go(move || {
        for item in input {
            if item.2 % 2 == 1 && tx.send(item).is_err() {
                return;
            }
        }
    });
    rx
}

#[gort::main]
fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let start = Instant::now();

    let numbers = generate(n);
    let (squares, wg) = fan_out(numbers, workers);
    let odd = keep_odd(squares);

    // The sink: ranges over the last channel until the whole pipeline has
    // drained and closed.
    let mut count = 0u64;
    let mut sum = 0u64;
    let mut per_worker = vec![0u64; workers];
    for (worker, v, sq) in &odd {
        assert_eq!(sq, v * v);
        count += 1;
        sum += sq;
        per_worker[worker] += 1;
    }
    wg.wait(); // every worker has returned

    let want_count = n.div_ceil(2);
    let want_sum: u64 = (1..=n).filter(|v| v % 2 == 1).map(|v| v * v).sum();
    println!("{count} odd squares of 1..={n}, sum {sum}");
    println!("items per worker: {per_worker:?}");
    println!(
        "{} ms with {workers} workers (the serial stage would take {} ms)",
        start.elapsed().as_millis(),
        n * 200 / 1000
    );
    assert_eq!((count, sum), (want_count, want_sum));
}
