//! Ports of Go's own channel tests to `gort::chan` and `gort::select!`:
//! test/chan/{sieve1,fifo,nonblock,select,select3,doubleselect}.go and the
//! behaviour tests of src/runtime/chan_test.go, plus tests of the Rust-side
//! contract (values come back inside errors, plain OS threads can talk to
//! goroutines).
//!
//! Where Go panics (send on a closed channel) gort returns the value inside
//! an error; where Go returns a zero value from a closed channel gort returns
//! `Err(RecvError)`; where Go uses a nil channel gort uses `chan::never()` (or
//! leaves the case out of a dynamic `Select`).

mod common;
use common::{rt, watchdog};

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{
    self, Receiver, RecvError, RecvTimeoutError, Select, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use gort::sync::WaitGroup;

/// Go's `testBlock(always, f)`: runs `f` in a goroutine and checks it is still
/// blocked after a while. The goroutine stays parked; the test's runtime
/// cancels it when the test ends.
fn assert_blocks<F: FnOnce() + Send + 'static>(what: &str, f: F) {
    let finished = Arc::new(AtomicBool::new(false));
    let fin = finished.clone();
    gort::go(move || {
        f();
        fin.store(true, Ordering::SeqCst);
    });
    gort::time::sleep(Duration::from_millis(50));
    assert!(!finished.load(Ordering::SeqCst), "{what}: did not block");
}

/// Retries a non-blocking operation until it succeeds (Go's tests sleep a
/// fixed time and then expect success; retrying cannot flake).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..20_000 {
        if let Some(v) = f() {
            return v;
        }
        gort::time::sleep(Duration::from_micros(500));
    }
    panic!("{what}: never succeeded");
}

// ---------------------------------------------------------------------------
// test/chan/sieve1.go

fn generate(ch: Sender<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return; // the filter downstream is gone
        }
    }
}

fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in &input {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

fn sieve(primes: Sender<u64>) {
    let (tx, mut rx) = chan::bounded(0);
    gort::go(move || generate(tx));
    loop {
        let Ok(prime) = rx.recv() else { return };
        if primes.send(prime).is_err() {
            return; // dropping `rx` unwinds the whole chain
        }
        let (tx1, rx1) = chan::bounded(0);
        let input = std::mem::replace(&mut rx, rx1);
        gort::go(move || filter(input, tx1, prime));
    }
}

#[gort::test]
fn sieve1_concurrent_prime_sieve() {
    let _w = watchdog("sieve1");
    let base = gort::num_goroutines();
    let (tx, primes) = chan::bounded(0);
    gort::go(move || sieve(tx));
    let a = [
        2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
        89, 97,
    ];
    for &want in &a {
        assert_eq!(primes.recv(), Ok(want));
    }
    // Dropping the last receiver makes every parked sender of the chain get
    // its value back as an error, so the whole chain exits.
    drop(primes);
    let deadline = Instant::now() + Duration::from_secs(20);
    while gort::num_goroutines() > base && Instant::now() < deadline {
        gort::time::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        gort::num_goroutines(),
        base,
        "sieve goroutines did not all exit after the consumer went away"
    );
}

// ---------------------------------------------------------------------------
// test/chan/fifo.go

#[gort::test]
fn fifo_asynchronous() {
    const N: i32 = 10;
    let (tx, rx) = chan::bounded(N as usize);
    for i in 0..N {
        tx.send(i).unwrap();
    }
    for i in 0..N {
        assert_eq!(rx.recv(), Ok(i), "bad receive");
    }
}

#[gort::test]
fn fifo_synchronous_daisy_chain() {
    // Each Chain goroutine waits for its predecessor, then receives one value
    // from the shared unbuffered channel: values must arrive in send order.
    let _w = watchdog("fifo daisy chain");
    const N: i32 = 10;
    let (ch_tx, ch_rx) = chan::bounded::<i32>(0);
    let (start, mut input) = chan::bounded::<i32>(0);
    let mut chains = Vec::new();
    for i in 0..N {
        let (out_tx, out_rx) = chan::bounded::<i32>(0);
        let ch = ch_rx.clone();
        let inp = std::mem::replace(&mut input, out_rx);
        chains.push(gort::go(move || {
            inp.recv().unwrap();
            let got = ch.recv().unwrap();
            out_tx.send(1).unwrap();
            (i, got)
        }));
    }
    start.send(0).unwrap();
    for i in 0..N {
        ch_tx.send(i).unwrap();
    }
    assert_eq!(input.recv(), Ok(1));
    for h in chains {
        let (val, got) = h.join().unwrap();
        assert_eq!(got, val, "chain {val} received {got}");
    }
}

// ---------------------------------------------------------------------------
// test/chan/nonblock.go

fn nonblock_case<T>(buffer: usize, to_recv: T, to_send: T)
where
    T: Clone + PartialEq + Debug + Send + 'static,
{
    let (strobe_tx, strobe_rx) = chan::bounded::<T>(0);
    let (tx, rx) = chan::bounded::<T>(buffer);

    // A non-blocking receive on an empty channel does not block.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    // receiver goroutine, then a non-blocking send that must get through.
    {
        let (rx, strobe) = (rx.clone(), strobe_tx.clone());
        gort::go(move || strobe.send(rx.recv().unwrap()).unwrap());
    }
    if buffer > 0 {
        tx.try_send(to_recv.clone()).unwrap();
    } else {
        eventually("try_send to a waiting receiver", || {
            match tx.try_send(to_recv.clone()) {
                Ok(()) => Some(()),
                Err(TrySendError::Full(v)) => {
                    assert_eq!(v, to_recv, "the value comes back in Full");
                    None
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        });
    }
    assert_eq!(strobe_rx.recv(), Ok(to_recv.clone()));

    // sender goroutine, then a non-blocking receive that must get its value.
    {
        let (tx, strobe) = (tx.clone(), strobe_tx.clone());
        let v = to_send.clone();
        gort::go(move || {
            tx.send(v.clone()).unwrap();
            strobe.send(v).unwrap();
        });
    }
    if buffer > 0 {
        assert_eq!(strobe_rx.recv(), Ok(to_send.clone()));
        assert_eq!(rx.try_recv(), Ok(to_send.clone()));
    } else {
        let got = eventually("try_recv from a waiting sender", || rx.try_recv().ok());
        assert_eq!(got, to_send);
        assert_eq!(strobe_rx.recv(), Ok(to_send));
    }
}

#[gort::test]
fn nonblock_send_and_receive_of_several_types() {
    let _w = watchdog("nonblock");
    for buffer in 0..2 {
        nonblock_case::<i32>(buffer, 123, 234);
        nonblock_case::<i64>(buffer, 123456, 234567);
        nonblock_case::<bool>(buffer, true, true);
        nonblock_case::<String>(buffer, "hello".into(), "hello again".into());
    }
}

// ---------------------------------------------------------------------------
// test/chan/select.go: a non-blocking select over send cases whose
// channels become "nil" (left out) once used.

fn send_until_blocked(
    mut a: Option<&Sender<u32>>,
    mut b: Option<&Sender<u32>>,
    shift: &mut u32,
    counter: &mut u32,
) -> u32 {
    let mut i = 0;
    loop {
        let mut sel = Select::new();
        let ia = a.map(|s| sel.send(s));
        let ib = b.map(|s| sel.send(s));
        let Ok(oper) = sel.try_select() else { break };
        let idx = oper.index();
        *counter += 1;
        let value = 1 << *shift;
        if Some(idx) == ia {
            oper.send(a.unwrap(), value).unwrap();
            a = None;
        } else if Some(idx) == ib {
            oper.send(b.unwrap(), value).unwrap();
            b = None;
        } else {
            panic!("select returned an index it never handed out: {idx}");
        }
        i += 1;
        *shift += 1;
    }
    i
}

#[gort::test]
fn select_nonblocking_sends_with_nil_cases() {
    let (a_tx, a_rx) = chan::bounded::<u32>(1);
    let (b_tx, b_rx) = chan::bounded::<u32>(1);
    let (mut shift, mut counter) = (0, 0);
    assert_eq!(
        send_until_blocked(Some(&a_tx), Some(&b_tx), &mut shift, &mut counter),
        2
    );
    let (av, bv) = (a_rx.recv().unwrap(), b_rx.recv().unwrap());
    assert_eq!(av | bv, 3, "bad values {av} {bv}");
    assert_eq!(
        send_until_blocked(Some(&a_tx), None, &mut shift, &mut counter),
        1
    );
    assert_eq!(a_rx.try_recv(), Ok(4));
    assert_eq!(counter, 3);
}

// ---------------------------------------------------------------------------
// test/chan/select3.go

// Like Go's select3.go, the probes that must block are left blocked.
#[gort::test(leaks = "allow")]
fn select3_blocking_semantics_of_nil_closed_and_empty_channels() {
    let _w = watchdog("select3");
    let nilch: Receiver<i32> = chan::never();
    let (closed_tx, closed_rx) = chan::bounded::<i32>(0);
    assert!(closed_tx.close());

    // receiving from a nil channel blocks
    let n = nilch.clone();
    assert_blocks("recv from never()", move || {
        let _ = n.recv();
    });

    // a nil channel inside a select is never selected
    let r = gort::select! {
        recv(nilch) -> _ => "nil",
        default => "default",
    };
    assert_eq!(r, "default");

    // sending to an async channel with free buffer space never blocks
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(7).unwrap();
    assert_eq!(rx.len(), 1);

    // receiving from a closed channel never blocks
    for _ in 0..10 {
        assert_eq!(closed_rx.recv(), Err(RecvError));
        assert_eq!(closed_rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    // sending to a closed channel returns the value (Go panics)
    assert_eq!(closed_tx.send(7), Err(SendError(7)));
    assert_eq!(closed_tx.try_send(8), Err(TrySendError::Disconnected(8)));
    assert_eq!(
        closed_tx.send_timeout(9, Duration::from_millis(1)),
        Err(SendTimeoutError::Disconnected(9))
    );

    // receiving from a non-ready channel always blocks
    let (keep_tx, empty_rx) = chan::bounded::<i32>(0);
    let e = empty_rx.clone();
    assert_blocks("recv from an empty channel", move || {
        let _ = e.recv();
    });

    // selects with only nil channels always block
    let n = nilch.clone();
    assert_blocks("select over never()", move || {
        gort::select! {
            recv(n) -> _ => panic!("never() was selected"),
        }
    });

    // selects with non-ready non-nil channels always block
    let e = empty_rx.clone();
    assert_blocks("select over an empty channel", move || {
        gort::select! {
            recv(e) -> _ => panic!("an empty channel was selected"),
        }
    });

    // selects with default cases don't block
    let r = gort::select! {
        default => 1,
    };
    assert_eq!(r, 1);
    let r = gort::select! {
        recv(empty_rx) -> _ => 0,
        default => 2,
    };
    assert_eq!(r, 2);

    // selects with ready channels don't block
    let (tx, rx) = chan::bounded::<i32>(1);
    let r = gort::select! {
        send(tx, 7) -> res => res,
        default => panic!("a send with buffer space was not selected"),
    };
    assert_eq!(r, Ok(()));
    let r = gort::select! {
        recv(rx) -> v => v,
        default => panic!("a ready receive was not selected"),
    };
    assert_eq!(r, Ok(7));

    // selects with closed channels behave like ordinary operations
    let r = gort::select! {
        recv(closed_rx) -> v => v,
    };
    assert_eq!(r, Err(RecvError));
    let r = gort::select! {
        send(closed_tx, 7) -> res => res,
    };
    assert_eq!(
        r,
        Err(SendError(7)),
        "the value comes back from a closed send case"
    );

    // select should not get confused if it sees itself
    let (tx, rx) = chan::bounded::<i32>(0);
    let (tx2, rx2) = (tx.clone(), rx.clone());
    assert_blocks("select sending to and receiving from itself", move || {
        gort::select! {
            send(tx2, 1) -> _ => panic!("sent to itself"),
            recv(rx2) -> _ => panic!("received from itself"),
        }
    });
    drop((keep_tx, tx, rx));
}

// ---------------------------------------------------------------------------
// test/chan/doubleselect.go

#[gort::test(procs = 2)]
fn doubleselect_no_value_is_sent_twice() {
    let _w = watchdog("doubleselect");
    const N: i32 = 20_000;
    let (c1, r1) = chan::bounded::<i32>(0);
    let (c2, r2) = chan::bounded::<i32>(0);
    let (c3, r3) = chan::bounded::<i32>(0);
    let (c4, r4) = chan::bounded::<i32>(0);
    let (mux_tx, mux_rx) = chan::bounded::<i32>(0);
    gort::go(move || {
        for i in 0..N {
            gort::select! {
                send(c1, i) -> r => r.unwrap(),
                send(c2, i) -> r => r.unwrap(),
                send(c3, i) -> r => r.unwrap(),
                send(c4, i) -> r => r.unwrap(),
            }
        }
        // dropping c1..c4 closes them
    });
    for input in [r1, r2, r3, r4] {
        let out = mux_tx.clone();
        gort::go(move || {
            for v in input {
                out.send(v).unwrap();
            }
        });
    }
    drop(mux_tx);
    let mut seen = HashSet::new();
    for v in &mux_rx {
        assert!(seen.insert(v), "got duplicate value: {v}");
    }
    assert_eq!(seen.len(), N as usize);
}

// ---------------------------------------------------------------------------
// runtime/chan_test.go: TestChan

fn test_chan_with_capacity(cap: usize) {
    {
        // Ensure that receive from empty chan blocks.
        let (tx, rx) = chan::bounded::<i32>(cap);
        let recv1 = Arc::new(AtomicBool::new(false));
        let recv2 = Arc::new(AtomicBool::new(false));
        let (r1, rx1) = (recv1.clone(), rx.clone());
        let h1 = gort::go(move || {
            let v = rx1.recv();
            r1.store(true, Ordering::SeqCst);
            v
        });
        let (r2, rx2) = (recv2.clone(), rx.clone());
        let h2 = gort::go(move || {
            let v = rx2.recv();
            r2.store(true, Ordering::SeqCst);
            v
        });
        gort::time::sleep(Duration::from_millis(1));
        assert!(
            !recv1.load(Ordering::SeqCst) && !recv2.load(Ordering::SeqCst),
            "chan[{cap}]: receive from empty chan"
        );
        // Ensure that non-blocking receive does not block.
        gort::select! {
            recv(rx) -> _ => panic!("chan[{cap}]: receive from empty chan"),
            default => {}
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(0).unwrap();
        tx.send(0).unwrap();
        assert_eq!(h1.join().unwrap(), Ok(0));
        assert_eq!(h2.join().unwrap(), Ok(0));
        assert!(recv1.load(Ordering::SeqCst) && recv2.load(Ordering::SeqCst));
    }

    {
        // Ensure that send to full chan blocks.
        let (tx, rx) = chan::bounded::<i32>(cap);
        for i in 0..cap as i32 {
            tx.send(i).unwrap();
        }
        let sent = Arc::new(AtomicBool::new(false));
        let (s, tx1) = (sent.clone(), tx.clone());
        let h = gort::go(move || {
            tx1.send(0).unwrap();
            s.store(true, Ordering::SeqCst);
        });
        gort::time::sleep(Duration::from_millis(1));
        assert!(
            !sent.load(Ordering::SeqCst),
            "chan[{cap}]: send to full chan"
        );
        // Ensure that non-blocking send does not block.
        gort::select! {
            send(tx, 0) -> _ => panic!("chan[{cap}]: send to full chan"),
            default => {}
        }
        assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
        rx.recv().unwrap();
        h.join().unwrap();
        assert!(sent.load(Ordering::SeqCst));
    }

    {
        // Ensure that we receive the buffered values, then "closed", from a
        // closed chan.
        let (tx, rx) = chan::bounded::<i32>(cap);
        for i in 0..cap as i32 {
            tx.send(i).unwrap();
        }
        assert!(tx.close());
        for i in 0..cap as i32 {
            assert_eq!(rx.recv(), Ok(i), "chan[{cap}]");
        }
        assert_eq!(rx.recv(), Err(RecvError), "chan[{cap}]");
        assert_eq!(rx.recv(), Err(RecvError), "chan[{cap}]");
    }

    {
        // Ensure that close unblocks receive.
        let (tx, rx) = chan::bounded::<i32>(cap);
        let (done_tx, done_rx) = chan::bounded::<bool>(0);
        gort::go(move || {
            let v = rx.recv();
            done_tx.send(v == Err(RecvError)).unwrap();
        });
        gort::time::sleep(Duration::from_millis(1));
        assert!(tx.close());
        assert_eq!(
            done_rx.recv(),
            Ok(true),
            "chan[{cap}]: close did not unblock"
        );
    }

    {
        // Send 100 integers, ensure that we receive them non-corrupted in
        // FIFO order.
        let (tx, rx) = chan::bounded::<i32>(cap);
        for _round in 0..2 {
            let tx1 = tx.clone();
            gort::go(move || {
                for i in 0..100 {
                    tx1.send(i).unwrap();
                }
            });
            for i in 0..100 {
                assert_eq!(rx.recv(), Ok(i), "chan[{cap}]");
            }
        }

        // Send 1000 integers in 4 goroutines, ensure that we receive what we
        // send.
        const P: usize = 4;
        const L: i32 = 1000;
        for _ in 0..P {
            let tx1 = tx.clone();
            gort::go(move || {
                for i in 0..L {
                    tx1.send(i).unwrap();
                }
            });
        }
        let (done_tx, done_rx) = chan::bounded::<HashMap<i32, usize>>(0);
        for _ in 0..P {
            let (rx1, done) = (rx.clone(), done_tx.clone());
            gort::go(move || {
                let mut recv = HashMap::new();
                for _ in 0..L {
                    *recv.entry(rx1.recv().unwrap()).or_insert(0) += 1;
                }
                done.send(recv).unwrap();
            });
        }
        let mut recv = HashMap::new();
        for _ in 0..P {
            for (k, v) in done_rx.recv().unwrap() {
                *recv.entry(k).or_insert(0) += v;
            }
        }
        assert_eq!(recv.len(), L as usize, "chan[{cap}]: distinct values");
        assert!(recv.values().all(|&v| v == P), "chan[{cap}]: counts");
    }

    {
        // Test len/cap.
        let (tx, rx) = chan::bounded::<i32>(cap);
        assert_eq!((tx.len(), rx.len()), (0, 0));
        assert_eq!(tx.capacity(), Some(cap));
        assert_eq!(rx.capacity(), Some(cap));
        assert!(tx.is_empty() && rx.is_empty());
        for i in 0..cap as i32 {
            tx.send(i).unwrap();
        }
        assert_eq!((tx.len(), rx.len()), (cap, cap), "chan[{cap}]: len");
        assert_eq!(rx.is_empty(), cap == 0);
        assert_eq!(tx.capacity(), Some(cap));
    }
}

#[gort::test(procs = 4)]
fn test_chan_every_capacity_from_0_to_199() {
    let _w = watchdog("TestChan");
    for cap in 0..200 {
        test_chan_with_capacity(cap);
    }
}

#[gort::test]
fn unbounded_channel_len_cap_order_and_close() {
    let (tx, rx) = chan::unbounded::<usize>();
    assert_eq!(tx.capacity(), None);
    assert_eq!(rx.capacity(), None);
    for i in 0..10_000 {
        tx.try_send(i).unwrap(); // never Full
    }
    assert_eq!(rx.len(), 10_000);
    assert!(tx.close());
    assert!(!tx.close(), "close reports true only the first time");
    assert!(!rx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(
        rx.iter().collect::<Vec<_>>(),
        (0..10_000).collect::<Vec<_>>()
    );
    assert_eq!(rx.recv(), Err(RecvError));
}

// ---------------------------------------------------------------------------
// runtime/chan_test.go: the other behaviour tests

#[gort::test(procs = 4)]
fn nonblock_recv_race() {
    let _w = watchdog("TestNonblockRecvRace");
    let mut hs = Vec::new();
    for _ in 0..5_000 {
        let (tx, rx) = chan::bounded::<i32>(1);
        tx.send(1).unwrap();
        let rx1 = rx.clone();
        hs.push(gort::go(move || {
            gort::select! {
                recv(rx1) -> _ => true,
                default => false,
            }
        }));
        assert!(tx.close());
        let _ = rx.recv();
        if hs.len() >= 64 {
            for h in hs.drain(..) {
                assert!(h.join().unwrap(), "chan is not ready");
            }
        }
    }
    for h in hs {
        assert!(h.join().unwrap(), "chan is not ready");
    }
}

/// TestNonblockSelectRace (`close_c2 == false`) and TestNonblockSelectRace2:
/// from the moment the goroutine is created one of c1, c2 is always ready,
/// so its non-blocking select must never take the default case.
fn check_nonblock_select_race(close_c2: bool) {
    let (done_tx, done_rx) = chan::bounded::<bool>(1);
    for _ in 0..10_000 {
        let (c1_tx, c1_rx) = chan::bounded::<i32>(1);
        let (c2_tx, c2_rx) = chan::bounded::<i32>(if close_c2 { 0 } else { 1 });
        c1_tx.send(1).unwrap();
        let (c1, c2, done) = (c1_rx.clone(), c2_rx.clone(), done_tx.clone());
        gort::go(move || {
            let ready = gort::select! {
                recv(c1) -> _ => true,
                recv(c2) -> _ => true,
                default => false,
            };
            done.send(ready).unwrap();
        });
        if close_c2 {
            assert!(c2_tx.close());
        } else {
            c2_tx.send(1).unwrap();
        }
        gort::select! {
            recv(c1_rx) -> _ => {},
            default => {},
        }
        assert_eq!(done_rx.recv(), Ok(true), "no chan is ready");
    }
}

#[gort::test(procs = 4)]
fn nonblock_select_race() {
    let _w = watchdog("TestNonblockSelectRace");
    check_nonblock_select_race(false);
}

#[gort::test(procs = 4)]
fn nonblock_select_race2() {
    let _w = watchdog("TestNonblockSelectRace2");
    check_nonblock_select_race(true);
}

#[gort::test(procs = 2)]
fn self_select_never_receives_its_own_send() {
    let _w = watchdog("TestSelfSelect");
    for cap in [0usize, 10] {
        let wg = WaitGroup::new();
        let (tx, rx) = chan::bounded::<usize>(cap);
        let self_received = Arc::new(AtomicUsize::new(0));
        for p in 0..2usize {
            let (tx, rx, bad) = (tx.clone(), rx.clone(), self_received.clone());
            wg.go(move || {
                for i in 0..1000 {
                    let got = if p == 0 || i % 2 == 0 {
                        gort::select! {
                            send(tx, p) -> r => { r.unwrap(); None },
                            recv(rx) -> v => Some(v.unwrap()),
                        }
                    } else {
                        gort::select! {
                            recv(rx) -> v => Some(v.unwrap()),
                            send(tx, p) -> r => { r.unwrap(); None },
                        }
                    };
                    if cap == 0 && got == Some(p) {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        wg.wait();
        assert_eq!(self_received.load(Ordering::SeqCst), 0, "self receive");
    }
}

#[gort::test(procs = 4)]
fn select_stress_does_not_deadlock() {
    let _w = watchdog("TestSelectStress");
    const N: usize = 10_000;
    let chans: Vec<(Sender<i32>, Receiver<i32>)> = vec![
        chan::bounded(0),
        chan::bounded(0),
        chan::bounded(2),
        chan::bounded(3),
    ];
    let wg = WaitGroup::new();
    for (tx, rx) in &chans {
        let tx = tx.clone();
        wg.go(move || {
            for _ in 0..N {
                tx.send(0).unwrap();
            }
        });
        let rx = rx.clone();
        wg.go(move || {
            for _ in 0..N {
                rx.recv().unwrap();
            }
        });
    }
    // One goroutine sends N values on each channel in a single dynamic
    // select, dropping a case once its channel has had N.
    let txs: Vec<Sender<i32>> = chans.iter().map(|(t, _)| t.clone()).collect();
    let sent = wg.go(move || {
        let mut n = [0usize; 4];
        for _ in 0..4 * N {
            let mut sel = Select::new();
            let mut which = Vec::new();
            for k in [3, 2, 0, 1] {
                if n[k] < N {
                    which.push((sel.send(&txs[k]), k));
                }
            }
            let oper = sel.select();
            let idx = oper.index();
            let k = which.iter().find(|&&(i, _)| i == idx).unwrap().1;
            oper.send(&txs[k], 0).unwrap();
            n[k] += 1;
        }
        n
    });
    // One goroutine receives N values from each channel in a single select!,
    // replacing a channel by never() once it has had N.
    let rxs: Vec<Receiver<i32>> = chans.iter().map(|(_, r)| r.clone()).collect();
    let received = wg.go(move || {
        let never = chan::never::<i32>();
        let mut n = [0usize; 4];
        for _ in 0..4 * N {
            let pick = |k: usize| if n[k] < N { &rxs[k] } else { &never };
            let (r0, r1, r2, r3) = (pick(0), pick(1), pick(2), pick(3));
            let k = gort::select! {
                recv(r0) -> v => { v.unwrap(); 0 },
                recv(r1) -> v => { v.unwrap(); 1 },
                recv(r2) -> v => { v.unwrap(); 2 },
                recv(r3) -> v => { v.unwrap(); 3 },
            };
            n[k] += 1;
        }
        n
    });
    wg.wait();
    assert_eq!(sent.join().unwrap(), [N; 4]);
    assert_eq!(received.join().unwrap(), [N; 4]);
    drop(chans);
}

#[gort::test]
fn select_fairness() {
    // Two always-ready channels among four cases (the other two never
    // ready): Go requires the choice to be within 10 sigma of 50/50. A
    // "random start, then scan" selection would give 75/25 here and fail.
    let _w = watchdog("TestSelectFairness");
    const TRIALS: usize = 10_000;
    let (c1_tx, c1) = chan::bounded::<u8>(TRIALS + 1);
    let (c2_tx, c2) = chan::bounded::<u8>(TRIALS + 1);
    for _ in 0..TRIALS + 1 {
        c1_tx.send(1).unwrap();
        c2_tx.send(2).unwrap();
    }
    let (_c3_tx, c3) = chan::bounded::<u8>(0);
    let (_c4_tx, c4) = chan::bounded::<u8>(0);
    let (out_tx, out) = chan::bounded::<u8>(0);
    let (done_tx, done) = chan::bounded::<u8>(0);
    let wg = WaitGroup::new();
    wg.go(move || loop {
        let b = gort::select! {
            recv(c3) -> b => b.unwrap(),
            recv(c4) -> b => b.unwrap(),
            recv(c1) -> b => b.unwrap(),
            recv(c2) -> b => b.unwrap(),
        };
        gort::select! {
            send(out_tx, b) -> r => r.unwrap(),
            recv(done) -> _ => return,
        }
    });
    let (mut cnt1, mut cnt2) = (0usize, 0usize);
    for _ in 0..TRIALS {
        match out.recv().unwrap() {
            1 => cnt1 += 1,
            2 => cnt2 += 1,
            b => panic!("unexpected value {b} on channel"),
        }
    }
    // 10 sigma: sigma = sqrt(TRIALS / 4) = 50.
    let r = TRIALS as f64 / 2.0;
    let sigma = (TRIALS as f64 / 4.0).sqrt();
    assert!(
        (cnt1 as f64 - r).abs() <= 10.0 * sigma && (cnt2 as f64 - r).abs() <= 10.0 * sigma,
        "unfair select: in {TRIALS} trials, results were {cnt1}, {cnt2}"
    );
    drop(done_tx);
    wg.wait();
}

#[gort::test]
fn dynamic_select_is_fair_among_ready_operations() {
    const TRIALS: usize = 9_000;
    let chans: Vec<_> = (0..3).map(|_| chan::bounded::<usize>(1)).collect();
    let (_idle_tx, idle_rx) = chan::bounded::<usize>(0);
    for (k, (tx, _)) in chans.iter().enumerate() {
        tx.send(k).unwrap();
    }
    let mut counts = [0usize; 3];
    for _ in 0..TRIALS {
        let mut sel = Select::new();
        let idle = sel.recv(&idle_rx);
        let idx: Vec<usize> = chans.iter().map(|(_, rx)| sel.recv(rx)).collect();
        let oper = sel.select();
        assert_ne!(oper.index(), idle, "a never-ready case was selected");
        let k = idx.iter().position(|&i| i == oper.index()).unwrap();
        let v = oper.recv(&chans[k].1).unwrap();
        assert_eq!(v, k, "the selected operation received from its own channel");
        counts[k] += 1;
        chans[k].0.send(k).unwrap(); // refill
    }
    // 10 sigma of a binomial(9000, 1/3): sigma ~ 44.7.
    let mean = TRIALS as f64 / 3.0;
    let sigma = (TRIALS as f64 * (1.0 / 3.0) * (2.0 / 3.0)).sqrt();
    for c in counts {
        assert!(
            (c as f64 - mean).abs() <= 10.0 * sigma,
            "unfair dynamic select: {counts:?}"
        );
    }
}

#[gort::test]
fn chan_send_interface_values() {
    // TestChanSendInterface: trait-object values through a full channel.
    struct Mt;
    let (tx, rx) = chan::bounded::<Box<dyn Any + Send>>(1);
    tx.send(Box::new(Mt)).unwrap();
    let r = gort::select! {
        send(tx, Box::new(Mt) as Box<dyn Any + Send>) -> _ => "sent",
        default => "default",
    };
    assert_eq!(r, "default");
    let r = gort::select! {
        send(tx, Box::new(Mt) as Box<dyn Any + Send>) -> _ => "sent 1",
        send(tx, Box::new(7u32) as Box<dyn Any + Send>) -> _ => "sent 2",
        default => "default",
    };
    assert_eq!(r, "default");
    match tx.try_send(Box::new(42u32)) {
        Err(TrySendError::Full(v)) => assert_eq!(v.downcast_ref::<u32>(), Some(&42)),
        other => panic!(
            "expected Full with the value inside, got {:?}",
            other.is_ok()
        ),
    }
    assert!(rx.recv().unwrap().is::<Mt>());
    assert!(rx.is_empty());
}

#[gort::test]
fn pseudo_random_send() {
    let _w = watchdog("TestPseudoRandomSend");
    const N: usize = 100;
    for cap in [0, N] {
        let (tx, rx) = chan::bounded::<usize>(cap);
        let h = gort::go(move || {
            let mut l = Vec::with_capacity(N);
            for _ in 0..N {
                gort::yield_now();
                l.push(rx.recv().unwrap());
            }
            l
        });
        for _ in 0..N {
            gort::select! {
                send(tx, 1) -> r => r.unwrap(),
                send(tx, 0) -> r => r.unwrap(),
            }
        }
        let l = h.join().unwrap();
        let n1: usize = l.iter().sum();
        let n0 = N - n1;
        assert!(
            n0 > N / 10 && n1 > N / 10,
            "want pseudorandom, got {n0} zeros and {n1} ones (chan cap {cap})"
        );
    }
}

#[gort::test]
fn multi_consumer() {
    let _w = watchdog("TestMultiConsumer");
    const NWORK: usize = 23;
    const NITER: usize = 271_828;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    let (q_tx, q_rx) = chan::bounded::<usize>(NWORK * 3);
    let (r_tx, r_rx) = chan::bounded::<usize>(NWORK * 3);
    let wg = WaitGroup::new();
    for w in 0..NWORK {
        let (q, r) = (q_rx.clone(), r_tx.clone());
        wg.go(move || {
            for v in &q {
                // mess with the fifo-ish nature of range
                if PN[w % PN.len()] == v {
                    gort::yield_now();
                }
                r.send(v).unwrap();
            }
        });
    }
    drop(q_rx);
    let feeder = gort::go(move || {
        let mut expect = 0;
        for i in 0..NITER {
            let v = PN[i % PN.len()];
            expect += v;
            q_tx.send(v).unwrap();
        }
        assert!(q_tx.close()); // no more work
        wg.wait(); // workers done
        assert!(r_tx.close()); // ... so there can be no more results
        expect
    });
    let (mut n, mut s) = (0, 0);
    for v in r_rx {
        n += 1;
        s += v;
    }
    let expect = feeder.join().unwrap();
    assert_eq!((n, s), (NITER, expect));
}

#[gort::test]
fn select_duplicate_channel() {
    // A goroutine can be queued on the same channel twice by one select;
    // waking it through another case must leave the channel's queue intact.
    let _w = watchdog("TestSelectDuplicateChannel");
    let (c_tx, c) = chan::bounded::<i32>(0);
    let (d_tx, d) = chan::bounded::<i32>(0);
    let (e_tx, e) = chan::bounded::<i32>(0);
    let (c1, c2) = (c.clone(), c.clone());
    let a = gort::go(move || {
        let got = gort::select! {
            recv(c1) -> v => ("c", v),
            recv(c2) -> v => ("c", v),
            recv(d) -> v => ("d", v),
        };
        e_tx.send(9).unwrap();
        got
    });
    gort::time::sleep(Duration::from_millis(1)); // A queues first on c
    let b = gort::go(move || c.recv());
    gort::time::sleep(Duration::from_millis(1)); // then B
    d_tx.send(7).unwrap(); // wakes A, which dequeues itself from c
    assert_eq!(e.recv(), Ok(9));
    c_tx.send(8).unwrap(); // must wake B
    assert_eq!(b.join().unwrap(), Ok(8));
    assert_eq!(a.join().unwrap(), ("d", Ok(7)));
}

// ---------------------------------------------------------------------------
// The Rust-side contract: values come back, closing, timeouts, iterators.

#[gort::test]
fn a_sender_parked_on_a_channel_gets_its_value_back_when_it_closes() {
    let _w = watchdog("parked sender, close");
    for cap in [0usize, 1] {
        let (tx, rx) = chan::bounded::<String>(cap);
        if cap == 1 {
            tx.send("buffered".into()).unwrap();
        }
        let tx1 = tx.clone();
        let h = gort::go(move || tx1.send("parked".to_string()));
        gort::time::sleep(Duration::from_millis(10));
        assert!(!h.is_finished(), "cap {cap}: send did not block");
        assert!(rx.close());
        assert_eq!(h.join().unwrap(), Err(SendError("parked".to_string())));
        if cap == 1 {
            // the buffered value is still delivered after close
            assert_eq!(rx.recv().as_deref(), Ok("buffered"));
        }
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

#[gort::test]
fn a_sender_parked_on_a_channel_gets_its_value_back_when_receivers_drop() {
    let _w = watchdog("parked sender, receivers dropped");
    for cap in [0usize, 1] {
        let (tx, rx) = chan::bounded::<u64>(cap);
        if cap == 1 {
            tx.send(1).unwrap();
        }
        let h = gort::go(move || tx.send(77));
        gort::time::sleep(Duration::from_millis(10));
        let rx2 = rx.clone();
        drop(rx);
        assert!(!h.is_finished(), "one receiver is still alive");
        drop(rx2);
        assert_eq!(h.join().unwrap(), Err(SendError(77)));
    }
}

#[gort::test]
fn dropping_the_last_sender_closes_after_the_buffer_drains() {
    let (tx, rx) = chan::bounded::<i32>(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "a sender is still alive");
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError));
    // and a receiver parked before the last sender drops is woken
    let (tx, rx) = chan::bounded::<i32>(0);
    let h = gort::go(move || rx.recv());
    gort::time::sleep(Duration::from_millis(5));
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));
}

#[gort::test]
fn sends_without_receivers_return_the_value() {
    let (tx, rx) = chan::bounded::<Vec<u8>>(8);
    drop(rx);
    assert_eq!(tx.send(vec![1]), Err(SendError(vec![1])));
    assert_eq!(
        tx.try_send(vec![2]),
        Err(TrySendError::Disconnected(vec![2]))
    );
    assert_eq!(
        tx.send_timeout(vec![3], Duration::from_millis(1)),
        Err(SendTimeoutError::Disconnected(vec![3]))
    );
    let (tx, rx) = chan::unbounded::<i32>();
    assert!(rx.close());
    assert_eq!(tx.send(4), Err(SendError(4)));
}

#[gort::test]
fn timeouts_wait_at_least_as_asked_and_return_the_value() {
    let d = Duration::from_millis(20);
    let (tx, rx) = chan::bounded::<i32>(1);
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    assert!(
        t.elapsed() >= d,
        "recv_timeout gave up after {:?}",
        t.elapsed()
    );
    tx.send(1).unwrap();
    let t = Instant::now();
    assert_eq!(tx.send_timeout(2, d), Err(SendTimeoutError::Timeout(2)));
    assert!(
        t.elapsed() >= d,
        "send_timeout gave up after {:?}",
        t.elapsed()
    );
    assert_eq!(rx.recv_timeout(d), Ok(1));
    // the same on an unbuffered channel (no receiver, no sender)
    let (tx0, rx0) = chan::bounded::<i32>(0);
    let t = Instant::now();
    assert_eq!(rx0.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    assert!(
        t.elapsed() >= d,
        "recv_timeout gave up after {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_eq!(tx0.send_timeout(3, d), Err(SendTimeoutError::Timeout(3)));
    assert!(
        t.elapsed() >= d,
        "send_timeout gave up after {:?}",
        t.elapsed()
    );
    // the deadline forms: never back before the deadline
    let at = Instant::now() + d;
    assert_eq!(rx0.recv_deadline(at), Err(RecvTimeoutError::Timeout));
    assert!(Instant::now() >= at, "recv_deadline returned early");
    let at = Instant::now() + d;
    assert_eq!(tx0.send_deadline(4, at), Err(SendTimeoutError::Timeout(4)));
    assert!(Instant::now() >= at, "send_deadline returned early");
    // a timed receive is satisfied by a later send
    let tx1 = tx.clone();
    gort::go(move || {
        gort::time::sleep(Duration::from_millis(5));
        tx1.send(3).unwrap();
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(3));
    drop(tx);
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Disconnected));
}

#[gort::test]
fn never_is_never_ready() {
    let n = chan::never::<i32>();
    assert_eq!(n.try_recv(), Err(TryRecvError::Empty));
    let t = Instant::now();
    assert_eq!(
        n.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(10));
    assert!(!n.is_closed());
    assert!(n.is_empty());
}

#[gort::test]
fn select_default_with_timeout() {
    let (_tx, rx) = chan::bounded::<i32>(0);
    let d = Duration::from_millis(20);
    let t = Instant::now();
    let r = gort::select! {
        recv(rx) -> _ => "recv",
        default(d) => "timeout",
    };
    assert_eq!(r, "timeout");
    assert!(
        t.elapsed() >= d,
        "default({d:?}) fired after {:?}",
        t.elapsed()
    );
    // with a send case too
    let (tx1, _rx1) = chan::bounded::<i32>(0);
    let t = Instant::now();
    let r = gort::select! {
        recv(rx) -> _ => "recv",
        send(tx1, 1) -> _ => "send",
        default(d) => "timeout",
    };
    assert_eq!(r, "timeout");
    assert!(
        t.elapsed() >= d,
        "default({d:?}) fired after {:?}",
        t.elapsed()
    );
    let (tx, rx) = chan::bounded::<i32>(0);
    gort::go(move || {
        gort::time::sleep(Duration::from_millis(5));
        tx.send(5).unwrap();
    });
    let r = gort::select! {
        recv(rx) -> v => v,
        default(Duration::from_secs(60)) => panic!("the send never arrived"),
    };
    assert_eq!(r, Ok(5));
}

#[gort::test]
fn dynamic_select_finds_the_ready_one_among_many() {
    let chans: Vec<_> = (0..20).map(|_| chan::bounded::<usize>(0)).collect();
    let tx13 = chans[13].0.clone();
    gort::go(move || tx13.send(1313).unwrap());
    let mut sel = Select::new();
    let idx: Vec<usize> = chans.iter().map(|(_, rx)| sel.recv(rx)).collect();
    let oper = sel.select();
    assert_eq!(oper.index(), idx[13]);
    assert_eq!(oper.recv(&chans[13].1), Ok(1313));

    // nothing ready: try_select and select_timeout report it
    let mut sel = Select::new();
    for (_, rx) in &chans {
        sel.recv(rx);
    }
    assert!(sel.try_select().is_err());
    let t = Instant::now();
    assert!(sel.select_timeout(Duration::from_millis(10)).is_err());
    assert!(t.elapsed() >= Duration::from_millis(10));
    let at = Instant::now() + Duration::from_millis(10);
    assert!(sel.select_deadline(at).is_err());
    assert!(Instant::now() >= at, "select_deadline returned early");

    // a send case on a closed channel is ready and returns the value
    let (tx, rx) = chan::bounded::<i32>(0);
    assert!(rx.close());
    let mut sel = Select::new();
    let i = sel.send(&tx);
    let oper = sel.select();
    assert_eq!(oper.index(), i);
    assert_eq!(oper.send(&tx, 5), Err(SendError(5)));
}

#[gort::test]
fn iterators_drain_until_close() {
    let (tx, rx) = chan::bounded::<i32>(16);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(rx.try_iter().count(), 0);
    let h = gort::go(move || {
        for i in 10..15 {
            tx.send(i).unwrap();
            gort::yield_now();
        }
    });
    assert_eq!((&rx).into_iter().collect::<Vec<_>>(), [10, 11, 12, 13, 14]);
    h.join().unwrap();
}

#[gort::test]
fn values_left_in_a_dropped_channel_are_dropped_exactly_once() {
    let token = Arc::new(());
    for cap in [Some(0usize), Some(1), Some(16), None] {
        let (tx, rx) = match cap {
            Some(c) => chan::bounded::<Arc<()>>(c),
            None => chan::unbounded(),
        };
        for _ in 0..cap.unwrap_or(100) {
            tx.send(token.clone()).unwrap();
        }
        if let Some(c) = cap {
            if c > 0 {
                assert!(matches!(
                    tx.try_send(token.clone()),
                    Err(TrySendError::Full(_))
                ));
            }
        }
        assert_eq!(Arc::strong_count(&token), 1 + cap.unwrap_or(100));
        drop((tx, rx));
        assert_eq!(Arc::strong_count(&token), 1, "cap {cap:?}");
    }
}

#[test]
fn error_types_implement_std_error() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> String {
        e.to_string()
    }
    assert!(!is_error(RecvError).is_empty());
    assert!(!is_error(SendError(1)).is_empty());
    assert!(!is_error(TrySendError::Full(1)).is_empty());
    assert!(!is_error(TrySendError::Disconnected(1)).is_empty());
    assert!(!is_error(TryRecvError::Empty).is_empty());
    assert!(!is_error(RecvTimeoutError::Timeout).is_empty());
    assert!(!is_error(SendTimeoutError::Timeout(1)).is_empty());
    assert_ne!(
        TryRecvError::Empty.to_string(),
        TryRecvError::Disconnected.to_string()
    );
}

// ---------------------------------------------------------------------------
// Plain OS threads talking to goroutines (API.md: a blocking call on a
// thread that is not a goroutine blocks that thread).

#[test]
fn a_plain_thread_ping_pongs_with_a_goroutine_over_unbuffered_channels() {
    let _w = watchdog("thread ping-pong");
    let r = rt(2);
    let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
    let h = r.go(move || {
        for v in &ping_rx {
            pong_tx.send(v + 1).unwrap();
        }
        "done"
    });
    for i in 0..1000 {
        ping_tx.send(i).unwrap(); // blocks this thread until the goroutine takes it
        assert_eq!(pong_rx.recv(), Ok(i + 1));
    }
    drop(ping_tx);
    assert_eq!(h.join().unwrap(), "done");
}

#[test]
fn threads_and_goroutines_block_on_each_other_in_both_directions() {
    let _w = watchdog("thread <-> goroutine");
    let r = rt(2);
    // a thread parked in recv is woken by a goroutine's later send
    let (tx, rx) = chan::bounded::<&str>(0);
    r.go(move || {
        gort::time::sleep(Duration::from_millis(10));
        tx.send("from goroutine").unwrap();
    });
    assert_eq!(rx.recv(), Ok("from goroutine"));
    // a goroutine parked in recv is woken by a thread's send
    let (tx, rx) = chan::bounded::<&str>(0);
    let h = r.go(move || rx.recv());
    std::thread::sleep(Duration::from_millis(10));
    tx.send("from thread").unwrap();
    assert_eq!(h.join().unwrap(), Ok("from thread"));
    // a thread's select! waits for goroutines
    let (a_tx, a_rx) = chan::bounded::<i32>(0);
    let (_b_tx, b_rx) = chan::bounded::<i32>(0);
    r.go(move || {
        gort::time::sleep(Duration::from_millis(5));
        a_tx.send(1).unwrap();
    });
    let got = gort::select! {
        recv(a_rx) -> v => ("a", v),
        recv(b_rx) -> v => ("b", v),
    };
    assert_eq!(got, ("a", Ok(1)));
    // a goroutine parked in recv is woken when a thread closes the channel
    let (tx, rx) = chan::bounded::<i32>(0);
    let h = r.go(move || rx.recv());
    std::thread::sleep(Duration::from_millis(5));
    assert!(tx.close());
    assert_eq!(h.join().unwrap(), Err(RecvError));
    // many threads and goroutines on one channel: nothing lost or doubled
    let (tx, rx) = chan::bounded::<u32>(0);
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    tx.send(t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            r.go(move || rx.iter().collect::<Vec<u32>>())
        })
        .collect();
    drop(rx);
    for t in threads {
        t.join().unwrap();
    }
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    let mut want: Vec<u32> = (0..4u32)
        .flat_map(|t| (0..500).map(move |i| t * 1000 + i))
        .collect();
    want.sort_unstable();
    assert_eq!(all, want);
}
