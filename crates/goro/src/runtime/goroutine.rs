//! The goroutine record (Go's `g`) and the operations a goroutine performs on
//! itself: park, yield, spawn placement.
//!
//! # Ownership
//!
//! A [`Goroutine`] is shared through [`GRef`] (`Arc`): run queues, wait
//! queues (inside [`Unparker`]s), timers, the home worker's registry and
//! `JoinHandle`s may all hold one. Its fields fall in two groups:
//!
//! * atomics (`state`, `home`, `cancelled`, `reason`, `park_site`) that any
//!   thread may read or update;
//! * `body` and `yielder`, touched only by the worker that currently runs the
//!   goroutine. Before the first run that can be any worker (the goroutine
//!   moves through queues, which synchronise); after it, only the home worker.
//!
//! # Invariants
//!
//! * A goroutine is in at most one run queue at a time: only the unparker that
//!   wins `PARKED -> RUNNING` (or the spawner) enqueues it.
//! * Once `home` is set it never changes, and only that worker resumes it.
//! * A parked goroutine owns one reference count of its own record (the
//!   worker forgets its `GRef` when the goroutine switches out with
//!   `Switch::Park`); the unparker that wins `PARKED -> RUNNING` takes that
//!   count over for the run queue. A wake costs no reference-count traffic.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use super::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use super::park::{WaitReason, RUNNING};
use super::stack::SlotStack;
use super::worker::{self, Shared};

/// A goroutine's labels: key/value pairs, shared with the goroutines it spawns.
pub(crate) type Labels = Arc<Vec<(String, String)>>;

/// Shared handle to a goroutine record.
pub(crate) type GRef = Arc<Goroutine>;

/// What a goroutine tells its worker when it switches out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Parked: someone will unpark it.
    Park,
    /// Still runnable: put it at the back of the local queue.
    Yield,
}

/// The coroutine type every goroutine runs in.
/// A goroutine's coroutine. It returns its task (`Arc<dyn Task>`, the
/// spawn's packet) instead of dropping it, so the worker can hand the memory
/// back to the worker that allocated it (see `Worker::retire`).
pub(crate) type Coro = Coroutine<(), Switch, Arc<dyn Task>, SlotStack>;

/// A goroutine's code before it runs, and where its result goes (the
/// `Packet` in `spawn.rs`).
pub(crate) trait Task: Send + Sync {
    /// Runs the code and publishes its result.
    ///
    /// # Safety
    ///
    /// * Called at most once, by the worker that starts the goroutine.
    unsafe fn run(&self);
    /// Drops the code unrun and publishes "cancelled" (no-op after `run`).
    ///
    /// # Safety
    ///
    /// * Called by the worker that owns the unstarted goroutine.
    unsafe fn cancel(&self);
    /// Does now everything dropping the task would do that anyone could
    /// observe (drop an unclaimed result, tell a scope), leaving a husk whose
    /// drop only frees memory, so that can happen later on another thread.
    fn finalize(&mut self);
}

/// An unstarted goroutine's task; dropping it unrun cancels it.
pub(crate) struct Unstarted(pub(crate) Arc<dyn Task>);

impl Unstarted {
    /// Runs the task (on the goroutine's own stack) and returns it, run, for
    /// the caller to drop where it likes.
    pub(crate) fn run(self) -> Arc<dyn Task> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the Arc is moved
        // out exactly once (its `Drop`, a cancel, must not run after `run`).
        let task = unsafe { std::ptr::read(&this.0) };
        // SAFETY: `self` was consumed, so this is the one call; it happens on
        // the worker that started the goroutine.
        unsafe { task.run() };
        task
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        // SAFETY: whoever drops the unstarted goroutine owns it; after `run`
        // this is a no-op.
        unsafe { self.0.cancel() };
    }
}

