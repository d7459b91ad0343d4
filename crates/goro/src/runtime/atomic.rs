//! Atomics used by the wake-up protocols, swappable for loom's.
//!
//! The protocols that decide whether a wake-up can be lost (the park token,
//! the waiter claim, the worker sleep handshake) use these types, so that
//! `RUSTFLAGS="--cfg goro_loom"` model-checks the very code that runs
//! (see `loom_models.rs`). Everything else uses `std` atomics directly.

#[cfg(goro_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize};
#[cfg(not(goro_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU8, AtomicUsize};

/// A short internal lock (waiter queues of the `sync` primitives): parking_lot's
/// mutex normally, loom's under the model checker (whose threads must never
/// block on a real lock).
#[derive(Debug, Default)]
pub(crate) struct QueueLock<T> {
    #[cfg(not(goro_loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(goro_loom)]
    inner: loom::sync::Mutex<T>,
}

/// Guard of a [`QueueLock`].
#[cfg(not(goro_loom))]
pub(crate) type QueueGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// Guard of a [`QueueLock`].
#[cfg(goro_loom)]
pub(crate) type QueueGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> QueueLock<T> {
    #[cfg(not(goro_loom))]
    pub(crate) const fn new(v: T) -> QueueLock<T> {
        QueueLock {
            inner: parking_lot::const_mutex(v),
        }
    }
    #[cfg(goro_loom)]
    pub(crate) fn new(v: T) -> QueueLock<T> {
        QueueLock {
            inner: loom::sync::Mutex::new(v),
        }
    }
    #[cfg(not(goro_loom))]
    pub(crate) fn lock(&self) -> QueueGuard<'_, T> {
        self.inner.lock()
    }
    #[cfg(goro_loom)]
    pub(crate) fn lock(&self) -> QueueGuard<'_, T> {
        self.inner.lock().expect("no poisoning in the model")
    }
}
