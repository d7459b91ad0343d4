//! `goro::context`: cancellation flows down and never up, deadlines and
//! timeouts (the earlier one wins), values by type, `done()` in `select!`
//! from goroutines and plain threads, causes, `after_func`, and no leaked
//! child links (API.md "Cancellation"; Go's `context` package docs).

mod common;

use common::{within, SLACK};
use goro::chan::{RecvTimeoutError, TryRecvError};
use goro::context::{self, CancelFunc, Context, Error};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn assert_send_sync<T: Send + Sync>() {}

/// Every public type of the module is Send + Sync.
#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<Context>();
    assert_send_sync::<CancelFunc>();
    assert_send_sync::<context::CancelCauseFunc>();
    assert_send_sync::<context::AfterFunc>();
    assert_send_sync::<Error>();
}

/// Go's error strings.
#[test]
fn error_display_matches_go() {
    assert_eq!(Error::Canceled.to_string(), "context canceled");
    assert_eq!(
        Error::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let e: Box<dyn std::error::Error> = Box::new(Error::Canceled);
    assert_eq!(e.to_string(), "context canceled");
}

/// Background is never done, has no deadline, no values, and its done()
/// channel is never ready.
#[test]
fn background_is_never_done() {
    let bg = Context::background();
    assert!(!bg.is_done());
    assert_eq!(bg.err(), None);
    assert_eq!(bg.deadline(), None);
    assert!(bg.cause().is_none());
    assert_eq!(bg.value::<u32>(), None);
    assert_eq!(
        bg.done().recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(format!("{bg:?}").contains("background"));
}

/// Cancelling a child reaches its descendants but never its parent or
/// siblings; cancelling the parent reaches everything below it.
#[test]
fn cancellation_propagates_down_not_up() {
    let (parent, cancel_parent) = Context::background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    let (sibling, _cancel_sibling) = parent.with_cancel();
    let grandchild = child.with_value(1u8);
    let (great, _cancel_great) = grandchild.with_cancel();

    cancel_child.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(grandchild.err(), Some(Error::Canceled));
    assert_eq!(great.err(), Some(Error::Canceled));
    assert_eq!(parent.err(), None, "a child's cancel reached its parent");
    assert_eq!(sibling.err(), None, "a child's cancel reached its sibling");

    cancel_parent.cancel();
    assert_eq!(parent.err(), Some(Error::Canceled));
    assert_eq!(sibling.err(), Some(Error::Canceled));
    assert!(!Context::background().is_done());
}

/// A context derived from an already cancelled one is born cancelled,
/// with the parent's error.
#[test]
fn child_of_done_parent_is_done_at_once() {
    let (parent, _c) = Context::background().with_deadline(Instant::now());
    let (child, _c2) = parent.with_cancel();
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.done().try_recv(), Err(TryRecvError::Closed));
}

/// Dropping the CancelFunc cancels; `let (ctx, _) = ..` is cancelled at once.
#[test]
fn dropping_the_cancel_func_cancels() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(!ctx.is_done());
    drop(cancel);
    assert_eq!(ctx.err(), Some(Error::Canceled));

    let (ctx, _) = Context::background().with_cancel();
    assert!(ctx.is_done(), "`_` drops the CancelFunc at once");
}

/// Calling cancel twice, or after the deadline fired, keeps the first error.
#[test]
fn the_first_error_sticks() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(5));
    within(10, {
        let ctx = ctx.clone();
        move || ctx.done().recv().unwrap_err()
    });
    cancel.cancel();
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));

    // And the other way round: a cancelled context's timer never fires.
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(10));
    cancel.cancel();
    thread::sleep(Duration::from_millis(40));
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

