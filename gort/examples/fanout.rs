//! The "concurrent API calls" pattern: start N requests at once, gather the
//! results over a channel as they arrive, and give up on the rest when a
//! deadline passes — Go's `context.WithTimeout` plus `select`.
//!
//! Each simulated request takes a random-ish latency (a tiny LCG, no rand
//! crate) and honours cancellation: it `select!`s between its work finishing
//! and `ctx.done()`. When the timeout fires, every request still in flight
//! sees `done()` close, stops, and reports `ContextError::DeadlineExceeded`;
//! the program prints which requests finished and which were cancelled.
//!
//! Run with `cargo run --release -p gort --example fanout`
//! (optionally `-- N TIMEOUT_MS SEED`; defaults 20, 100, 1).

use std::time::{Duration, Instant};

use gort::chan;
use gort::context::{background, Context, ContextError};

/// A tiny linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// What a request reports back.
enum Outcome {
    Done {
        id: usize,
        latency: Duration,
        body: String,
    },
    Cancelled {
        id: usize,
        after: Duration,
        why: ContextError,
    },
}

/// A simulated remote call that takes `latency`, unless `ctx` ends first.
fn call_api(ctx: &Context, id: usize, latency: Duration) -> Outcome {
    let start = Instant::now();
    // The "network": a timer channel standing in for the response.
    let response = gort::time::after(latency);
    gort::select! {
        recv(response) -> _ => Outcome::Done {
            id,
            latency,
            body: format!("result #{id}"),
        },
        recv(ctx.done()) -> _ => Outcome::Cancelled {
            id,
            after: start.elapsed(),
            why: ctx.err().expect("done() closed, so err() is set"),
        },
    }
}

#[gort::main]
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let timeout_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);

    let mut rng = Lcg(seed);
    let start = Instant::now();
    // Dropping `_cancel` at the end of main would cancel too; the timeout
    // is what ends the slow requests here.
    let (ctx, _cancel) = background().with_timeout(Duration::from_millis(timeout_ms));
    let (results_tx, results) = chan::bounded::<Outcome>(n);

    for id in 0..n {
        let latency = Duration::from_millis(10 + rng.next() % (2 * timeout_ms));
        let (ctx, tx) = (ctx.clone(), results_tx.clone());
        gort::go(move || {
            let _ = tx.send(call_api(&ctx, id, latency));
        });
    }
    drop(results_tx); // `results` closes when every request has reported

    let mut finished = Vec::new();
    let mut cancelled = Vec::new();
    for outcome in &results {
        match outcome {
            Outcome::Done { id, latency, body } => {
                println!(
                    "request {id:2} finished in {:4} ms: {body}",
                    latency.as_millis()
                );
                finished.push(id);
            }
            Outcome::Cancelled { id, after, why } => {
                println!(
                    "request {id:2} cancelled after {:4} ms: {why}",
                    after.as_millis()
                );
                cancelled.push(id);
            }
        }
    }
    finished.sort_unstable();
    cancelled.sort_unstable();
    println!();
    println!("finished  ({}): {finished:?}", finished.len());
    println!("cancelled ({}): {cancelled:?}", cancelled.len());
    println!(
        "context: {:?} after {} ms (timeout {timeout_ms} ms)",
        ctx.err(),
        start.elapsed().as_millis()
    );
    assert_eq!(
        finished.len() + cancelled.len(),
        n,
        "every request reports once"
    );
}
