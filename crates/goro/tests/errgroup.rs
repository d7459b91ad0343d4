//! `goro::errgroup::Group`: the first error wins, the group context is
//! cancelled on the first error and when `wait` returns, `set_limit` bounds
//! concurrency (`go` waits, `try_go` refuses), panics are re-raised by
//! `wait` (API.md "Error groups"; x/sync/errgroup's docs).

mod common;

use common::{panic_text, within};
use goro::context::{Context, Error};
use goro::errgroup::Group;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn assert_send_sync<T: Send + Sync>() {}

/// A group can be shared by reference (go takes &self).
#[test]
fn group_is_send_and_sync() {
    assert_send_sync::<Group<String>>();
    assert_send_sync::<Group<Box<dyn std::error::Error + Send>>>();
}

/// No goroutines: wait returns Ok at once; all Ok: Ok.
#[test]
fn all_ok_is_ok() {
    let g: Group<String> = Group::default();
    assert_eq!(g.wait(), Ok(()));
    let g: Group<String> = Group::new();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let ran = ran.clone();
        g.go(move || {
            goro::time::sleep(Duration::from_millis(1));
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    within(20, move || g.wait()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 50);
}

/// The first error is returned; errors of the others are dropped, and wait
/// still waits for every goroutine.
#[test]
fn first_error_wins_and_wait_waits_for_all() {
    let (g, ctx) = Group::<String>::with_context(&Context::background());
    let finished = Arc::new(AtomicUsize::new(0));
    for i in 0..10 {
        let (ctx, finished) = (ctx.clone(), finished.clone());
        g.go(move || {
            // Only after the first error has cancelled the context.
            let _ = ctx.done().recv();
            goro::time::sleep(Duration::from_millis(10));
            finished.fetch_add(1, Ordering::SeqCst);
            Err(format!("late {i}"))
        });
    }
    g.go(|| Err("first".to_string()));
    let r = within(20, move || g.wait());
    assert_eq!(r, Err("first".to_string()));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        10,
        "wait returned before every goroutine had"
    );
}

/// Without a context, the first error is still the one returned.
#[test]
fn first_error_without_context() {
    let g: Group<u32> = Group::new();
    let (tx, gate) = goro::chan::bounded::<()>(0);
    g.go(|| Err(1));
    // The second error comes only after the first goroutine has finished.
    let gate2 = gate.clone();
    g.go(move || {
        let _ = gate2.recv();
        Err(2)
    });
    // Debug shows when the first error is recorded.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !format!("{g:?}").contains("failed: true") {
        assert!(Instant::now() < deadline, "the first error never arrived");
        thread::sleep(Duration::from_millis(1));
    }
    drop(tx);
    assert_eq!(within(20, move || g.wait()), Err(1));
}

/// The group context is cancelled by the first error, before wait.
#[test]
fn context_cancelled_on_first_error() {
    let (parent, _keep) = Context::background().with_cancel();
    let (g, ctx) = Group::<&str>::with_context(&parent);
    let observed = Arc::new(AtomicBool::new(false));
    let o = observed.clone();
    let watcher = ctx.clone();
    g.go(move || {
        goro::select! {
            recv(watcher.done()) -> _ => { o.store(true, Ordering::SeqCst); Ok(()) },
            recv(goro::time::after(Duration::from_secs(20))) -> _ => Ok(()),
        }
    });
    assert!(!ctx.is_done());
    g.go(|| Err("boom"));
    let start = Instant::now();
    assert_eq!(within(30, move || g.wait()), Err("boom"));
    assert!(
        observed.load(Ordering::SeqCst),
        "sibling never saw the cancel"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx
        .cause()
        .unwrap()
        .to_string()
        .contains("returned an error"));
    assert!(!parent.is_done(), "the group cancelled its parent context");
}

