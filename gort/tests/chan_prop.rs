//! Property tests of `gort::chan`.
//!
//! 1. Random sequences of non-blocking (or known-not-to-block) operations on
//!    one channel — try_send, send, send_timeout, try_recv, recv,
//!    recv_timeout, close from either end, cloning and dropping senders and
//!    receivers — are checked step by step against a sequential model (a
//!    VecDeque plus a closed flag), for bounded(0..8) and unbounded channels,
//!    including len / is_empty / is_closed / capacity after every step.
//! 2. Conservation under concurrency: several senders and receivers on
//!    bounded(0), bounded(1), bounded(16) and unbounded channels, with a close
//!    racing the sends: every value sent is received exactly once or comes
//!    back to its sender inside an error, never both, never neither; and each
//!    receiver sees each sender's values in the order they were sent.

mod common;
use common::watchdog;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use gort::chan::{
    self, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// 1. Sequential model

#[derive(Debug, Clone)]
enum Op {
    TrySend(u32, usize),
    Send(u32, usize),
    SendTimeout(u32, usize),
    TryRecv(usize),
    Recv(usize),
    RecvTimeout(usize),
    CloseFromSender(usize),
    CloseFromReceiver(usize),
    CloneSender(usize),
    DropSender(usize),
    CloneReceiver(usize),
    DropReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0u32..1000;
    let i = 0usize..8;
    prop_oneof![
        6 => (v.clone(), i.clone()).prop_map(|(v, i)| Op::TrySend(v, i)),
        4 => (v.clone(), i.clone()).prop_map(|(v, i)| Op::Send(v, i)),
        2 => (v, i.clone()).prop_map(|(v, i)| Op::SendTimeout(v, i)),
        5 => i.clone().prop_map(Op::TryRecv),
        3 => i.clone().prop_map(Op::Recv),
        2 => i.clone().prop_map(Op::RecvTimeout),
        1 => i.clone().prop_map(Op::CloseFromSender),
        1 => i.clone().prop_map(Op::CloseFromReceiver),
        1 => i.clone().prop_map(Op::CloneSender),
        1 => i.clone().prop_map(Op::DropSender),
        1 => i.clone().prop_map(Op::CloneReceiver),
        1 => i.prop_map(Op::DropReceiver),
    ]
}

/// `None`: unbounded; `Some(n)`: bounded(n).
fn capacity() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![1 => Just(None), 3 => (0usize..8).prop_map(Some)]
}

struct Model {
    buf: VecDeque<u32>,
    cap: Option<usize>,
    closed: bool,
}

impl Model {
    fn full(&self) -> bool {
        self.cap.is_some_and(|c| self.buf.len() >= c)
    }
}

fn make(cap: Option<usize>) -> (Sender<u32>, Receiver<u32>) {
    match cap {
        Some(c) => chan::bounded(c),
        None => chan::unbounded(),
    }
}

fn check_observers(
    m: &Model,
    txs: &[Sender<u32>],
    rxs: &[Receiver<u32>],
    step: usize,
) -> Result<(), TestCaseError> {
    for tx in txs {
        prop_assert_eq!(tx.len(), m.buf.len(), "step {}: Sender::len", step);
        prop_assert_eq!(tx.is_empty(), m.buf.is_empty(), "step {}", step);
        prop_assert_eq!(tx.is_closed(), m.closed, "step {}: Sender::is_closed", step);
        prop_assert_eq!(tx.capacity(), m.cap, "step {}", step);
    }
    for rx in rxs {
        prop_assert_eq!(rx.len(), m.buf.len(), "step {}: Receiver::len", step);
        prop_assert_eq!(rx.is_empty(), m.buf.is_empty(), "step {}", step);
        prop_assert_eq!(
            rx.is_closed(),
            m.closed,
            "step {}: Receiver::is_closed",
            step
        );
        prop_assert_eq!(rx.capacity(), m.cap, "step {}", step);
    }
    Ok(())
}

