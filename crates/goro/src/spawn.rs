//! Starting goroutines and joining them: `go`, `Builder`, `JoinHandle`.

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::runtime::goroutine::{self, Cancelled, GRef, Goroutine, Task};
use crate::runtime::park::{self, Unparker, WaitReason};
use crate::runtime::worker::{self, Shared};
use crate::runtime::{current_shared, stack};

/// A goroutine's id: unique in the process, never reused (Go's `goid`).
///
/// # Examples
///
/// ```
/// let h = goro::go(|| goro::current_id().unwrap());
/// let id = h.id();
/// assert_eq!(h.join().unwrap(), id);
/// assert_eq!(id.to_string(), id.as_u64().to_string());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoId(u64);

impl GoId {
    pub(crate) fn from_u64(id: u64) -> GoId {
        GoId(id)
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why [`JoinHandle::join`] did not return a value.
pub struct JoinError {
    /// The goroutine that failed.
    id: u64,
    /// What happened.
    repr: Repr,
}

enum Repr {
    /// It panicked with this payload.
    Panic(Box<dyn Any + Send>),
    /// Its runtime was dropped before it finished.
    Cancelled,
}

impl JoinError {
    /// The goroutine panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The goroutine was ended by dropping its [`Runtime`](crate::Runtime).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The panic payload (for `std::panic::resume_unwind`).
    ///
    /// # Panics
    ///
    /// If the goroutine was cancelled rather than panicking.
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.repr {
            Repr::Panic(p) => p,
            Repr::Cancelled => panic!(
                "JoinError::into_panic on goroutine {} which was cancelled, not panicked",
                self.id
            ),
        }
    }

    /// The panic payload, or `Err(self)` if it was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p),
            Repr::Cancelled => Err(self),
        }
    }

    /// Id of the goroutine.
    pub fn id(&self) -> GoId {
        GoId(self.id)
    }

    fn message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => f
                .debug_struct("JoinError::Panic")
                .field("id", &self.id)
                .field("message", &self.message())
                .finish(),
            Repr::Cancelled => f
                .debug_struct("JoinError::Cancelled")
                .field("id", &self.id)
                .finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => match self.message() {
                Some(m) => write!(f, "goroutine {} panicked: {m}", self.id),
                None => write!(f, "goroutine {} panicked", self.id),
            },
            Repr::Cancelled => write!(
                f,
                "goroutine {} was cancelled: its runtime was dropped",
                self.id
            ),
        }
    }
}

impl std::error::Error for JoinError {}

/// A goroutine's closure and, once it has run, its result: one allocation,
/// seen by the goroutine record as a [`Task`] and by the `JoinHandle` as a
/// [`Joinable`].
pub(crate) struct Packet<F, T> {
    /// The closure, until the worker that starts the goroutine takes it.
    f: UnsafeCell<Option<F>>,
    /// Result and the joiner waiting for it.
    state: Mutex<PacketState<T>>,
    /// Set once the result is in.
    done: AtomicBool,
    /// The scope this goroutine belongs to, if any.
    scope: Option<Arc<ScopeData>>,
    /// The goroutine's id (for `JoinError`).
    id: u64,
}

// SAFETY: `f` is taken exactly once, by the one worker that starts the
// goroutine (or drops it unstarted); before that the packet moves between
// threads only through run queues, which synchronise. `state` is a mutex.
// Hence sharing needs `F: Send` and `T: Send`, as moving would.
unsafe impl<F: Send, T: Send> Sync for Packet<F, T> {}

struct PacketState<T> {
    /// The outcome, until `join` takes it.
    result: Option<Result<T, JoinError>>,
    /// Who waits in `join`.
    waiter: Option<Unparker>,
}

