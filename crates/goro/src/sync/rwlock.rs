//! `RwLock`: a reader/writer lock that parks goroutines; writer-preferring,
//! as Go's `sync.RWMutex`.
//!
//! State (all behind one short lock): the number of active readers, whether
//! a writer holds it, and FIFO queues of waiting readers and writers.
//!
//! * A reader gets in when no writer holds the lock *and none is waiting*:
//!   a waiting writer blocks new readers, so writers cannot starve.
//! * When the last reader leaves, the first waiting writer gets the lock.
//! * When a writer leaves, every waiting reader gets in together (they were
//!   blocked by this writer); if none waits, the next writer does.
//!
//! Grants are made by the releasing side, which updates the counts before
//! waking the waiter: a woken waiter already holds the lock.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

use parking_lot::Mutex as QueueLock;

use super::waiter::{Waiter, GRANTED};
use crate::runtime::park::WaitReason;

/// Lock state.
struct State {
    /// Readers holding the lock.
    readers: usize,
    /// A writer holds the lock.
    writer: bool,
    /// Waiting readers.
    readq: VecDeque<Arc<Waiter>>,
    /// Waiting writers.
    writeq: VecDeque<Arc<Waiter>>,
}

/// A reader/writer lock that parks goroutines and blocks plain threads
/// (Go's `sync.RWMutex`, holding its data like `std::sync::RwLock`).
///
/// ```
/// let lock = goro::sync::RwLock::new(vec![1, 2, 3]);
/// {
///     let a = lock.read();
///     let b = lock.read(); // readers share
///     assert_eq!(a.len() + b.len(), 6);
/// }
/// lock.write().push(4);
/// assert_eq!(lock.read().len(), 4);
/// ```
///
/// # Fairness
///
/// Writer-preferring: once a writer waits, new readers wait behind it.
pub struct RwLock<T: ?Sized> {
    st: QueueLock<State>,
    data: UnsafeCell<T>,
}

// SAFETY: as `std::sync::RwLock`: writers get `&mut T` exclusively (needs
// `T: Send` to move access between threads), readers share `&T` (needs
// `T: Sync`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock; usable in statics.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            st: parking_lot::const_mutex(State {
                readers: 0,
                writer: false,
                readq: VecDeque::new(),
                writeq: VecDeque::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds or waits for it.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let w = {
            let mut st = self.st.lock();
            if !st.writer && st.writeq.is_empty() {
                st.readers += 1;
                return RwLockReadGuard {
                    l: self,
                    _not_send: std::marker::PhantomData,
                };
            }
            let w = Waiter::new(0);
            st.readq.push_back(w.clone());
            w
        };
        self.wait_granted(&w, false, Location::caller());
        RwLockReadGuard {
            l: self,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Locks for writing, waiting until no reader or writer holds it.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let w = {
            let mut st = self.st.lock();
            if !st.writer && st.readers == 0 {
                st.writer = true;
                return RwLockWriteGuard {
                    l: self,
                    _not_send: std::marker::PhantomData,
                };
            }
            let w = Waiter::new(0);
            st.writeq.push_back(w.clone());
            w
        };
        self.wait_granted(&w, true, Location::caller());
        RwLockWriteGuard {
            l: self,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Locks for reading if that is possible now.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.st.lock();
        if !st.writer && st.writeq.is_empty() {
            st.readers += 1;
            Some(RwLockReadGuard {
                l: self,
                _not_send: std::marker::PhantomData,
            })
        } else {
            None
        }
    }

    /// Locks for writing if that is possible now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.st.lock();
        if !st.writer && st.readers == 0 {
            st.writer = true;
            Some(RwLockWriteGuard {
                l: self,
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

    fn wait_granted(&self, w: &Arc<Waiter>, writer: bool, site: &'static Location<'static>) {
        let cleanup = Abandon { l: self, w, writer };
        let reason = if writer {
            WaitReason::RwLockWrite
        } else {
            WaitReason::RwLockRead
        };
        let got = w.wait(reason, site);
        debug_assert_eq!(got, GRANTED);
        std::mem::forget(cleanup);
    }

    fn read_unlock(&self) {
        let next = {
            let mut st = self.st.lock();
            st.readers -= 1;
            if st.readers == 0 {
                let w = st.writeq.pop_front();
                if w.is_some() {
                    st.writer = true;
                }
                w
            } else {
                None
            }
        };
        if let Some(w) = next {
            w.signal(GRANTED);
        }
    }

    fn write_unlock(&self) {
        let (readers, writer) = {
            let mut st = self.st.lock();
            st.writer = false;
            if !st.readq.is_empty() {
                let rs: Vec<_> = st.readq.drain(..).collect();
                st.readers += rs.len();
                (rs, None)
            } else {
                let w = st.writeq.pop_front();
                if w.is_some() {
                    st.writer = true;
                }
                (Vec::new(), w)
            }
        };
        for r in readers {
            r.signal(GRANTED);
        }
        if let Some(w) = writer {
            w.signal(GRANTED);
        }
    }
}

/// Cleans up a waiter that unwinds (runtime drop) before or after its grant.
struct Abandon<'a, T: ?Sized> {
    l: &'a RwLock<T>,
    w: &'a Arc<Waiter>,
    writer: bool,
}

impl<T: ?Sized> Drop for Abandon<'_, T> {
    fn drop(&mut self) {
        let mut st = self.l.st.lock();
        let q = if self.writer {
            &mut st.writeq
        } else {
            &mut st.readq
        };
        if let Some(pos) = q.iter().position(|x| Arc::ptr_eq(x, self.w)) {
            q.remove(pos);
            let unblock_readers = self.writer && q.is_empty() && !st.writer;
            if unblock_readers && !st.readq.is_empty() {
                // A vanished waiting writer no longer holds readers back.
                let rs: Vec<_> = st.readq.drain(..).collect();
                st.readers += rs.len();
                drop(st);
                for r in rs {
                    r.signal(GRANTED);
                }
            }
            return;
        }
        drop(st);
        if self.w.state() == GRANTED {
            if self.writer {
                self.l.write_unlock();
            } else {
                self.l.read_unlock();
            }
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Shared access to an [`RwLock`]'s data; unlocks on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
    /// Not `Send`, like std's guards.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s data; unlocks on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
    /// Not `Send`, like std's guards.
    _not_send: std::marker::PhantomData<*const ()>,
}

// SAFETY: sharing a guard only shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: sharing a guard only shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
