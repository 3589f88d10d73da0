//! Ports of the behaviour parts of Go's src/time/sleep_test.go and
//! tick_test.go to `gort::time`, with Go 1.23 timer-channel semantics:
//! after `Timer::stop` or `Timer::reset` returns, no stale value is received;
//! a slow `Ticker` receiver loses ticks instead of queueing them;
//! `Timer::stop` reports whether it stopped a pending timer.
//!
//! Machines are noisy, so nothing here asserts a wall-clock upper bound:
//! only orderings, counts and lower bounds ("slept at least d"). Where Go
//! sleeps and then expects something to have happened, these tests poll
//! with a generous retry budget instead.

mod common;
use common::{rt, watchdog};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, TryRecvError};
use gort::time::{after, sleep, sleep_until, tick, Ticker, Timer};

const SCHED: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);
const FAR: Duration = Duration::from_secs(10_000);

/// Go's `noTick`: nothing is ready on `c` right now.
#[track_caller]
fn no_tick(c: &Receiver<Instant>, what: &str) {
    if let Ok(v) = c.try_recv() {
        panic!("{what}: extra tick ({:?} ago)", v.elapsed());
    }
}

/// Go's `assertTick`: a value arrives (polling with a generous budget).
#[track_caller]
fn assert_tick(c: &Receiver<Instant>, what: &str) -> Instant {
    for _ in 0..1000 {
        if let Ok(v) = c.try_recv() {
            return v;
        }
        sleep(SCHED);
    }
    panic!("{what}: missing tick");
}

// ---------------------------------------------------------------------------
// sleep_test.go

#[gort::test]
fn sleep_sleeps_at_least_as_asked_while_others_run() {
    // TestSleep: another goroutine wakes half way through (Go interrupts
    // the sleeping thread); the sleep still lasts at least the full delay.
    const DELAY: Duration = Duration::from_millis(100);
    let spawned = Instant::now();
    let h = gort::go(|| {
        sleep(DELAY / 2);
        Instant::now()
    });
    let start = Instant::now();
    sleep(DELAY);
    let end = Instant::now();
    assert!(
        end - start >= DELAY,
        "sleep({DELAY:?}) slept only {:?}",
        end - start
    );
    let half = h.join().unwrap();
    assert!(
        half >= spawned + DELAY / 2,
        "sleep({:?}) slept only {:?}",
        DELAY / 2,
        half - spawned
    );
    assert!(
        half < end,
        "the half-way sleeper woke after the full sleeper"
    );
}

#[gort::test]
fn after_sends_no_earlier_than_asked() {
    const DELAY: Duration = Duration::from_millis(100);
    let start = Instant::now();
    let end = after(DELAY).recv().unwrap();
    let received = start.elapsed();
    assert!(
        received >= DELAY,
        "after({DELAY:?}) fired after only {received:?}"
    );
    assert!(
        end >= start + DELAY,
        "after({DELAY:?}) sent {:?} after start",
        end - start
    );
    // The value is the time it fired: not later than its receipt.
    assert!(end <= Instant::now(), "after() sent a time from the future");
}

#[gort::test]
fn after_tick_sequence_takes_at_least_the_sum() {
    const COUNT: u32 = 10;
    const DELTA: Duration = Duration::from_millis(10);
    let t0 = Instant::now();
    let mut last = t0;
    for _ in 0..COUNT {
        let v = after(DELTA).recv().unwrap();
        assert!(v >= last + DELTA, "an after() value came early");
        last = v;
    }
    let took = t0.elapsed();
    assert!(
        took >= DELTA * COUNT,
        "{COUNT} sequential after({DELTA:?}) took only {took:?}"
    );
}

#[gort::test]
fn after_stop() {
    // TestAfterStop: a stopped timer never delivers, and a second stop
    // reports that there was nothing left to stop.
    let t0 = Timer::new(Duration::from_millis(50));
    let c2 = after(Duration::from_millis(200));
    assert!(t0.stop(), "failed to stop a pending timer");
    c2.recv().unwrap();
    assert_eq!(
        t0.chan().try_recv(),
        Err(TryRecvError::Empty),
        "event 0 was not stopped"
    );
    assert!(!t0.stop(), "stop returned true twice");
}

