//! The runtime: scheduler, workers, goroutine records, stacks, parking, timers.
//!
//! # Vocabulary, and Go's names for it
//!
//! | goro                     | Go runtime          | what it is                                           |
//! |--------------------------|---------------------|------------------------------------------------------|
//! | [`Goroutine`] (`GRef`)   | `g`                 | a goroutine record: id, name, state, coroutine       |
//! | `Worker`                 | `m` + `p`           | an OS thread with its run queues and timers          |
//! | `Shared`                 | `sched`             | runtime-wide state: injector, sleepers, live count   |
//! | `runnext`                | `p.runnext`         | the goroutine to run next                            |
//! | `runq` / `unstarted`     | `p.runq`            | pinned runnable / stealable never-run goroutines     |
//! | `inbox`                  | —                   | wakes of pinned goroutines from other threads        |
//! | `injector`               | `sched.runq`        | spawns from plain threads                            |
//! | `park` / `Unparker`      | `gopark` / `goready`| the one parking primitive                            |
//! | `WaitReason`             | `waitReason`        | why a goroutine is parked                            |
//! | `TimerQueue`             | `p.timers`          | per-worker timer heap                                |
//! | `SlotStack`              | `stack`             | a guarded stack slot in a slab                       |
//!
//! The one rule that shapes the scheduler: a goroutine never changes OS
//! thread once it has started (DESIGN §1). See `worker.rs` for the queues and
//! `park.rs` for the wake protocol.

pub(crate) mod atomic;
pub(crate) mod compact;
pub(crate) mod goroutine;
#[cfg(all(test, goro_loom))]
mod loom_models;
pub(crate) mod monitor;
pub(crate) mod overflow;
pub(crate) mod park;
pub(crate) mod poller;
pub(crate) mod stack;
pub(crate) mod timer;
mod uffd;
pub(crate) mod worker;

use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once, OnceLock};

use park::Unparker;
pub use park::WaitReason;
use worker::Shared;

use crate::spawn::{spawn_unchecked, JoinHandle};

/// An explicit goro runtime: a set of worker threads with their goroutines.
///
/// Most programs never make one: [`go`](crate::go) outside any runtime uses a
/// lazily started process-wide default runtime. Tests and embedders that want
/// isolation build their own.
///
/// # Examples
///
/// ```
/// let rt = goro::Runtime::builder().workers(2).build().unwrap();
/// let (tx, rx) = goro::chan::bounded(0);
/// let sum = rt.block_on(|| {
///     goro::go(move || for i in 1..=10u32 { tx.send(i).unwrap() });
///     rx.iter().sum::<u32>()
/// });
/// assert_eq!(sum, 55);
/// ```
///
/// # Dropping
///
/// Dropping a `Runtime` ends every goroutine still in it: parked ones are
/// unwound from their park point (destructors run) and their handles report
/// [`JoinError::is_cancelled`](crate::JoinError::is_cancelled); running ones
/// are waited for until their next park. Dropping a runtime from inside one
/// of its own goroutines panics.
pub struct Runtime {
    /// State shared with the workers.
    shared: Arc<Shared>,
    /// Worker threads, joined on drop.
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.workers.len())
            .field("goroutines", &self.shared.live.load(Ordering::Relaxed))
            .finish()
    }
}

/// Configures and starts a [`Runtime`]; from [`Runtime::builder`].
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    /// Worker threads; `None`: `GORO_MAXPROCS` or the available parallelism.
    workers: Option<usize>,
    /// Default stack reservation per goroutine.
    stack_size: usize,
    /// Run on a virtual clock (`goro::testing::synctest`).
    virtual_time: bool,
    /// Seed of a seeded schedule (`goro::testing::explore`).
    seed: Option<u64>,
    /// Seeded mode: yield at every cooperative point.
    preempt_all: bool,
    /// Idle-stack compaction threshold; `None`: off. Outer `None`: not set
    /// (the default, or `GORO_STACK_COMPACTION`).
    stack_compaction: Option<Option<std::time::Duration>>,
}

impl RuntimeBuilder {
    /// Number of worker threads (Go's GOMAXPROCS). Default: the
    /// `GORO_MAXPROCS` environment variable, else the available parallelism.
    pub fn workers(mut self, n: usize) -> RuntimeBuilder {
        self.workers = Some(n);
        self
    }

    /// Default stack reservation per goroutine (default 256 KiB). Only the
    /// pages a goroutine touches cost memory.
    pub fn stack_size(mut self, bytes: usize) -> RuntimeBuilder {
        self.stack_size = bytes;
        self
    }