/// A timeout fires with DeadlineExceeded, never before its duration.
#[test]
fn timeout_fires_with_deadline_exceeded() {
    let start = Instant::now();
    let d = Duration::from_millis(60);
    let (ctx, _cancel) = Context::background().with_timeout(d);
    let deadline = ctx.deadline().expect("a timeout has a deadline");
    assert!(deadline >= start + d);
    assert!(!ctx.is_done());
    let waited = ctx.clone();
    within(20, move || waited.done().recv().unwrap_err());
    let took = start.elapsed();
    assert!(took >= d, "done after {took:?}, before the {d:?} timeout");
    assert!(Instant::now() >= deadline);
    assert!(took < d + SLACK, "timeout took {took:?}");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let cause = ctx.cause().unwrap();
    assert_eq!(
        cause.downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

/// A timeout inside a goroutine parks it on done() and wakes it.
#[test]
fn timeout_from_a_goroutine() {
    let h = goro::go(|| {
        let start = Instant::now();
        let (ctx, _c) = Context::background().with_timeout(Duration::from_millis(30));
        let _ = ctx.done().recv();
        (start.elapsed(), ctx.err())
    });
    let (took, err) = within(20, move || h.join().unwrap());
    assert!(took >= Duration::from_millis(30), "{took:?}");
    assert_eq!(err, Some(Error::DeadlineExceeded));
}

/// A parent with an earlier deadline wins: the child reports and obeys it.
/// A child with an earlier deadline keeps its own.
#[test]
fn earlier_parent_deadline_wins() {
    let start = Instant::now();
    let (parent, _cp) = Context::background().with_timeout(Duration::from_millis(40));
    let (child, _cc) = parent.with_timeout(Duration::from_secs(3600));
    assert_eq!(child.deadline(), parent.deadline());
    let (grand, _cg) = child.with_deadline(Instant::now() + Duration::from_secs(60));
    assert_eq!(grand.deadline(), parent.deadline());

    let (short, _cs) = parent.with_timeout(Duration::from_millis(1));
    assert!(short.deadline().unwrap() < parent.deadline().unwrap());

    let waited = grand.clone();
    within(20, move || waited.done().recv().unwrap_err());
    assert!(start.elapsed() >= Duration::from_millis(40));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(grand.err(), Some(Error::DeadlineExceeded));
    assert_eq!(short.err(), Some(Error::DeadlineExceeded));
}

/// A deadline in the past cancels at once with DeadlineExceeded.
#[test]
fn past_deadline_cancels_at_once() {
    let past = Instant::now() - Duration::from_secs(1);
    let (ctx, _c) = Context::background().with_deadline(past);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(ctx.deadline(), Some(past));
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Closed));

    let (zero, _c) = Context::background().with_timeout(Duration::ZERO);
    assert_eq!(zero.err(), Some(Error::DeadlineExceeded));
}

/// A huge timeout saturates instead of overflowing.
#[test]
fn huge_timeout_does_not_overflow() {
    let (ctx, _c) = Context::background().with_timeout(Duration::MAX);
    assert!(ctx.deadline().unwrap() > Instant::now() + Duration::from_secs(3600));
    assert!(!ctx.is_done());
}

/// Values are found by type, through cancel links, the nearest one wins,
/// and a value is never visible above where it was added.
#[test]
fn values_by_type_and_shadowing() {
    #[derive(Debug, PartialEq)]
    struct User(&'static str);
    #[derive(Debug, PartialEq)]
    struct RequestId(u64);

    let root = Context::background().with_value(User("ann"));
    let (mid, _c) = root.with_cancel();
    let leaf = mid.with_value(RequestId(9)).with_value(User("bob"));
    assert_eq!(leaf.value::<User>(), Some(&User("bob")));
    assert_eq!(leaf.value::<RequestId>(), Some(&RequestId(9)));
    assert_eq!(mid.value::<User>(), Some(&User("ann")));
    assert_eq!(mid.value::<RequestId>(), None, "a value leaked upwards");
    assert_eq!(root.value::<u64>(), None);
    // The value is keyed by its exact type.
    let n = Context::background().with_value(5u32);
    assert_eq!(n.value::<u32>(), Some(&5));
    assert_eq!(n.value::<u64>(), None);
    // Value links share their parent's cancellation.
    let (c, cancel) = Context::background().with_cancel();
    let v = c.with_value(1i8);
    cancel.cancel();
    assert_eq!(v.err(), Some(Error::Canceled));
    assert!(format!("{leaf:?}").contains("with_value"));
}

/// A value lives as long as any context that can reach it.
#[test]
fn values_outlive_the_handle_they_were_added_through() {
    let leaf = {
        let root = Context::background().with_value(String::from("kept"));
        root.with_value(1u8)
    };
    assert_eq!(leaf.value::<String>().map(String::as_str), Some("kept"));
}

/// done() is one channel per context, and works as a select! arm in a
/// goroutine next to other channels.
#[test]
fn done_in_select_from_a_goroutine() {
    let (ctx, cancel) = Context::background().with_cancel();
    assert!(ctx.done().same_channel(&ctx.done()));
    let (tx, jobs) = goro::chan::bounded::<u32>(0);
    let worker = goro::go(move || {
        let mut sum = 0;
        loop {
            goro::select! {
                recv(jobs) -> j => sum += j.unwrap(),
                recv(ctx.done()) -> r => {
                    assert!(r.is_err(), "done() carries no values");
                    return (sum, ctx.err());
                }
            }
        }
    });
    for i in 1..=10 {
        tx.send(i).unwrap();
    }
    cancel.cancel();
    let (sum, err) = within(20, move || worker.join().unwrap());
    assert_eq!(sum, 55);
    assert_eq!(err, Some(Error::Canceled));
}

/// done() blocks a plain thread until cancel, from another plain thread.
#[test]
fn done_from_plain_threads() {
    let (ctx, cancel) = Context::background().with_cancel();
    // The clock starts before the threads do: a thread may start late.
    let start = Instant::now();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let ctx = ctx.clone();
            thread::spawn(move || {
                let r = goro::select! {
                    recv(ctx.done()) -> _ => ctx.err(),
                    default(Duration::from_secs(20)) => None,
                };
                (r, start.elapsed())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(30));
    thread::spawn(move || cancel.cancel()).join().unwrap();
    for w in waiters {
        let (r, took) = w.join().unwrap();
        assert_eq!(r, Some(Error::Canceled));
        assert!(took >= Duration::from_millis(30));
    }
}

/// A done() channel asked for after the cancel is born closed.
#[test]
fn done_after_cancel_is_closed() {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Closed));
}

