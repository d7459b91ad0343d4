//! Workers (Go's `m` + `p`, fused) and the scheduler loop (DESIGN §3).
//!
//! # Queues
//!
//! | queue       | holds                      | pushed by                   | popped by            |
//! |-------------|----------------------------|-----------------------------|----------------------|
//! | `runnext`   | one goroutine, next to run | its own worker (wake/spawn) | its own worker       |
//! | `runq`      | pinned, runnable           | its own worker              | its own worker       |
//! | `unstarted` | never-run goroutines       | its own worker              | own worker + thieves |
//! | `inbox`     | pinned, woken elsewhere    | any thread                  | its own worker       |
//! | `injector`  | spawned from plain threads | any thread                  | any worker           |
//!
//! A goroutine that has run is *pinned* to its home worker (DESIGN §1), so
//! only `unstarted` and the injector are ever stolen from: placement is the
//! load-balancing decision.
//!
//! # Fairness
//!
//! Every 61st scheduling tick looks at the inbox and the injector first (Go's
//! `schedtick % 61`); `runnext` is taken at most 16 times in a row while the
//! local queue has work, so a ping-pong pair cannot starve it.
//!
//! # Idle workers
//!
//! A worker without work spins for a short while stealing (at most one
//! spinner at a time is woken for new work, as Go's `wakep`), then sleeps on
//! its futex until its next timer. The sleep protocol is Dekker-style: the
//! worker sets `sleeping` (SeqCst) and re-checks every source; a producer
//! pushes, then (SeqCst fence) reads `sleeping` and unparks. One of the two
//! always sees the other, so no wake is lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};
use crossbeam_queue::SegQueue;
use parking_lot::Mutex;

use super::goroutine::{Body, Coro, GRef, Goroutine, Switch};
use super::park::{ThreadParker, Unparker};
use super::stack::{self, StackPool};
use super::timer::TimerQueue;

mod det;
pub(crate) use det::{splitmix, Det, DET_DEADLOCK_AFTER};

/// Ticks between forced looks at the inbox and injector (Go's 61).
const FAIRNESS_TICK: u32 = 61;
/// Most consecutive `runnext` picks while the local queue waits.
const RUNNEXT_STREAK: u32 = 16;
/// How long a thief waits before taking a busy worker's just-spawned
/// goroutine (Go waits ~3 µs before stealing `runnext`).
const SPAWN_STEAL_BACKOFF: std::time::Duration = std::time::Duration::from_micros(3);
/// How long an idle worker keeps looking for work before it sleeps. A futex
/// sleep/wake round trip costs ~45 µs on these VMs against ~55 ns for a
/// spinning hand-off (DESIGN §3), so spinning for about that long is cheap
/// insurance against paying it on every hand-off.
const SPIN_TIME: std::time::Duration = std::time::Duration::from_micros(50);
/// Channel operations a goroutine may complete without parking before it
/// yields (tokio-style budget).
pub(crate) const BUDGET: u32 = 128;

/// Runtime state shared by all workers (Go's `sched`).
pub(crate) struct Shared {
    /// Set by the monitor when every goroutine is asleep for good: the
    /// message (with a dump) that `block_on` panics with.
    pub(crate) deadlock: Mutex<Option<String>>,
    /// Threads waiting in `block_on`, woken on a deadlock.
    pub(crate) block_on_waiters: Mutex<Vec<Unparker>>,
    /// Goroutines spawned from outside the runtime's workers (stats).
    pub(crate) spawned_outside: std::sync::atomic::AtomicU64,
    /// This is the default runtime running `#[goro::main]`: a deadlock
    /// prints Go's message and exits the process with status 2.
    pub(crate) main_mode: AtomicBool,
    /// Per-worker state other threads may touch.
    pub(crate) workers: Box<[WorkerShared]>,
    /// Goroutines spawned from outside the runtime's workers.
    pub(crate) injector: Injector<GRef>,
    /// Goroutines spawned and not yet finished. On a cache line of its own:
    /// every spawn and exit writes it, while `shutdown` and `exit` next to it
    /// are read by every worker all the time.
    pub(crate) live: Padded<AtomicUsize>,
    /// Set by `Runtime::drop`: goroutines unwind at their next park.
    pub(crate) shutdown: AtomicBool,
    /// Set once every goroutine is gone: workers exit.
    pub(crate) exit: AtomicBool,
    /// Indices of sleeping workers (LIFO).
    pub(crate) sleepers: Mutex<Vec<usize>>,
    /// `sleepers.len()`, readable without the lock.
    pub(crate) num_sleeping: AtomicUsize,
    /// Workers currently spinning for work.
    pub(crate) num_spinning: AtomicUsize,
    /// Default stack reservation in bytes (before rounding).
    pub(crate) stack_size: usize,
    /// Slot size of `stack_size` (guard included).
    pub(crate) slot_size: usize,
    /// Origin of the runtime's nanosecond clock (timers).
    pub(crate) epoch: Instant,
    /// The thread or goroutine waiting in `Runtime::drop` for `live == 0`.
    pub(crate) shutdown_waiter: Mutex<Option<Unparker>>,
    /// Round-robin cursor for timers created on plain threads.
    pub(crate) next_timer_worker: AtomicUsize,
    /// Virtual time and seeded scheduling (`goro::testing`); `None` for an
    /// ordinary runtime, whose workers then never look at it.
    pub(crate) det: Option<Box<Det>>,
    /// Compact the stacks of goroutines parked this long (ms); 0: off
    /// (`compact.rs`).
    pub(crate) compact_after_ms: u64,
}

