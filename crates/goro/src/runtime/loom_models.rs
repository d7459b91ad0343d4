//! Loom models of the protocols where a lost wake-up would hang a goroutine:
//! the park token, the worker sleep handshake, and the channel waiter claim;
//! and of stack compaction's slot state machine.
//! They exercise the real functions (`begin_park`, `notify`,
//! `ThreadParker`, `announce_sleep`/`must_wake`, `WaitCtx`), compiled
//! against loom's atomics.
//!
//! Run: `RUSTFLAGS="--cfg goro_loom" cargo test -p goro --release --lib loom`

use std::sync::atomic::Ordering;
use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use super::atomic::{AtomicBool as ShimBool, AtomicU32};
use super::park::{begin_park, notify, ThreadParker, RUNNING};
use super::worker::{announce_sleep, must_wake};
use crate::chan::{complete, WaitCtx, DONE_CLOSED, DONE_OK};

/// A goroutine parks until a condition holds; a waker sets it and unparks.
/// The "scheduler" is a flag the waiter spins on while switched out. No wake
/// is lost and the waiter is made runnable at most once per park.
#[test]
fn loom_park_token_never_loses_a_wake() {
    loom::model(|| {
        let state = Arc::new(AtomicU32::new(RUNNING));
        let cond = Arc::new(AtomicBool::new(false));
        let scheduled = Arc::new(AtomicUsize::new(0));
        let waker = {
            let (state, cond, scheduled) = (state.clone(), cond.clone(), scheduled.clone());
            thread::spawn(move || {
                cond.store(true, Ordering::Release);
                if notify(&state) {
                    scheduled.fetch_add(1, Ordering::AcqRel);
                }
            })
        };
        let mut resumed = 0;
        while !cond.load(Ordering::Acquire) {
            if begin_park(&state) {
                // Switched out: only a `notify` that returned true resumes us.
                while scheduled.load(Ordering::Acquire) == resumed {
                    thread::yield_now();
                }
                resumed += 1;
            }
        }
        waker.join().unwrap();
        assert!(scheduled.load(Ordering::Acquire) <= 1);
    });
}

/// The thread parker: an unpark before, during or after the park always
/// lets the parked thread see the flag.
#[test]
fn loom_thread_parker_wakes() {
    loom::model(|| {
        let p = Arc::new(ThreadParker::new());
        let flag = Arc::new(AtomicBool::new(false));
        let t = {
            let (p, flag) = (p.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(true, Ordering::Release);
                p.unpark();
            })
        };
        while !flag.load(Ordering::Acquire) {
            p.park(None);
        }
        t.join().unwrap();
    });
}

/// Worker sleep handshake: a producer queues work and checks `must_wake`;
/// the worker announces its sleep, re-checks the queue, then parks. The
/// worker never sleeps through queued work.
#[test]
fn loom_worker_sleep_handshake() {
    loom::model(|| {
        let sleeping = Arc::new(ShimBool::new(false));
        let queued = Arc::new(AtomicBool::new(false));
        let parker = Arc::new(ThreadParker::new());
        let producer = {
            let (sleeping, queued, parker) = (sleeping.clone(), queued.clone(), parker.clone());
            thread::spawn(move || {
                queued.store(true, Ordering::Release);
                if must_wake(&sleeping) {
                    parker.unpark();
                }
            })
        };
        // Worker: found nothing, so it goes to sleep.
        announce_sleep(&sleeping);
        while !queued.load(Ordering::Acquire) {
            parker.park(None);
        }
        sleeping.store(false, Ordering::SeqCst);
        producer.join().unwrap();
    });
}

/// Shares a wait context (normally on the waiter's stack) with claimers.
struct Shared(WaitCtx);
// SAFETY: test-only: the context outlives every thread that touches it
// (all are joined before the model iteration ends).
unsafe impl Send for Shared {}
// SAFETY: as above; its fields are atomics and the waiter handle.
unsafe impl Sync for Shared {}

