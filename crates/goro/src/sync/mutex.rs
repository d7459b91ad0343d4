//! `Mutex`: a mutual exclusion lock that parks goroutines, with Go's
//! starvation mode.
//!
//! # State
//!
//! One atomic byte, plus a FIFO queue of waiters behind a short queue lock:
//!
//! | bit        | meaning                                                    |
//! |------------|------------------------------------------------------------|
//! | `LOCKED`   | somebody owns the mutex                                    |
//! | `WAITERS`  | the queue is (or may be) non-empty: unlock takes the slow path |
//! | `STARVING` | starvation mode: unlock hands ownership to the first waiter |
//!
//! Invariant: `STARVING` implies `LOCKED` (it is only set while the mutex is
//! held, and an unlock in starvation mode either hands the lock over, keeping
//! `LOCKED`, or clears both).
//!
//! # Modes (Go's `sync.Mutex`)
//!
//! *Normal mode*: an unlock releases the mutex and wakes the first waiter,
//! which then competes with goroutines arriving just now (they are running,
//! so they usually win: good throughput). A woken waiter that loses goes back
//! to the *front* of the queue.
//!
//! *Starvation mode*: a waiter that has waited more than 1 ms sets
//! `STARVING`; from then on unlock hands the mutex directly to the first
//! waiter and newcomers queue at the back. The mode ends when a waiter that
//! receives the mutex is the last one, or waited less than 1 ms. This bounds
//! tail latency under contention.
//!
//! Uncontended, `lock` and `unlock` are one CAS each. The queue lock is only
//! taken on the slow paths, and every change of `WAITERS`/`STARVING` happens
//! with it held, which is what rules out a lost wake-up: a waiter sets
//! `WAITERS` with a CAS that requires `LOCKED`, so an owner's fast unlock
//! either happens before (and the waiter sees the mutex free) or fails (and
//! the owner takes the slow path, which wakes the waiter).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::atomic::{AtomicU8, QueueLock};

use super::waiter::{Waiter, GRANTED, WAITING, WOKEN};
use crate::runtime::park::WaitReason;

const LOCKED: u8 = 1;
const WAITERS: u8 = 2;
const STARVING: u8 = 4;

/// How long a waiter waits before it switches the mutex to starvation mode.
#[cfg(not(goro_loom))]
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);
/// Under the model checker every re-queued waiter starves, so the hand-off
/// path is explored too.
#[cfg(goro_loom)]
const STARVATION_THRESHOLD: Duration = Duration::ZERO;

/// The lock state and waiter queue, without the data (shared by `Mutex<T>`
/// and reused by `Cond`).
pub(crate) struct RawMutex {
    /// `LOCKED | WAITERS | STARVING`.
    state: AtomicU8,
    /// Waiting goroutines and threads, FIFO.
    queue: QueueLock<VecDeque<Arc<Waiter>>>,
}

impl RawMutex {
    #[cfg(not(goro_loom))]
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU8::new(0),
            queue: QueueLock::new(VecDeque::new()),
        }
    }
    #[cfg(goro_loom)]
    pub(crate) fn new() -> RawMutex {
        RawMutex {
            state: AtomicU8::new(0),
            queue: QueueLock::new(VecDeque::new()),
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        s & LOCKED == 0
            && self
                .state
                .compare_exchange(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    #[inline]
    pub(crate) fn lock(&self, site: &'static Location<'static>) {
        // Acquire pairs with the Release in `unlock`.
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(site);
        }
    }

    #[cold]
    fn lock_slow(&self, site: &'static Location<'static>) {
        let mut since: Option<Instant> = None;
        let mut front = false;
        let mut spins = 0u32;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0 {
                if self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            // Held: spin a little in normal mode (the owner may be running on
            // another worker and about to unlock).
            if s & STARVING == 0 && spins < 4 {
                spins += 1;
                for _ in 0..(30 << spins) {
                    std::hint::spin_loop();
                }
                continue;
            }
            let starve = since.is_some_and(|t| crate::time::since(t) >= STARVATION_THRESHOLD);
            let w = Waiter::new(0);
            {
                let mut q = self.queue.lock();
                let mut s = self.state.load(Ordering::Relaxed);
                let acquired = loop {
                    if s & LOCKED == 0 {
                        match self.state.compare_exchange(
                            s,
                            s | LOCKED,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        ) {
                            Ok(_) => break true,
                            Err(now) => s = now,
                        }
                        continue;
                    }
                    let ns = s | WAITERS | if starve { STARVING } else { 0 };
                    match self
                        .state
                        .compare_exchange(s, ns, Ordering::Relaxed, Ordering::Relaxed)
                    {
                        Ok(_) => break false,
                        Err(now) => s = now,
                    }
                };
                if acquired {
                    return;
                }
                if front {
                    q.push_front(w.clone());
                } else {
                    q.push_back(w.clone());
                }
            }
            let t0 = *since.get_or_insert_with(crate::time::now);
            let guard = Abandon { m: self, w: &w };
            let got = w.wait(WaitReason::MutexLock, site);
            std::mem::forget(guard);
            match got {
                GRANTED => {
                    // Handed over in starvation mode: we own it (LOCKED kept).
                    let q = self.queue.lock();
                    if q.is_empty() || crate::time::since(t0) < STARVATION_THRESHOLD {
                        self.state.fetch_and(!STARVING, Ordering::Relaxed);
                    }
                    drop(q);
                    std::sync::atomic::fence(Ordering::Acquire);
                    return;
                }
                _ => {
                    debug_assert_eq!(got, WOKEN);
                    front = true;
                    spins = 0;
                }
            }
        }
    }

    /// Unlocks.
    ///
    /// # Safety
    ///
    /// * The caller owns the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // Release pairs with the Acquire of the next `lock`.
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = self.queue.lock();
        // With the queue lock held and LOCKED ours, nobody else changes the
        // state (lockers only CAS when LOCKED is clear, waiters only under
        // the queue lock), so plain read-modify-writes are exact.
        let s = self.state.load(Ordering::Relaxed);
        debug_assert!(s & LOCKED != 0, "unlock of an unlocked goro Mutex");
        if s & STARVING != 0 {
            if let Some(w) = q.pop_front() {
                if q.is_empty() {
                    self.state.fetch_and(!WAITERS, Ordering::Release);
                } else {
                    std::sync::atomic::fence(Ordering::Release);
                }
                drop(q);
                // Ownership passes to `w`: LOCKED stays set.
                w.signal(GRANTED);
                return;
            }
            self.state.store(0, Ordering::Release);
            return;
        }
        let w = q.pop_front();
        let ns = if q.is_empty() {
            s & !(LOCKED | WAITERS)
        } else {
            s & !LOCKED
        };
        self.state.store(ns, Ordering::Release);
        drop(q);
        if let Some(w) = w {
            w.signal(WOKEN);
        }
    }

    /// Whether it is locked now (racy; for Debug).
    fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }
}