    /// Runs the runtime on a virtual clock: `goro::time`, timers, tickers,
    /// timeouts, context deadlines and socket deadlines see time that stands
    /// still while any goroutine can run and jumps to the next timer the
    /// moment every goroutine waits on a timer or on another goroutine. A
    /// virtual-time runtime has exactly one worker (`workers` is ignored).
    /// See [`goro::testing`](crate::testing) for what counts as blocked
    /// inside and outside the runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = goro::Runtime::builder().virtual_time(true).build().unwrap();
    /// let real = std::time::Instant::now();
    /// let slept = rt.block_on(|| {
    ///     let t0 = goro::time::now();
    ///     goro::time::sleep(Duration::from_secs(3600));
    ///     goro::time::now() - t0
    /// });
    /// assert_eq!(slept, Duration::from_secs(3600)); // exactly: nothing else ran
    /// assert!(real.elapsed() < Duration::from_secs(60));
    /// ```
    pub fn virtual_time(mut self, on: bool) -> RuntimeBuilder {
        self.virtual_time = on;
        self
    }

    /// Makes every scheduling decision (which runnable goroutine runs next,
    /// how many channel operations it completes before it must yield, which
    /// ready `select!` arm wins) come from a generator seeded with `seed`, so
    /// the same seed replays the same interleaving. Implies
    /// [`virtual_time`](RuntimeBuilder::virtual_time) (real timers would make
    /// the schedule depend on the machine) and one worker.
    /// [`goro::testing::explore`](crate::testing::explore) runs a test under
    /// many seeds.
    ///
    /// ```
    /// let run = |seed| {
    ///     let rt = goro::Runtime::builder().seed(seed).build().unwrap();
    ///     rt.block_on(|| {
    ///         let (tx, rx) = goro::chan::unbounded();
    ///         for i in 0..4 {
    ///             let tx = tx.clone();
    ///             goro::go(move || tx.send(i).unwrap());
    ///         }
    ///         drop(tx);
    ///         rx.iter().collect::<Vec<i32>>()
    ///     })
    /// };
    /// assert_eq!(run(7), run(7)); // the same seed, the same interleaving
    /// ```
    pub fn seed(mut self, seed: u64) -> RuntimeBuilder {
        self.seed = Some(seed);
        self
    }

    /// Idle-stack compaction: the stacks of goroutines parked for at least
    /// `after` are moved into compact heap buffers (the used part only,
    /// typically under 1 KiB) and their pages given back to the kernel;
    /// `None` turns it off. Default: **on, after 1 s**, where the system
    /// allows it, unless the `GORO_STACK_COMPACTION` environment variable
    /// says otherwise (`0`/`off`, `1`/`on` for a 1 s threshold, or a
    /// threshold in milliseconds); `0`/`off` there also overrides this
    /// setting.
    ///
    /// Compaction is invisible to every thread: any access to a compacted
    /// stack (by the goroutine, a scoped thread holding a reference into
    /// it, or the kernel) sees the right bytes, because the pages are
    /// handed to a `userfaultfd` that restores them on first touch. It
    /// needs Linux 6.13+ and permission to handle kernel-mode faults
    /// (`CAP_SYS_PTRACE`, `vm.unprivileged_userfaultfd=1` or access to
    /// `/dev/userfaultfd`); otherwise it stays off, says why in
    /// [`goro::debug::stats`](crate::debug::stats), and, when it was asked
    /// for explicitly (here or in the environment), once on stderr.
    /// Waking a compacted goroutine costs about 2 µs more (the stack is
    /// copied back by whoever wakes it: its worker, or the channel
    /// operation that hands it a value). Runtimes on virtual time never
    /// compact.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = goro::Runtime::builder()
    ///     .stack_compaction(Some(Duration::from_secs(1)))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn stack_compaction(mut self, after: Option<std::time::Duration>) -> RuntimeBuilder {
        self.stack_compaction = Some(after);
        self
    }

    /// Seeded mode: a budget of one (see `testing::Explore::preempt_every_op`).
    pub(crate) fn preempt_all(mut self, on: bool) -> RuntimeBuilder {
        self.preempt_all = on;
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero workers or an impossible stack size; the OS
    /// error if a worker thread cannot be started.
    pub fn build(self) -> io::Result<Runtime> {
        let det = (self.virtual_time || self.seed.is_some())
            .then(|| Box::new(worker::Det::new(self.seed, self.preempt_all)));
        let n = match self.workers {
            _ if det.is_some() => 1,
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a goro runtime needs at least one worker",
                ))
            }
            Some(n) => n,
            None => default_workers(),
        };
        let slot = stack::slot_size_for(self.stack_size)?;
        raise_nofile_limit();
        install_panic_hook();
        goroutine::tick_coarse_clock();
        let compact_ms = if det.is_some() {
            0
        } else {
            compaction_threshold_ms(self.stack_compaction)
        };
        let (shared, deques) = Shared::new(n, self.stack_size, slot, det, compact_ms);
        let mut threads = Vec::with_capacity(n);
        for (i, d) in deques.into_iter().enumerate() {
            let s = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("goro-worker-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || worker::worker_main(s, i, d));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let rt = Runtime {
                        shared,
                        threads: parking_lot::Mutex::new(threads),
                    };
                    drop(rt);
                    return Err(e);
                }
            }
        }
        let s = shared.clone();
        match std::thread::Builder::new()
            .name("goro-monitor".into())
            .spawn(move || monitor::run(s))
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                let rt = Runtime {
                    shared,
                    threads: parking_lot::Mutex::new(threads),
                };
                drop(rt);
                return Err(e);
            }
        }
        Ok(Runtime {
            shared,
            threads: parking_lot::Mutex::new(threads),
        })
    }
}