/// The part of a worker other threads may touch.
pub(crate) struct WorkerShared {
    /// Pinned goroutines woken by other threads.
    pub(crate) inbox: SegQueue<GRef>,
    /// Thieves' end of the worker's `unstarted` queue.
    pub(crate) stealer: Stealer<GRef>,
    /// The worker sleeps on this when idle.
    pub(crate) parker: ThreadParker,
    /// True while the worker is (about to be) asleep.
    pub(crate) sleeping: super::atomic::AtomicBool,
    /// Timers owned by this worker.
    pub(crate) timers: TimerQueue,
    /// Started goroutines pinned here (for shutdown and dumps).
    pub(crate) registry: Mutex<Registry>,
    /// Id of the goroutine running here now, 0 in the scheduler loop (read
    /// by the stuck-worker monitor).
    pub(crate) running: std::sync::atomic::AtomicU64,
    /// Registry slot of `running`.
    pub(crate) running_slot: AtomicUsize,
    /// Goroutine resumptions so far; unchanged across monitor samples while
    /// one goroutine keeps the worker.
    pub(crate) switches: std::sync::atomic::AtomicU64,
    /// The goroutine spawned last here, not yet started (an owning pointer
    /// from `Arc::into_raw`, or null). Its owner runs it next; an idle worker
    /// may take it after a short back-off if the owner keeps running the same
    /// goroutine (Go's `runnext` stealing), so a spawner that computes does
    /// not hold its child back.
    pub(crate) spawn_next: std::sync::atomic::AtomicPtr<Goroutine>,
    /// Goroutines spawned by goroutines running here (stats).
    pub(crate) spawned: std::sync::atomic::AtomicU64,
    /// Goroutines that ended here (stats).
    pub(crate) finished: std::sync::atomic::AtomicU64,
    /// Batches stolen from other workers or the injector (stats).
    pub(crate) steals: std::sync::atomic::AtomicU64,
    /// Times this worker went to sleep (stats).
    pub(crate) sleeps: std::sync::atomic::AtomicU64,
    /// Trace requests of goroutine dumps, served between goroutines.
    pub(crate) trace_reqs: SegQueue<Arc<TraceRequest>>,
    /// Set when `trace_reqs` may be non-empty (one load per tick).
    pub(crate) trace_pending: AtomicBool,
    /// The worker's own epoll instance (its `wake_fd` plus the poller's
    /// epoll fd), in which it sleeps while goroutines wait on sockets; -1
    /// until the worker starts.
    pub(crate) sleep_epfd: std::sync::atomic::AtomicI32,
    /// An eventfd that wakes the worker out of `sleep_epfd`.
    pub(crate) wake_fd: std::sync::atomic::AtomicI32,
    /// True while the worker sleeps in `sleep_epfd` rather than its futex.
    pub(crate) epoll_sleeping: AtomicBool,
    /// The worker thread's kernel thread id (for the monitor's
    /// `/proc/self/task/<tid>/schedstat` reads), 0 until it starts.
    pub(crate) tid: std::sync::atomic::AtomicI32,
    /// Records (with their packets) of goroutines spawned here that finished
    /// on another worker, to be dropped here (see `Worker::retire`): a
    /// Treiber stack of owning `Arc::into_raw` pointers linked through
    /// `Goroutine::reclaim_next`, pushed by any worker, taken whole by this
    /// one. On its own cache line: other workers write it.
    reclaim: Padded<std::sync::atomic::AtomicPtr<Goroutine>>,
}

/// A goroutine dump's request to record the stacks of every started
/// goroutine: each worker resumes its suspended goroutines in trace mode.
pub(crate) struct TraceRequest {
    /// Workers that have not served it yet.
    pub(crate) remaining: AtomicUsize,
    /// The dumper, woken when `remaining` reaches zero.
    pub(crate) waiter: Unparker,
}

/// Asks every worker of `rt` to record its goroutines' stacks and waits for
/// them (at most `timeout`: a worker held by a goroutine that never parks
/// cannot serve the request).
pub(crate) fn trace_all(rt: &Arc<Shared>, timeout: std::time::Duration) {
    let req = Arc::new(TraceRequest {
        remaining: AtomicUsize::new(rt.workers.len()),
        waiter: Unparker::current(),
    });
    for w in rt.workers.iter() {
        w.trace_reqs.push(req.clone());
        w.trace_pending.store(true, Ordering::SeqCst);
        w.wake();
    }
    let deadline = super::timer::deadline_after(timeout);
    let site = std::panic::Location::caller();
    while req.remaining.load(Ordering::Acquire) != 0 && Instant::now() < deadline {
        super::park::park_until(super::park::WaitReason::Dump, site, Some(deadline));
    }
}

/// Drops what is left on every worker's reclaim stack (`Runtime::drop`,
/// after the worker threads have exited: a chain pushed after its owner's
/// last drain would otherwise keep the runtime alive through its records).
pub(crate) fn drain_all_reclaimed(rt: &Shared) {
    for w in rt.workers.iter() {
        let mut p = w.reclaim.swap(std::ptr::null_mut(), Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: owning pointers pushed by `Worker::flush_retired`; the
            // swap made the list ours.
            let g = unsafe { Arc::from_raw(p) };
            p = g.reclaim_next.load(Ordering::Relaxed);
            drop(g);
        }
    }
}

impl WorkerShared {
    /// Wakes the worker wherever it sleeps: its futex, or its epoll (the
    /// parker's token is set either way, so a wake that comes before the
    /// worker sleeps is never lost; see `Worker::sleep_in_epoll`).
    pub(crate) fn wake(&self) {
        self.parker.unpark();
        // SeqCst pairs with the store in `sleep_in_epoll` (Dekker): either
        // we see it sleeping in epoll, or it sees the parker's token.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.epoll_sleeping.load(Ordering::Relaxed) {
            let fd = self.wake_fd.load(Ordering::Relaxed);
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a live u64 to the worker's eventfd,
            // which lives as long as the worker (closed after its loop ends).
            unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
        }
    }
}

/// Slab of the goroutines pinned to one worker.
#[derive(Default)]
pub(crate) struct Registry {
    /// Occupied slots hold a goroutine.
    pub(crate) slots: Vec<Option<GRef>>,
    /// Free slot indices.
    free: Vec<usize>,
}

