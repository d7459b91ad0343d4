//! Time (`goro::time`): `sleep`, `after`, `tick`, `Timer` and `Ticker` with
//! Go 1.23 stop/reset semantics, `after_func`, and many concurrent timers
//! (API.md "Time").

mod common;

use common::{within, SLACK};
use goro::chan::{RecvTimeoutError, TryRecvError};
use goro::select;
use goro::time::{self, Ticker, Timer};
use goro::Runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// time.Sleep(d) pauses for at least d, in a goroutine and on a plain thread.
#[test]
fn sleep_waits_at_least_the_duration() {
    fn check() {
        for d in [ms(1), ms(10), ms(40)] {
            let start = Instant::now();
            time::sleep(d);
            let took = start.elapsed();
            assert!(took >= d, "sleep({d:?}) returned after {took:?}");
            assert!(took < d + SLACK, "sleep({d:?}) took {took:?}");
        }
        let start = Instant::now();
        time::sleep(Duration::ZERO);
        assert!(start.elapsed() < SLACK);
    }
    within(30, check); // on a plain thread
    within(30, || goro::go(check).join().unwrap());
}

/// Sleep parks the goroutine, not its worker: 100 sleepers on one worker overlap.
#[test]
fn sleep_parks_the_goroutine_not_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let start = Instant::now();
    rt.block_on(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| goro::go(|| time::sleep(ms(100))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let took = start.elapsed();
    assert!(took >= ms(100));
    // Serialised sleeps would take 10 s.
    assert!(
        took < ms(5000),
        "100 concurrent 100 ms sleeps on one worker took {took:?}"
    );
}

/// time.After: one value, no earlier than d after the call, then (goro) closed.
#[test]
fn after_fires_once_then_closes() {
    let start = Instant::now();
    let rx = time::after(ms(30));
    let fired = rx.recv().expect("after delivers one value");
    assert!(fired >= start + ms(30), "after fired early");
    assert!(start.elapsed() >= ms(30));
    assert!(start.elapsed() < ms(30) + SLACK);
    assert_eq!(
        rx.recv(),
        Err(goro::chan::RecvError),
        "after closes after its value"
    );
}

/// time.Tick: the k-th tick comes no earlier than k periods after start, in order.
#[test]
fn tick_delivers_several_ticks() {
    let period = ms(10);
    let start = Instant::now();
    let rx = time::tick(period);
    let mut last = start;
    for k in 1..=5u32 {
        let t = rx.recv_timeout(SLACK).expect("a tick");
        assert!(
            t >= start + period * k,
            "tick {k} at {:?} is early",
            t - start
        );
        assert!(t > last || k == 1, "ticks out of order");
        last = t;
    }
    assert!(start.elapsed() >= period * 5);
}

/// A Ticker drops ticks for a slow receiver instead of queueing them (Go's cap-1 channel).
#[test]
fn tick_drops_ticks_for_slow_receivers() {
    let rx = time::tick(ms(5));
    thread::sleep(ms(120)); // ~24 periods without receiving
    let backlog = rx.try_iter().count();
    assert!(
        backlog <= 2,
        "{backlog} ticks queued up for a slow receiver"
    );
    // It keeps ticking afterwards.
    assert!(rx.recv_timeout(SLACK).is_ok());
}

/// Timer.Stop before it fires returns true, and nothing is ever received.
#[test]
fn timer_stop_before_fire() {
    let t = Timer::new(ms(50));
    assert!(t.stop(), "stopping an active timer reports true");
    let start = Instant::now();
    assert_eq!(
        t.channel().recv_timeout(ms(150)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= ms(150));
    assert!(!t.stop(), "a stopped timer is no longer active");
    assert_eq!(t.channel().try_recv(), Err(TryRecvError::Empty));
}

/// Timer.Stop after its value was received returns false (already expired).
#[test]
fn timer_stop_after_receive_returns_false() {
    let start = Instant::now();
    let t = Timer::new(ms(10));
    let fired = t.channel().recv_timeout(SLACK).expect("timer fires");
    assert!(fired >= start + ms(10));
    assert!(!t.stop());
    assert_eq!(t.channel().try_recv(), Err(TryRecvError::Empty));
}

/// Go 1.23: after Stop returns, a value that fired but was not received is gone.
#[test]
fn timer_stop_discards_an_unreceived_value() {
    let t = Timer::new(ms(5));
    thread::sleep(ms(40)); // fired, nobody received
    let _ = t.stop(); // true under Go 1.23, false before; the contract fixes only what follows
    assert_eq!(
        t.channel().try_recv(),
        Err(TryRecvError::Empty),
        "stale value after stop"
    );
    assert_eq!(
        t.channel().recv_timeout(ms(50)),
        Err(RecvTimeoutError::Timeout)
    );
}

/// Timer.Reset re-arms: true for an active timer, the value comes d after the reset.
#[test]
fn timer_reset_reschedules() {
    let t = Timer::new(Duration::from_secs(3600));
    let at = Instant::now();
    assert!(t.reset(ms(30)), "resetting an active timer reports true");
    let fired = t.channel().recv_timeout(SLACK).expect("reset timer fires");
    assert!(fired >= at + ms(30));
    assert!(at.elapsed() >= ms(30));

    // Expired and received: reset reports false and the timer fires again.
    let at = Instant::now();
    assert!(!t.reset(ms(20)));
    let fired = t.channel().recv_timeout(SLACK).expect("timer fires again");
    assert!(fired >= at + ms(20));

    // Stopped: reset re-arms it too.
    let t = Timer::new(ms(10));
    assert!(t.stop());
    let at = Instant::now();
    assert!(!t.reset(ms(20)));
    assert!(t.channel().recv_timeout(SLACK).unwrap() >= at + ms(20));
}

/// Go 1.23: after Reset returns, no value from before the reset can be received.
#[test]
fn timer_reset_discards_an_unreceived_value() {
    let t = Timer::new(ms(5));
    thread::sleep(ms(40)); // fired, nobody received
    let at = Instant::now();
    let _ = t.reset(ms(80));
    let fired = t
        .channel()
        .recv_timeout(SLACK)
        .expect("timer fires after reset");
    assert!(
        fired >= at + ms(80),
        "received a stale value from before the reset"
    );
    assert!(at.elapsed() >= ms(80));
}

/// Go 1.23 under races: stop/reset right around the fire time never leave a stale value.
#[test]
fn timer_stop_and_reset_races_leave_no_stale_value() {
    for i in 0..300u64 {
        let t = Timer::new(Duration::from_micros(300));
        thread::sleep(Duration::from_micros((i % 4) * 150));
        if i % 2 == 0 {
            let _ = t.stop();
            assert!(
                t.channel().try_recv().is_err(),
                "round {i}: value after stop"
            );
        } else {
            let _ = t.reset(Duration::from_secs(3600));
            assert!(
                t.channel().try_recv().is_err(),
                "round {i}: value after reset"
            );
        }
    }
}

/// A Timer's channel works as a select arm.
#[test]
fn timer_channel_in_select() {
    let (_tx, rx) = goro::chan::bounded::<u8>(0);
    let t = Timer::new(ms(30));
    let start = Instant::now();
    let which = select! {
        recv(rx) -> _ => "rx",
        recv(t.channel()) -> v => { assert!(v.is_ok()); "timer" }
    };
    assert_eq!(which, "timer");
    assert!(start.elapsed() >= ms(29)); // created just before `start`
}

/// Ticker.Stop: no tick (not even a pending one) arrives after it; Reset restarts it.
#[test]
fn ticker_stop_and_reset() {
    let ticker = Ticker::new(ms(10));
    ticker.channel().recv_timeout(SLACK).expect("first tick");
    thread::sleep(ms(25)); // a tick is pending
    ticker.stop();
    assert_eq!(
        ticker.channel().try_recv(),
        Err(TryRecvError::Empty),
        "stale tick after stop"
    );
    assert_eq!(
        ticker.channel().recv_timeout(ms(60)),
        Err(RecvTimeoutError::Timeout)
    );

    let at = Instant::now();
    ticker.reset(ms(40));
    let first = ticker
        .channel()
        .recv_timeout(SLACK)
        .expect("ticks again after reset");
    assert!(
        first >= at + ms(40),
        "tick {:?} after reset is stale",
        first - at
    );
    let second = ticker.channel().recv_timeout(SLACK).expect("keeps ticking");
    assert!(second >= at + ms(80));

    // Reset while running, with a tick pending: the pending tick is dropped.
    thread::sleep(ms(50));
    let at = Instant::now();
    ticker.reset(ms(60));
    let next = ticker.channel().recv_timeout(SLACK).unwrap();
    assert!(next >= at + ms(60), "stale tick after reset");
    ticker.stop();
}

/// time.AfterFunc runs f in its own goroutine after d; the Timer's channel is never ready.
#[test]
fn after_func_runs_f_in_a_goroutine() {
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let timer = time::after_func(ms(30), move || {
        tx.send((goro::current_id(), Instant::now())).unwrap();
    });
    let (id, ran_at) = rx.recv_timeout(SLACK).expect("after_func ran f");
    assert!(id.is_some(), "f must run in a goroutine");
    assert!(ran_at >= start + ms(30), "f ran early");
    assert!(!timer.stop(), "stop after f started reports false");
    assert_eq!(timer.channel().try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        timer.channel().recv_timeout(ms(20)),
        Err(RecvTimeoutError::Timeout)
    );
}

/// Stopping an after_func timer before it fires means f never runs.
#[test]
fn after_func_stop_prevents_the_call() {
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let timer = time::after_func(ms(50), move || flag.store(true, Ordering::SeqCst));
    assert!(timer.stop());
    thread::sleep(ms(150));
    assert!(
        !ran.load(Ordering::SeqCst),
        "f ran although its timer was stopped"
    );
}

/// 10k goroutines sleeping concurrently all wake, none early.
#[test]
fn ten_thousand_concurrent_sleepers_all_wake() {
    check_sleepers(10_000);
}

/// Stress: 200k concurrent sleepers.
#[test]
#[ignore = "stress: long-running variant of ten_thousand_concurrent_sleepers_all_wake"]
fn stress_many_concurrent_sleepers_all_wake() {
    check_sleepers(200_000);
}

/// `n` goroutines sleep 1..=50 ms at once; none may wake early and all must wake.
fn check_sleepers(n: u64) {
    let early = within(120, move || {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                goro::go(move || {
                    let d = ms(1 + i % 50);
                    let start = Instant::now();
                    time::sleep(d);
                    start.elapsed() < d
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&e| e)
            .count()
    });
    assert_eq!(early, 0, "sleepers woke before their duration");
}
