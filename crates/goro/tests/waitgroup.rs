//! `goro::sync::WaitGroup`: add/done/wait across goroutines and plain threads,
//! `WaitGroup::go`, misuse panics, and panics re-raised by `wait`
//! (API.md "Synchronisation").

mod common;

use common::{panic_text, within};
use goro::sync::WaitGroup;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// wg.Add(n); n goroutines call Done; Wait (on a plain thread) returns after all of them.
#[test]
fn wait_returns_after_every_done() {
    let wg = WaitGroup::new();
    let count = Arc::new(AtomicUsize::new(0));
    wg.add(50);
    for i in 0..50u64 {
        let (wg, count) = (wg.clone(), count.clone());
        let _ = goro::go(move || {
            goro::time::sleep(Duration::from_millis(1 + i % 10));
            count.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    within(20, move || wg.wait());
    assert_eq!(count.load(Ordering::SeqCst), 50);
}

/// Wait blocks until the last Done: it takes at least as long as the slowest worker.
#[test]
fn wait_blocks_until_the_last_done() {
    let wg = WaitGroup::new();
    wg.add(1);
    let start = Instant::now();
    let worker = wg.clone();
    let _ = goro::go(move || {
        goro::time::sleep(Duration::from_millis(50));
        worker.done();
    });
    within(20, move || wg.wait());
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "wait returned before done"
    );
}

/// Wait on a zero counter returns at once.
#[test]
fn wait_with_nothing_added_returns_at_once() {
    let wg = WaitGroup::new();
    within(10, move || {
        wg.wait();
        goro::go(move || wg.wait()).join().unwrap();
    });
}

/// Done from plain OS threads releases a Wait inside a goroutine, and vice versa.
#[test]
fn threads_and_goroutines_mix() {
    let wg = WaitGroup::new();
    let count = Arc::new(AtomicUsize::new(0));
    wg.add(8);
    let waiter = {
        let (wg, count) = (wg.clone(), count.clone());
        goro::go(move || {
            wg.wait();
            count.load(Ordering::SeqCst)
        })
    };
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (wg, count) = (wg.clone(), count.clone());
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                count.fetch_add(1, Ordering::SeqCst);
                wg.done();
            })
        })
        .collect();
    assert_eq!(within(20, move || waiter.join().unwrap()), 8);
    for t in threads {
        t.join().unwrap();
    }

    // Goroutines call done, a plain thread waits.
    let wg2 = WaitGroup::new();
    wg2.add(8);
    for _ in 0..8 {
        let wg2 = wg2.clone();
        let _ = goro::go(move || {
            goro::yield_now();
            wg2.done();
        });
    }
    within(20, move || wg2.wait());
}

/// Many waiters (goroutines and threads) are all released by the final Done.
#[test]
fn every_waiter_is_released() {
    let wg = WaitGroup::new();
    wg.add(1);
    let goroutines: Vec<_> = (0..100)
        .map(|_| {
            let wg = wg.clone();
            goro::go(move || wg.wait())
        })
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let wg = wg.clone();
            thread::spawn(move || wg.wait())
        })
        .collect();
    thread::sleep(Duration::from_millis(30));
    assert!(
        goroutines.iter().all(|h| !h.is_finished()),
        "a waiter left early"
    );
    wg.done();
    within(20, move || {
        for h in goroutines {
            h.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// WaitGroup.Go: add(1) + spawn + done on exit.
#[test]
fn go_adds_spawns_and_marks_done() {
    let wg = WaitGroup::new();
    let count = Arc::new(AtomicUsize::new(0));
    for i in 0..200u64 {
        let count = count.clone();
        wg.go(move || {
            if i % 3 == 0 {
                goro::time::sleep(Duration::from_millis(i % 7));
            }
            count.fetch_add(1, Ordering::SeqCst);
        });
    }
    let wg2 = wg.clone();
    within(20, move || wg2.wait());
    assert_eq!(count.load(Ordering::SeqCst), 200);
}

/// A WaitGroup can be reused once Wait has returned.
#[test]
fn reuse_after_wait() {
    let wg = WaitGroup::new();
    let count = Arc::new(AtomicUsize::new(0));
    for round in 1..=3 {
        for _ in 0..10 {
            let count = count.clone();
            wg.go(move || {
                count.fetch_add(1, Ordering::SeqCst);
            });
        }
        let w = wg.clone();
        within(20, move || w.wait());
        assert_eq!(count.load(Ordering::SeqCst), round * 10);
    }
}

/// A negative WaitGroup counter panics with a message naming the WaitGroup misuse.
#[test]
fn done_below_zero_panics() {
    let wg = WaitGroup::new();
    let res = panic::catch_unwind(AssertUnwindSafe(|| wg.done()));
    let msg =
        panic_text(&*res.expect_err("done() on a zero WaitGroup must panic")).unwrap_or_default();
    assert!(
        msg.contains("WaitGroup"),
        "panic message does not name WaitGroup: {msg:?}"
    );

    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let res = panic::catch_unwind(AssertUnwindSafe(|| wg.done()));
    assert!(res.is_err(), "one done too many must panic");

    // Inside a goroutine the panic reaches join.
    let h = goro::go(|| WaitGroup::new().done());
    let err = within(10, move || h.join()).expect_err("done() below zero in a goroutine");
    assert!(panic_text(&*err.into_panic())
        .unwrap_or_default()
        .contains("WaitGroup"));
}

/// wait re-raises the panic of a goroutine started with WaitGroup::go, after all finished.
#[test]
fn wait_reraises_panic_after_all_finished() {
    let wg = WaitGroup::new();
    let finished = Arc::new(AtomicUsize::new(0));
    wg.go(|| panic!("assertion inside wg.go failed: {}", 1 + 1));
    for _ in 0..5 {
        let finished = finished.clone();
        wg.go(move || {
            goro::time::sleep(Duration::from_millis(50));
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }
    let w = wg.clone();
    let res = within(20, move || {
        panic::catch_unwind(AssertUnwindSafe(|| w.wait()))
    });
    let payload = res.expect_err("wait must re-raise the goroutine's panic");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        5,
        "wait re-raised before the others finished"
    );
    let msg = panic_text(&*payload).unwrap_or_default();
    assert!(
        msg.contains("assertion inside wg.go failed: 2"),
        "re-raised payload: {msg:?}"
    );

    // Also from inside a goroutine.
    let wg = WaitGroup::new();
    wg.go(|| panic!("second failure"));
    let h = goro::go(move || wg.wait());
    assert!(within(10, move || h.join()).unwrap_err().is_panic());
}

#[goro::test]
fn wait_timeout_reports_whether_the_counter_reached_zero() {
    let wg = WaitGroup::new();
    wg.add(1);
    let t0 = Instant::now();
    assert!(!wg.wait_timeout(Duration::from_millis(20)));
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let wg2 = wg.clone();
    let h = goro::go(move || {
        goro::time::sleep(Duration::from_millis(10));
        wg2.done();
    });
    assert!(wg.wait_timeout(Duration::from_secs(10)));
    h.join().unwrap();
    // And from a plain thread.
    let wg3 = WaitGroup::new();
    wg3.add(1);
    let t = std::thread::spawn(move || wg3.wait_timeout(Duration::from_millis(5)));
    assert!(!t.join().unwrap());
}

#[test]
fn wait_timeout_under_virtual_time_is_exact() {
    goro::testing::synctest(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let t0 = goro::time::now();
        assert!(!wg.wait_timeout(Duration::from_secs(30)));
        assert_eq!(goro::time::since(t0), Duration::from_secs(30));
        wg.done();
    });
}