impl Registry {
    fn insert(&mut self, g: GRef) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(g);
                i
            }
            None => {
                self.slots.push(Some(g));
                self.slots.len() - 1
            }
        }
    }
    fn remove(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            if s.take().is_some() {
                self.free.push(i);
            }
        }
    }
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        stack_size: usize,
        slot_size: usize,
        det: Option<Box<Det>>,
        compact_after_ms: u64,
    ) -> (Arc<Shared>, Vec<Deque<GRef>>) {
        let deques: Vec<Deque<GRef>> = (0..workers).map(|_| Deque::new_lifo()).collect();
        let ws = deques
            .iter()
            .map(|d| WorkerShared {
                inbox: SegQueue::new(),
                stealer: d.stealer(),
                parker: ThreadParker::new(),
                sleeping: super::atomic::AtomicBool::new(false),
                timers: TimerQueue::new(),
                registry: Mutex::new(Registry::default()),
                running: std::sync::atomic::AtomicU64::new(0),
                running_slot: AtomicUsize::new(0),
                switches: std::sync::atomic::AtomicU64::new(0),
                spawn_next: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
                tid: std::sync::atomic::AtomicI32::new(0),
                reclaim: Padded(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())),
                trace_reqs: SegQueue::new(),
                sleep_epfd: std::sync::atomic::AtomicI32::new(-1),
                wake_fd: std::sync::atomic::AtomicI32::new(-1),
                epoll_sleeping: AtomicBool::new(false),
                spawned: std::sync::atomic::AtomicU64::new(0),
                finished: std::sync::atomic::AtomicU64::new(0),
                steals: std::sync::atomic::AtomicU64::new(0),
                sleeps: std::sync::atomic::AtomicU64::new(0),
                trace_pending: AtomicBool::new(false),
            })
            .collect();
        let shared = Arc::new(Shared {
            workers: ws,
            injector: Injector::new(),
            live: Padded(AtomicUsize::new(0)),
            shutdown: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            sleepers: Mutex::new(Vec::new()),
            num_sleeping: AtomicUsize::new(0),
            num_spinning: AtomicUsize::new(0),
            stack_size,
            slot_size,
            epoch: Instant::now(),
            shutdown_waiter: Mutex::new(None),
            next_timer_worker: AtomicUsize::new(0),
            deadlock: Mutex::new(None),
            block_on_waiters: Mutex::new(Vec::new()),
            main_mode: AtomicBool::new(false),
            spawned_outside: std::sync::atomic::AtomicU64::new(0),
            det,
            compact_after_ms,
        });
        (shared, deques)
    }

    /// Nanoseconds since the runtime's epoch.
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64
    }

    /// The runtime's clock: the OS's monotonic clock, or the virtual one.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match &self.det {
            None => Instant::now(),
            Some(d) => self.epoch + std::time::Duration::from_nanos(d.vnow.load(Ordering::Acquire)),
        }
    }

    /// Wakes one sleeping worker if nobody is spinning (Go's `wakep`).
    pub(crate) fn wake_idle(&self) {
        fence(Ordering::SeqCst);
        if self.num_spinning.load(Ordering::Relaxed) != 0
            || self.num_sleeping.load(Ordering::Relaxed) == 0
        {
            return;
        }
        let idx = {
            let mut s = self.sleepers.lock();
            let i = s.pop();
            if i.is_some() {
                self.num_sleeping.fetch_sub(1, Ordering::Relaxed);
            }
            i
        };
        if let Some(i) = idx {
            self.workers[i].wake();
        }
    }

    /// Wakes worker `i` if it sleeps (after something was queued for it).
    pub(crate) fn notify_worker(&self, i: usize) {
        let ws = &self.workers[i];
        if must_wake(&ws.sleeping) {
            ws.wake();
        }
    }

    /// Queues a new goroutine from outside this runtime's workers.
    pub(crate) fn inject(&self, g: GRef) {
        self.injector.push(g);
        self.wake_idle();
    }

    /// Called when a goroutine has finished (or was dropped unstarted).
    fn goroutine_exited(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 && self.shutdown.load(Ordering::Acquire) {
            if let Some(w) = self.shutdown_waiter.lock().take() {
                w.unpark();
            }
        }
    }
}