/// Where a goroutine's code is.
pub(crate) enum Body {
    /// Not started: the task, movable to any worker.
    Unstarted(Unstarted),
    /// Started: its coroutine, pinned to the home worker.
    Running(Coro),
    /// Returned; its stack is back in a pool.
    Finished,
    /// Returned, and handed back to the worker that spawned it with its
    /// task, which is dropped with the record there (see `Worker::retire`).
    Retired(#[allow(dead_code)] Arc<dyn Task>),
}

/// Home worker value of a goroutine that has not run yet.
pub(crate) const NO_HOME: usize = usize::MAX;

/// Payload a goroutine unwinds with when its runtime is dropped.
#[derive(Debug)]
pub(crate) struct Cancelled;

/// A goroutine record (Go's `g`).
pub(crate) struct Goroutine {
    /// Unique id across the process, from 1.
    pub(crate) id: u64,
    /// Name given by `Builder::name`.
    pub(crate) name: Option<Box<str>>,
    /// The runtime that runs it.
    pub(crate) rt: Arc<Shared>,
    /// Worker index it is pinned to, or `NO_HOME` before its first run.
    /// Written once by that worker before the first resume; read by unparkers
    /// after their `PARKED -> RUNNING` CAS (which orders it).
    pub(crate) home: AtomicUsize,
    /// Park token: `RUNNING`, `NOTIFIED` or `PARKED` (see `park.rs`).
    pub(crate) state: AtomicU32,
    /// Set when its runtime is dropped: the next park unwinds.
    pub(crate) cancelled: AtomicBool,
    /// Current `WaitReason` as `u8` (0 while running).
    pub(crate) reason: AtomicU8,
    /// Where it last parked (for dumps); null before the first park.
    pub(crate) park_site: AtomicPtr<Location<'static>>,
    /// Where it was spawned.
    pub(crate) spawn_site: &'static Location<'static>,
    /// Id of the goroutine that spawned it (0: a plain thread). Kept for
    /// goroutine dumps (`created by ... in goroutine N`).
    #[allow(dead_code)]
    pub(crate) parent: u64,
    /// Bytes of stack to reserve.
    pub(crate) stack_size: usize,
    /// Index of the worker whose thread allocated this record and its
    /// packet, or `NO_HOME` (spawned from a plain thread): where their
    /// memory is freed (see `Worker::retire`).
    pub(crate) spawner: usize,
    /// Link in the spawner's reclaim stack (an owning `Arc::into_raw`
    /// pointer to the next record, or null).
    pub(crate) reclaim_next: AtomicPtr<Goroutine>,
    /// Index in the home worker's registry, set at first run.
    pub(crate) slot: AtomicUsize,
    /// Code and stack. Only the worker running it touches this.
    pub(crate) body: UnsafeCell<Body>,
    /// Labels (`debug::with_labels`), inherited by goroutines it spawns.
    pub(crate) labels: parking_lot::Mutex<Option<Labels>>,
    /// Whether `labels` was ever set (spares the lock on every spawn).
    pub(crate) has_labels: AtomicBool,
    /// When it last parked, on the coarse clock (ms; for dumps).
    pub(crate) parked_at: AtomicU64,
    /// Set by its home worker to resume it only to record its stack.
    pub(crate) tracing: AtomicBool,
    /// The stack recorded in trace mode.
    pub(crate) trace: parking_lot::Mutex<Option<String>>,
    /// The coroutine's yielder, valid while `body` is `Running`. Only touched
    /// on the goroutine's own stack.
    pub(crate) yielder: Cell<*const Yielder<(), Switch>>,
    /// Stack pointer at its last switch out (stored in `suspend`, on its
    /// own stack), 0 before the first: what stack compaction keeps is at and
    /// above it. Bit 0 (`compact::COMPACTED_BIT`; stack pointers are word
    /// aligned) is set by the home worker when it compacted the stack, and
    /// checked (one relaxed load) before every resume. Bit 1
    /// (`compact::SKIP_BIT`) marks a goroutine whose compaction was refused:
    /// not retried before it next switches out (which stores a fresh stack
    /// pointer). Only its home thread writes it; atomic so that stats may
    /// read it.
    pub(crate) saved_sp: AtomicUsize,
}

// SAFETY: `body` and `yielder` are only accessed
// by the one worker that is running the goroutine (module docs: before the
// first run ownership moves with the queue that holds it, which synchronises; after it the goroutine is
// pinned to `home`). Everything else is atomic or immutable.
unsafe impl Sync for Goroutine {}
// SAFETY: as above; the unstarted closure is `Send`, and a started coroutine
// is only ever touched on its home thread even though the record moves.
unsafe impl Send for Goroutine {}

impl fmt::Debug for Goroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Goroutine")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// Next goroutine id (ids are process-wide, as Go's `goid`).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Goroutine {
    pub(crate) fn new(
        id: u64,
        rt: Arc<Shared>,
        name: Option<String>,
        stack_size: usize,
        spawn_site: &'static Location<'static>,
        task: Arc<dyn Task>,
    ) -> Goroutine {
        let parent = current_id_u64();
        let labels = with_current(|g| {
            g.filter(|g| g.has_labels.load(Ordering::Relaxed))
                .and_then(|g| g.labels.lock().clone())
        });
        let cancelled = rt.shutdown.load(Ordering::Acquire);
        let spawner = super::worker::with_worker(|w| match w {
            Some(w) if Arc::ptr_eq(&w.shared, &rt) => w.index,
            _ => NO_HOME,
        });
        Goroutine {
            spawner,
            reclaim_next: AtomicPtr::new(std::ptr::null_mut()),
            id,
            name: name.map(String::into_boxed_str),
            rt,
            home: AtomicUsize::new(NO_HOME),
            state: AtomicU32::new(RUNNING),
            cancelled: AtomicBool::new(cancelled),
            reason: AtomicU8::new(0),
            park_site: AtomicPtr::new(std::ptr::null_mut()),
            spawn_site,
            parent,
            stack_size,
            slot: AtomicUsize::new(usize::MAX),
            body: UnsafeCell::new(Body::Unstarted(Unstarted(task))),
            yielder: Cell::new(std::ptr::null()),
            saved_sp: AtomicUsize::new(0),
            has_labels: AtomicBool::new(labels.is_some()),
            labels: parking_lot::Mutex::new(labels),
            parked_at: AtomicU64::new(0),
            tracing: AtomicBool::new(false),
            trace: parking_lot::Mutex::new(None),
        }
    }

