//! The one parking primitive (DESIGN §4).
//!
//! Every blocking API in goro is built on [`park`] / [`Unparker::unpark`].
//! The same pair works for a goroutine (park = switch back to the worker) and
//! for a plain OS thread (park = futex wait), so every type works from both.
//!
//! # Protocol
//!
//! A waiter publishes an [`Unparker`] for itself somewhere a waker can find it
//! (a channel's wait queue, a timer, a join packet), releases the lock that
//! guards that place, then calls [`park`] in a loop that re-checks its own
//! condition. A waker removes the unparker under the same lock, drops the lock,
//! then calls [`Unparker::unpark`] ("drop the lock before waking").
//!
//! The park state of a waiter is a token, as in `std::thread::park`:
//!
//! | state      | meaning                                                  |
//! |------------|----------------------------------------------------------|
//! | `RUNNING`  | running (or queued to run), no wake pending              |
//! | `NOTIFIED` | an unpark arrived while running: the next park returns   |
//! | `PARKED`   | switched out (goroutine) or in `futex_wait` (thread)     |
//!
//! `unpark` on `RUNNING` stores `NOTIFIED`; on `PARKED` it moves the waiter
//! back to `RUNNING` and makes it runnable. `park` on `NOTIFIED` consumes the
//! token and returns at once. Hence no wake-up is ever lost, and a park may
//! return spuriously (a stale token): callers always loop on their condition.
//!
//! A goroutine's `RUNNING -> PARKED` transition happens on its own stack just
//! before it switches out. That is sound only because a started goroutine is
//! pinned: the waker pushes it to its *home* worker, which is the very thread
//! still running it, so it cannot be resumed before the switch completes.

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::Ordering;

use super::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::goroutine::{self, GRef, Goroutine};

/// Why a goroutine (or thread) is parked; shown in goroutine dumps.
///
/// One variant per park site; `Display` gives Go's phrase where Go has one.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WaitReason {
    /// Not parked.
    Running = 0,
    /// `Receiver::recv` and friends.
    ChanReceive,
    /// `Sender::send` and friends.
    ChanSend,
    /// `select!` with more than one arm.
    Select,
    /// `select!` with no arms but `default(d)`, or only `never()` arms.
    SelectNoCases,
    /// `time::sleep`.
    Sleep,
    /// `JoinHandle::join`.
    Join,
    /// `WaitGroup::wait`.
    WaitGroupWait,
    /// `scope` waiting for its goroutines.
    ScopeWait,
    /// A receiver waiting for a `select!` sender that already chose it to
    /// evaluate its value.
    ChanHandoff,
    /// `yield_now` (runnable, not parked).
    Yield,
    /// `Runtime::drop` waiting for the runtime's goroutines to end.
    RuntimeDrop,
    /// `sync::Mutex::lock`.
    MutexLock,
    /// `sync::RwLock::read`.
    RwLockRead,
    /// `sync::RwLock::write`.
    RwLockWrite,
    /// `sync::Cond::wait`.
    CondWait,
    /// `sync::Once::call_once` while another caller runs it.
    OnceWait,
    /// `sync::Barrier::wait`.
    BarrierWait,
    /// `sync::Semaphore::acquire`.
    SemaphoreAcquire,
    /// A socket waiting for readiness (`goro::net`).
    IoWait,
    /// `goro::blocking` waiting for its pool thread.
    Blocking,
    /// A goroutine dump waiting for the workers to record stacks.
    Dump,
}