fn run_model(
    cap: Option<usize>,
    ops: Vec<Op>,
    drop_receivers_at_end: bool,
) -> Result<(), TestCaseError> {
    let (tx, rx) = make(cap);
    let mut txs = vec![tx];
    let mut rxs = vec![rx];
    let mut m = Model {
        buf: VecDeque::new(),
        cap,
        closed: false,
    };
    let zero = Duration::ZERO;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::TrySend(v, i) if !txs.is_empty() => {
                let got = txs[i % txs.len()].try_send(v);
                let want = if m.closed {
                    Err(TrySendError::Disconnected(v))
                } else if m.full() {
                    Err(TrySendError::Full(v))
                } else {
                    m.buf.push_back(v);
                    Ok(())
                };
                prop_assert_eq!(got, want, "step {}: try_send({})", step, v);
            }
            Op::Send(v, i) if !txs.is_empty() && (m.closed || !m.full()) => {
                let got = txs[i % txs.len()].send(v);
                let want = if m.closed {
                    Err(SendError(v))
                } else {
                    m.buf.push_back(v);
                    Ok(())
                };
                prop_assert_eq!(got, want, "step {}: send({})", step, v);
            }
            Op::SendTimeout(v, i) if !txs.is_empty() => {
                let got = txs[i % txs.len()].send_timeout(v, zero);
                let want = if m.closed {
                    Err(SendTimeoutError::Disconnected(v))
                } else if m.full() {
                    Err(SendTimeoutError::Timeout(v))
                } else {
                    m.buf.push_back(v);
                    Ok(())
                };
                prop_assert_eq!(got, want, "step {}: send_timeout({}, 0)", step, v);
            }
            Op::TryRecv(i) => {
                let got = rxs[i % rxs.len()].try_recv();
                let want = match m.buf.pop_front() {
                    Some(v) => Ok(v),
                    None if m.closed => Err(TryRecvError::Disconnected),
                    None => Err(TryRecvError::Empty),
                };
                prop_assert_eq!(got, want, "step {}: try_recv", step);
            }
            Op::Recv(i) if m.closed || !m.buf.is_empty() => {
                let got = rxs[i % rxs.len()].recv();
                let want = m.buf.pop_front().ok_or(RecvError);
                prop_assert_eq!(got, want, "step {}: recv", step);
            }
            Op::RecvTimeout(i) => {
                let got = rxs[i % rxs.len()].recv_timeout(zero);
                let want = match m.buf.pop_front() {
                    Some(v) => Ok(v),
                    None if m.closed => Err(RecvTimeoutError::Disconnected),
                    None => Err(RecvTimeoutError::Timeout),
                };
                prop_assert_eq!(got, want, "step {}: recv_timeout(0)", step);
            }
            Op::CloseFromSender(i) if !txs.is_empty() => {
                let got = txs[i % txs.len()].close();
                prop_assert_eq!(got, !m.closed, "step {}: Sender::close", step);
                m.closed = true;
            }
            Op::CloseFromReceiver(i) => {
                let got = rxs[i % rxs.len()].close();
                prop_assert_eq!(got, !m.closed, "step {}: Receiver::close", step);
                m.closed = true;
            }
            Op::CloneSender(i) if !txs.is_empty() && txs.len() < 8 => {
                let t = txs[i % txs.len()].clone();
                txs.push(t);
            }
            Op::DropSender(i) if !txs.is_empty() => {
                let k = i % txs.len();
                drop(txs.swap_remove(k));
                if txs.is_empty() {
                    m.closed = true; // the last sender closes the channel
                }
            }
            Op::CloneReceiver(i) if rxs.len() < 8 => {
                let r = rxs[i % rxs.len()].clone();
                rxs.push(r);
            }
            Op::DropReceiver(i) if rxs.len() > 1 => {
                let k = i % rxs.len();
                drop(rxs.swap_remove(k));
            }
            _ => continue, // not applicable (or would block) in this state
        }
        check_observers(&m, &txs, &rxs, step)?;
    }
    // Everything still buffered is delivered, in order, even after close.
    if m.closed {
        let drained: Vec<u32> = rxs[0].try_iter().collect();
        prop_assert_eq!(&drained, &Vec::from(m.buf.clone()), "drain after close");
        prop_assert_eq!(rxs[0].recv(), Err(RecvError));
        m.buf.clear();
    }
    if drop_receivers_at_end && !txs.is_empty() {
        // With no receiver left, sends give their value back.
        rxs.clear();
        for tx in &txs {
            prop_assert_eq!(tx.try_send(5), Err(TrySendError::Disconnected(5)));
            prop_assert_eq!(tx.send(6), Err(SendError(6)));
            prop_assert_eq!(
                tx.send_timeout(7, zero),
                Err(SendTimeoutError::Disconnected(7))
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn operations_match_the_sequential_model(
        cap in capacity(),
        ops in proptest::collection::vec(op(), 1..120),
        drop_receivers_at_end in any::<bool>(),
    ) {
        run_model(cap, ops, drop_receivers_at_end)?;
    }
}

// ---------------------------------------------------------------------------
// 2. Conservation under concurrency

#[derive(Debug, Clone, Copy)]
enum Kind {
    Rendezvous,
    One,
    Sixteen,
    Unbounded,
}

impl Kind {
    fn make(self) -> (Sender<u64>, Receiver<u64>) {
        match self {
            Kind::Rendezvous => chan::bounded(0),
            Kind::One => chan::bounded(1),
            Kind::Sixteen => chan::bounded(16),
            Kind::Unbounded => chan::unbounded(),
        }
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    kind: Kind,
    procs: usize,
    senders: usize,
    receivers: usize,
    per_sender: u64,
    /// How many scheduling points the closer lets pass before closing.
    close_after: u32,
    close_from_receiver: bool,
    /// No close at all: the channel closes when the last sender finishes.
    no_close: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![
            Just(Kind::Rendezvous),
            Just(Kind::One),
            Just(Kind::Sixteen),
            Just(Kind::Unbounded)
        ],
        1usize..=4,
        1usize..=5,
        1usize..=4,
        1u64..=300,
        0u32..200,
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(kind, procs, senders, receivers, per_sender, close_after, from_rx, no_close)| {
                Scenario {
                    kind,
                    procs,
                    senders,
                    receivers,
                    per_sender,
                    close_after,
                    close_from_receiver: from_rx,
                    no_close,
                }
            },
        )
}

/// Sends `values` one way or another (chosen per value), returning the
/// values that came back inside errors.
fn sender_task(tx: Sender<u64>, values: Vec<u64>) -> Vec<u64> {
    let mut returned = Vec::new();
    for v in values {
        match v % 4 {
            0 => {
                if let Err(SendError(back)) = tx.send(v) {
                    returned.push(back);
                }
            }
            1 => {
                // Poll for a while, then block: on a rendezvous channel two
                // sides that only poll never meet (in Go too).
                let mut v = v;
                for attempt in 0.. {
                    if attempt == 50 {
                        if let Err(SendError(back)) = tx.send(v) {
                            returned.push(back);
                        }
                        break;
                    }
                    match tx.try_send(v) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            v = back;
                            gort::yield_now();
                        }
                        Err(TrySendError::Disconnected(back)) => {
                            returned.push(back);
                            break;
                        }
                    }
                }
            }
            2 => {
                let mut v = v;
                loop {
                    match tx.send_timeout(v, Duration::from_micros(50)) {
                        Ok(()) => break,
                        Err(SendTimeoutError::Timeout(back)) => v = back,
                        Err(SendTimeoutError::Disconnected(back)) => {
                            returned.push(back);
                            break;
                        }
                    }
                }
            }
            _ => {
                let r = gort::select! {
                    send(tx, v) -> r => r,
                };
                if let Err(SendError(back)) = r {
                    returned.push(back);
                }
            }
        }
    }
    returned
}