const SLOTS: [u32; 13] = [5, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0];

fn after_queuing(delta: Duration) -> Result<(), String> {
    let (result_tx, result) = chan::bounded::<(u32, Instant, Instant)>(SLOTS.len());
    let t0 = Instant::now();
    for slot in SLOTS {
        let (ac, tx) = (after(delta * slot), result_tx.clone());
        gort::go(move || {
            let v = ac.recv().unwrap();
            tx.send((slot, v, Instant::now())).unwrap()
        });
    }
    let got: Vec<(u32, Instant, Instant)> =
        (0..SLOTS.len()).map(|_| result.recv().unwrap()).collect();
    // Lower bounds always hold, whatever the machine's load.
    for &(slot, t, received) in &got {
        assert!(
            t >= t0 + delta * slot,
            "after({:?}) sent a time only {:?} after start",
            delta * slot,
            t - t0
        );
        assert!(
            received >= t0 + delta * slot,
            "after({:?}) was received only {:?} after start",
            delta * slot,
            received - t0
        );
    }
    let mut got: Vec<(u32, Instant)> = got.into_iter().map(|(s, t, _)| (s, t)).collect();
    // The values of timers with later deadlines are not earlier (timers of
    // the same slot were created at slightly different times, so only
    // different slots are compared).
    got.sort();
    for w in got.windows(2) {
        if w[0].0 < w[1].0 && w[1].1 < w[0].1 {
            return Err(format!("after() values out of deadline order: {got:?}"));
        }
    }
    Ok(())
}

#[gort::test]
fn after_queuing_values_follow_deadline_order() {
    let _w = watchdog("TestAfterQueuing");
    let mut errs = Vec::new();
    for i in 0..5 {
        match after_queuing(Duration::from_millis(20 + i * 50)) {
            Ok(()) => return,
            Err(e) => errs.push(e),
        }
    }
    panic!("{errs:#?}");
}

#[gort::test]
fn timer_reset_reports_pending_and_never_fires_early() {
    // testReset, keeping only lower bounds: a reset timer fires no earlier
    // than its new deadline; reset of a fired (and received) timer is false.
    let d = Duration::from_millis(25);
    let t0 = Timer::new(2 * d);
    sleep(d);
    let r = Instant::now();
    assert!(t0.reset(3 * d), "resetting an unfired timer returned false");
    let v = t0.chan().recv().unwrap();
    assert!(
        r.elapsed() >= 3 * d,
        "the reset timer fired early: {:?} after reset({:?})",
        r.elapsed(),
        3 * d
    );
    assert!(
        v >= r + 3 * d,
        "the reset timer's value is before its deadline"
    );
    assert!(
        !t0.reset(Duration::from_millis(50)),
        "resetting an expired timer returned true"
    );
    t0.chan().recv().unwrap();
}

#[gort::test]
fn overflowing_durations_never_fire() {
    // TestOverflowSleep (Go also tests a negative duration; Rust's Duration
    // cannot be negative, so the zero duration stands in for it).
    let r = gort::select! {
        recv(after(Duration::MAX)) -> _ => "big",
        recv(after(Duration::from_millis(25))) -> _ => "small",
    };
    assert_eq!(r, "small", "a Duration::MAX timer fired");
    let r = gort::select! {
        recv(after(Duration::ZERO)) -> _ => "zero",
        recv(after(HOUR)) -> _ => "hour",
    };
    assert_eq!(r, "zero");
    let t = Timer::new(Duration::MAX);
    assert!(t.reset(Duration::MAX));
    assert!(t.stop());
    let tk = Ticker::new(Duration::MAX);
    no_tick(tk.chan(), "Ticker::new(Duration::MAX)");
    tk.stop();
}

#[gort::test(procs = 4)]
fn zero_duration_timers_are_not_missed() {
    // TestZeroTimer (1e6 rounds in Go; 20000 here).
    let _w = watchdog("TestZeroTimer");
    for _ in 0..20_000 {
        let s = Instant::now();
        let t = Timer::new(Duration::ZERO);
        let v = t.chan().recv().unwrap();
        assert!(v >= s);
    }
}