/// A value alone on its cache line(s) (128 bytes: adjacent-line prefetch).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Adds one to a counter only its worker writes (a plain load and store).
#[inline]
fn bump(c: &std::sync::atomic::AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Worker side of the sleep handshake: announce the sleep, then re-check
/// every source of work before parking (see the module docs).
pub(crate) fn announce_sleep(sleeping: &super::atomic::AtomicBool) {
    sleeping.store(true, Ordering::SeqCst);
    // Orders the store before the re-check loads (StoreLoad); pairs with the
    // fence in `must_wake`.
    super::atomic::fence(Ordering::SeqCst);
}

/// Producer side of the sleep handshake, called after queueing work: whether
/// the worker may have missed it and must be unparked.
pub(crate) fn must_wake(sleeping: &super::atomic::AtomicBool) -> bool {
    // Orders the queue push before the load; pairs with `announce_sleep`.
    super::atomic::fence(Ordering::SeqCst);
    sleeping.load(Ordering::Relaxed)
}

/// A worker thread's own state; other threads never see it.
pub(crate) struct Worker {
    /// The runtime.
    pub(crate) shared: Arc<Shared>,
    /// Index in `shared.workers`.
    pub(crate) index: usize,
    /// The goroutine being resumed, or null in the scheduler loop.
    current: Cell<*const Goroutine>,
    /// The goroutine to run next.
    runnext: Cell<Option<GRef>>,
    /// Pinned runnable goroutines.
    runq: RefCell<VecDeque<GRef>>,
    /// Goroutines that yielded: run after everything else here (Go puts a
    /// `Gosched` goroutine on the global queue for the same reason).
    yieldq: RefCell<VecDeque<GRef>>,
    /// Never-run goroutines; thieves take from the other end.
    unstarted: Deque<GRef>,
    /// Scheduling ticks (fairness).
    tick: Cell<u32>,
    /// Consecutive `runnext` picks.
    streak: Cell<u32>,
    /// Warm stacks of the default size.
    pool: RefCell<StackPool>,
    /// Remaining budget of the running goroutine.
    budget: Cell<u32>,
    /// xorshift state for steal order and `select!`.
    rng: Cell<u64>,
    /// Finished goroutines spawned by other workers, per spawning worker,
    /// waiting to be handed back in one push (see `retire`).
    retired: RefCell<Vec<Retired>>,
    /// Stack compaction state (`compact.rs`).
    compact: super::compact::Local,
}

/// A chain of retired records (owning `Arc::into_raw` pointers linked through
/// `Goroutine::reclaim_next`) bound for one worker's reclaim stack.
#[derive(Clone, Copy)]
struct Retired {
    head: *mut Goroutine,
    tail: *mut Goroutine,
    len: u32,
}

/// Records handed back to their spawner in one push.
const RETIRE_BATCH: u32 = 32;

thread_local! {
    /// The worker running on this thread, or null on a plain thread.
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
}

/// The goroutine running on this thread, or null.
#[inline]
pub(crate) fn current_goroutine_ptr() -> *const Goroutine {
    WORKER.with(|w| {
        let p = w.get();
        if p.is_null() {
            std::ptr::null()
        } else {
            // SAFETY: `WORKER` points at the worker living on this thread's
            // stack for as long as the pointer is set (cleared before it returns).
            unsafe { (*p).current.get() }
        }
    })
}

/// Runs `f` with this thread's worker, if it is one.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    WORKER.with(|w| {
        let p = w.get();
        if p.is_null() {
            f(None)
        } else {
            // SAFETY: as in `current_goroutine_ptr`.
            f(Some(unsafe { &*p }))
        }
    })
}

/// A fast thread-local random number (for `select!` and steal order).
pub(crate) fn fastrand() -> u64 {
    thread_local! {
        static RNG: Cell<u64> = Cell::new({
            let t = Instant::now();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&t, &mut h);
            std::hash::Hash::hash(&std::thread::current().id(), &mut h);
            std::hash::Hasher::finish(&h) | 1
        });
    }
    with_worker(|w| match w {
        Some(w) => xorshift(&w.rng),
        None => RNG.with(xorshift),
    })
}

fn xorshift(c: &Cell<u64>) -> u64 {
    let mut x = c.get();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c.set(x);
    x
}

/// Makes a woken goroutine runnable on its home worker.
pub(crate) fn schedule_woken(g: GRef) {
    let home = g.home.load(Ordering::Relaxed);
    debug_assert_ne!(home, super::goroutine::NO_HOME);
    let g = match with_worker(|w| match w {
        Some(w) if w.index == home && Arc::ptr_eq(&w.shared, &g.rt) => {
            w.push_runnext(g);
            None
        }
        _ => Some(g),
    }) {
        None => return,
        Some(g) => g,
    };
    let rt = g.rt.clone();
    if let Some(det) = &rt.det {
        det.outside_wake(&g);
    }
    rt.workers[home].inbox.push(g);
    rt.notify_worker(home);
}

/// Queues a freshly spawned goroutine: `runnext` of the spawning worker, or
/// the injector when spawned from elsewhere.
pub(crate) fn schedule_new(g: GRef) {
    let g = match with_worker(|w| match w {
        Some(w) if Arc::ptr_eq(&w.shared, &g.rt) => {
            bump(&w.me().spawned);
            w.push_spawned(g);
            None
        }
        _ => Some(g),
    }) {
        None => return,
        Some(g) => g,
    };
    let rt = g.rt.clone();
    rt.spawned_outside.fetch_add(1, Ordering::Relaxed);
    rt.inject(g);
}

/// Whether this thread is a worker of `rt` with a warm default-size stack.
pub(crate) fn pool_has_stack(rt: &Arc<Shared>) -> bool {
    with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, rt) && !w.pool.borrow().is_empty()))
}

/// Spends one unit of the running goroutine's budget; yields when it is
/// exhausted so an always-ready loop cannot monopolise its worker.
#[inline]
pub(crate) fn coop_tick() {
    let exhausted = with_worker(|w| match w {
        Some(w) if !w.current.get().is_null() => {
            let b = w.budget.get();
            if b <= 1 {
                w.budget.set(BUDGET);
                true
            } else {
                w.budget.set(b - 1);
                false
            }
        }
        _ => false,
    });
    if exhausted {
        super::goroutine::yield_current();
    }
}

impl Worker {
    fn new(shared: Arc<Shared>, index: usize, unstarted: Deque<GRef>) -> Worker {
        let slot = shared.slot_size;
        let n = shared.workers.len();
        Worker {
            shared,
            index,
            current: Cell::new(std::ptr::null()),
            runnext: Cell::new(None),
            runq: RefCell::new(VecDeque::new()),
            yieldq: RefCell::new(VecDeque::new()),
            unstarted,
            tick: Cell::new(0),
            streak: Cell::new(0),
            pool: RefCell::new(StackPool::new(slot)),
            budget: Cell::new(BUDGET),
            retired: RefCell::new(vec![
                Retired {
                    head: std::ptr::null_mut(),
                    tail: std::ptr::null_mut(),
                    len: 0,
                };
                n
            ]),
            rng: Cell::new(
                0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
            ),
            compact: super::compact::Local::default(),
        }
    }

    fn me(&self) -> &WorkerShared {
        &self.shared.workers[self.index]
    }

    /// Puts a just-spawned goroutine in `spawn_next`; the previous one moves
    /// to `unstarted`.
    fn push_spawned(&self, g: GRef) {
        debug_assert!(g.is_unstarted());
        self.drain_reclaim();
        let old = self
            .me()
            .spawn_next
            .swap(Arc::into_raw(g) as *mut Goroutine, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: `spawn_next` only ever holds pointers from
            // `Arc::into_raw`, and the swap gave us sole ownership of it.
            self.unstarted.push(unsafe { Arc::from_raw(old) });
        }
        self.shared.wake_idle();
    }