/// Two claimers race for one waiter (a select over two channels): exactly
/// one wins, and the waiter sees that winner's outcome and value.
#[test]
fn loom_waiter_is_claimed_exactly_once() {
    loom::model(|| {
        let ctx = Arc::new(Shared(WaitCtx::new()));
        let slot = Arc::new(AtomicUsize::new(0));
        let wins = Arc::new(AtomicUsize::new(0));
        let claimers: Vec<_> = [(0usize, DONE_OK), (1usize, DONE_CLOSED)]
            .into_iter()
            .map(|(case, kind)| {
                let (ctx, slot, wins) = (ctx.clone(), slot.clone(), wins.clone());
                thread::spawn(move || {
                    if ctx.0.claim(case) {
                        wins.fetch_add(1, Ordering::Relaxed);
                        slot.store(case + 10, Ordering::Relaxed);
                        // SAFETY: claimed just above and not completed.
                        unsafe { complete(&ctx.0, kind) }.unpark();
                    }
                })
            })
            .collect();
        let (case, kind) = ctx
            .0
            .wait(
                None,
                super::park::WaitReason::Select,
                std::panic::Location::caller(),
            )
            .unwrap();
        assert_eq!(
            slot.load(Ordering::Relaxed),
            case + 10,
            "the winner's value is visible after done"
        );
        assert_eq!(kind, if case == 0 { DONE_OK } else { DONE_CLOSED });
        for c in claimers {
            c.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::Relaxed), 1);
    });
}

/// A waiter giving up (timeout) races a claimer: either the abort wins and
/// the claimer backs off, or the claimer wins and the waiter waits for it.
#[test]
fn loom_abort_races_claim() {
    loom::model(|| {
        let ctx = Arc::new(Shared(WaitCtx::new()));
        let delivered = Arc::new(AtomicBool::new(false));
        let claimer = {
            let (ctx, delivered) = (ctx.clone(), delivered.clone());
            thread::spawn(move || {
                if ctx.0.claim(0) {
                    delivered.store(true, Ordering::Relaxed);
                    // SAFETY: claimed just above.
                    unsafe { complete(&ctx.0, DONE_OK) }.unpark();
                    true
                } else {
                    false
                }
            })
        };
        ctx.0.abandon(std::panic::Location::caller());
        let claimed = claimer.join().unwrap();
        // After `abandon`, nobody writes to the waiter any more.
        assert_eq!(delivered.load(Ordering::Relaxed), claimed);
        if claimed {
            assert_eq!(ctx.0.done.load(Ordering::Acquire), DONE_OK);
        }
    });
}

/// The goro Mutex: three threads lock, increment, unlock. Under the model
/// checker every re-queued waiter switches the mutex to starvation mode, so
/// both the normal wake-and-compete path and the direct hand-off are
/// explored. No wake is lost (a lost one spins forever and fails the model)
/// and the count is exact (mutual exclusion).
#[test]
fn loom_mutex_hand_off() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let m = Arc::new(crate::sync::Mutex::new(0u32));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    *m.lock() += 1;
                })
            })
            .collect();
        *m.lock() += 1;
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 3);
    });
}

/// The weighted semaphore: a big request queued first is granted before a
/// later small one, and every release reaches the waiters (no lost wake).
#[test]
fn loom_semaphore_fifo_hand_off() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let s = Arc::new(crate::sync::Semaphore::new(2));
        s.acquire(1);
        let big = {
            let s = s.clone();
            thread::spawn(move || {
                s.acquire(2);
                s.release(2);
            })
        };
        let small = {
            let s = s.clone();
            thread::spawn(move || {
                s.acquire(1);
                s.release(1);
            })
        };
        s.release(1);
        big.join().unwrap();
        small.join().unwrap();
        assert!(s.try_acquire(2), "all units are back");
    });
}