#[gort::test(procs = 4)]
fn sleep_zero_does_not_deadlock() {
    // TestSleepZeroDeadlock
    let _w = watchdog("TestSleepZeroDeadlock");
    let h = gort::go(|| {
        for _ in 0..100 {
            gort::yield_now();
        }
        true
    });
    for _ in 0..100 {
        sleep(Duration::ZERO);
        let (tx, rx) = chan::bounded::<bool>(1);
        tx.send(true).unwrap();
        assert_eq!(rx.recv(), Ok(true));
    }
    assert!(h.join().unwrap());
}

#[gort::test(procs = 2)]
fn after_stress_one_nanosecond_ticker() {
    // TestAfterStress: a 1ns ticker keeps delivering while another
    // goroutine sleeps for 1ns in a loop.
    let _w = watchdog("TestAfterStress");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let sleeper = gort::go(move || {
        let mut n = 0u64;
        while !s.load(Ordering::SeqCst) {
            sleep(Duration::from_nanos(1));
            n += 1;
        }
        n
    });
    let ticker = Ticker::new(Duration::from_nanos(1));
    let mut last = None;
    for _ in 0..100 {
        let v = ticker.chan().recv().unwrap();
        if let Some(l) = last {
            assert!(v >= l, "tick values went backwards");
        }
        last = Some(v);
    }
    ticker.stop();
    stop.store(true, Ordering::SeqCst);
    sleeper.join().unwrap();
}

