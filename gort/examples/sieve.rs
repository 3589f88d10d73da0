//! Go's concurrent prime sieve (the classic from go.dev's tour and
//! test/chan/sieve1.go): a generator goroutine feeds 2, 3, 4, ... into a
//! daisy chain of filter goroutines, one per prime found so far, each
//! connected to the next by an unbuffered channel.
//!
//! ```go
//! func Generate(ch chan<- int) {
//!     for i := 2; ; i++ {
//!         ch <- i
//!     }
//! }
//!
//! func Filter(in <-chan int, out chan<- int, prime int) {
//!     for i := range in {
//!         if i%prime != 0 {
//!             out <- i
//!         }
//!     }
//! }
//!
//! func main() {
//!     ch := make(chan int)
//!     go Generate(ch)
//!     for i := 0; i < 100; i++ {
//!         prime := <-ch
//!         fmt.Println(prime)
//!         ch1 := make(chan int)
//!         go Filter(ch, ch1, prime)
//!         ch = ch1
//!     }
//! }
//! ```
//!
//! Printing N primes takes N + 1 goroutines and every number passes through
//! a chain of rendezvous hand-offs, so this is a stress test of unbuffered
//! channel send/receive and of goroutine switching. Where Go's program just
//! exits, here dropping the last receiver makes each parked sender get its
//! value back as an error, so the whole chain winds down by itself.
//!
//! Run with `cargo run --release -p gort --example sieve -- 1000`
//! (the argument is how many primes to print; the default is 100).

use gort::chan::{self, Receiver, Sender};

/// Sends 2, 3, 4, ... until the receiving end goes away.
fn generate(ch: Sender<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return;
        }
    }
}

/// Copies values from `input` to `out`, removing those divisible by `prime`.
fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in &input {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

#[gort::main]
fn main() {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("usage: sieve [N]   (N: how many primes to print, default 100)");
            std::process::exit(2);
        }),
        None => 100,
    };

    let (tx, mut ch) = chan::bounded(0);
    gort::go(move || generate(tx));
    for _ in 0..n {
        let prime = ch.recv().expect("the generator never stops");
        println!("{prime}");
        let (tx1, ch1) = chan::bounded(0);
        let input = std::mem::replace(&mut ch, ch1);
        gort::go(move || filter(input, tx1, prime));
    }
    eprintln!("{n} primes, {} goroutines alive", gort::num_goroutines());
}