/// Many children cancelled under a long-lived parent leave no links behind:
/// by cancel, by drop, by their own timeout, and by stopping an after_func.
#[test]
fn cancelled_children_leave_no_links() {
    let (parent, _keep) = Context::background().with_cancel();
    for _ in 0..10_000 {
        let (c, cancel) = parent.with_cancel();
        let _ = c.done(); // with a done channel too
        cancel.cancel();
    }
    assert_eq!(parent.__child_count(), 0);

    let kept: Vec<_> = (0..1000).map(|_| parent.with_cancel()).collect();
    assert_eq!(parent.__child_count(), 1000);
    // Children of children: only the direct ones are in the parent's table.
    let (_gc, _gcc) = kept[0].0.with_cancel();
    assert_eq!(parent.__child_count(), 1000);
    drop(kept);
    assert_eq!(parent.__child_count(), 0);

    // Value links add no entries; their cancel children go to the node.
    let v = parent.with_value(3u8);
    let (c, cancel) = v.with_cancel();
    assert_eq!(parent.__child_count(), 1);
    drop((c, cancel));
    assert_eq!(parent.__child_count(), 0);

    // Children that time out by themselves remove themselves too.
    let timed: Vec<_> = (0..100)
        .map(|_| parent.with_timeout(Duration::from_millis(5)))
        .collect();
    assert_eq!(parent.__child_count(), 100);
    for (c, _) in &timed {
        let c = c.clone();
        within(20, move || c.done().recv().unwrap_err());
    }
    assert_eq!(parent.__child_count(), 0);
    drop(timed);

    let after = context::after_func(&parent, || {});
    assert_eq!(parent.__child_count(), 1);
    assert!(after.stop());
    assert_eq!(parent.__child_count(), 0);
}

/// Cancelling a parent empties its table too, and the cancelled children
/// no longer hold entries of their own.
#[test]
fn cancelled_parent_frees_its_table() {
    let (parent, cancel) = Context::background().with_cancel();
    let children: Vec<_> = (0..100).map(|_| parent.with_cancel()).collect();
    let grandchildren: Vec<_> = children.iter().map(|(c, _)| c.with_cancel()).collect();
    assert_eq!(children[0].0.__child_count(), 1);
    cancel.cancel();
    assert_eq!(parent.__child_count(), 0);
    assert!(children.iter().all(|(c, _)| c.__child_count() == 0));
    assert!(grandchildren.iter().all(|(c, _)| c.is_done()));
}

/// A ten-thousand-link chain cancels and drops without deep recursion,
/// even on a goroutine's stack.
#[test]
fn deep_chain_cancels_without_recursion() {
    let h = goro::go(|| {
        let (root, cancel) = Context::background().with_cancel();
        let mut cur = root.clone();
        let mut cancels = Vec::new();
        for i in 0..10_000u32 {
            if i % 2 == 0 {
                let (c, f) = cur.with_cancel();
                cancels.push(f);
                cur = c;
            } else {
                cur = cur.with_value(i);
            }
        }
        cancel.cancel();
        let done = cur.is_done();
        drop(cancels);
        drop(cur);
        done
    });
    assert!(within(30, move || h.join().unwrap()));
}

/// Cancels racing with registrations: every child ends up done and the
/// parent's table ends up empty.
#[test]
fn concurrent_registration_and_cancel() {
    for _ in 0..20 {
        let (parent, cancel) = Context::background().with_cancel();
        let wg = goro::sync::WaitGroup::new();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..8 {
            let (parent, done) = (parent.clone(), done.clone());
            wg.go(move || {
                for _ in 0..200 {
                    let (c, f) = parent.with_cancel();
                    let _ = c.done().recv();
                    done.fetch_add(1, Ordering::Relaxed);
                    drop(f);
                }
            });
        }
        goro::yield_now();
        cancel.cancel();
        within(30, move || wg.wait());
        assert_eq!(done.load(Ordering::Relaxed), 8 * 200);
        assert_eq!(parent.__child_count(), 0);
    }
}