#[gort::test]
fn sleep_until_wakes_in_deadline_order() {
    // 50 ms ahead: every sleeper parks before the first deadline, so the
    // order is the timer heap's even if the machine stalls (runtime.rs has
    // the same test on one processor).
    let t0 = Instant::now() + Duration::from_millis(50);
    let (tx, rx) = chan::unbounded::<u32>();
    let sleepers: Vec<_> = [3u32, 1, 4, 0, 2]
        .into_iter()
        .map(|i| {
            let tx = tx.clone();
            gort::go(move || {
                let at = t0 + Duration::from_millis(10) * (i + 1);
                sleep_until(at);
                let now = Instant::now();
                assert!(now >= at, "sleep_until woke {:?} early", at - now);
                tx.send(i).unwrap();
            })
        })
        .collect();
    drop(tx);
    let got: Vec<u32> = rx.iter().collect();
    for s in sleepers {
        s.join().unwrap();
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[gort::test(procs = 4)]
fn many_timers_all_fire_exactly_once() {
    let _w = watchdog("many timers");
    let fired = Arc::new(AtomicUsize::new(0));
    let wg = gort::sync::WaitGroup::new();
    for i in 0..2000u64 {
        let fired = fired.clone();
        wg.go(move || {
            let d = Duration::from_micros((i * 7919) % 20_000);
            let start = Instant::now();
            let v = after(d).recv().unwrap();
            assert!(start.elapsed() >= d, "after({d:?}) was received early");
            assert!(v >= start + d);
            fired.fetch_add(1, Ordering::SeqCst);
        });
    }
    wg.wait();
    assert_eq!(fired.load(Ordering::SeqCst), 2000);
}

// ---------------------------------------------------------------------------
// tick_test.go

#[gort::test]
fn ticker_ticks_at_its_period_and_reset_changes_it() {
    // TestTicker with lower bounds only: count/2 ticks of delta, then
    // count/2 ticks of 2*delta take at least 3 * delta * count/2.
    let count = 10u32;
    let delta = Duration::from_millis(20);
    let t0 = Instant::now();
    let ticker = Ticker::new(delta);
    let mut last = t0;
    for k in 1..=count / 2 {
        let v = ticker.chan().recv().unwrap();
        assert!(v >= t0 + delta * k, "tick {k} came early");
        assert!(t0.elapsed() >= delta * k, "tick {k} was received early");
        assert!(v >= last);
        last = v;
    }
    let r = Instant::now();
    ticker.reset(delta * 2);
    for k in 1..=count - count / 2 {
        let v = ticker.chan().recv().unwrap();
        assert!(v >= r + delta * 2 * k, "tick {k} after reset came early");
        assert!(
            r.elapsed() >= delta * 2 * k,
            "tick {k} after reset was received early"
        );
        last = v;
    }
    ticker.stop();
    assert!(last >= t0 + 3 * delta * (count / 2));
    assert!(t0.elapsed() >= 3 * delta * (count / 2));
    // the ticker has stopped
    sleep(2 * delta);
    no_tick(ticker.chan(), "Ticker did not shut down");
}

#[gort::test]
fn ticker_teardown() {
    // TestTeardown
    let delta = Duration::from_millis(20);
    for _ in 0..3 {
        let ticker = Ticker::new(delta);
        ticker.chan().recv().unwrap();
        ticker.stop();
        no_tick(ticker.chan(), "teardown");
    }
}

#[gort::test]
fn ticker_with_zero_period_panics() {
    // TestNewTickerLtZeroDuration / TestTickerResetLtZeroDuration (Go panics
    // for d <= 0; a Rust Duration cannot be negative).
    let r = std::panic::catch_unwind(|| Ticker::new(Duration::ZERO));
    assert!(r.is_err(), "Ticker::new(0) should have panicked");
    let tk = Ticker::new(Duration::from_secs(1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tk.reset(Duration::ZERO)));
    assert!(r.is_err(), "Ticker::reset(0) should have panicked");
}

#[gort::test]
fn a_slow_ticker_receiver_loses_ticks() {
    // 1 ms ticks while the receiver sleeps 100 ms: Go keeps at most one
    // pending tick, so draining afterwards finds a handful at most, not
    // ~100 queued ticks. (Draining faster than 1 ms per receive is what the
    // bound relies on; it is a count, not a timing.)
    let period = Duration::from_millis(1);
    let ticker = Ticker::new(period);
    let t0 = Instant::now();
    sleep(Duration::from_millis(100));
    let mut drained = 0;
    while ticker.chan().try_recv().is_ok() {
        drained += 1;
        assert!(drained < 50, "ticks were queued for a slow receiver");
    }
    let elapsed_periods = t0.elapsed().as_millis();
    assert!(
        drained < 50 && (drained as u128) < elapsed_periods / 2,
        "drained {drained} ticks after {elapsed_periods} periods"
    );
    // and the ticker keeps ticking afterwards
    let v = ticker.chan().recv().unwrap();
    assert!(v >= t0);
    ticker.stop();

    // the same for tick()
    let c = tick(period);
    sleep(Duration::from_millis(100));
    let drained = c.try_iter().take(100).count();
    assert!(
        drained < 50,
        "tick() queued {drained} ticks for a slow receiver"
    );
}

#[gort::test]
fn after_and_tick_send_the_time_they_fired_not_the_time_received() {
    // TestAfterTimes / TestTickTimes: After(10ms) read after a 500ms sleep
    // yields a time from before the sleep ended. Retried as in Go.
    for (what, mk) in [
        ("after", after as fn(Duration) -> Receiver<Instant>),
        ("tick", tick as fn(Duration) -> Receiver<Instant>),
    ] {
        let mut ok = false;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let start = Instant::now();
            let c = mk(Duration::from_millis(10));
            sleep(Duration::from_millis(500));
            let sleep_end = Instant::now();
            let v = c.recv().unwrap();
            assert!(
                v >= start + Duration::from_millis(10),
                "{what}: value before its deadline"
            );
            if v < sleep_end {
                ok = true;
                break;
            }
            seen.push(v - start);
        }
        assert!(
            ok,
            "{what}(10ms) values were all from after the 500ms sleep: {seen:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// tick_test.go TestChan / testTimerChan with Go 1.23 (synchronous) timer
// channels: no draining is ever needed after stop or reset.

/// The operations the Timer and Ticker halves of testTimerChan share.
trait TimerLike: Send + Sync + 'static {
    const IS_TICKER: bool;
    fn chan(&self) -> &Receiver<Instant>;
    fn stop(&self);
    fn reset(&self, d: Duration);
}

impl TimerLike for Timer {
    const IS_TICKER: bool = false;
    fn chan(&self) -> &Receiver<Instant> {
        Timer::chan(self)
    }
    fn stop(&self) {
        Timer::stop(self);
    }
    fn reset(&self, d: Duration) {
        Timer::reset(self, d);
    }
}

impl TimerLike for Ticker {
    const IS_TICKER: bool = true;
    fn chan(&self) -> &Receiver<Instant> {
        Ticker::chan(self)
    }
    fn stop(&self) {
        Ticker::stop(self);
    }
    fn reset(&self, d: Duration) {
        Ticker::reset(self, d);
    }
}

fn wait_done(done: &Receiver<bool>, what: &str) -> bool {
    match done.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(e) => panic!("{what}: never got done ({e:?})"),
    }
}

fn test_timer_chan<T: TimerLike>(tim: Arc<T>) {
    let c = tim.chan().clone();
    let name = if T::IS_TICKER { "ticker" } else { "timer" };

    // simple stop; timer never in heap
    tim.stop();
    no_tick(&c, name);
    // modify of timer not in heap
    tim.reset(FAR);
    no_tick(&c, name);
    // modify of timer in heap
    tim.reset(Duration::from_nanos(1));
    sleep(SCHED);
    assert_tick(&c, name);

    // Sleep long enough that a second tick must happen if this is a ticker;
    // reset must discard it.
    sleep(SCHED);
    tim.reset(FAR);
    no_tick(&c, &format!("{name}: stale value after reset"));

    // stop while a goroutine is blocked on the channel
    tim.reset(FAR);
    let (done_tx, done) = chan::bounded::<bool>(0);
    let c1 = c.clone();
    gort::go(move || {
        c1.recv().unwrap();
        drop(done_tx); // closes `done`
    });
    sleep(SCHED);
    assert!(done.try_recv().is_err(), "{name}: early done");
    // reset far away while the goroutine waits
    tim.reset(2 * FAR);
    sleep(SCHED);
    assert!(
        done.try_recv().is_err(),
        "{name}: early done after far reset"
    );
    // imminent reset while it waits
    tim.reset(Duration::from_nanos(1));
    assert!(done.recv_timeout(Duration::from_secs(60)).is_err());
    assert!(
        done.is_closed(),
        "{name}: the waiting goroutine never got the value"
    );

    // A ticker has ticked again by now (1ns period); a timer has stopped.
    if T::IS_TICKER {
        assert_tick(&c, name);
    } else {
        sleep(SCHED);
        no_tick(&c, "timer fired twice");
    }
    tim.stop();
    no_tick(&c, &format!("{name}: stale value after stop"));

    // Again with select and two goroutines waiting: a timer's single value
    // goes to exactly one of them.
    tim.reset(FAR);
    let (done_tx, done) = chan::bounded::<bool>(2);
    let (stop_tx, stop) = chan::bounded::<()>(0);
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let (c1, done_tx, stop) = (c.clone(), done_tx.clone(), stop.clone());
        waiters.push(gort::go(move || {
            gort::select! {
                recv(c1) -> v => { v.unwrap(); done_tx.send(true).unwrap(); },
                recv(stop) -> _ => {},
            }
        }));
    }
    sleep(SCHED);
    assert!(done.try_recv().is_err(), "{name}: early done (select)");
    tim.reset(SCHED / 2);
    sleep(SCHED);
    assert!(wait_done(&done, name));
    tim.stop();
    drop(stop_tx);
    for w in waiters {
        w.join().unwrap();
    }
    if !T::IS_TICKER {
        assert!(
            done.try_recv().is_err(),
            "a timer's single value was received twice"
        );
    }

    // Waiting on a stopped timer's channel gets nothing.
    let (stop_tx, stop) = chan::bounded::<()>(0);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (c1, stop) = (c.clone(), stop.clone());
            gort::go(move || {
                gort::select! {
                    recv(c1) -> _ => false,
                    recv(stop) -> _ => true,
                }
            })
        })
        .collect();
    sleep(SCHED);
    drop(stop_tx);
    for w in waiters {
        assert!(
            w.join().unwrap(),
            "{name}: a stopped timer delivered a value"
        );
    }

    // Stop and Reset block old values from being received (go.dev/issue/37196).
    tim.reset(Duration::from_nanos(1));
    sleep(SCHED);
    tim.stop();
    no_tick(&c, &format!("{name}: value from before stop"));
    tim.reset(HOUR);
    no_tick(&c, &format!("{name}: value from before reset"));
    tim.reset(Duration::from_nanos(1));
    assert_tick(&c, name);
    sleep(SCHED);
    if T::IS_TICKER {
        assert_tick(&c, name);
        sleep(SCHED);
    } else {
        no_tick(&c, "timer fired twice");
    }
    tim.reset(HOUR);
    no_tick(&c, &format!("{name}: value from before the last reset"));
    tim.stop();
}