    /// Current wait reason (for dumps).
    #[allow(dead_code)]
    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.reason.load(Ordering::Relaxed))
    }

    /// Whether it has not been run yet (and so may still move between workers).
    pub(crate) fn is_unstarted(&self) -> bool {
        self.home.load(Ordering::Relaxed) == NO_HOME
    }
}

/// A fresh goroutine id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The goroutine running on this thread, if any.
pub(crate) fn current() -> Option<GRef> {
    let g = worker::current_goroutine_ptr();
    if g.is_null() {
        return None;
    }
    // SAFETY: the worker holds a `GRef` to the goroutine it is running for as
    // long as `current` points at it, and we are running on its stack, so the
    // pointer is to a live `Arc` allocation; incrementing its count is sound.
    unsafe {
        Arc::increment_strong_count(g);
        Some(Arc::from_raw(g))
    }
}

/// Whether this code runs in a goroutine.
#[inline]
pub(crate) fn in_goroutine() -> bool {
    !worker::current_goroutine_ptr().is_null()
}

/// Id of the running goroutine, or 0 on a plain thread.
pub(crate) fn current_id_u64() -> u64 {
    let g = worker::current_goroutine_ptr();
    if g.is_null() {
        0
    } else {
        // SAFETY: see `current`: the record is live while it is current.
        unsafe { (*g).id }
    }
}

/// Runs `f` with the running goroutine, without touching its refcount.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Goroutine>) -> R) -> R {
    let g = worker::current_goroutine_ptr();
    if g.is_null() {
        f(None)
    } else {
        // SAFETY: see `current`.
        f(Some(unsafe { &*g }))
    }
}

