//! `Semaphore`: a weighted semaphore with strict FIFO order (Go's
//! `golang.org/x/sync/semaphore.Weighted`).
//!
//! State behind one short lock: `cur` units held and a FIFO queue of waiters,
//! each asking for `n` units. A release grants waiters from the front as
//! long as the *front* one fits, and stops at the first that does not: a
//! big request is never overtaken by smaller ones behind it (no starvation),
//! at the price of some idle capacity while it waits. The releasing side
//! adds the units to `cur` before it wakes a waiter, so a woken waiter
//! already holds them.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

use crate::runtime::atomic::QueueLock;

use super::waiter::{Waiter, GRANTED};
use crate::context::{self, Context};
use crate::runtime::park::WaitReason;

struct State {
    /// Units held.
    cur: usize,
    /// Waiters, oldest first; each one's `n` is the units it asks for.
    waiters: VecDeque<Arc<Waiter>>,
}

/// A weighted semaphore: `size` units, acquired and released in any amounts,
/// granted in strict FIFO order.
///
/// ```
/// use std::sync::Arc;
/// let sem = Arc::new(goro::sync::Semaphore::new(2));
/// sem.acquire(2);
/// assert!(!sem.try_acquire(1));
/// let s = sem.clone();
/// let h = goro::go(move || { s.acquire(1); s.release(1); });
/// sem.release(2);
/// h.join().unwrap();
/// ```
pub struct Semaphore {
    /// Total units.
    size: usize,
    /// Held units and waiters.
    st: QueueLock<State>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.st.lock();
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("held", &st.cur)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `size` units, none held.
    pub fn new(size: usize) -> Semaphore {
        Semaphore {
            size,
            st: QueueLock::new(State {
                cur: 0,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Acquires `n` units, waiting (in FIFO order) until they are available.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the semaphore's size: such a request could never be
    /// granted (Go's version would wait forever).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn acquire(&self, n: usize) {
        if n > self.size {
            panic!(
                "Semaphore::acquire({n}) can never succeed: the semaphore's size is {}",
                self.size
            );
        }
        let w = match self.enqueue(n) {
            None => return,
            Some(w) => w,
        };
        let cleanup = Abandon { s: self, w: &w };
        w.wait(WaitReason::SemaphoreAcquire, Location::caller());
        std::mem::forget(cleanup);
    }

    /// Acquires `n` units, or gives up when `ctx` is done.
    ///
    /// # Errors
    ///
    /// The context's error if it is already done when called (even if the
    /// units are free, as Go's `Acquire`), or becomes done first. A request
    /// larger than the size waits for the context without blocking others.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn acquire_ctx(&self, ctx: &Context, n: usize) -> Result<(), context::Error> {
        if let Some(e) = ctx.err() {
            return Err(e);
        }
        if n > self.size {
            let _ = ctx.done().recv();
            return Err(ctx.err().unwrap_or(context::Error::Canceled));
        }
        let (w, granted) = {
            let mut st = self.st.lock();
            if self.size - st.cur >= n && st.waiters.is_empty() {
                st.cur += n;
                return Ok(());
            }
            let (w, rx) = Waiter::with_channel(n);
            st.waiters.push_back(w.clone());
            (w, rx)
        };
        let cleanup = Abandon { s: self, w: &w };
        let done = ctx.done();
        // A grant sends on `granted`; cancellation closes `done`.
        crate::select! {
            recv(granted) -> _ => {
                debug_assert_eq!(w.state(), GRANTED);
                std::mem::forget(cleanup);
                Ok(())
            },
            recv(done) -> _ => {
                // `cleanup` takes us out of the queue, or gives back units
                // granted in the meantime (as Go does).
                drop(cleanup);
                Err(ctx.err().unwrap_or(context::Error::Canceled))
            },
        }
    }

    /// Acquires `n` units if they are available now (and nobody waits).
    pub fn try_acquire(&self, n: usize) -> bool {
        let mut st = self.st.lock();
        if self.size - st.cur >= n && st.waiters.is_empty() {
            st.cur += n;
            true
        } else {
            false
        }
    }

    /// Releases `n` units, granting waiters in FIFO order.
    ///
    /// # Panics
    ///
    /// If more units are released than are held.
    pub fn release(&self, n: usize) {
        let granted = {
            let mut st = self.st.lock();
            if n > st.cur {
                let cur = st.cur;
                drop(st);
                panic!("Semaphore::release({n}): released more than held ({cur} held)");
            }
            st.cur -= n;
            self.grant(&mut st)
        };
        for w in granted {
            w.signal(GRANTED);
        }
    }

    /// Takes `n` units now, or queues a waiter for them.
    fn enqueue(&self, n: usize) -> Option<Arc<Waiter>> {
        let mut st = self.st.lock();
        if self.size - st.cur >= n && st.waiters.is_empty() {
            st.cur += n;
            return None;
        }
        let w = Waiter::new(n);
        st.waiters.push_back(w.clone());
        Some(w)
    }

    /// Grants waiters from the front while the front one fits.
    fn grant(&self, st: &mut State) -> Vec<Arc<Waiter>> {
        let mut out = Vec::new();
        while let Some(front) = st.waiters.front() {
            if self.size - st.cur < front.n {
                break;
            }
            st.cur += front.n;
            out.push(st.waiters.pop_front().expect("front exists"));
        }
        out
    }
}

/// Takes a waiter that gives up (context done, or unwinding) out of the
/// queue, or returns units it was granted meanwhile.
struct Abandon<'a> {
    s: &'a Semaphore,
    w: &'a Arc<Waiter>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let granted = {
            let mut st = self.s.st.lock();
            if let Some(pos) = st.waiters.iter().position(|x| Arc::ptr_eq(x, self.w)) {
                st.waiters.remove(pos);
                // Our removal may let the new front through.
                if pos == 0 {
                    self.s.grant(&mut st)
                } else {
                    Vec::new()
                }
            } else {
                // Granted after all: give the units back.
                st.cur -= self.w.n;
                self.s.grant(&mut st)
            }
        };
        for w in granted {
            w.signal(GRANTED);
        }
    }
}