impl<F, T> Packet<F, T> {
    /// Publishes the outcome and wakes the joiner.
    fn finish(&self, r: Result<T, JoinError>) {
        let waiter = {
            let mut st = self.state.lock();
            st.result = Some(r);
            self.done.store(true, Ordering::Release);
            st.waiter.take()
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    }

    /// Takes the closure.
    ///
    /// # Safety
    ///
    /// * Only the worker starting (or dropping) the goroutine calls this,
    ///   so no other reference to `f` exists.
    unsafe fn take_f(&self) -> Option<F> {
        // SAFETY: exclusive, per the contract.
        unsafe { (*self.f.get()).take() }
    }
}

impl<F, T> Task for Packet<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    unsafe fn run(&self) {
        // SAFETY: called once, by the worker starting the goroutine.
        let Some(f) = (unsafe { self.take_f() }) else {
            return;
        };
        let r = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) if p.is::<Cancelled>() => Err(JoinError {
                id: self.id,
                repr: Repr::Cancelled,
            }),
            Err(p) => Err(JoinError {
                id: self.id,
                repr: Repr::Panic(p),
            }),
        };
        self.finish(r);
    }

    fn finalize(&mut self) {
        self.release();
    }

    unsafe fn cancel(&self) {
        // SAFETY: called by the worker dropping the unstarted goroutine.
        if let Some(f) = unsafe { self.take_f() } {
            drop(f);
            self.finish(Err(JoinError {
                id: self.id,
                repr: Repr::Cancelled,
            }));
        }
    }
}

/// The `JoinHandle`'s view of a packet.
trait Joinable<T>: Send + Sync {
    /// Result and waiter.
    fn state(&self) -> &Mutex<PacketState<T>>;
    /// Whether the result is in.
    fn is_done(&self) -> bool;
}

impl<F: Send, T: Send> Joinable<T> for Packet<F, T> {
    fn state(&self) -> &Mutex<PacketState<T>> {
        &self.state
    }
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl<F, T> Packet<F, T> {
    /// What dropping the packet means to others: a scoped packet drops its
    /// result and tells its scope. Idempotent (the scope is taken).
    fn release(&mut self) {
        if let Some(scope) = self.scope.take() {
            // Drop the result before telling the scope: it may borrow 'env.
            let r = self.state.get_mut().result.take();
            if let Some(Err(e)) = r {
                if let Repr::Panic(p) = e.repr {
                    let mut slot = scope.panic.lock();
                    if slot.is_none() {
                        *slot = Some(p);
                    }
                }
            } else {
                drop(r);
            }
            scope.finished();
        }
        // An unclaimed result of an unscoped goroutine goes too.
        drop(self.state.get_mut().result.take());
    }
}

impl<F, T> Drop for Packet<F, T> {
    fn drop(&mut self) {
        self.release();
    }
}

/// An owned permission to join a goroutine (wait for it and get its result).
///
/// Dropping it detaches the goroutine, which keeps running.
///
/// # Examples
///
/// ```
/// let h = goro::go(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[must_use = "dropping a JoinHandle detaches the goroutine; join it to see its result or panic"]
pub struct JoinHandle<T> {
    /// The goroutine (for id and name).
    g: GRef,
    /// Its result.
    packet: Arc<dyn Joinable<T>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.g.id)
            .field("name", &self.g.name)
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish and returns its result.
    ///
    /// # Errors
    ///
    /// A [`JoinError`] carrying the panic payload if it panicked, or
    /// reporting `is_cancelled()` if its runtime was dropped first.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    ///
    /// # Panics
    ///
    /// If a goroutine tries to join itself.
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        let site = Location::caller();
        if goroutine::current_id_u64() == self.g.id {
            panic!(
                "goroutine {} tried to join itself, which would never return",
                self.g.id
            );
        }
        loop {
            {
                let mut st = self.packet.state().lock();
                if let Some(r) = st.result.take() {
                    return r;
                }
                st.waiter = Some(Unparker::current());
            }
            park::park(WaitReason::Join, site);
        }
    }

    /// Like `join`, but gives the handle back when `stop()` (called before
    /// each park) says so.
    #[track_caller]
    pub(crate) fn join_unless(
        self,
        stop: impl Fn() -> bool,
    ) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let site = Location::caller();
        loop {
            {
                let mut st = self.packet.state().lock();
                if let Some(r) = st.result.take() {
                    return Ok(r);
                }
                st.waiter = Some(Unparker::current());
            }
            if stop() {
                return Err(self);
            }
            park::park(WaitReason::Join, site);
        }
    }

    /// The goroutine's id.
    pub fn id(&self) -> GoId {
        GoId(self.g.id)
    }

    /// The goroutine's name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.g.name.as_deref()
    }

    /// Whether the goroutine has finished (`join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }
}

