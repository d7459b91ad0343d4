//! `Limiter` never exceeds its bound (observed peak concurrency);
//! `RateLimiter` never hands out tokens early (lower-bound timing, wide
//! upper bounds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::context::Context;
use goro::sync::WaitGroup;
use goro_patterns::{Limiter, RateLimiter};

/// 300 goroutines through a limiter of 5, spawned from 3 spawners: the peak
/// never exceeds 5 (and reaches it, or the test proves nothing).
#[goro::test]
fn limiter_never_exceeds_its_bound() {
    let limiter = Limiter::new(5);
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for _ in 0..3 {
        let (limiter, now, peak, ran) = (limiter.clone(), now.clone(), peak.clone(), ran.clone());
        wg.go(move || {
            for i in 0..100 {
                let (now, peak, ran) = (now.clone(), peak.clone(), ran.clone());
                let _ = limiter.go(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    if i % 2 == 0 {
                        goro::time::sleep(Duration::from_micros(200));
                    } else {
                        goro::yield_now();
                    }
                    now.fetch_sub(1, Ordering::SeqCst);
                    ran.fetch_add(1, Ordering::SeqCst);
                });
                assert!(limiter.in_flight() <= 5);
            }
        });
    }
    wg.wait();
    limiter.wait();
    assert_eq!(ran.load(Ordering::SeqCst), 300);
    assert_eq!(peak.load(Ordering::SeqCst), 5);
    assert_eq!(limiter.in_flight(), 0);
}

/// A panicking goroutine still gives its unit back.
#[goro::test]
fn limiter_unit_comes_back_after_a_panic() {
    let limiter = Limiter::new(1);
    let h = limiter.go(|| panic!("limited goroutine panics"));
    assert!(h.join().is_err());
    let h = limiter.go(|| 3);
    assert_eq!(h.join().unwrap(), 3);
}

/// try_go and try_acquire refuse when full; acquire_ctx gives up with the
/// context.
#[goro::test]
fn limiter_try_and_ctx() {
    let limiter = Limiter::new(2);
    let a = limiter.acquire();
    let b = limiter.try_acquire().unwrap();
    assert!(limiter.try_acquire().is_none());
    let back = limiter.try_go(|| 1).unwrap_err();
    assert_eq!(back(), 1);
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(30));
    let t = Instant::now();
    assert_eq!(
        limiter.acquire_ctx(&ctx).unwrap_err(),
        goro::context::Error::DeadlineExceeded
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    drop(cancel);
    drop((a, b));
    assert_eq!(limiter.try_go(|| 2).ok().unwrap().join().unwrap(), 2);
}

/// 100/s with a burst of 1: 21 waits take at least 200 ms.
#[goro::test]
fn rate_limiter_lower_bound() {
    let start = Instant::now();
    let rl = RateLimiter::new(100.0, 1);
    for _ in 0..21 {
        rl.wait();
    }
    let e = start.elapsed();
    assert!(e >= Duration::from_millis(200), "{e:?}");
    assert!(e < Duration::from_secs(5), "{e:?}");
}

/// A burst is free, then tokens come at the rate; concurrent waiters share
/// the rate (10 goroutines × 5 waits at 200/s, burst 5: ≥ 225 ms).
#[goro::test]
fn rate_limiter_burst_and_concurrent_waiters() {
    let start = Instant::now();
    let rl = Arc::new(RateLimiter::every(Duration::from_millis(5), 5));
    for _ in 0..5 {
        assert!(rl.try_acquire());
    }
    assert!(!rl.try_acquire(), "the burst is spent");
    assert!(start.elapsed() < Duration::from_secs(1));
    let wg = WaitGroup::new();
    for _ in 0..10 {
        let rl = rl.clone();
        wg.go(move || (0..5).for_each(|_| rl.wait()));
    }
    wg.wait();
    // 5 burst tokens were taken at once; the next 50 come one per 5 ms.
    let e = start.elapsed();
    assert!(e >= Duration::from_millis(249), "{e:?}");
    assert!(e < Duration::from_secs(10), "{e:?}");
}

/// A cancelled wait returns the context's error and gives its token back.
#[goro::test]
fn rate_limiter_wait_ctx() {
    let rl = RateLimiter::new(10.0, 1); // one per 100 ms
    rl.wait();
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(20));
    let t = Instant::now();
    assert_eq!(
        rl.wait_ctx(&ctx),
        Err(goro::context::Error::DeadlineExceeded)
    );
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "gave up at the deadline, not the token"
    );
    drop(cancel);
    // The reserved token came back: the next one is still ~100 ms after
    // the first, not 200.
    let t = Instant::now();
    rl.wait_ctx(&Context::background()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(rl.tokens() < 1.0);
}
