//! Synchronisation primitives that park goroutines (never their worker
//! thread) and block plain threads: Go's `sync` package, and x/sync's
//! weighted semaphore.
//!
//! | Go                          | goro                     |
//! |-----------------------------|--------------------------|
//! | `sync.Mutex`                | [`Mutex`] (holds its data, like std's) |
//! | `sync.RWMutex`              | [`RwLock`]               |
//! | `sync.WaitGroup`            | [`WaitGroup`]            |
//! | `sync.Once`                 | [`Once`]                 |
//! | `sync.Cond`                 | [`Cond`]                 |
//! | `semaphore.Weighted`        | [`Semaphore`]            |
//! | —                           | [`Barrier`] (as std's)   |
//!
//! Guards may be held across parks (channel operations, sleeps, other
//! locks): other goroutines on the worker keep running. Because a goroutine
//! never changes thread, the guards are `!Send` like std's and that costs
//! nothing.

mod barrier;
mod cond;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waiter;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use cond::Cond;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::Semaphore;
pub use waitgroup::WaitGroup;