impl WaitReason {
    /// Decodes the `u8` stored in a goroutine record.
    #[allow(dead_code)]
    pub(crate) fn from_u8(v: u8) -> WaitReason {
        match v {
            1 => WaitReason::ChanReceive,
            2 => WaitReason::ChanSend,
            3 => WaitReason::Select,
            4 => WaitReason::SelectNoCases,
            5 => WaitReason::Sleep,
            6 => WaitReason::Join,
            7 => WaitReason::WaitGroupWait,
            8 => WaitReason::ScopeWait,
            9 => WaitReason::ChanHandoff,
            10 => WaitReason::Yield,
            11 => WaitReason::RuntimeDrop,
            12 => WaitReason::MutexLock,
            13 => WaitReason::RwLockRead,
            14 => WaitReason::RwLockWrite,
            15 => WaitReason::CondWait,
            16 => WaitReason::OnceWait,
            17 => WaitReason::BarrierWait,
            18 => WaitReason::SemaphoreAcquire,
            19 => WaitReason::IoWait,
            20 => WaitReason::Blocking,
            21 => WaitReason::Dump,
            _ => WaitReason::Running,
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::Running => "running",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "goroutine join",
            WaitReason::WaitGroupWait => "sync.WaitGroup.Wait",
            WaitReason::ScopeWait => "scope wait",
            WaitReason::ChanHandoff => "chan receive (hand-off)",
            WaitReason::Yield => "runnable",
            WaitReason::RuntimeDrop => "runtime drop",
            WaitReason::MutexLock => "sync.Mutex.Lock",
            WaitReason::RwLockRead => "sync.RWMutex.RLock",
            WaitReason::RwLockWrite => "sync.RWMutex.Lock",
            WaitReason::CondWait => "sync.Cond.Wait",
            WaitReason::OnceWait => "sync.Once.Do",
            WaitReason::BarrierWait => "sync.Barrier.Wait",
            WaitReason::SemaphoreAcquire => "semaphore.Acquire",
            WaitReason::IoWait => "IO wait",
            WaitReason::Blocking => "blocking call",
            WaitReason::Dump => "goroutine dump",
        })
    }
}

pub(crate) const RUNNING: u32 = 0;
pub(crate) const NOTIFIED: u32 = 1;
pub(crate) const PARKED: u32 = 2;

/// Parks a plain OS thread on a futex.
///
/// Each thread that ever waits on a goro primitive owns one (in a
/// thread-local); workers use one to sleep when idle.
pub(crate) struct ThreadParker {
    /// `RUNNING`, `NOTIFIED` or `PARKED` (see the module table).
    state: AtomicU32,
}

impl ThreadParker {
    pub(crate) fn new() -> ThreadParker {
        ThreadParker {
            state: AtomicU32::new(RUNNING),
        }
    }

    /// Blocks until unparked or `deadline` passes; may return spuriously.
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        // Consume a pending token without sleeping.
        // Acquire pairs with the Release half of `unpark`'s swap.
        if self
            .state
            .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        if self
            .state
            .compare_exchange(RUNNING, PARKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Became NOTIFIED in between.
            self.state.store(RUNNING, Ordering::Relaxed);
            super::atomic::fence(Ordering::Acquire);
            return;
        }
        loop {
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    Some(d - now)
                }
            };
            futex_wait(&self.state, PARKED, timeout);
            if self.state.load(Ordering::Acquire) != PARKED {
                break;
            }
        }
        // Either NOTIFIED (woken) or still PARKED (timeout): back to RUNNING.
        self.state.swap(RUNNING, Ordering::Acquire);
    }

    /// Consumes a pending wake token; true if there was one.
    pub(crate) fn take_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether the thread is parked right now.
    pub(crate) fn is_parked(&self) -> bool {
        self.state.load(Ordering::Acquire) == PARKED
    }

    /// Wakes the parked thread, or makes its next park return at once.
    pub(crate) fn unpark(&self) {
        // Release pairs with the Acquire in `park`.
        if self.state.swap(NOTIFIED, Ordering::Release) == PARKED {
            futex_wake(&self.state);
        }
    }
}