/// Parks the running goroutine (see `park.rs` for the protocol).
#[inline]
pub(crate) fn park_current(
    reason: WaitReason,
    site: &'static Location<'static>,
    deadline: Option<Instant>,
) {
    let gp = worker::current_goroutine_ptr();
    debug_assert!(!gp.is_null());
    // SAFETY: we are running on this goroutine's stack, so its record is live
    // (the worker holds a reference while running it).
    let g = unsafe { &*gp };
    check_cancelled(g);
    let timer = deadline.map(|d| super::timer::add_unpark_timer(&g.rt, d));
    // Dump bookkeeping (`--cfg goro_bookkeeping_off` measures its cost).
    if !cfg!(goro_bookkeeping_off) {
        g.reason.store(reason as u8, Ordering::Relaxed);
        g.park_site
            .store(site as *const _ as *mut _, Ordering::Relaxed);
        g.parked_at.store(coarse_now_ms(), Ordering::Relaxed);
    }
    if super::park::begin_park(&g.state) {
        suspend(g, Switch::Park);
        traced(g);
    }
    g.reason.store(0, Ordering::Relaxed);
    if let Some(t) = timer {
        t.cancel();
    }
    check_cancelled(g);
}

/// After a switch back in: if the home worker resumed us only to record our
/// stack (a goroutine dump), record it and switch out again, state
/// unchanged, as often as it asks.
fn traced(g: &Goroutine) {
    while g.tracing.swap(false, Ordering::AcqRel) {
        let bt = std::backtrace::Backtrace::force_capture();
        *g.trace.lock() = Some(bt.to_string());
        suspend(g, Switch::Park);
    }
}

/// The coarse clock: milliseconds since the first use, advanced by the
/// runtimes' monitor threads (every 2–20 ms). Cheap enough to read on every
/// park.
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// The coarse clock's origin.
pub(crate) fn coarse_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Reads the coarse clock.
#[inline]
pub(crate) fn coarse_now_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// Advances the coarse clock (monitor threads) and returns it.
pub(crate) fn tick_coarse_clock() -> u64 {
    let ms = coarse_base().elapsed().as_millis() as u64;
    COARSE_MS.fetch_max(ms, Ordering::Relaxed);
    ms
}

/// Unwinds the goroutine if its runtime is being dropped.
fn check_cancelled(g: &Goroutine) {
    if g.cancelled.load(Ordering::Acquire) && !std::thread::panicking() {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Switches from the running goroutine `g` back to its worker.
fn suspend(g: &Goroutine, how: Switch) {
    let y = g.yielder.get();
    debug_assert!(!y.is_null());
    // SAFETY: `yielder` was set by the coroutine's entry closure on this very
    // stack and stays valid until the coroutine returns; we are inside it.
    record_sp_and_suspend(&g.saved_sp, unsafe { &*y }, how);
}

/// Stores the stack pointer in `saved_sp`, then switches out through `y`.
/// Everything live on this stack while it is switched out is at or above
/// that stack pointer, give or take what the switch itself stores below it
/// (`compact::margin`). Never inlined: the compaction probe measures how
/// deep exactly this code writes below the recorded stack pointer, in the
/// running binary, by calling it on a scratch coroutine. (The low bits of
/// `saved_sp` are clear afterwards: the stack was restored before this
/// resume, and a fresh stack pointer drops any skip mark.)
#[inline(never)]
pub(crate) fn record_sp_and_suspend(saved_sp: &AtomicUsize, y: &Yielder<(), Switch>, how: Switch) {
    saved_sp.store(super::compact::stack_pointer(), Ordering::Relaxed);
    y.suspend(how);
}

/// `yield_now` for a goroutine: back of the local queue.
pub(crate) fn yield_current() {
    let gp = worker::current_goroutine_ptr();
    debug_assert!(!gp.is_null());
    // SAFETY: see `park_current`.
    let g = unsafe { &*gp };
    check_cancelled(g);
    g.reason.store(WaitReason::Yield as u8, Ordering::Relaxed);
    suspend(g, Switch::Yield);
    traced(g);
    g.reason.store(0, Ordering::Relaxed);
    check_cancelled(g);
}

/// Wakes `g` if parked, or leaves a token (see `park.rs`).
pub(crate) fn unpark(g: &Goroutine) {
    if super::park::notify(&g.state) {
        // SAFETY: we won `PARKED -> RUNNING`, so we own the reference count
        // that a parked goroutine carries (its worker forgot its `GRef` when
        // it switched out; see `Worker::run_goroutine`). Exactly one
        // unparker wins that transition per park, so the count is taken once
        // and handed to the run queue.
        let r = unsafe { Arc::from_raw(g as *const Goroutine) };
        worker::schedule_woken(r);
    }
}
