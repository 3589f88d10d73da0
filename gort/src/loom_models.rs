//! loom models of the scheduler's lock-free parts.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release loom`
//! (`.ci/run` does). Under `cfg(loom)` the crate compiles only the modules
//! `lib.rs` lists, with loom's atomics swapped in (see `loom.rs`); the
//! models of the join packet, the poll descriptor, the group counts, the
//! channels and `sync` sit beside their code.
//!
//! * `runq_*`: the real `RunQueue` (a 4-slot ring under loom) with the
//!   owner pushing and popping while a thief steals: every item is taken
//!   exactly once, through overflow and `runnext` stealing.
//! * the scheduler's protocols (the P window, the idle M's mailbox, the
//!   hog stop, the wake protocol) are modelled beside their real code, in
//!   `runtime/pslot.rs`, `mailbox.rs`, `stop.rs` and `spinning.rs`.

use crate::runtime::runq::RunQueue;
use loom::sync::Arc;
use loom::thread;

fn item(v: usize) -> *mut usize {
    Box::into_raw(Box::new(v))
}

fn take(p: *mut usize) -> usize {
    // SAFETY: every pointer comes from `item` and is taken exactly once
    // (which is what the models check).
    *unsafe { Box::from_raw(p) }
}

#[test]
fn runq_owner_and_thief_take_each_item_once() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new());
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::new();
            let mut got = Vec::new();
            if let Some(p) = v2.steal_into(&mine, true) {
                got.push(take(p));
            }
            while let Some((p, _)) = mine.get() {
                got.push(take(p));
            }
            got
        });
        let mut got = Vec::new();
        let mut spilled = Vec::new();
        for i in 0..3 {
            if let Some(batch) = victim.put(item(i), i == 2) {
                spilled.extend(batch.into_iter().map(take));
            }
        }
        if let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.extend(thief.join().unwrap());
        while let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.extend(spilled);
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

#[test]
fn runq_overflow_races_with_steal() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new());
        for i in 0..4 {
            assert!(victim.put(item(i), false).is_none());
        }
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::new();
            let mut got = Vec::new();
            if let Some(p) = v2.steal_into(&mine, false) {
                got.push(take(p));
            }
            while let Some((p, _)) = mine.get() {
                got.push(take(p));
            }
            got
        });
        // Ring full: this put either overflows half to the "global queue"
        // or finds room that the thief just made.
        let mut got: Vec<usize> = victim
            .put(item(4), false)
            .map(|b| b.into_iter().map(take).collect())
            .unwrap_or_default();
        got.extend(thief.join().unwrap());
        while let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}
