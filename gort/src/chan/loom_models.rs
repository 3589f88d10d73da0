//! loom models of the channels: the real `chan` module (the wait queues and
//! claim of `waker.rs`, `select.rs`'s register/re-check/park, the `zero`
//! and `array` flavours), compiled over the loom shims (`crate::loom`) and
//! the loom-friendly waiter (`runtime/park_loom.rs`: each goroutine is a
//! loom thread, parked by production's `ThreadParker`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release
//! --target-dir target/loom loom` (`.ci/run`). loom reports a deadlock if a
//! waiter can be left parked forever (a lost wake-up), and, since every
//! value carries a loom cell written by its sender and read by its
//! receiver, a causality violation if a hand-off does not order the two.
//!
//! Each model has a `_mutant` twin that switches on a deliberate bug in the
//! real code (`crate::loom::mutant`) and must fail.

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::thread;

use super::__private::{recv_case, recv_slot, run, timeout};
use super::{bounded, Receiver, TrySendError};
use crate::loom::{model, model_bounded, mutant_test, time};

/// A value whose payload the sender writes and the receiver reads: loom
/// checks the hand-off orders the two.
struct Msg(Box<UnsafeCell<u32>>);

fn msg(v: u32) -> Msg {
    let c = Box::new(UnsafeCell::new(0));
    // SAFETY: the cell is new; only this thread knows it.
    c.with_mut(|p| unsafe { *p = v });
    Msg(c)
}

fn read(m: &Msg) -> u32 {
    // SAFETY: loom reports it if the sender's write is not ordered before.
    m.0.with(|p| unsafe { *p })
}

/// A select with a deadline over two rendezvous channels races each
/// channel's sender (a `try_send`: claim the parked entry, fill the slot,
/// wake) and its own deadline (the clock moves; the parker claims itself).
/// Exactly one wins: a send succeeds iff the select returns its case, with
/// its value; otherwise the select times out and both sends fail.
fn select_claim_race() {
    model_bounded(2, || {
        let (tx0, rx0) = bounded::<Msg>(0);
        let (tx1, rx1) = bounded::<Msg>(0);
        let senders: Vec<_> = [(tx0, 10), (tx1, 11)]
            .into_iter()
            .map(|(tx, v)| {
                thread::spawn(move || {
                    let won = match tx.try_send(msg(v)) {
                        Ok(()) => true,
                        Err(TrySendError::Full(_)) => false,
                        Err(TrySendError::Disconnected(_)) => unreachable!(),
                    };
                    // Kept open until joined: a close would wake the select.
                    (won, tx)
                })
            })
            .collect();
        let timer = thread::spawn(|| time::advance(Duration::from_secs(2)));
        let (got, slots) = select2(&rx0, &rx1);
        let won: Vec<bool> = senders.into_iter().map(|h| h.join().unwrap().0).collect();
        timer.join().unwrap();
        match got {
            Some(i) => {
                assert_eq!(won, [i == 0, i == 1], "the selected case's send won alone");
                assert_eq!(slots[i], Some(10 + i as u32));
                assert_eq!(slots[1 - i], None);
            }
            None => {
                assert_eq!(won, [false, false], "timed out: no send went through");
                assert_eq!(slots, [None, None]);
            }
        }
    });
}

/// `select! { recv(rx0) .., recv(rx1) .., default(1s) }` spelled out.
fn select2(rx0: &Receiver<Msg>, rx1: &Receiver<Msg>) -> (Option<usize>, [Option<u32>; 2]) {
    let mut s0 = recv_slot(rx0);
    let mut s1 = recv_slot(rx1);
    let cases = [recv_case(rx0, &mut s0), recv_case(rx1, &mut s1)];
    let r = run(&cases, timeout(Duration::from_secs(1)));
    let got = r.map(|(i, closed)| {
        assert!(!closed);
        i
    });
    (got, [s0.as_ref().map(read), s1.as_ref().map(read)])
}

#[test]
fn loom_select_claim_race() {
    select_claim_race();
}

// Claim as a load then a store: both senders claim the one waiter.
mutant_test!(
    loom_select_claim_race_mutant,
    select_claim_race,
    "claim_load_then_store",
    "the selected case's send won alone"
);

/// A sender and a receiver meet on a rendezvous channel, each polling,
/// registering under the wait lock, re-checking, and parking; the one that
/// finds the other parked claims it and moves the value. The value
/// arrives exactly once and both return.
fn zero_hand_off() {
    model_bounded(3, || {
        let (tx, rx) = bounded::<Msg>(0);
        // Each sender hands its `Sender` back: a close would wake waiters.
        let sender = thread::spawn(move || (tx.send(msg(42)).is_ok(), tx));
        assert_eq!(read(&rx.recv().unwrap()), 42);
        assert!(sender.join().unwrap().0);
    });
}

#[test]
fn loom_zero_hand_off() {
    zero_hand_off();
}

// The re-check under the lock skipped: both register, both sleep.
mutant_test!(
    loom_zero_hand_off_mutant,
    zero_hand_off,
    "select_skip_recheck",
    "deadlock"
);

/// The Dekker pair of the array flavour: a receiver registers, publishes
/// `receivers_waiting` (SeqCst) and re-checks the ring (SeqCst) before it
/// parks; a sender pushes (SeqCst) and then reads the hint (SeqCst) to
/// notify, or hands the value over directly to a parked receiver.
fn array_dekker() {
    model(|| {
        let (tx, rx) = bounded::<Msg>(1);
        let sender = thread::spawn(move || (tx.send(msg(7)).is_ok(), tx));
        assert_eq!(read(&rx.recv().unwrap()), 7);
        assert!(sender.join().unwrap().0);
    });
}

#[test]
fn loom_array_dekker() {
    array_dekker();
}

// The hint published only when the guard drops (after the re-check): the
// sender pushes in between, reads no waiter, and the receiver sleeps.
mutant_test!(
    loom_array_dekker_mutant,
    array_dekker,
    "select_publish_late",
    "deadlock"
);

/// The pass-on rule: capacity 1, full; two senders and a receiver taking
/// three values. A sender woken for the free slot that hands its value
/// straight to the parked receiver instead must pass the wake-up on to the
/// other parked sender.
fn array_pass_on() {
    array_pass_on_bounded(1);
}

fn array_pass_on_bounded(bound: usize) {
    model_bounded(bound, || {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(0).unwrap();
        let senders: Vec<_> = (1..3)
            .map(|v| {
                let tx = tx.clone();
                thread::spawn(move || {
                    tx.send(v).unwrap();
                    tx
                })
            })
            .collect();
        let mut got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
        for s in senders {
            drop(s.join().unwrap());
        }
        drop(tx);
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn loom_array_pass_on() {
    array_pass_on();
}

// Without the pass-on, the receiver and one sender sleep next to an empty
// ring. NOT mutation-checked in CI yet: with a preemption bound of 1 loom
// does not reach that interleaving (the mutant passes), and with 2 neither
// this twin nor the correct model finished within 5 minutes. A cheaper
// set-up (both senders parked before the receiver starts) is the
// follow-up; `--ignored` runs this one on demand.
#[test]
#[ignore = "over 5 minutes (preemption bound 2); see the comment"]
fn loom_array_pass_on_mutant_bound2() {
    crate::loom::mutant_fails(
        "array_no_pass_on",
        "deadlock",
        concat!(module_path!(), "::loom_array_pass_on_mutant_bound2"),
        || array_pass_on_bounded(2),
    );
}