/// Causes: given by CancelCauseFunc, inherited by descendants, first one
/// wins, defaulting to the error; with_deadline_cause when it expires.
#[test]
fn causes() {
    let (ctx, cancel) = Context::background().with_cancel_cause();
    let (child, _c) = ctx.with_cancel();
    let v = child.with_value(1u16);
    assert!(ctx.cause().is_none());
    cancel.cancel(std::io::Error::other("disk on fire"));
    cancel.cancel("ignored: second cause");
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(ctx.cause().unwrap().to_string(), "disk on fire");
    assert_eq!(v.cause().unwrap().to_string(), "disk on fire");
    let io = v.cause().unwrap();
    assert!(io.downcast_ref::<std::io::Error>().is_some());

    // Dropping the CancelCauseFunc: the cause is the error.
    let (ctx, cancel) = Context::background().with_cancel_cause();
    drop(cancel);
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );

    // A child cancelled on its own keeps its own cause, the parent none.
    let (p, _pc) = Context::background().with_cancel_cause();
    let (c, cc) = p.with_cancel_cause();
    cc.cancel("child only");
    assert!(p.cause().is_none());
    assert_eq!(c.cause().unwrap().to_string(), "child only");

    // Deadline causes apply only when the deadline fires.
    let (t, _tc) = Context::background().with_timeout_cause(Duration::from_millis(5), "too slow");
    let waited = t.clone();
    within(20, move || waited.done().recv().unwrap_err());
    assert_eq!(t.err(), Some(Error::DeadlineExceeded));
    assert_eq!(t.cause().unwrap().to_string(), "too slow");
    let (t, tc) = Context::background().with_timeout_cause(Duration::from_secs(60), "too slow");
    tc.cancel();
    assert_eq!(
        t.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
}

/// after_func runs f once, in its own goroutine, after the context is done.
#[test]
fn after_func_runs_once_in_a_goroutine() {
    let (ctx, cancel) = Context::background().with_cancel();
    let (tx, rx) = goro::chan::bounded(2);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let after = context::after_func(&ctx, move || {
        r.fetch_add(1, Ordering::SeqCst);
        tx.send(goro::current_id().is_some()).unwrap();
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout),
        "ran before the context was done"
    );
    cancel.cancel();
    cancel.cancel();
    let in_goroutine = within(20, move || rx.recv().unwrap());
    assert!(in_goroutine, "f did not run in a goroutine");
    assert!(!after.stop(), "stop after f started must return false");
    thread::sleep(Duration::from_millis(20));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// stop before the context is done prevents f; after_func on a done
/// context starts f at once; on background it never runs.
#[test]
fn after_func_stop_and_edge_cases() {
    let (ctx, cancel) = Context::background().with_cancel();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let after = context::after_func(&ctx, move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(after.stop());
    assert!(!after.stop());
    cancel.cancel();
    thread::sleep(Duration::from_millis(30));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a stopped function ran");

    let (tx, rx) = goro::chan::bounded(1);
    let _late = context::after_func(&ctx, move || tx.send(()).unwrap());
    within(20, move || rx.recv().unwrap());

    let (tx, rx) = goro::chan::bounded::<()>(1);
    let never = context::after_func(&Context::background(), move || tx.send(()).unwrap());
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(never.stop());

    // Deadline expiry starts after-functions too, and reaches descendants'.
    let (p, _pc) = Context::background().with_timeout(Duration::from_millis(10));
    let (c, _cc) = p.with_cancel();
    let (tx, rx) = goro::chan::bounded(1);
    let _a = context::after_func(&c, move || tx.send(()).unwrap());
    within(20, move || rx.recv().unwrap());
    assert_eq!(c.err(), Some(Error::DeadlineExceeded));
}

/// without_cancel keeps values, drops cancellation and deadline.
#[test]
fn without_cancel_detaches() {
    let (ctx, cancel) = Context::background()
        .with_value("v")
        .with_timeout(Duration::from_millis(1));
    let detached = ctx.without_cancel();
    let (below, _c) = detached.with_cancel();
    drop(cancel);
    assert!(ctx.is_done());
    assert!(!detached.is_done());
    assert!(!below.is_done());
    assert_eq!(detached.deadline(), None);
    assert_eq!(below.value::<&str>(), Some(&"v"));
}

/// Debug shows the chain and the state.
#[test]
fn debug_output() {
    let (ctx, cancel) = Context::background().with_cancel();
    let v = ctx.with_value(1u32);
    let s = format!("{v:?}");
    assert!(s.contains("background.with_cancel.with_value(u32)"), "{s}");
    assert!(s.contains("err: None"), "{s}");
    cancel.cancel();
    assert!(format!("{v:?}").contains("Canceled"));
    assert!(format!("{cancel:?}").contains("CancelFunc"));
}
