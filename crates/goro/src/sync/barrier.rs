//! `Barrier`: wait until `n` goroutines have arrived.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use parking_lot::Mutex as QueueLock;

use super::waiter::{Waiter, WOKEN};
use crate::runtime::park::WaitReason;

/// Lets `n` goroutines (or threads) wait for each other, like
/// `std::sync::Barrier`; reusable round after round.
///
/// ```
/// use std::sync::Arc;
/// let b = Arc::new(goro::sync::Barrier::new(3));
/// let hs: Vec<_> = (0..3)
///     .map(|_| { let b = b.clone(); goro::go(move || b.wait().is_leader()) })
///     .collect();
/// let leaders = hs.into_iter().filter(|_| true).map(|h| h.join().unwrap()).filter(|&l| l).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    /// Participants per round (at least 1).
    n: usize,
    /// Arrivals in the current round and their waiters.
    st: QueueLock<Round>,
}

struct Round {
    /// Goroutines waiting in this round.
    waiters: Vec<Arc<Waiter>>,
}

/// What [`Barrier::wait`] returns: exactly one participant per round is the
/// leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this participant arrived last (one per round).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("waiting", &self.st.lock().waiters.len())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `n` participants (`0` behaves as `1`, as std's).
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            st: QueueLock::new(Round {
                waiters: Vec::new(),
            }),
        }
    }

    /// Waits until `n` participants have called `wait` in this round.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        let w = {
            let mut st = self.st.lock();
            if st.waiters.len() + 1 == self.n {
                let all = std::mem::take(&mut st.waiters);
                drop(st);
                for w in all {
                    w.signal(WOKEN);
                }
                return BarrierWaitResult(true);
            }
            let w = Waiter::new(0);
            st.waiters.push(w.clone());
            w
        };
        let cleanup = Leave { b: self, w: &w };
        w.wait(WaitReason::BarrierWait, Location::caller());
        std::mem::forget(cleanup);
        BarrierWaitResult(false)
    }
}

/// Takes an unwinding participant out of its round.
struct Leave<'a> {
    b: &'a Barrier,
    w: &'a Arc<Waiter>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut st = self.b.st.lock();
        st.waiters.retain(|x| !Arc::ptr_eq(x, self.w));
    }
}