    /// Takes this worker's `spawn_next`.
    fn take_spawned(&self) -> Option<GRef> {
        let slot = &self.me().spawn_next;
        if slot.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `push_spawned`: an owning pointer, now ours.
        (!p.is_null()).then(|| unsafe { Arc::from_raw(p) })
    }

    /// Takes another worker's `spawn_next` if that worker has kept running
    /// the same goroutine for a few microseconds (Go steals `runnext` after
    /// ~3 µs): the spawner is busy, so its child had better run here.
    fn steal_spawned(&self) -> Option<GRef> {
        for (i, w) in self.shared.workers.iter().enumerate() {
            if i == self.index || w.spawn_next.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let running = w.running.load(Ordering::Relaxed);
            let sw = w.switches.load(Ordering::Relaxed);
            if running == 0 {
                continue;
            }
            let t = Instant::now();
            while t.elapsed() < SPAWN_STEAL_BACKOFF {
                std::hint::spin_loop();
            }
            if w.switches.load(Ordering::Relaxed) != sw
                || w.running.load(Ordering::Relaxed) != running
            {
                continue; // the owner moved on: it will take it itself
            }
            let p = w.spawn_next.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !p.is_null() {
                // SAFETY: an owning pointer from `Arc::into_raw`, now ours;
                // `spawn_next` only holds never-run goroutines, which may run
                // on any worker.
                return Some(unsafe { Arc::from_raw(p) });
            }
        }
        None
    }

    /// Puts `g` in `runnext`, moving the previous occupant to the right queue.
    pub(crate) fn push_runnext(&self, g: GRef) {
        if let Some(old) = self.runnext.replace(Some(g)) {
            if old.is_unstarted() {
                self.unstarted.push(old);
                self.shared.wake_idle();
            } else {
                self.runq.borrow_mut().push_back(old);
            }
        }
    }

    /// Queues a goroutine that yielded.
    fn push_yielded(&self, g: GRef) {
        self.yieldq.borrow_mut().push_back(g);
    }

    /// Frees what other workers handed back (see `retire`).
    #[inline]
    fn drain_reclaim(&self) {
        let head = &self.me().reclaim;
        if head.load(Ordering::Relaxed).is_null() {
            return;
        }
        let mut p = head.swap(std::ptr::null_mut(), Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: the stack holds owning pointers from `Arc::into_raw`
            // (`retire`), and the swap made the whole list ours; the Acquire
            // pairs with the pushers' Release, so their writes (the links,
            // the retired body) are visible.
            let g = unsafe { Arc::from_raw(p) };
            p = g.reclaim_next.load(Ordering::Relaxed);
            drop(g);
        }
    }

    /// Disposes of a finished goroutine's record and packet. Memory is best
    /// freed by the thread that allocated it: glibc's malloc frees a chunk of
    /// another thread's arena under that arena's lock, and a worker that
    /// spawns while another runs its children (the common fan-out) would
    /// otherwise fight it for that lock on every spawn (measured: spawn 1M on
    /// two workers spent ~15 % in malloc/free, much of it in futex waits).
    /// So they go back to the spawning worker, in chains of
    /// `RETIRE_BATCH` (one contended push per chain), flushed early when this
    /// worker runs out of work; the spawner drops them when it next spawns,
    /// every fairness tick, and before it sleeps. What is still chained when
    /// a worker exits it drops itself; what reached a stack after its owner
    /// exited, `Runtime::drop` drops (`drain_all_reclaimed`).
    fn retire(&self, g: GRef, task: Arc<dyn super::goroutine::Task>) {
        let s = g.spawner;
        if s == self.index || s >= self.shared.workers.len() {
            drop(task);
            drop(g);
            return;
        }
        // Only memory may be handed back, never a drop anyone could see: if
        // the packet is ours alone (its handle is gone), release it now and
        // send the husk along; if a handle still holds it, drop our count
        // here (the handle's drop frees it, wherever that happens).
        let mut task = task;
        match Arc::get_mut(&mut task) {
            Some(t) => {
                t.finalize();
                // SAFETY: the goroutine has returned and this worker, its
                // home, is the only one that touches its body; once the chain
                // is pushed the spawner owns the record (and the body)
                // through its stack.
                unsafe { *g.body.get() = Body::Retired(task) };
            }
            None => drop(task),
        }
        let raw = Arc::into_raw(g) as *mut Goroutine;
        let full = {
            let mut r = self.retired.borrow_mut();
            let b = &mut r[s];
            // SAFETY: `raw` is ours (from `into_raw` above) and unpublished.
            unsafe { (*raw).reclaim_next.store(b.head, Ordering::Relaxed) };
            if b.tail.is_null() {
                b.tail = raw;
            }
            b.head = raw;
            b.len += 1;
            b.len >= RETIRE_BATCH
        };
        if full {
            self.flush_retired(s);
        }
    }

