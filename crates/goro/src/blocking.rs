//! `goro::blocking`: run blocking work on a pool of OS threads while the
//! calling goroutine parks.
//!
//! The pool is process-wide and elastic: a job goes to an idle pool thread if
//! there is one, otherwise a new thread starts (up to `MAX_THREADS`; beyond
//! that jobs queue). A thread idle for `KEEP_ALIVE` retires. The caller
//! parks on a one-shot slot that the pool thread fills and then unparks.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::goroutine;
use crate::runtime::park::{self, Unparker, WaitReason};

/// Most pool threads alive at once.
const MAX_THREADS: usize = 512;
/// How long an idle pool thread waits for work before it exits.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// The pool's shared state.
struct Pool {
    /// Queue and thread counts, with `cond` for idle threads.
    st: StdMutex<PoolState>,
    /// Idle threads wait here.
    cond: Condvar,
    /// Jobs submitted and not finished (for deadlock detection).
    in_flight: AtomicUsize,
}

struct PoolState {
    /// Jobs not yet taken.
    queue: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        st: StdMutex::new(PoolState {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        cond: Condvar::new(),
        in_flight: AtomicUsize::new(0),
    })
}

/// Jobs running or queued in the blocking pool.
#[allow(dead_code)]
pub(crate) fn in_flight() -> usize {
    pool().in_flight.load(Ordering::Relaxed)
}

fn submit(job: Job) {
    let p = pool();
    p.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut st = p.st.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(job);
    if st.idle > 0 {
        p.cond.notify_one();
        return;
    }
    if st.threads < MAX_THREADS {
        st.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("goro-blocking".into())
            .spawn(pool_thread);
        if spawned.is_err() {
            st.threads -= 1;
            if st.threads == 0 {
                // Nobody could run it: run it here rather than lose it.
                let job = st.queue.pop_back().expect("just pushed");
                drop(st);
                job();
                p.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

fn pool_thread() {
    let p = pool();
    let mut st = p.st.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            p.in_flight.fetch_sub(1, Ordering::Relaxed);
            st = p.st.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (g, timeout) = p
            .cond
            .wait_timeout(st, KEEP_ALIVE)
            .unwrap_or_else(|e| e.into_inner());
        st = g;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

/// The one-shot result slot of a blocking call.
struct Slot<T> {
    /// The outcome, once the pool thread is done.
    result: Mutex<Option<std::thread::Result<T>>>,
    /// The parked caller.
    waiter: Unparker,
}

/// Runs `f` on a pool of OS threads and parks the calling goroutine until it
/// returns: for file I/O, DNS, CPU-heavy or foreign blocking calls that
/// would otherwise stall every goroutine of the worker.
///
/// On a plain OS thread `f` simply runs on the calling thread.
///
/// ```
/// let len = goro::go(|| goro::blocking(|| std::fs::read("/proc/self/status").map(|b| b.len())))
///     .join()
///     .unwrap()
///     .unwrap();
/// assert!(len > 0);
/// ```
///
/// # Panics
///
/// A panic in `f` is re-raised in the caller.
///
/// # Blocking
///
/// Parks a goroutine (its worker runs others); on a plain thread it is `f()`.
#[track_caller]
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !goroutine::in_goroutine() {
        return f();
    }
    let site = Location::caller();
    let slot = Arc::new(Slot {
        result: Mutex::new(None),
        waiter: Unparker::current(),
    });
    let s = slot.clone();
    submit(Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        *s.result.lock() = Some(r);
        s.waiter.unpark();
    }));
    loop {
        if let Some(r) = slot.result.lock().take() {
            match r {
                Ok(v) => return v,
                Err(p) => resume_unwind(p),
            }
        }
        park::park(WaitReason::Blocking, site);
    }
}