/// With no error, the group context stays live until wait returns.
#[test]
fn context_cancelled_when_wait_returns() {
    let (g, ctx) = Group::<()>::with_context(&Context::background());
    let (tx, gate) = goro::chan::bounded::<()>(0);
    g.go(move || {
        let _ = gate.recv();
        Ok(())
    });
    thread::sleep(Duration::from_millis(10));
    assert!(!ctx.is_done(), "cancelled while the group still ran");
    drop(tx);
    within(20, move || g.wait()).unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

/// With a limit of 4 and 100 tasks, never more than 4 run at once (and
/// the limit is actually reached).
#[test]
fn limit_bounds_concurrency() {
    let mut g: Group<()> = Group::new();
    g.set_limit(4);
    assert_eq!(g.limit(), Some(4));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let (running, peak, total) = (running.clone(), peak.clone(), total.clone());
        g.go(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            goro::time::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            total.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    }
    within(30, move || g.wait()).unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 4, "peak concurrency {peak} > limit 4");
    assert!(
        peak >= 2,
        "peak concurrency {peak}: the limit admitted no parallelism"
    );
    assert_eq!(total.load(Ordering::SeqCst), 100);
}

/// The limit holds when go is called from a goroutine (parking) too.
#[test]
fn limit_from_a_goroutine() {
    let h = goro::go(|| {
        let mut g: Group<()> = Group::new();
        g.set_limit(3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for _ in 0..60 {
            let (running, peak) = (running.clone(), peak.clone());
            g.go(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                goro::yield_now();
                goro::time::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            });
        }
        g.wait().unwrap();
        peak.load(Ordering::SeqCst)
    });
    let peak = within(30, move || h.join().unwrap());
    assert!(peak <= 3, "peak {peak} > 3");
}

/// go waits for room when the group is full.
#[test]
fn go_waits_for_room() {
    let mut g: Group<()> = Group::new();
    g.set_limit(1);
    let (release, gate) = goro::chan::bounded::<()>(0);
    g.go(move || {
        let _ = gate.recv();
        Ok(())
    });
    let started = Arc::new(AtomicBool::new(false));
    thread::scope(|s| {
        let g = &g;
        let st = started.clone();
        let second = s.spawn(move || {
            g.go(|| Ok(()));
            st.store(true, Ordering::SeqCst);
        });
        thread::sleep(Duration::from_millis(50));
        assert!(
            !started.load(Ordering::SeqCst),
            "go returned while the group was full"
        );
        drop(release);
        second.join().unwrap();
    });
    assert!(started.load(Ordering::SeqCst));
    within(20, move || g.wait()).unwrap();
}

/// try_go refuses when full (without running f) and accepts once there is room.
#[test]
fn try_go_refuses_when_full() {
    let mut g: Group<()> = Group::new();
    g.set_limit(2);
    let (release, gate) = goro::chan::bounded::<()>(0);
    for _ in 0..2 {
        let gate = gate.clone();
        assert!(g.try_go(move || {
            let _ = gate.recv();
            Ok(())
        }));
    }
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    assert!(!g.try_go(move || {
        r.store(true, Ordering::SeqCst);
        Ok(())
    }));
    drop(release);
    // Room comes back as the two finish.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if g.try_go(|| Ok(())) {
            break;
        }
        assert!(Instant::now() < deadline, "room never came back");
        thread::sleep(Duration::from_millis(1));
    }
    within(20, move || g.wait()).unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a refused function ran");

    // Without a limit, try_go always starts.
    let g: Group<()> = Group::new();
    assert!((0..100).all(|_| g.try_go(|| Ok(()))));
    g.wait().unwrap();
}

/// A limit of 0 admits nothing: try_go refuses, go panics instead of
/// hanging forever.
#[test]
fn limit_zero() {
    let mut g: Group<()> = Group::new();
    g.set_limit(0);
    assert!(!g.try_go(|| Ok(())));
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.go(|| Ok(())))).unwrap_err();
    assert!(panic_text(&*err).unwrap().contains("limit of 0"));
    g.remove_limit();
    assert_eq!(g.limit(), None);
    assert!(g.try_go(|| Ok(())));
    g.wait().unwrap();
}