/// Stack compaction's slot state machine (`compact.rs`), modelled with the
/// kernel's page as a lock-protected `Option` (`None`: missing, so an access
/// faults; `UFFDIO_MOVE` takes the page atomically, `UFFDIO_COPY` fills only
/// a missing page). The home worker compacts the slot and later restores it
/// before resuming the goroutine, while a foreign thread writes the stack
/// (faulting into the handler's protocol when the page is gone). The
/// foreign write is never lost, a restore never finds the page present (the
/// `EEXIST` the real code aborts on), and the owner never sees
/// `COMPACTING`. (A model of the protocol, not of the ioctl-issuing code.)
#[test]
fn loom_compaction_state_machine() {
    use super::compact::{COMPACTED, COMPACTING, RESIDENT, RESTORING};
    use loom::sync::atomic::AtomicU8;
    use loom::sync::Mutex;

    struct Slot {
        state: AtomicU8,
        page: Mutex<Option<u64>>,
        /// The buffer; touched only by the holder of the state.
        buf: loom::cell::UnsafeCell<u64>,
    }
    // SAFETY: `buf` is only touched by the holder of the slot's state.
    unsafe impl Sync for Slot {}

    /// Restores from the buffer; the caller holds RESTORING.
    fn restore(s: &Slot) {
        // SAFETY: the caller holds the slot in RESTORING.
        let v = s.buf.with(|b| unsafe { *b });
        let mut p = s.page.lock().unwrap();
        assert!(p.is_none(), "UFFDIO_COPY over a present page");
        *p = Some(v);
    }

    /// The fault handler for a missing page of the slot.
    fn on_fault(s: &Slot) {
        loop {
            match s.state.load(Ordering::Acquire) {
                COMPACTED => {
                    if s.state
                        .compare_exchange(
                            COMPACTED,
                            RESTORING,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        restore(s);
                        s.state.store(RESIDENT, Ordering::Release);
                    }
                }
                COMPACTING | RESTORING => thread::yield_now(),
                _ => {
                    if s.state
                        .compare_exchange(RESIDENT, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    // Lazy fill (or a stale message: the page is there).
                    let mut p = s.page.lock().unwrap();
                    if p.is_none() {
                        *p = Some(0);
                    }
                    drop(p);
                    s.state.store(RESIDENT, Ordering::Release);
                    return;
                }
            }
        }
    }

    /// A user-mode read-modify-write of the stack word.
    fn access(s: &Slot, f: impl Fn(u64) -> u64) -> u64 {
        loop {
            {
                let mut p = s.page.lock().unwrap();
                if let Some(v) = p.as_mut() {
                    *v = f(*v);
                    return *v;
                }
            }
            on_fault(s);
        }
    }

    /// The home worker compacts the suspended goroutine's slot.
    fn compact(s: &Slot) {
        if s.state
            .compare_exchange(RESIDENT, COMPACTING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let v = s.page.lock().unwrap().take(); // UFFDIO_MOVE
                                                   // SAFETY: we hold the slot in COMPACTING.
            s.buf.with_mut(|b| unsafe { *b = v.unwrap_or(0) });
            s.state.store(COMPACTED, Ordering::Release);
        }
    }

    /// The home worker, before resuming the goroutine: restore if needed.
    fn restore_before_resume(s: &Slot) {
        loop {
            match s.state.load(Ordering::Acquire) {
                COMPACTED => {
                    if s.state
                        .compare_exchange(
                            COMPACTED,
                            RESTORING,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        restore(s);
                        s.state.store(RESIDENT, Ordering::Release);
                        return;
                    }
                }
                RESIDENT => return,
                RESTORING => thread::yield_now(),
                _ => panic!("the owner saw COMPACTING"),
            }
        }
    }

    // The waker's inline restore (`restore_for_waker`): acts only on
    // COMPACTED; `give_back` models a scratch too small for the stack
    // (RESTORING → COMPACTED, nothing touched). Then it writes the word.
    let waker = |s: &Slot, give_back: bool| {
        if s.state.load(Ordering::Acquire) == COMPACTED
            && s.state
                .compare_exchange(COMPACTED, RESTORING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            if give_back {
                s.state.store(COMPACTED, Ordering::Release);
            } else {
                restore(s);
                s.state.store(RESIDENT, Ordering::Release);
            }
        }
        access(s, |v| v + 100)
    };

    for give_back in [false, true] {
        loom::model(move || {
            let s = Arc::new(Slot {
                state: AtomicU8::new(RESIDENT),
                page: Mutex::new(Some(1)),
                buf: loom::cell::UnsafeCell::new(0),
            });
            let w = {
                let s = s.clone();
                thread::spawn(move || waker(&s, give_back))
            };
            // Home worker: compact, then restore before resuming.
            compact(&s);
            restore_before_resume(&s);
            let theirs = w.join().unwrap();
            let end = access(&s, |v| v);
            assert_eq!(end, 101, "the waker's write was lost");
            assert_eq!(theirs, 101);
        });
    }

    loom::model(|| {
        let s = Arc::new(Slot {
            state: AtomicU8::new(RESIDENT),
            page: Mutex::new(Some(1)),
            buf: loom::cell::UnsafeCell::new(0),
        });
        let foreign = {
            let s = s.clone();
            thread::spawn(move || access(&s, |v| v + 10))
        };
        // Home worker: compact (the goroutine is suspended), and later,
        // before resuming it, restore if needed.
        compact(&s);
        restore_before_resume(&s);
        // The goroutine runs again and reads its word.
        let mine = access(&s, |v| v);
        let theirs = foreign.join().unwrap();
        let end = access(&s, |v| v);
        assert_eq!(end, 11, "the foreign write was lost");
        assert!(mine == 1 || mine == 11);
        assert!(theirs == 11);
    });
}
