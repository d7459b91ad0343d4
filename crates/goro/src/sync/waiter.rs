//! The waiter record shared by the `sync` primitives.
//!
//! A blocked goroutine (or thread) puts an `Arc<Waiter>` in the primitive's
//! queue (under the primitive's queue lock), releases the lock and parks until
//! its `state` leaves `WAITING`. Whoever grants or wakes it stores the new
//! state (Release) and then unparks it; since the queue's `Arc` keeps the
//! record alive, the store and the unpark never touch freed memory.

use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::chan::{Receiver, Sender};
use crate::runtime::atomic::AtomicU8;
use crate::runtime::park::{self, Unparker, WaitReason};

/// Still waiting.
pub(crate) const WAITING: u8 = 0;
/// Woken to try again (for example a Mutex in normal mode).
pub(crate) const WOKEN: u8 = 1;
/// Granted what it waited for (ownership handed over directly).
pub(crate) const GRANTED: u8 = 2;

/// One blocked goroutine or thread.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// Who to wake.
    unparker: Unparker,
    /// `WAITING`, then `WOKEN` or `GRANTED`.
    state: AtomicU8,
    /// Units requested (Semaphore); 0 elsewhere.
    pub(crate) n: usize,
    /// Also told on `signal`, for waiters that wait in a `select!` (on this
    /// and a context's `done()` channel).
    notify: Option<Sender<()>>,
}

impl Waiter {
    /// A waiter for the running goroutine or thread.
    pub(crate) fn new(n: usize) -> Arc<Waiter> {
        Arc::new(Waiter {
            unparker: Unparker::current(),
            state: AtomicU8::new(WAITING),
            n,
            notify: None,
        })
    }

    /// A waiter that is also told through a channel, to wait in `select!`.
    pub(crate) fn with_channel(n: usize) -> (Arc<Waiter>, Receiver<()>) {
        let (tx, rx) = crate::chan::bounded(1);
        let w = Waiter {
            unparker: Unparker::current(),
            state: AtomicU8::new(WAITING),
            n,
            notify: Some(tx),
        };
        (Arc::new(w), rx)
    }

    /// Parks until signalled; returns the state it was signalled with.
    pub(crate) fn wait(&self, reason: WaitReason, site: &'static Location<'static>) -> u8 {
        loop {
            // Acquire pairs with the Release store in `signal`.
            let s = self.state.load(Ordering::Acquire);
            if s != WAITING {
                return s;
            }
            park::park(reason, site);
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Signals the waiter with `state` and wakes it. Call after releasing
    /// the queue lock when possible.
    pub(crate) fn signal(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        match &self.notify {
            Some(tx) => {
                let _ = tx.try_send(());
            }
            None => self.unparker.unpark(),
        }
    }
}