/// Changing the limit while goroutines of the group run panics, naming
/// the misuse; once they are done it is allowed again.
#[test]
fn set_limit_while_active_panics() {
    let mut g: Group<()> = Group::new();
    g.set_limit(2);
    let (release, gate) = goro::chan::bounded::<()>(0);
    g.go(move || {
        let _ = gate.recv();
        Ok(())
    });
    let err = panic::catch_unwind(AssertUnwindSafe(|| g.set_limit(5))).unwrap_err();
    let msg = panic_text(&*err).unwrap();
    assert!(msg.contains("modify limit"), "{msg}");
    assert!(msg.contains("1 goroutines"), "{msg}");
    // Also without a previous limit.
    let mut h: Group<()> = Group::new();
    let gate2 = goro::chan::never::<()>();
    let (stop_tx, stop) = goro::chan::bounded::<()>(0);
    h.go(move || {
        goro::select! {
            recv(gate2) -> _ => {},
            recv(stop) -> _ => {},
        }
        Ok(())
    });
    assert!(panic::catch_unwind(AssertUnwindSafe(|| h.set_limit(1))).is_err());
    drop(stop_tx);
    h.wait().unwrap();

    drop(release);
    // Wait until the goroutine is gone, then a change is fine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while format!("{g:?}").contains("active: 1") {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(1));
    }
    g.set_limit(5);
    assert_eq!(g.limit(), Some(5));
    g.wait().unwrap();
}

/// A panic in a group goroutine is re-raised by wait, after every
/// goroutine has returned, with the original payload; it cancels the
/// group's context and beats any error.
#[test]
fn panic_is_reraised_by_wait() {
    let (g, ctx) = Group::<&str>::with_context(&Context::background());
    let slow_done = Arc::new(AtomicBool::new(false));
    let s = slow_done.clone();
    g.go(move || {
        goro::time::sleep(Duration::from_millis(50));
        s.store(true, Ordering::SeqCst);
        Err("an error")
    });
    g.go(|| panic!("task exploded"));
    let err = within(20, move || {
        panic::catch_unwind(AssertUnwindSafe(move || g.wait()))
    })
    .expect_err("wait did not re-raise the panic");
    assert_eq!(panic_text(&*err).as_deref(), Some("task exploded"));
    assert!(
        slow_done.load(Ordering::SeqCst),
        "wait re-raised before every goroutine returned"
    );
    assert!(ctx.is_done());
    assert!(ctx.cause().unwrap().to_string().contains("panicked"));
}

/// Ten thousand tasks all run, with and without a limit.
#[test]
fn ten_thousand_tasks_all_run() {
    let count = Arc::new(AtomicUsize::new(0));
    let g: Group<()> = Group::new();
    for _ in 0..10_000 {
        let count = count.clone();
        g.go(move || {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
    }
    within(60, move || g.wait()).unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 10_000);

    let count = Arc::new(AtomicUsize::new(0));
    let mut g: Group<()> = Group::new();
    g.set_limit(16);
    for _ in 0..10_000 {
        let count = count.clone();
        g.go(move || {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
    }
    within(60, move || g.wait()).unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 10_000);
}

/// A group used entirely inside a goroutine (wait parks it).
#[test]
fn group_inside_a_goroutine() {
    let h = goro::go(|| {
        let (g, ctx) = Group::<String>::with_context(&Context::background());
        for i in 0..100u32 {
            let ctx = ctx.clone();
            g.go(move || {
                if ctx.is_done() {
                    return Ok(());
                }
                if i == 42 {
                    Err(format!("task {i}"))
                } else {
                    Ok(())
                }
            });
        }
        g.wait()
    });
    assert_eq!(within(30, move || h.join().unwrap()), Err("task 42".into()));
}

/// Debug says what matters without requiring E: Debug.
#[test]
fn debug_output() {
    struct Opaque;
    let mut g: Group<Opaque> = Group::new();
    g.set_limit(3);
    let s = format!("{g:?}");
    assert!(s.contains("limit: Some(3)"), "{s}");
    assert!(s.contains("active: 0"), "{s}");
    assert!(g.wait().is_ok());
}