#[gort::test(procs = 2)]
fn timer_chan_go_1_23_semantics() {
    let _w = watchdog("TestChan/Timer");
    test_timer_chan(Arc::new(Timer::new(FAR)));
}

#[gort::test(procs = 2)]
fn ticker_chan_go_1_23_semantics() {
    let _w = watchdog("TestChan/Ticker");
    test_timer_chan(Arc::new(Ticker::new(FAR)));
}

#[gort::test]
fn timer_stop_and_reset_results_follow_go_1_23() {
    // From testTimerChan's "Stop and Reset block old values" section: a
    // timer that expired but whose value was never received is still
    // pending (Go 1.23 channels are synchronous): stop returns true and the
    // value is never delivered.
    let t = Timer::new(Duration::from_nanos(1));
    sleep(SCHED);
    assert!(
        t.stop(),
        "stop of an expired, unreceived timer returned false"
    );
    no_tick(t.chan(), "value delivered after stop");
    assert!(!t.stop(), "second stop returned true");
    assert!(!t.reset(HOUR), "reset of a stopped timer returned true");
    no_tick(t.chan(), "value delivered after reset");
    assert!(
        t.reset(Duration::from_nanos(1)),
        "reset of a pending timer returned false"
    );
    assert_tick(t.chan(), "timer");
    sleep(SCHED);
    no_tick(t.chan(), "timer fired twice");
    assert!(
        !t.reset(HOUR),
        "reset of a fired and received timer returned true"
    );
    no_tick(t.chan(), "value delivered after reset");
    assert!(t.stop());
}