/// Starts a goroutine on `rt`.
///
/// # Safety
///
/// If `F` or `T` are not `'static`, the caller must make sure the goroutine
/// has finished (its `Packet` completed and, for scoped goroutines, dropped)
/// before anything they borrow goes away.
pub(crate) unsafe fn spawn_unchecked<'a, F, T>(
    rt: &Arc<Shared>,
    name: Option<String>,
    stack_size: usize,
    site: &'static Location<'static>,
    scope: Option<Arc<ScopeData>>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let slot = stack::slot_size_for(stack_size)?;
    // Make sure a stack can be had, so that address-space exhaustion is an
    // `Err` here rather than a failure at first run. A warm stack in this
    // worker's pool proves it without taking the allocator lock.
    if slot != rt.slot_size || !worker::pool_has_stack(rt) {
        stack::ensure_available(slot)?;
    }
    let id = goroutine::next_id();
    let packet: Arc<Packet<F, T>> = Arc::new(Packet {
        f: UnsafeCell::new(Some(f)),
        state: Mutex::new(PacketState {
            result: None,
            waiter: None,
        }),
        done: AtomicBool::new(false),
        scope,
        id,
    });
    let task: Arc<dyn Task + 'a> = packet.clone();
    let joinable: Arc<dyn Joinable<T> + 'a> = packet;
    // SAFETY: only the lifetime bound of the trait objects changes (same
    // layout). The caller guarantees the goroutine finishes before 'a ends
    // (see `# Safety`); by then the closure has been taken out and dropped
    // (`Task::run` or `Task::cancel`), and a scoped packet's result is
    // dropped before its scope is told (see `Packet`'s `Drop`).
    let (task, joinable) = unsafe {
        (
            std::mem::transmute::<Arc<dyn Task + 'a>, Arc<dyn Task>>(task),
            std::mem::transmute::<Arc<dyn Joinable<T> + 'a>, Arc<dyn Joinable<T>>>(joinable),
        )
    };
    let g = Arc::new(Goroutine::new(id, rt.clone(), name, stack_size, site, task));
    rt.live.fetch_add(1, Ordering::AcqRel);
    let handle = JoinHandle {
        g: g.clone(),
        packet: joinable,
    };
    worker::schedule_new(g);
    // A goroutine spawning in a loop spends its budget like a channel loop,
    // so its children get to run (and its backlog stays bounded).
    worker::coop_tick();
    Ok(handle)
}

/// Starts a goroutine running `f` and returns a handle to join it (Go's `go f()`).
///
/// Inside a goroutine the new one joins the same runtime; elsewhere it goes to
/// the process-wide default runtime, started on first use.
///
/// # Examples
///
/// ```
/// let (tx, rx) = goro::chan::bounded(0);
/// goro::go(move || tx.send("hello from a goroutine").unwrap());
/// assert_eq!(rx.recv().unwrap(), "hello from a goroutine");
/// ```
///
/// # Panics
///
/// If no stack can be allocated (address space exhausted); use
/// [`Builder::spawn`] to get an `Err` instead.
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let site = Location::caller();
    let rt = current_shared();
    // SAFETY: `F` and `T` are 'static.
    unsafe { spawn_unchecked(&rt, None, rt.stack_size, site, None, f) }
        .unwrap_or_else(|e| panic!("goro::go: cannot spawn a goroutine: {e}"))
}

/// Configures a goroutine before starting it, like `std::thread::Builder`.
///
/// # Examples
///
/// ```
/// let h = goro::Builder::new()
///     .name("worker-1")
///     .stack_size(64 * 1024)
///     .spawn(|| goro::current_name())
///     .unwrap();
/// assert_eq!(h.name(), Some("worker-1"));
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker-1"));
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    /// Name shown in panics and dumps.
    name: Option<String>,
    /// Stack reservation; `None`: the runtime's default.
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown in panic messages, overflow reports, dumps).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Reserves `bytes` of stack (rounded up to whole pages, at least 16 KiB,
    /// at most 1 GiB). Only touched pages cost memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the goroutine.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a stack size over 1 GiB; the OS error when no stack
    /// can be reserved (address space exhausted). Never aborts.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        let rt = current_shared();
        let size = self.stack_size.unwrap_or(rt.stack_size);
        // SAFETY: `F` and `T` are 'static.
        unsafe { spawn_unchecked(&rt, self.name, size, site, None, f) }
    }
}

/// Lets other goroutines run (Go's `runtime.Gosched`); on a plain thread,
/// `std::thread::yield_now`.
pub fn yield_now() {
    if goroutine::in_goroutine() {
        goroutine::yield_current();
    } else {
        std::thread::yield_now();
    }
}

/// Id of the running goroutine; `None` on a plain OS thread.
///
/// ```
/// assert_eq!(goro::current_id(), None);
/// assert!(goro::go(goro::current_id).join().unwrap().is_some());
/// ```
pub fn current_id() -> Option<GoId> {
    match goroutine::current_id_u64() {
        0 => None,
        id => Some(GoId(id)),
    }
}