/// Default idle-stack compaction threshold when switched on by name.
const DEFAULT_COMPACTION: std::time::Duration = std::time::Duration::from_secs(1);

/// The compaction threshold in ms (0: off) for a builder setting, after
/// `GORO_STACK_COMPACTION` and the availability probe.
fn compaction_threshold_ms(set: Option<Option<std::time::Duration>>) -> u64 {
    let env = std::env::var("GORO_STACK_COMPACTION").ok().and_then(|v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "0" | "off" | "false" | "no" => Some(None),
            "1" | "on" | "true" | "yes" => Some(Some(DEFAULT_COMPACTION)),
            t => match t.parse::<u64>() {
                Ok(ms) => Some(Some(std::time::Duration::from_millis(ms))),
                Err(_) => {
                    eprintln!("goro: ignoring GORO_STACK_COMPACTION={v:?}: not 0, 1, off, on or milliseconds");
                    None
                }
            },
        }
    });
    // Asked for by name (the builder or the environment), not just the
    // default: only then is "unavailable here" worth a line on stderr.
    let (want, asked) = match (env, set) {
        (Some(None), _) => (None, true),
        (_, Some(s)) => (s, true),
        (Some(e), None) => (e, true),
        (None, None) => (Some(DEFAULT_COMPACTION), false),
    };
    let Some(after) = want else { return 0 };
    if let Err(why) = compact::probe() {
        if asked {
            static SAID: Once = Once::new();
            SAID.call_once(|| eprintln!("goro: stack compaction off: {why}"));
        }
        return 0;
    }
    (after.as_millis() as u64).max(1)
}

/// `GORO_MAXPROCS` if set to a positive number, else the available parallelism.
fn default_workers() -> usize {
    if let Ok(v) = std::env::var("GORO_MAXPROCS") {
        match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => return n,
            _ => eprintln!("goro: ignoring GORO_MAXPROCS={v:?}: not a positive integer"),
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the soft open-file limit to the hard limit, as Go does at start.
fn raise_nofile_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: get/setrlimit with a valid struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
                l.rlim_cur = l.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            }
        }
    });
}

/// Prints panics of goroutines with the goroutine's id and name (as std does
/// with the thread name); other panics go to the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let handled = goroutine::with_current(|g| match g {
                None => false,
                Some(g) => {
                    let msg = match info.payload().downcast_ref::<&str>() {
                        Some(s) => *s,
                        None => info.payload().downcast_ref::<String>().map_or("Box<dyn Any>", |s| s.as_str()),
                    };
                    let name = g.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                    let loc = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
                    let bt = std::backtrace::Backtrace::capture();
                    let bt = match bt.status() {
                        std::backtrace::BacktraceStatus::Captured => format!("\nstack backtrace:\n{bt}"),
                        _ => String::from(
                            "\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
                        ),
                    };
                    eprintln!("\ngoroutine {}{name} panicked{loc}:\n{msg}{bt}", g.id);
                    true
                }
            });
            if !handled {
                prev(info);
            }
        }));
    });
}

