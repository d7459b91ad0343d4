//! `Once`: run an initialisation exactly once (Go's `sync.Once`).

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex as QueueLock;

use super::waiter::{Waiter, WOKEN};
use crate::runtime::park::WaitReason;

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// Runs a function exactly once, however many goroutines call
/// [`call_once`](Once::call_once); the others wait until it has returned.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static INIT: goro::sync::Once = goro::sync::Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
/// let wg = goro::sync::WaitGroup::new();
/// for _ in 0..8 {
///     wg.go(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::SeqCst); }));
/// }
/// wg.wait();
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
/// ```
///
/// As in Go (and unlike `std::sync::Once`), if `f` panics the `Once` still
/// counts as done: later calls return without calling anything, and the
/// panic propagates to the caller that ran `f`.
pub struct Once {
    /// `INCOMPLETE`, `RUNNING` or `DONE`.
    state: AtomicU8,
    /// Callers waiting for the running one.
    waiters: QueueLock<Vec<Arc<Waiter>>>,
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_completed())
            .finish()
    }
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl Once {
    /// A `Once` that has not run; usable in statics.
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            waiters: parking_lot::const_mutex(Vec::new()),
        }
    }

    /// Whether the function has run (or panicked).
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Calls `f` if no call has started yet; otherwise waits until the
    /// running call has returned. Calling it again from inside `f` waits
    /// forever (as in Go).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread, while another caller runs `f`.
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Acquire pairs with the Release store of DONE.
        if self.state.load(Ordering::Acquire) == DONE {
            return;
        }
        self.call_slow(f, Location::caller());
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F, site: &'static Location<'static>) {
        if self
            .state
            .compare_exchange(INCOMPLETE, RUNNING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            struct Finish<'a>(&'a Once);
            impl Drop for Finish<'_> {
                fn drop(&mut self) {
                    let ws = {
                        let mut q = self.0.waiters.lock();
                        self.0.state.store(DONE, Ordering::Release);
                        std::mem::take(&mut *q)
                    };
                    for w in ws {
                        w.signal(WOKEN);
                    }
                }
            }
            let _finish = Finish(self);
            f();
            return;
        }
        loop {
            let w = {
                let mut q = self.waiters.lock();
                if self.state.load(Ordering::Acquire) == DONE {
                    return;
                }
                let w = Waiter::new(0);
                q.push(w.clone());
                w
            };
            w.wait(WaitReason::OnceWait, site);
            if self.state.load(Ordering::Acquire) == DONE {
                return;
            }
        }
    }
}