    /// Pushes the chain bound for worker `s` onto its reclaim stack.
    fn flush_retired(&self, s: usize) {
        let b = std::mem::replace(
            &mut self.retired.borrow_mut()[s],
            Retired {
                head: std::ptr::null_mut(),
                tail: std::ptr::null_mut(),
                len: 0,
            },
        );
        if b.head.is_null() {
            return;
        }
        let head = &self.shared.workers[s].reclaim;
        let mut cur = head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is ours until the CAS publishes it.
            unsafe { (*b.tail).reclaim_next.store(cur, Ordering::Relaxed) };
            match head.compare_exchange_weak(cur, b.head, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Hands every pending chain back (this worker ran out of work).
    fn flush_all_retired(&self) {
        for s in 0..self.shared.workers.len() {
            if self.retired.borrow()[s].len != 0 {
                self.flush_retired(s);
            }
        }
    }

    /// Drops the chains not handed back yet (worker exit).
    fn drop_retired(&self) {
        for b in self.retired.borrow_mut().iter_mut() {
            let mut p = std::mem::replace(&mut b.head, std::ptr::null_mut());
            b.tail = std::ptr::null_mut();
            b.len = 0;
            while !p.is_null() {
                // SAFETY: owning pointers of our own chain (see `retire`).
                let g = unsafe { Arc::from_raw(p) };
                p = g.reclaim_next.load(Ordering::Relaxed);
                drop(g);
            }
        }
    }

    fn drain_inbox(&self) {
        let me = self.me();
        if me.inbox.is_empty() {
            return;
        }
        let mut q = self.runq.borrow_mut();
        while let Some(g) = me.inbox.pop() {
            q.push_back(g);
        }
    }

    /// Work this worker owns or can get without contention.
    fn find_local(&self) -> Option<GRef> {
        if self.me().trace_pending.load(Ordering::Relaxed) {
            self.serve_traces();
        }
        let t = self.tick.get().wrapping_add(1);
        self.tick.set(t);
        if t % FAIRNESS_TICK == 0 {
            self.drain_reclaim();
            self.drain_inbox();
            if let Steal::Success(g) = self.shared.injector.steal() {
                return Some(g);
            }
            if let Some(g) = self.runq.borrow_mut().pop_front() {
                return Some(g);
            }
            // `unstarted` is LIFO for the owner: now and then take its oldest.
            if let Steal::Success(g) = self.me().stealer.steal() {
                return Some(g);
            }
            if let Some(g) = self.yieldq.borrow_mut().pop_front() {
                return Some(g);
            }
        }
        self.run_timers();
        if let Some(g) = self.runnext.take() {
            let s = self.streak.get();
            if s < RUNNEXT_STREAK || self.runq.borrow().is_empty() {
                self.streak.set(s + 1);
                return Some(g);
            }
            self.runq.borrow_mut().push_back(g);
        }
        if let Some(g) = self.take_spawned() {
            return Some(g);
        }
        self.streak.set(0);
        // Goroutines woken from other threads (socket readiness, timers of
        // plain threads, other workers) join the run queue before any
        // never-started goroutine runs: work in progress first, so that a
        // backlog of new goroutines (a burst of connections) cannot hold
        // back the requests already being served.
        self.drain_inbox();
        if let Some(g) = self.runq.borrow_mut().pop_front() {
            return Some(g);
        }
        if let Some(g) = self.unstarted.pop() {
            return Some(g);
        }
        self.yieldq.borrow_mut().pop_front()
    }

    /// Work taken from the injector or other workers.
    fn find_remote(&self) -> Option<GRef> {
        if let Steal::Success(g) = self.shared.injector.steal_batch_and_pop(&self.unstarted) {
            return Some(g);
        }
        let n = self.shared.workers.len();
        if n > 1 {
            let start = (xorshift(&self.rng) % n as u64) as usize;
            for k in 0..n {
                let i = (start + k) % n;
                if i == self.index {
                    continue;
                }
                loop {
                    match self.shared.workers[i]
                        .stealer
                        .steal_batch_and_pop(&self.unstarted)
                    {
                        Steal::Success(g) => {
                            bump(&self.me().steals);
                            return Some(g);
                        }
                        Steal::Retry => continue,
                        Steal::Empty => break,
                    }
                }
            }
        }
        None
    }

    /// Fires due timers; woken goroutines land in this worker's queues.
    fn run_timers(&self) {
        let me = self.me();
        if !me.timers.has_any() {
            return;
        }
        let t = Instant::now();
        me.timers.run_due(self.shared.nanos(t), t);
    }

    /// Whether any work is visible anywhere (re-check before sleeping).
    fn work_visible(&self) -> bool {
        let me = self.me();
        if !me.inbox.is_empty() || !self.shared.injector.is_empty() {
            return true;
        }
        if me.timers.due(self.shared.nanos(Instant::now())) {
            return true;
        }
        if self.shared.shutdown.load(Ordering::Acquire) && self.shared.exit.load(Ordering::Acquire)
        {
            return true;
        }
        self.shared.workers.iter().any(|w| !w.stealer.is_empty())
    }

    fn spin(&self) -> Option<GRef> {
        self.flush_all_retired();
        self.shared.num_spinning.fetch_add(1, Ordering::SeqCst);
        let mut found;
        let start = Instant::now();
        let mut round = 0u32;
        loop {
            self.run_timers();
            // Readiness of our goroutines' sockets, caught here, wakes them
            // without a futex round trip through the poller thread; they land
            // in `runnext`/`runq`, looked at just below.
            super::poller::poll_now();
            found = self
                .runnext
                .take()
                .or_else(|| self.take_spawned())
                .or_else(|| self.runq.borrow_mut().pop_front());
            if found.is_none() {
                found = self.yieldq.borrow_mut().pop_front();
            }
            if found.is_none() {
                self.drain_inbox();
                found = self
                    .runq
                    .borrow_mut()
                    .pop_front()
                    .or_else(|| self.find_remote())
                    .or_else(|| self.steal_spawned());
            }
            if found.is_some() || self.shared.exit.load(Ordering::Acquire) {
                break;
            }
            round += 1;
            if round % 8 == 0 {
                if start.elapsed() >= SPIN_TIME {
                    break;
                }
                // Give the core away if another thread wants it: on a busy
                // machine a spinning worker must not delay one with work.
                std::thread::yield_now();
            } else {
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            }
        }
        if self.shared.num_spinning.fetch_sub(1, Ordering::SeqCst) == 1 && found.is_some() {
            // The last spinner found work: more may follow, keep one looking.
            self.shared.wake_idle();
        }
        found
    }

    fn sleep(&self) {
        self.drain_reclaim();
        let me = self.me();
        {
            let mut s = self.shared.sleepers.lock();
            s.push(self.index);
            self.shared.num_sleeping.fetch_add(1, Ordering::SeqCst);
        }
        announce_sleep(&me.sleeping);
        if !self.work_visible() {
            let mut deadline = me
                .timers
                .next_deadline()
                .map(|ns| self.shared.epoch + std::time::Duration::from_nanos(ns));
            if self.shared.compact_after_ms != 0 {
                // Wake up when parked goroutines become due for compaction.
                let sw = me.switches.load(Ordering::Relaxed);
                if let Some(ms) = self.compact.wake_at_ms(sw) {
                    let at = super::goroutine::coarse_base() + std::time::Duration::from_millis(ms);
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
            }
            bump(&me.sleeps);
            // While goroutines wait on sockets, sleep where their readiness
            // can wake us directly (unless a timer is due within 2 ms: epoll
            // only counts milliseconds).
            let near = deadline.is_some_and(|d| {
                d.saturating_duration_since(Instant::now()) < std::time::Duration::from_millis(2)
            });
            if !near && super::poller::waiting_any() && self.sleep_in_epoll(deadline) {
                // Slept in epoll.
            } else {
                me.parker.park(deadline);
            }
        }
        me.sleeping.store(false, Ordering::SeqCst);
        let mut s = self.shared.sleepers.lock();
        if let Some(pos) = s.iter().position(|&i| i == self.index) {
            s.swap_remove(pos);
            self.shared.num_sleeping.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Sleeps in the worker's own epoll: woken by its eventfd (`wake`), by
    /// readiness on the poller's epoll (which it then harvests itself, so a
    /// goroutine pinned here runs without any futex wake), or by `deadline`.
    /// False if epoll is unavailable (then the caller uses the futex).
    fn sleep_in_epoll(&self, deadline: Option<Instant>) -> bool {
        let me = self.me();
        let epfd = self.ensure_sleep_epoll();
        if epfd < 0 {
            return false;
        }
        me.epoll_sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        // A wake that came before the store left the parker's token: honour
        // it instead of sleeping (pairs with the fence in `wake`).
        if me.parker.take_token() {
            me.epoll_sleeping.store(false, Ordering::SeqCst);
            return true;
        }
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as libc::c_int
            }
        };
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `epfd` is this worker's epoll fd; `evs` has room for 4.
        unsafe { libc::epoll_wait(epfd, evs.as_mut_ptr(), 4, timeout_ms) };
        me.epoll_sleeping.store(false, Ordering::SeqCst);
        let fd = me.wake_fd.load(Ordering::Relaxed);
        let mut buf = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our non-blocking eventfd.
        unsafe { libc::read(fd, &mut buf as *mut u64 as *mut libc::c_void, 8) };
        me.parker.take_token();
        super::poller::poll_now();
        true
    }

    /// Creates the worker's sleep epoll on first use; -1 if impossible.
    fn ensure_sleep_epoll(&self) -> i32 {
        let me = self.me();
        let cur = me.sleep_epfd.load(Ordering::Relaxed);
        if cur >= 0 {
            return cur;
        }
        let Some(shared_epfd) = super::poller::epoll_fd() else {
            return -1;
        };
        // SAFETY: plain fd-creating syscalls; errors are checked.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let ev = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
            if ep < 0 || ev < 0 {
                if ep >= 0 {
                    libc::close(ep);
                }
                if ev >= 0 {
                    libc::close(ev);
                }
                return -1;
            }
            let mut e1 = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 0,
            };
            let mut e2 = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 1,
            };
            if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut e1) != 0
                || libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, shared_epfd, &mut e2) != 0
            {
                libc::close(ep);
                libc::close(ev);
                return -1;
            }
            me.wake_fd.store(ev, Ordering::Relaxed);
            me.sleep_epfd.store(ep, Ordering::Relaxed);
            ep
        }
    }

    /// The scheduler loop (Go's `schedule`).
    fn run(&self) {
        if let Some(det) = self.shared.det.as_deref() {
            return self.run_det(det);
        }
        // Set after a compaction pass did work: the next look for work
        // skips the spin (a pass is the better use of an idle worker).
        let mut compacting = false;
        loop {
            if let Some(g) = self.find_local() {
                compacting = false;
                self.run_goroutine(g, BUDGET);
                continue;
            }
            if self.shared.exit.load(Ordering::Acquire) {
                break;
            }
            let found = self
                .find_remote()
                .or_else(|| if compacting { None } else { self.spin() });
            if let Some(g) = found {
                compacting = false;
                self.run_goroutine(g, BUDGET);
                continue;
            }
            if self.shared.exit.load(Ordering::Acquire) {
                break;
            }
            if self.shared.compact_after_ms != 0 && self.compact_idle() {
                compacting = true;
                continue; // compacted a batch: look for work before the next
            }
            compacting = false;
            self.sleep();
        }
    }

    /// About to sleep: compacts a batch of long-parked goroutines' stacks
    /// (on the scheduler stack, between goroutines). True if it did.
    #[cold]
    fn compact_idle(&self) -> bool {
        let sw = self.me().switches.load(Ordering::Relaxed);
        super::compact::idle_pass(
            &self.compact,
            &self.me().registry,
            self.shared.compact_after_ms,
            sw,
        )
    }

    /// Serves goroutine-dump requests: resumes every suspended goroutine
    /// pinned here in trace mode (it records its stack and switches back,
    /// its scheduling state untouched).
    #[cold]
    fn serve_traces(&self) {
        let me = self.me();
        me.trace_pending.store(false, Ordering::SeqCst);
        while let Some(req) = me.trace_reqs.pop() {
            let gs: Vec<GRef> = me.registry.lock().slots.iter().flatten().cloned().collect();
            for g in gs {
                // SAFETY: `g` is pinned to this worker (it is in our
                // registry), and we are in the scheduler loop, so nobody else
                // touches its body and it is suspended, not running.
                let body = unsafe { &mut *g.body.get() };
                let Body::Running(coro) = body else { continue };
                if g.saved_sp.load(Ordering::Relaxed) & super::compact::COMPACTED_BIT != 0 {
                    super::compact::restore_for_resume(&g, &self.compact);
                }
                g.tracing.store(true, Ordering::Release);
                self.current.set(Arc::as_ptr(&g));
                let r = coro.resume(());
                self.current.set(std::ptr::null());
                debug_assert!(
                    matches!(r, corosensei::CoroutineResult::Yield(_)),
                    "a traced goroutine returned"
                );
            }
            if req.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                req.waiter.unpark();
            }
        }
    }

    /// Starts or resumes `g` with `budget` cooperative operations before it
    /// must yield (`BUDGET`; drawn per run in seeded mode), until it parks,
    /// yields or returns. Always
    /// inlined: the scheduler loop's hottest call (a second call site, the
    /// deterministic loop, would otherwise make the compiler outline it,
    /// which costs ~50 instructions per switch).
    #[inline(always)]
    fn run_goroutine(&self, g: GRef, budget: u32) {
        // SAFETY: we are the worker that owns `g` now: it came out of one of
        // our queues (the only place it was), and if it has run before, we
        // are its home (only the home worker's queues ever hold it).
        let body = unsafe { &mut *g.body.get() };
        if let Body::Unstarted(_) = body {
            let Body::Unstarted(f) = std::mem::replace(body, Body::Finished) else {
                unreachable!()
            };
            if g.cancelled.load(Ordering::Acquire) || self.shared.shutdown.load(Ordering::Acquire) {
                drop(f); // completes its JoinHandle as cancelled
                self.shared.goroutine_exited();
                bump(&self.me().finished);
                return;
            }
            let slot = match stack::slot_size_for(g.stack_size) {
                Ok(s) => s,
                Err(e) => return self.fail_start(&g, f, e),
            };
            let st = match self.pool.borrow_mut().get(slot) {
                Ok(s) => s,
                Err(e) => return self.fail_start(&g, f, e),
            };
            g.home.store(self.index, Ordering::Relaxed);
            let slot_idx = self.me().registry.lock().insert(g.clone());
            g.slot.store(slot_idx, Ordering::Relaxed);
            let gp = Arc::as_ptr(&g) as usize;
            let coro: Coro = corosensei::Coroutine::with_stack(st, move |y, ()| {
                // SAFETY: the record outlives its coroutine: the worker holds
                // a `GRef` while resuming, and the coroutine only runs then.
                unsafe { (*(gp as *const Goroutine)).yielder.set(y as *const _) };
                f.run()
            });
            *body = Body::Running(coro);
        }
        let Body::Running(coro) = body else {
            // Finished goroutines are never queued.
            unreachable!("goroutine {} queued after it finished", g.id)
        };
        // A compacted stack comes back before the switch (one load when not).
        if g.saved_sp.load(Ordering::Relaxed) & super::compact::COMPACTED_BIT != 0 {
            super::compact::restore_for_resume(&g, &self.compact);
        }
        self.current.set(Arc::as_ptr(&g));
        self.budget.set(budget);
        let me = self.me();
        // Single writer: plain stores (Relaxed) are enough for the monitor,
        // which only compares samples.
        // Monitor and dump bookkeeping (`--cfg goro_bookkeeping_off`
        // measures its cost; the monitor and checkdead are blind then).
        if !cfg!(goro_bookkeeping_off) {
            me.switches.store(
                me.switches.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
            me.running_slot
                .store(g.slot.load(Ordering::Relaxed), Ordering::Relaxed);
            me.running.store(g.id, Ordering::Relaxed);
        }
        let r = coro.resume(());
        if !cfg!(goro_bookkeeping_off) {
            me.running.store(0, Ordering::Relaxed);
        }
        self.current.set(std::ptr::null());
        match r {
            corosensei::CoroutineResult::Yield(Switch::Park) => {
                // The parked goroutine keeps this count; its unparker takes
                // it over (see `goroutine::unpark`).
                std::mem::forget(g);
            }
            corosensei::CoroutineResult::Yield(Switch::Yield) => self.push_yielded(g),
            corosensei::CoroutineResult::Return(task) => {
                let Body::Running(coro) = std::mem::replace(body, Body::Finished) else {
                    unreachable!()
                };
                self.pool.borrow_mut().put(coro.into_stack());
                self.me()
                    .registry
                    .lock()
                    .remove(g.slot.load(Ordering::Relaxed));
                self.retire(g, task);
                self.shared.goroutine_exited();
                bump(&self.me().finished);
            }
        }
    }

    #[cold]
    fn fail_start(&self, g: &Goroutine, f: super::goroutine::Unstarted, e: io::Error) {
        eprintln!(
            "goroutine {} could not start: no stack could be allocated: {e}",
            g.id
        );
        drop(f);
        self.shared.goroutine_exited();
        bump(&self.me().finished);
    }
}

/// Body of a worker thread.
pub(crate) fn worker_main(shared: Arc<Shared>, index: usize, unstarted: Deque<GRef>) {
    super::overflow::install_for_thread();
    let w = Worker::new(shared, index, unstarted);
    // SAFETY: gettid has no preconditions.
    w.me()
        .tid
        .store(unsafe { libc::gettid() }, Ordering::Relaxed);
    WORKER.with(|c| c.set(&w as *const Worker));
    w.run();
    WORKER.with(|c| c.set(std::ptr::null()));
    for fd in [
        w.me().sleep_epfd.swap(-1, Ordering::Relaxed),
        w.me().wake_fd.swap(-1, Ordering::Relaxed),
    ] {
        if fd >= 0 {
            // SAFETY: fds this worker created and nobody else closes.
            unsafe { libc::close(fd) };
        }
    }
    w.pool.borrow_mut().drain();
    w.drop_retired();
    w.drain_reclaim();
    w.me().timers.clear();
    // Anything still queued was cancelled and has been dropped by now.
    while w.me().inbox.pop().is_some() {}
}