impl Runtime {
    /// A builder for a runtime with custom settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: None,
            stack_size: stack::DEFAULT_STACK,
            virtual_time: false,
            seed: None,
            preempt_all: false,
            stack_compaction: None,
        }
    }

    /// Runs `f` as this runtime's main goroutine; the calling thread waits
    /// for it and gets its result. `f` may borrow from the caller.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f` on the caller. Panics if called from inside
    /// one of this runtime's own goroutines (that would deadlock a worker).
    ///
    /// # Blocking
    ///
    /// Blocks a plain thread; parks a goroutine of another runtime.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        if goroutine::with_current(|g| g.is_some_and(|g| Arc::ptr_eq(&g.rt, &self.shared))) {
            panic!("Runtime::block_on called from inside one of the runtime's own goroutines; use goro::go and join instead");
        }
        let site = Location::caller();
        // SAFETY: `f` and `T` may borrow from the caller. We join the
        // goroutine before returning, and `join` returns only once the
        // goroutine has finished (or was unwound by a runtime drop, which
        // cannot happen while `&self` is borrowed here), so nothing borrowed
        // is used after this function returns.
        let h = unsafe {
            spawn_unchecked(
                &self.shared,
                Some("main".into()),
                self.shared.stack_size,
                site,
                None,
                f,
            )
        }
        .unwrap_or_else(|e| panic!("Runtime::block_on: cannot start the main goroutine: {e}"));
        let r = match h.join_unless(|| self.deadlocked()) {
            Ok(r) => r,
            Err(h) => {
                // Every goroutine is asleep for good (the monitor's
                // checkdead). Unwind them all (the main goroutine may borrow
                // from our caller: it must be gone before we return), then
                // report it as Go would, by panicking.
                let msg = self.shared.deadlock.lock().take().unwrap_or_default();
                self.cancel_all();
                let _ = h.join();
                panic!("{msg}");
            }
        };
        match r {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("Runtime::block_on: {e}"),
        }
    }

    /// Registers the caller as a `block_on` waiter; true once the monitor
    /// has found the runtime deadlocked.
    fn deadlocked(&self) -> bool {
        if self.shared.deadlock.lock().is_some() {
            return true;
        }
        let me = Unparker::current();
        let mut ws = self.shared.block_on_waiters.lock();
        if !ws.iter().any(|w| w.same(&me)) {
            ws.push(me);
        }
        false
    }

    /// Marks every started goroutine cancelled, then wakes them all: each
    /// unwinds from its park point.
    fn cancel_all(&self) {
        let mut all = Vec::new();
        for w in self.shared.workers.iter() {
            all.extend(w.registry.lock().slots.iter().flatten().cloned());
        }
        // Mark all before waking any: an unwinding goroutine may wake
        // another (releasing a lock, dropping a sender), which must
        // already see that it is cancelled.
        for g in &all {
            g.cancelled.store(true, Ordering::SeqCst);
        }
        for g in &all {
            goroutine::unpark(g);
        }
    }

    /// Starts a goroutine on this runtime.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (use [`Builder::spawn`](crate::Builder::spawn) for an `Err`).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        // SAFETY: `F` and `T` are 'static.
        unsafe { spawn_unchecked(&self.shared, None, self.shared.stack_size, site, None, f) }
            .unwrap_or_else(|e| panic!("goro: cannot spawn a goroutine: {e}"))
    }

    pub(crate) fn shared_for_tests(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Live goroutines of this runtime.
    pub fn num_goroutine(&self) -> usize {
        self.shared.live.load(Ordering::Acquire)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if goroutine::with_current(|g| g.is_some_and(|g| Arc::ptr_eq(&g.rt, &self.shared))) {
            panic!("a goro Runtime was dropped from inside one of its own goroutines; drop it from outside");
        }
        let sh = &self.shared;
        sh.shutdown.store(true, Ordering::SeqCst);
        // Cancel every started goroutine; unstarted ones are dropped by the
        // worker that picks them up (it sees `shutdown`).
        loop {
            let mut all = Vec::new();
            for w in sh.workers.iter() {
                all.extend(w.registry.lock().slots.iter().flatten().cloned());
            }
            // Mark all before waking any: an unwinding goroutine may wake
            // another (releasing a lock, dropping a sender), which must
            // already see that it is cancelled.
            for g in &all {
                g.cancelled.store(true, Ordering::SeqCst);
            }
            for g in &all {
                goroutine::unpark(g);
            }
            drop(all);
            // Wait for the count to reach zero (new goroutines spawned while
            // unwinding start cancelled).
            *sh.shutdown_waiter.lock() = Some(Unparker::current());
            if sh.live.load(Ordering::SeqCst) == 0 {
                break;
            }
            park::park_until(
                WaitReason::RuntimeDrop,
                Location::caller(),
                Some(timer::deadline_after(std::time::Duration::from_millis(20))),
            );
            if sh.live.load(Ordering::SeqCst) == 0 {
                break;
            }
        }
        sh.exit.store(true, Ordering::SeqCst);
        for w in sh.workers.iter() {
            w.wake();
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        worker::drain_all_reclaimed(sh);
    }
}

/// The process-wide default runtime, started on first use.
pub(crate) fn default_runtime() -> &'static Runtime {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        Runtime::builder()
            .build()
            .unwrap_or_else(|e| panic!("goro: cannot start the default runtime: {e}"))
    })
}

/// The runtime of the running goroutine, or the default runtime.
pub(crate) fn current_shared() -> Arc<Shared> {
    goroutine::with_current(|g| match g {
        Some(g) => g.rt.clone(),
        None => default_runtime().shared.clone(),
    })
}
