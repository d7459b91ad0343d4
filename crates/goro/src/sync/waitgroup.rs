//! `WaitGroup`: wait for a collection of goroutines to finish.
//!
//! The counter is one atomic; waiters sit in a short locked list that only
//! the transition to zero drains ("register, then re-check": a waiter pushes
//! itself under the lock and then re-reads the counter, and `done` takes the
//! list under the same lock after its decrement, so no wake is lost).

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::runtime::park::{self, Unparker, WaitReason};

/// Waits for a collection of goroutines to finish (Go's `sync.WaitGroup`).
///
/// Cloning gives another handle to the same group.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let wg = goro::sync::WaitGroup::new();
/// let hits = Arc::new(AtomicUsize::new(0));
/// for _ in 0..10 {
///     let hits = hits.clone();
///     wg.go(move || { hits.fetch_add(1, Ordering::Relaxed); });
/// }
/// wg.wait();
/// assert_eq!(hits.load(Ordering::Relaxed), 10);
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Outstanding `add`s not yet matched by `done`.
    count: AtomicUsize,
    /// Parked in `wait`.
    waiters: Mutex<Vec<Unparker>>,
    /// First panic of a goroutine started with `WaitGroup::go`.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.inner.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl WaitGroup {
    /// A group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `n` to the counter.
    ///
    /// # Panics
    ///
    /// If the counter would overflow.
    pub fn add(&self, n: usize) {
        let prev = self.inner.count.fetch_add(n, Ordering::AcqRel);
        if prev.checked_add(n).is_none() {
            panic!("sync: WaitGroup counter overflow");
        }
    }

    /// Decrements the counter by one; at zero every waiter wakes.
    ///
    /// # Panics
    ///
    /// If the counter is already zero (more `done` than `add`), naming the
    /// misuse as Go does.
    pub fn done(&self) {
        let mut c = self.inner.count.load(Ordering::Acquire);
        loop {
            if c == 0 {
                panic!("sync: negative WaitGroup counter (WaitGroup::done called more times than WaitGroup::add)");
            }
            match self.inner.count.compare_exchange_weak(
                c,
                c - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if c == 1 {
            let waiters = std::mem::take(&mut *self.inner.waiters.lock());
            for w in waiters {
                w.unpark();
            }
        }
    }

    /// Runs `f` in a new goroutine counted by this group: `add(1)`, spawn,
    /// and `done()` when it returns, even if it panics. A panic is re-raised
    /// by [`wait`](WaitGroup::wait).
    #[track_caller]
    pub fn go<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.add(1);
        let wg = self.clone();
        let h = crate::go(move || {
            if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
                let mut slot = wg.inner.panic.lock();
                if slot.is_none() {
                    *slot = Some(p);
                }
            }
            wg.done();
        });
        drop(h);
    }

    /// Waits until the counter is zero.
    ///
    /// # Panics
    ///
    /// Re-raises the first panic of a goroutine started with
    /// [`WaitGroup::go`], once every counted goroutine has finished.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn wait(&self) {
        let done = self.wait_until(None, Location::caller());
        debug_assert!(done);
    }

    /// Waits until the counter is zero or `timeout` has passed; true if it
    /// reached zero. Not in Go (where one selects on a channel closed after
    /// `Wait`); handy for bounded shutdowns.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wg = goro::sync::WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(5))); // nobody called done
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(5)));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`wait`](WaitGroup::wait), when the counter reaches zero.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
        let deadline = crate::runtime::timer::deadline_after(timeout);
        self.wait_until(Some(deadline), Location::caller())
    }

    /// `wait` with an optional deadline; true if the counter reached zero.
    fn wait_until(
        &self,
        deadline: Option<std::time::Instant>,
        site: &'static Location<'static>,
    ) -> bool {
        let me = Unparker::current();
        let mut reached = true;
        while self.inner.count.load(Ordering::Acquire) != 0 {
            if deadline.is_some_and(|d| crate::time::now() >= d) {
                reached = false;
                break;
            }
            {
                let mut ws = self.inner.waiters.lock();
                if self.inner.count.load(Ordering::Acquire) == 0 {
                    break;
                }
                if !ws.iter().any(|w| w.same(&me)) {
                    ws.push(me.clone());
                }
            }
            park::park_until(WaitReason::WaitGroupWait, site, deadline);
        }
        {
            let mut ws = self.inner.waiters.lock();
            ws.retain(|w| !w.same(&me));
        }
        if reached {
            if let Some(p) = self.inner.panic.lock().take() {
                std::panic::resume_unwind(p);
            }
        }
        reached
    }
}