#[gort::test]
fn dropping_a_timer_or_ticker_does_not_disturb_others() {
    let start = Instant::now();
    let keep = Timer::new(Duration::from_millis(20));
    for _ in 0..100 {
        drop(Timer::new(Duration::from_millis(1)));
        drop(Ticker::new(Duration::from_millis(1)));
        drop(after(Duration::from_millis(1)));
    }
    // The kept timer still fires exactly once, and not early.
    let v = keep.chan().recv().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20), "fired early");
    assert!(v >= start + Duration::from_millis(20));
    assert!(keep.chan().try_recv().is_err());
}

// ---------------------------------------------------------------------------
// Plain OS threads

#[test]
fn timers_and_tickers_work_from_a_plain_thread() {
    let _w = watchdog("time from a thread");
    let start = Instant::now();
    let v = after(Duration::from_millis(5)).recv().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(5),
        "received early"
    );
    assert!(v >= start + Duration::from_millis(5));
    // A plain thread's sleep is no shorter than asked either.
    let t = Instant::now();
    sleep(Duration::from_millis(3));
    assert!(t.elapsed() >= Duration::from_millis(3));
    let t = Instant::now();
    sleep_until(t + Duration::from_millis(3));
    assert!(Instant::now() >= t + Duration::from_millis(3));
    let t = Timer::new(HOUR);
    assert!(t.stop());
    assert_eq!(t.chan().try_recv(), Err(TryRecvError::Empty));
    let ticker = Ticker::new(Duration::from_millis(2));
    let mut last = start;
    for _ in 0..3 {
        let v = ticker.chan().recv().unwrap();
        assert!(v >= last);
        last = v;
    }
    ticker.stop();
    // a thread and a goroutine select on timers together
    let r = rt(2);
    let (tx, rx) = chan::bounded::<&str>(0);
    r.go(move || {
        sleep(Duration::from_millis(5));
        tx.send("goroutine").unwrap();
    });
    let got = gort::select! {
        recv(rx) -> v => v.unwrap(),
        recv(after(HOUR)) -> _ => "timer",
    };
    assert_eq!(got, "goroutine");
}