#[cfg(not(goro_loom))]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts;
    let ts_ptr = match timeout {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call; the
    // kernel only reads it. A relative timeout pointer is valid or null.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

#[cfg(not(goro_loom))]
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it is live here.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Under loom a futex wait is a yield (the caller's loop re-checks the word).
#[cfg(goro_loom)]
fn futex_wait(_word: &AtomicU32, _expected: u32, _timeout: Option<Duration>) {
    loom::thread::yield_now();
}

#[cfg(goro_loom)]
fn futex_wake(_word: &AtomicU32) {}

/// `RUNNING -> PARKED` for a goroutine about to switch out, or consumes a
/// pending `NOTIFIED` token. Returns true if the caller must switch out.
#[inline]
pub(crate) fn begin_park(state: &AtomicU32) -> bool {
    // AcqRel: Release publishes everything done before parking to the
    // unparker; Acquire (on failure too) sees what the unparker published.
    match state.compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => true,
        Err(s) => {
            debug_assert_eq!(s, NOTIFIED);
            state.store(RUNNING, Ordering::Relaxed);
            false
        }
    }
}

/// The unpark transition: leaves a token on a running waiter, or moves a
/// parked one back to `RUNNING`. Returns true if the caller must now make the
/// waiter runnable (exactly one caller gets true per park).
#[inline]
pub(crate) fn notify(state: &AtomicU32) -> bool {
    let mut s = state.load(Ordering::Acquire);
    loop {
        match s {
            RUNNING => match state.compare_exchange_weak(
                RUNNING,
                NOTIFIED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(now) => s = now,
            },
            PARKED => match state.compare_exchange_weak(
                PARKED,
                RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            },
            _ => return false, // NOTIFIED already
        }
    }
}

#[cfg(not(goro_loom))]
thread_local! {
    /// This plain thread's parker, created on first wait (and registered,
    /// unless the thread is one of the runtime's own).
    static THREAD_PARKER: Arc<ThreadParker> = {
        let p = Arc::new(ThreadParker::new());
        if !INTERNAL_THREAD.with(Cell::get) {
            PLAIN_THREADS.lock().push(Arc::downgrade(&p));
        }
        p
    };
}

thread_local! {
    /// Set on the runtime's own helper threads (monitor, SIGQUIT handler),
    /// which never act on user goroutines' primitives.
    static INTERNAL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Parkers of every plain thread that has waited on a goro primitive (for
/// deadlock detection: such a thread that is not parked could still act).
static PLAIN_THREADS: parking_lot::Mutex<Vec<std::sync::Weak<ThreadParker>>> =
    parking_lot::const_mutex(Vec::new());

/// Marks the calling thread as one of the runtime's own helper threads.
pub(crate) fn mark_internal_thread() {
    INTERNAL_THREAD.with(|c| c.set(true));
}

/// Whether every live plain thread that ever waited on a goro primitive is
/// parked in one now.
pub(crate) fn all_plain_threads_parked() -> bool {
    let mut ts = PLAIN_THREADS.lock();
    ts.retain(|w| w.strong_count() > 0);
    ts.iter()
        .all(|w| w.upgrade().map_or(true, |p| p.is_parked()))
}
#[cfg(goro_loom)]
loom::thread_local! {
    /// This plain thread's parker (one per loom thread under the model checker).
    static THREAD_PARKER: Arc<ThreadParker> = Arc::new(ThreadParker::new());
}

thread_local! {
    /// What this plain thread is waiting for (for symmetry with goroutines; cheap).
    static THREAD_REASON: Cell<u8> = const { Cell::new(0) };
}

/// A handle that wakes one parked goroutine or thread.
#[derive(Clone)]
pub(crate) enum Unparker {
    /// A goroutine, woken onto its home worker.
    Goroutine(GRef),
    /// A plain OS thread.
    Thread(Arc<ThreadParker>),
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unparker::Goroutine(g) => write!(f, "Unparker(goroutine {})", g.id),
            Unparker::Thread(_) => f.write_str("Unparker(thread)"),
        }
    }
}

impl Unparker {
    /// The unparker of whoever is running this code.
    pub(crate) fn current() -> Unparker {
        match goroutine::current() {
            Some(g) => Unparker::Goroutine(g),
            None => Unparker::Thread(THREAD_PARKER.with(Arc::clone)),
        }
    }

    /// Wakes the waiter (see the module protocol).
    pub(crate) fn unpark(&self) {
        match self {
            Unparker::Goroutine(g) => goroutine::unpark(g),
            Unparker::Thread(t) => t.unpark(),
        }
    }

    /// Whether two unparkers wake the same waiter.
    pub(crate) fn same(&self, other: &Unparker) -> bool {
        match (self, other) {
            (Unparker::Goroutine(a), Unparker::Goroutine(b)) => Arc::ptr_eq(a, b),
            (Unparker::Thread(a), Unparker::Thread(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A waiter as recorded in a channel's wait context: like [`Unparker`], but
/// without a reference count for goroutines, because the context lives on
/// the waiting goroutine's own stack (so the goroutine outlives it).
pub(crate) enum Waiter {
    /// The waiting goroutine.
    Goroutine(*const Goroutine),
    /// A plain OS thread.
    Thread(Arc<ThreadParker>),
}

impl Waiter {
    /// The waiter running this code.
    pub(crate) fn current() -> Waiter {
        let g = super::worker::current_goroutine_ptr();
        if g.is_null() {
            Waiter::Thread(THREAD_PARKER.with(Arc::clone))
        } else {
            Waiter::Goroutine(g)
        }
    }

    /// Prepares to wake this waiter after it is told it is done.
    ///
    /// # Safety
    ///
    /// * The waiter is still waiting (it has not been told it is done), so a
    ///   goroutine waiter is alive.
    pub(crate) unsafe fn wakeup(&self) -> Wakeup {
        match self {
            Waiter::Thread(t) => Wakeup::Owned(Unparker::Thread(t.clone())),
            Waiter::Goroutine(g) => {
                // SAFETY: alive, per the contract.
                let gr = unsafe { &**g };
                let local = super::worker::with_worker(|w| {
                    w.is_some_and(|w| {
                        w.index == gr.home.load(std::sync::atomic::Ordering::Relaxed)
                            && Arc::ptr_eq(&w.shared, &gr.rt)
                    })
                });
                if local {
                    // Its home is this thread: it cannot run (let alone
                    // finish) before we return to the scheduler, and the
                    // registry keeps it alive until it finishes.
                    Wakeup::Local(*g)
                } else {
                    // SAFETY: alive, per the contract; the count we add is
                    // owned by the returned `Unparker`.
                    unsafe {
                        Arc::increment_strong_count(*g);
                        Wakeup::Owned(Unparker::Goroutine(Arc::from_raw(*g)))
                    }
                }
            }
        }
    }
}

/// A wake to deliver, from [`Waiter::wakeup`].
#[derive(Debug)]
pub(crate) enum Wakeup {
    /// A goroutine whose home worker is this thread (no refcount needed).
    Local(*const Goroutine),
    /// Anyone else.
    Owned(Unparker),
}

impl Wakeup {
    /// Delivers the wake.
    pub(crate) fn unpark(self) {
        match self {
            // SAFETY: see `Waiter::wakeup`: the goroutine is pinned to this
            // thread and cannot have run since, so it is alive.
            Wakeup::Local(g) => goroutine::unpark(unsafe { &*g }),
            Wakeup::Owned(u) => u.unpark(),
        }
    }
}

/// Parks the caller until unparked; may return spuriously.
///
/// In a goroutine this switches to the worker (other goroutines run); on a
/// plain thread it blocks the thread. `site` is shown in goroutine dumps.
/// A goroutine whose runtime is being dropped unwinds from here.
pub(crate) fn park(reason: WaitReason, site: &'static Location<'static>) {
    park_until(reason, site, None)
}

/// Like [`park`], but also returns once `deadline` has passed.
pub(crate) fn park_until(
    reason: WaitReason,
    site: &'static Location<'static>,
    deadline: Option<Instant>,
) {
    if goroutine::in_goroutine() {
        goroutine::park_current(reason, site, deadline);
    } else {
        THREAD_REASON.with(|r| r.set(reason as u8));
        THREAD_PARKER.with(|p| p.park(deadline));
        THREAD_REASON.with(|r| r.set(0));
    }
}

#[cfg(all(test, not(goro_loom)))]
mod tests {
    use super::WaitReason;
    use std::collections::HashSet;

    /// Every park site has its own reason, and dumps can decode it.
    #[test]
    fn wait_reasons_round_trip_and_are_distinct() {
        let mut seen = HashSet::new();
        for v in 0..=255u8 {
            let r = WaitReason::from_u8(v);
            if r == WaitReason::Running && v != 0 {
                continue;
            }
            assert_eq!(r as u8, v, "{r:?} does not round-trip");
            assert!(seen.insert(r.to_string()), "two reasons print as {r}");
        }
        assert!(seen.len() >= 12);
        assert_eq!(WaitReason::ChanReceive.to_string(), "chan receive");
        assert_eq!(WaitReason::WaitGroupWait.to_string(), "sync.WaitGroup.Wait");
    }
}