/// Cleans up a waiter whose goroutine unwinds out of `lock` (runtime drop).
struct Abandon<'a> {
    m: &'a RawMutex,
    w: &'a Arc<Waiter>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let mut q = self.m.queue.lock();
        if let Some(pos) = q.iter().position(|x| Arc::ptr_eq(x, self.w)) {
            q.remove(pos);
            if q.is_empty() {
                self.m.state.fetch_and(!WAITERS, Ordering::Relaxed);
            }
            return;
        }
        match self.w.state() {
            GRANTED => {
                // We were given the lock but will never use it.
                drop(q);
                // SAFETY: it was handed to us; we own it.
                unsafe { self.m.unlock() };
            }
            WOKEN => {
                // We were woken to compete; pass the wake on.
                if self.m.state.load(Ordering::Relaxed) & LOCKED == 0 {
                    if let Some(next) = q.pop_front() {
                        if q.is_empty() {
                            self.m.state.fetch_and(!WAITERS, Ordering::Relaxed);
                        }
                        drop(q);
                        next.signal(WOKEN);
                    }
                }
            }
            _ => debug_assert_eq!(self.w.state(), WAITING),
        }
    }
}

/// A mutual exclusion lock that parks a waiting goroutine (its worker runs
/// others) and blocks a waiting plain thread (Go's `sync.Mutex`, holding its
/// data like `std::sync::Mutex`).
///
/// A guard may be held across parks: other goroutines keep running, and those
/// that want the lock park until it is released.
///
/// ```
/// use std::sync::Arc;
/// let m = Arc::new(goro::sync::Mutex::new(0u64));
/// let wg = goro::sync::WaitGroup::new();
/// for _ in 0..10 {
///     let m = m.clone();
///     wg.go(move || for _ in 0..100 { *m.lock() += 1; });
/// }
/// wg.wait();
/// assert_eq!(*m.lock(), 1000);
/// ```
///
/// # Fairness
///
/// Normal mode favours throughput (a running goroutine may take the lock
/// ahead of a woken waiter); a waiter that waits more than 1 ms switches the
/// mutex to starvation mode, in which it is handed over in FIFO order.
///
/// There is no poisoning: a panic while the lock is held just unlocks it
/// (as in Go).
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex gives exclusive access to `T` to one holder at a time,
// so it may be shared (and `T` moved between threads through it) when `T`
// is `Send`, exactly as `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex; usable in statics.
    #[cfg(not(goro_loom))]
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }
    /// A new unlocked mutex (not `const` under the model checker).
    #[cfg(goro_loom)]
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting until it is available.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread. Locking a mutex the caller
    /// already holds waits forever (as in Go).
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock(Location::caller());
        MutexGuard {
            m: self,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Locks the mutex if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Some(MutexGuard {
                m: self,
                _not_send: std::marker::PhantomData,
            })
        } else {
            None
        }
    }

    /// The data, through an exclusive borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("locked", &self.raw.is_locked()).finish()
    }
}

/// Exclusive access to a [`Mutex`]'s data; unlocks on drop.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
    /// Like std's guard, not `Send`: it must be released where it was taken.
    _not_send: std::marker::PhantomData<*const ()>,
}

// SAFETY: sharing a guard only shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.m
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold the lock.
        unsafe { self.m.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