/// Receives until the channel is closed and drained, one way or another.
fn receiver_task(rx: Receiver<u64>, which: usize) -> Vec<u64> {
    let mut got = Vec::new();
    let mut n = which;
    loop {
        n += 1;
        let r = match n % 4 {
            0 => rx.recv().ok(),
            1 => {
                // Poll for a while, then block (see sender_task).
                let mut r = None;
                for attempt in 0.. {
                    if attempt == 50 {
                        r = rx.recv().ok();
                        break;
                    }
                    match rx.try_recv() {
                        Ok(v) => {
                            r = Some(v);
                            break;
                        }
                        Err(TryRecvError::Empty) => gort::yield_now(),
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
                r
            }
            2 => loop {
                match rx.recv_timeout(Duration::from_micros(50)) {
                    Ok(v) => break Some(v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break None,
                }
            },
            _ => gort::select! {
                recv(rx) -> v => v.ok(),
            },
        };
        match r {
            Some(v) => got.push(v),
            None => return got,
        }
    }
}

fn run_scenario(s: Scenario) -> Result<(), TestCaseError> {
    let _w = watchdog(format!("{s:?}"));
    let rt = gort::runtime::Builder::new()
        .procs(s.procs)
        .build()
        .unwrap();
    let sc = s.clone();
    let (received, returned) = rt.run(move || {
        let (tx, rx) = sc.kind.make();
        let mut senders = Vec::new();
        for id in 0..sc.senders as u64 {
            let values: Vec<u64> = (0..sc.per_sender).map(|i| id * 1_000_000 + i).collect();
            let tx = tx.clone();
            senders.push(gort::go(move || sender_task(tx, values)));
        }
        let closer = if sc.no_close {
            None
        } else if sc.close_from_receiver {
            let rx = rx.clone();
            let k = sc.close_after;
            Some(gort::go(move || {
                for _ in 0..k {
                    gort::yield_now();
                }
                rx.close()
            }))
        } else {
            let tx = tx.clone();
            let k = sc.close_after;
            Some(gort::go(move || {
                for _ in 0..k {
                    gort::yield_now();
                }
                tx.close()
            }))
        };
        drop(tx);
        let receivers: Vec<_> = (0..sc.receivers)
            .map(|i| {
                let rx = rx.clone();
                gort::go(move || receiver_task(rx, i))
            })
            .collect();
        drop(rx);
        let returned: Vec<Vec<u64>> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        if let Some(c) = closer {
            // the closer closed it, unless every sender had finished first
            // and the last one's drop closed it already
            let _ = c.join().unwrap();
        }
        let received: Vec<Vec<u64>> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        (received, returned)
    });

    // exactly once: received xor returned
    let mut seen: HashMap<u64, &str> = HashMap::new();
    for r in &received {
        for &v in r {
            prop_assert!(seen.insert(v, "received").is_none(), "{} received twice", v);
        }
    }
    for (id, r) in returned.iter().enumerate() {
        for &v in r {
            prop_assert_eq!(
                v / 1_000_000,
                id as u64,
                "a sender got back another's value"
            );
            if let Some(prev) = seen.insert(v, "returned") {
                return Err(TestCaseError::fail(format!(
                    "{v} was {prev} and also returned"
                )));
            }
        }
    }
    if s.no_close {
        prop_assert!(
            returned.iter().all(|r| r.is_empty()),
            "refused sends on an open channel"
        );
    }
    let total = s.senders as u64 * s.per_sender;
    prop_assert_eq!(seen.len() as u64, total, "values lost: {:?}", s);
    // per sender: everything received was sent before everything returned
    // (a channel stays closed), and each receiver saw that sender's values
    // in send order
    for id in 0..s.senders as u64 {
        let first_returned = returned[id as usize].first().copied();
        for r in &received {
            let mine: Vec<u64> = r.iter().copied().filter(|v| v / 1_000_000 == id).collect();
            prop_assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "a receiver saw sender {}'s values out of order: {:?}",
                id,
                mine
            );
            if let (Some(f), Some(&last)) = (first_returned, mine.last()) {
                prop_assert!(last < f, "value {} delivered after {} was refused", last, f);
            }
        }
        let back = &returned[id as usize];
        prop_assert!(back.windows(2).all(|w| w[0] < w[1]));
        if let Some(&f) = back.first() {
            // once refused, every later value of that sender is refused too
            let expected: Vec<u64> = (f..id * 1_000_000 + s.per_sender).collect();
            prop_assert_eq!(back, &expected);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concurrent_sends_are_received_once_or_returned(s in scenario()) {
        run_scenario(s)?;
    }
}

/// The four channel kinds the brief names, each run explicitly (not left to
/// the random scenario choice), with close racing several senders.
#[test]
fn conservation_for_each_kind_with_close_racing_sends() {
    for kind in [Kind::Rendezvous, Kind::One, Kind::Sixteen, Kind::Unbounded] {
        for (close_after, from_rx) in [(0, false), (0, true), (20, false), (20, true), (500, true)]
        {
            run_scenario(Scenario {
                kind,
                procs: 4,
                senders: 4,
                receivers: 3,
                per_sender: 500,
                close_after,
                close_from_receiver: from_rx,
                no_close: false,
            })
            .unwrap();
        }
        // no close: everything arrives
        run_scenario(Scenario {
            kind,
            procs: 2,
            senders: 3,
            receivers: 2,
            per_sender: 1000,
            close_after: 0,
            close_from_receiver: false,
            no_close: true,
        })
        .unwrap();
    }
}