/// Name of the running goroutine, if it has one.
pub fn current_name() -> Option<String> {
    goroutine::with_current(|g| g.and_then(|g| g.name.as_deref().map(String::from)))
}

/// Live goroutines of the current runtime (the default one on a plain
/// thread), like Go's `runtime.NumGoroutine`.
///
/// ```
/// let (tx, rx) = goro::chan::bounded::<()>(0);
/// let h = goro::go(move || { let _ = rx.recv(); });
/// assert!(goro::num_goroutine() >= 1);
/// drop(tx);
/// h.join().unwrap();
/// ```
pub fn num_goroutine() -> usize {
    current_shared().live.load(Ordering::Acquire)
}

/// Shared state of a [`scope`].
pub(crate) struct ScopeData {
    /// Goroutines of the scope whose packet is still alive.
    running: AtomicUsize,
    /// First panic of a goroutine nobody joined.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// `scope` waiting for `running == 0`.
    waiter: Mutex<Option<Unparker>>,
}

impl ScopeData {
    fn finished(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(w) = self.waiter.lock().take() {
                w.unpark();
            }
        }
    }
}

/// A scope for goroutines that may borrow from the enclosing stack frame; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    /// Shared with the scope's goroutines.
    data: Arc<ScopeData>,
    /// The runtime the goroutines run on.
    rt: Arc<Shared>,
    /// Invariance over 'scope, as `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    /// Invariance over 'env.
    env: PhantomData<&'env mut &'env ()>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish()
    }
}

/// A handle to join a goroutine started with [`Scope::go`].
#[must_use = "dropping a ScopedJoinHandle detaches the goroutine until the scope ends"]
pub struct ScopedJoinHandle<'scope, T> {
    /// The underlying handle.
    inner: JoinHandle<T>,
    /// Tied to the scope.
    _scope: PhantomData<&'scope ()>,
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine; see [`JoinHandle::join`].
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        self.inner.join()
    }
    /// The goroutine's id.
    pub fn id(&self) -> GoId {
        self.inner.id()
    }
    /// Whether it has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a goroutine that may borrow anything that outlives the scope.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated.
    #[track_caller]
    pub fn go<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let site = Location::caller();
        self.data.running.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `scope` does not return until `running` is zero, which
        // happens only when this goroutine's packet (holding its result) has
        // been dropped, after the closure and everything it captured are gone.
        let h = unsafe {
            spawn_unchecked(
                &self.rt,
                None,
                self.rt.stack_size,
                site,
                Some(self.data.clone()),
                f,
            )
        };
        match h {
            Ok(inner) => ScopedJoinHandle {
                inner,
                _scope: PhantomData,
            },
            Err(e) => {
                self.data.finished();
                panic!("Scope::go: cannot spawn a goroutine: {e}")
            }
        }
    }
}

/// Runs `f` with a [`Scope`] whose goroutines may borrow local data; every
/// one of them is joined before `scope` returns (like `std::thread::scope`).
///
/// # Panics
///
/// If `f` panics, or a goroutine of the scope panicked and was not joined,
/// the panic is re-raised after all goroutines have finished.
///
/// # Examples
///
/// ```
/// let mut counts = vec![0u64; 4];
/// goro::scope(|s| {
///     for (i, c) in counts.iter_mut().enumerate() {
///         s.go(move || *c = (i as u64 + 1) * 10);
///     }
/// });
/// assert_eq!(counts, [10, 20, 30, 40]);
/// ```
///
/// # Blocking
///
/// Parks a goroutine; blocks a plain thread.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let site = Location::caller();
    let s = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            panic: Mutex::new(None),
            waiter: Mutex::new(None),
        }),
        rt: current_shared(),
        scope: PhantomData,
        env: PhantomData,
    };
    let r = catch_unwind(AssertUnwindSafe(|| f(&s)));
    loop {
        *s.data.waiter.lock() = Some(Unparker::current());
        if s.data.running.load(Ordering::SeqCst) == 0 {
            break;
        }
        park::park(WaitReason::ScopeWait, site);
    }
    s.data.waiter.lock().take();
    match r {
        Err(p) => std::panic::resume_unwind(p),
        Ok(v) => {
            if let Some(p) = s.data.panic.lock().take() {
                std::panic::resume_unwind(p);
            }
            v
        }
    }
}
