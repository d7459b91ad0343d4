//! `Cond`: a condition variable for goro's `Mutex` (Go's `sync.Cond`).

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use parking_lot::Mutex as QueueLock;

use super::mutex::MutexGuard;
use super::waiter::{Waiter, WAITING, WOKEN};
use crate::runtime::park::WaitReason;

/// A condition variable: goroutines wait for a condition guarded by a
/// [`Mutex`](super::Mutex) and are woken in FIFO order (Go's `sync.Cond`).
///
/// ```
/// use std::sync::Arc;
/// use goro::sync::{Cond, Mutex};
///
/// let state = Arc::new((Mutex::new(false), Cond::new()));
/// let s = state.clone();
/// let h = goro::go(move || {
///     let (ready, cond) = &*s;
///     let mut g = ready.lock();
///     while !*g {
///         g = cond.wait(g);
///     }
/// });
/// {
///     let (ready, cond) = &*state;
///     *ready.lock() = true;
///     cond.notify_all();
/// }
/// h.join().unwrap();
/// ```
#[derive(Default)]
pub struct Cond {
    /// Waiters, oldest first.
    queue: QueueLock<VecDeque<Arc<Waiter>>>,
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond")
            .field("waiters", &self.queue.lock().len())
            .finish()
    }
}

impl Cond {
    /// A condition variable with no waiters.
    pub const fn new() -> Cond {
        Cond {
            queue: parking_lot::const_mutex(VecDeque::new()),
        }
    }

    /// Unlocks the guard's mutex, waits until notified, then locks it again.
    /// As in Go, wake-ups come only from `notify_*`, but the condition may
    /// have changed again by the time the lock is retaken: wait in a loop.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let site = Location::caller();
        let m = guard.mutex();
        let w = Waiter::new(0);
        // Register before unlocking: a notify after the unlock finds us.
        self.queue.lock().push_back(w.clone());
        drop(guard);
        let cleanup = Remove { cond: self, w: &w };
        w.wait(WaitReason::CondWait, site);
        drop(cleanup);
        m.lock()
    }

    /// Wakes the longest-waiting goroutine, if any.
    pub fn notify_one(&self) {
        let w = self.queue.lock().pop_front();
        if let Some(w) = w {
            w.signal(WOKEN);
        }
    }

    /// Wakes every waiting goroutine.
    pub fn notify_all(&self) {
        let all = std::mem::take(&mut *self.queue.lock());
        for w in all {
            w.signal(WOKEN);
        }
    }
}

/// Takes an unwinding waiter out of the queue, passing on a notify it got.
struct Remove<'a> {
    cond: &'a Cond,
    w: &'a Arc<Waiter>,
}

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        if self.w.state() != WAITING {
            return;
        }
        let mut q = self.cond.queue.lock();
        if let Some(pos) = q.iter().position(|x| Arc::ptr_eq(x, self.w)) {
            q.remove(pos);
        } else if let Some(next) = q.pop_front() {
            // Notified while unwinding: hand the notification on.
            drop(q);
            next.signal(WOKEN);
        }
    }
}
