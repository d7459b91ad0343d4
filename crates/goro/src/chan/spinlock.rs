//! The channel lock: a test-and-test-and-set spin lock (Go's runtime `lock`
//! plays the same role for `hchan`).
//!
//! Channel critical sections are a handful of pointer moves and never park,
//! run user code or take another lock except in address order (`select!`),
//! so a spin lock fits: locking is one CAS and unlocking one release store
//! (no read-modify-write), which is a measurable share of a hand-off. A
//! waiter spins with `pause`, then gives its core away with `sched_yield`
//! so a preempted holder can finish.

use std::sync::atomic::{AtomicBool, Ordering};

/// A spin lock without data; `Chan` pairs it with an `UnsafeCell`.
#[derive(Debug, Default)]
pub(crate) struct SpinLock {
    /// True while held.
    locked: AtomicBool,
}

impl SpinLock {
    pub(crate) const fn new() -> SpinLock {
        SpinLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Acquires the lock.
    #[inline]
    pub(crate) fn lock(&self) {
        // Acquire pairs with the Release store in `unlock`.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    for _ in 0..(1 << spins.min(6)) {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
                spins += 1;
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// * The caller holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        debug_assert!(self.locked.load(Ordering::Relaxed));
        self.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;
    use std::cell::UnsafeCell;
    use std::sync::Arc;

    struct Counter(SpinLock, UnsafeCell<u64>);
    // SAFETY: the cell is only touched with the lock held.
    unsafe impl Sync for Counter {}

    #[test]
    fn excludes_concurrent_holders() {
        let c = Arc::new(Counter(SpinLock::new(), UnsafeCell::new(0)));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        c.0.lock();
                        // SAFETY: locked.
                        unsafe {
                            *c.1.get() += 1;
                            c.0.unlock();
                        }
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        // SAFETY: all threads joined.
        assert_eq!(unsafe { *c.1.get() }, 80_000);
    }
}
