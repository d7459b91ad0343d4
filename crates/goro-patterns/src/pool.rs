//! A worker pool with a bounded queue: a fixed number of workers, or a
//! number scaled between a minimum and a maximum.
//!
//! Vocabulary: a *job* is a closure submitted to the pool; it is *accepted*
//! once [`Pool::submit`] (or [`Pool::try_submit`]) returns `Ok`, and then it
//! is either *run* by exactly one worker or *cancelled* (by
//! [`Pool::abort`] or the pool's [`Context`]), never both, never twice. Its
//! [`JobHandle`] reports which.
//!
//! Shape: `workers` goroutines receive from one bounded channel (the queue,
//! Go's `jobs := make(chan Job, n)`). The queue's capacity is the
//! backpressure: a full queue parks `submit` until a worker takes a job.
//!
//! Lifecycle, as a table:
//!
//! | state     | submit          | queued jobs        | running jobs        |
//! |-----------|-----------------|--------------------|---------------------|
//! | open      | accepted        | run                | run                 |
//! | shut down | `Closed`        | run (drained)      | run to completion   |
//! | aborted   | `Closed`        | cancelled          | see `ctx.is_done()` |
//!
//! Fields: the queue's [`Sender`] sits behind a short std lock that is only
//! held to clone or close it, never across a send; the counters are atomics
//! read only for [`Pool::stats`] (Relaxed: they order nothing).
//!
//! Sizing: fixed ([`PoolBuilder::workers`], the default) or scaling
//! ([`PoolBuilder::scaling`]). A scaling pool starts `min` workers; a
//! submit that finds the queue non-empty and no worker idle starts one more,
//! up to `max`; a worker that has waited [`idle_timeout`](PoolBuilder::idle_timeout)
//! (default 1 s) without a job exits while more than `min` are alive.
//!
//! Trade-off: a fixed pool is predictable — its goroutines all exist from
//! the start, and `submit` never spawns, so nothing but a channel send is on
//! the hot path. A scaling pool absorbs bursts with fewer idle goroutines
//! in between, at the cost of a spawn on the submit path while it grows, an
//! idle/busy bookkeeping atomic per job, a timed receive in every worker,
//! and a policy whose lag (a burst first fills the queue, then grows the
//! pool; shrinking waits out the idle time) shows up as latency. A parked
//! goroutine costs about one stack page, so the saving is small: prefer a
//! fixed pool unless the load is bursty and `max` is large. When the right
//! size varies without bound, a [`Limiter`](crate::Limiter) that spawns one
//! goroutine per job up to a bound is the other scaling pool.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goro::chan::{self, Receiver, RecvTimeoutError, Sender, TrySendError};
use goro::context::{CancelFunc, Context};
use goro::JoinHandle;

/// Why a job produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the message is the panic's payload when it was a
    /// string. The worker that ran it carries on.
    Panicked(String),
    /// The job was accepted but never ran: the pool was aborted or its
    /// context was cancelled first.
    Cancelled,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(m) => write!(f, "job panicked: {m}"),
            JobError::Cancelled => f.write_str("job cancelled before it ran"),
        }
    }
}

impl std::error::Error for JobError {}

/// Why a job was not accepted. The job comes back, as with a channel send.
#[derive(PartialEq, Eq)]
pub enum SubmitError<F> {
    /// The pool is shut down, aborted or cancelled.
    Closed(F),
    /// `try_submit` only: the queue is full.
    Full(F),
}

impl<F> SubmitError<F> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Closed(f) | SubmitError::Full(f) => f,
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
            SubmitError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed(_) => f.write_str("the pool is closed"),
            SubmitError::Full(_) => f.write_str("the pool's queue is full"),
        }
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// The result of one job: a value, or why there is none.
///
/// Dropping the handle detaches the job (it still runs).
#[must_use = "dropping a JobHandle detaches the job; join it to see its result"]
pub struct JobHandle<T> {
    /// Receives exactly one result, sent by the worker that ran (or the
    /// party that cancelled) the job.
    rx: Receiver<Result<T, JobError>>,
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("finished", &!self.rx.is_empty())
            .finish()
    }
}

impl<T> JobHandle<T> {
    /// Waits for the job and returns its value.
    ///
    /// # Errors
    ///
    /// [`JobError::Panicked`] if the job panicked, [`JobError::Cancelled`]
    /// if it was cancelled before it ran.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn join(self) -> Result<T, JobError> {
        // Every job sends exactly one result before its sender drops; a
        // closed channel without one means the job was dropped unrun (the
        // pool went away), which is a cancellation too.
        self.rx.recv().unwrap_or(Err(JobError::Cancelled))
    }

    /// Waits at most `d` for the job; gives the handle back on timeout.
    ///
    /// # Errors
    ///
    /// `Err(self)` when the job has not finished in time.
    pub fn join_timeout(self, d: Duration) -> Result<Result<T, JobError>, Self> {
        match self.rx.recv_timeout(d) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Closed) => Ok(Err(JobError::Cancelled)),
            Err(RecvTimeoutError::Timeout) => Err(self),
        }
    }

    /// True once the result is ready (`join` would not wait).
    pub fn is_finished(&self) -> bool {
        !self.rx.is_empty() || self.rx.is_closed()
    }
}

/// A job as the queue holds it: the closure and where its result goes.
trait Task: Send {
    /// Runs the job; returns false if it panicked.
    fn run(self: Box<Self>, ctx: &Context) -> bool;
    /// Reports the job as cancelled without running it.
    fn cancel(self: Box<Self>);
    /// For giving a rejected job's closure back to its submitter.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// The one implementation of [`Task`].
struct Job<F, T> {
    /// The job's closure.
    f: F,
    /// Where its result goes (capacity 1, so the send never waits).
    tx: Sender<Result<T, JobError>>,
}

impl<F, T> Task for Job<F, T>
where
    F: FnOnce(&Context) -> T + Send + 'static,
    T: Send + 'static,
{
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn run(self: Box<Self>, ctx: &Context) -> bool {
        let Job { f, tx } = *self;
        let r = catch_unwind(AssertUnwindSafe(|| f(ctx)));
        let ok = r.is_ok();
        // The handle may be gone (detached job): nothing to report to.
        let _ = tx.send(r.map_err(|p| JobError::Panicked(panic_message(&*p))));
        ok
    }

    fn cancel(self: Box<Self>) {
        let _ = self.tx.send(Err(JobError::Cancelled));
    }
}

/// A job nobody waits for ([`Pool::execute`]): no result channel at all.
struct Detached<F> {
    /// The job's closure.
    f: F,
}

impl<F> Task for Detached<F>
where
    F: FnOnce(&Context) + Send + 'static,
{
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn run(self: Box<Self>, ctx: &Context) -> bool {
        let f = self.f;
        catch_unwind(AssertUnwindSafe(|| f(ctx))).is_ok()
    }

    fn cancel(self: Box<Self>) {}
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Number of workers.
    pub workers: usize,
    /// Jobs accepted and not yet taken by a worker.
    pub queued: usize,
    /// Workers running a job right now.
    pub busy: usize,
    /// Jobs accepted so far.
    pub submitted: u64,
    /// Jobs that ran and returned.
    pub completed: u64,
    /// Jobs that ran and panicked.
    pub failed: u64,
    /// Jobs accepted and cancelled before they ran.
    pub cancelled: u64,
    /// The most workers alive at once so far (equals `workers` for a fixed
    /// pool; at most `max` for a scaling one).
    pub peak_workers: usize,
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workers={} busy={} queued={} submitted={} completed={} failed={} cancelled={}",
            self.workers,
            self.busy,
            self.queued,
            self.submitted,
            self.completed,
            self.failed,
            self.cancelled
        )
    }
}

/// Counters shared by the pool and its workers (Relaxed: statistics only).
#[derive(Debug, Default)]
struct Counters {
    /// Workers inside a job.
    busy: AtomicUsize,
    /// Jobs accepted.
    submitted: AtomicU64,
    /// Jobs that returned.
    completed: AtomicU64,
    /// Jobs that panicked.
    failed: AtomicU64,
    /// Jobs cancelled unrun.
    cancelled: AtomicU64,
    /// Workers alive (started and not retired). Workers that end because
    /// the queue closed are not subtracted: the pool is over by then.
    live: AtomicUsize,
    /// Scaling pools only: workers waiting for a job.
    idle: AtomicUsize,
    /// The highest `live` seen.
    peak: AtomicUsize,
}

/// A scaling pool's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scaling {
    /// Workers kept alive however idle.
    min: usize,
    /// Workers never exceeded.
    max: usize,
    /// How long an extra worker waits for a job before it exits.
    idle: Duration,
}

/// Configures a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    /// Worker goroutines (the minimum, for a scaling pool).
    workers: usize,
    /// `Some` for a scaling pool: its maximum.
    max: Option<usize>,
    /// Idle time before an extra worker of a scaling pool exits.
    idle: Duration,
    /// Queue capacity.
    queue: usize,
    /// Parent context; the pool's own is a child of it.
    ctx: Context,
    /// Worker goroutine name prefix.
    name: String,
}

impl PoolBuilder {
    /// Sets a fixed number of workers (at least 1); undoes
    /// [`scaling`](PoolBuilder::scaling).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self.max = None;
        self
    }

    /// Makes a scaling pool: `min` workers (at least 1) at the start, up to
    /// `max` (at least `min`) under load. A submit that finds the queue
    /// non-empty and no worker idle starts a worker, if fewer than `max`
    /// are alive; a worker idle for [`idle_timeout`](PoolBuilder::idle_timeout)
    /// exits if more than `min` are alive. See the [module docs](self) for
    /// the trade-off against a fixed pool. `scaling(n, n)` is a fixed pool.
    pub fn scaling(mut self, min: usize, max: usize) -> Self {
        self.workers = min.max(1);
        let max = max.max(self.workers);
        self.max = (max > self.workers).then_some(max);
        self
    }

    /// How long an extra worker of a scaling pool waits for a job before it
    /// exits (default 1 s). No effect on a fixed pool.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }

    /// Sets the queue capacity: how many accepted jobs may wait for a
    /// worker before `submit` waits. 0 makes every submit a hand-off to an
    /// idle worker.
    pub fn queue(mut self, cap: usize) -> Self {
        self.queue = cap;
        self
    }

    /// Makes the pool's context a child of `ctx`: cancelling `ctx` cancels
    /// queued jobs and fails waiting submits, as [`Pool::abort`] does.
    pub fn context(mut self, ctx: &Context) -> Self {
        self.ctx = ctx.clone();
        self
    }

    /// Names the worker goroutines `{name}-{i}` (shown in dumps).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// If a worker goroutine cannot be started (no stack could be had);
    /// the workers already started are shut down.
    pub fn build(self) -> std::io::Result<Pool> {
        let (ctx, cancel) = self.ctx.with_cancel();
        let cancel = Arc::new(cancel);
        let (tx, rx) = chan::bounded::<Box<dyn Task>>(self.queue);
        let counters = Arc::new(Counters::default());
        let scaling = self.max.map(|max| Scaling {
            min: self.workers,
            max,
            idle: self.idle,
        });
        let pool = Pool {
            tx: Mutex::new(Some(tx)),
            rx,
            ctx,
            cancel,
            counters,
            scaling,
            queue: self.queue,
            name: self.name,
            started: AtomicUsize::new(0),
            handles: Mutex::new(Vec::with_capacity(self.workers)),
        };
        for _ in 0..self.workers {
            pool.counters.live.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = pool.start_worker() {
                pool.shutdown();
                return Err(e);
            }
        }
        pool.counters.peak.store(self.workers, Ordering::Relaxed);
        Ok(pool)
    }
}

/// Runs (or, once the context is done, cancels) one job.
fn handle(job: Box<dyn Task>, ctx: &Context, c: &Counters) {
    if ctx.is_done() {
        job.cancel();
        c.cancelled.fetch_add(1, Ordering::Relaxed);
        return;
    }
    c.busy.fetch_add(1, Ordering::Relaxed);
    let ok = job.run(ctx);
    c.busy.fetch_sub(1, Ordering::Relaxed);
    if ok {
        c.completed.fetch_add(1, Ordering::Relaxed);
    } else {
        c.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// One worker of a fixed pool: takes jobs until the queue is closed and
/// drained; cancels instead of running once the pool's context is done.
fn worker(rx: Receiver<Box<dyn Task>>, ctx: Context, c: Arc<Counters>) {
    for job in &rx {
        handle(job, &ctx, &c);
    }
}

/// One worker of a scaling pool: as [`worker`], but counted as idle while
/// it waits, and it exits after `s.idle` without a job if more than `s.min`
/// workers are alive.
fn scaling_worker(rx: Receiver<Box<dyn Task>>, ctx: Context, c: Arc<Counters>, s: Scaling) {
    loop {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(_) => {
                c.idle.fetch_add(1, Ordering::SeqCst);
                let r = rx.recv_timeout(s.idle);
                c.idle.fetch_sub(1, Ordering::SeqCst);
                match r {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Closed) => return,
                    Err(RecvTimeoutError::Timeout) => {
                        // Retire if this leaves at least `min` alive. A job
                        // queued meanwhile stays in the queue for the others.
                        let retired = c
                            .live
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                (n > s.min).then(|| n - 1)
                            })
                            .is_ok();
                        if retired {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        handle(job, &ctx, &c);
    }
}

/// A fixed number of worker goroutines serving a bounded queue of jobs.
///
/// ```
/// use goro_patterns::Pool;
///
/// let pool = Pool::new(4, 16);
/// let handles: Vec<_> = (0..10u64)
///     .map(|i| pool.submit(move |_ctx| i * i).unwrap())
///     .collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 285);
/// pool.shutdown();
/// assert_eq!(pool.stats().completed, 10);
/// ```
///
/// Share it between goroutines with an `Arc`. Dropping the pool closes the
/// queue; the workers drain it and end (as [`shutdown`](Pool::shutdown),
/// without waiting).
pub struct Pool {
    /// The queue's sending side; `None` once shut down or aborted. Held
    /// only to clone or close the sender, never across a send.
    tx: Mutex<Option<Sender<Box<dyn Task>>>>,
    /// The queue's receiving side, for `abort` to drain and for `stats`.
    rx: Receiver<Box<dyn Task>>,
    /// The pool's context, given to every job; cancelled by `abort`.
    ctx: Context,
    /// Cancels `ctx`. Shared with the workers, so that dropping the pool
    /// does not cancel the jobs it has accepted.
    cancel: Arc<CancelFunc>,
    /// Statistics, and the live/idle worker counts.
    counters: Arc<Counters>,
    /// `Some` for a scaling pool.
    scaling: Option<Scaling>,
    /// Queue capacity.
    queue: usize,
    /// Worker goroutine name prefix.
    name: String,
    /// Workers started so far (numbers their names).
    started: AtomicUsize,
    /// The workers, joined by `shutdown`/`abort`.
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A pool of `workers` goroutines and a queue of `queue` jobs.
    ///
    /// # Panics
    ///
    /// If a worker goroutine cannot be started; use [`Pool::builder`] to
    /// get an error instead.
    pub fn new(workers: usize, queue: usize) -> Pool {
        Pool::builder()
            .workers(workers)
            .queue(queue)
            .build()
            .unwrap_or_else(|e| panic!("goro_patterns::Pool: cannot start a worker: {e}"))
    }

    /// A builder: one worker per available CPU, a queue of 64, a fresh
    /// background context.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            workers: std::thread::available_parallelism().map_or(4, |n| n.get()),
            max: None,
            idle: Duration::from_secs(1),
            queue: 64,
            ctx: Context::background(),
            name: "pool-worker".into(),
        }
    }

    /// The queue's sender, if the pool is open.
    fn sender(&self) -> Option<Sender<Box<dyn Task>>> {
        if self.ctx.is_done() {
            return None;
        }
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// [`sender`](Pool::sender) for a submit: in a scaling pool, first
    /// starts a worker if the queue is non-empty and no worker is idle.
    fn submitter(&self) -> Option<Sender<Box<dyn Task>>> {
        let tx = self.sender();
        if tx.is_some() {
            if let Some(s) = self.scaling {
                self.maybe_grow(s);
            }
        }
        tx
    }

    /// Starts one more worker if the queue has jobs waiting (or is a
    /// rendezvous), none is idle, and fewer than `s.max` are alive.
    fn maybe_grow(&self, s: Scaling) {
        let c = &self.counters;
        if c.idle.load(Ordering::SeqCst) != 0 || (self.queue != 0 && self.rx.is_empty()) {
            return;
        }
        let grown = c
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < s.max).then_some(n + 1)
            });
        let Ok(before) = grown else { return };
        c.peak.fetch_max(before + 1, Ordering::Relaxed);
        if self.start_worker().is_err() {
            // No stack to be had: carry on with the workers there are.
            c.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Spawns one worker (already counted in `live`) and keeps its handle.
    /// Does nothing once the queue is closed, so that `join_workers`, which
    /// runs after the close, sees every worker.
    fn start_worker(&self) -> std::io::Result<()> {
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        if self.rx.is_closed() {
            return Ok(());
        }
        // A scaling pool's retired workers leave finished handles behind.
        if self.scaling.is_some() {
            handles.retain(|h| !h.is_finished());
        }
        let i = self.started.fetch_add(1, Ordering::Relaxed);
        let (rx, ctx, counters) = (self.rx.clone(), self.ctx.clone(), self.counters.clone());
        let cancel = self.cancel.clone();
        let scaling = self.scaling;
        let h = goro::Builder::new()
            .name(format!("{}-{i}", self.name))
            .spawn(move || {
                match scaling {
                    None => worker(rx, ctx, counters),
                    Some(s) => scaling_worker(rx, ctx, counters, s),
                }
                // The last one of the pool and its workers to go releases
                // the context.
                drop(cancel);
            })?;
        handles.push(h);
        Ok(())
    }

    /// Boxes `f` with a fresh result channel.
    fn package<F, T>(f: F) -> (Box<dyn Task>, JobHandle<T>)
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = chan::bounded(1);
        (Box::new(Job { f, tx }), JobHandle { rx })
    }

    /// Takes the closure back out of a job that was not accepted.
    fn unpackage<F: 'static, T: 'static>(task: Box<dyn Task>) -> F {
        // A job that was not accepted is the one just packaged, so its type
        // is known; going through `Any` keeps this free of unsafe code.
        let any: Box<dyn Any> = task.into_any();
        match any.downcast::<Job<F, T>>() {
            Ok(job) => job.f,
            Err(_) => unreachable!("a rejected job has the type it was submitted with"),
        }
    }

    /// Sends `task` into the queue, waiting while it is full unless `ctx`
    /// is done first; gives the task back if it was not accepted.
    ///
    /// Fast path: `try_send`; the two-arm select (queue, `ctx.done()`) only
    /// runs when the queue is full.
    fn send(
        tx: &Sender<Box<dyn Task>>,
        task: Box<dyn Task>,
        ctx: &Context,
    ) -> Result<(), Box<dyn Task>> {
        let task = match tx.try_send(task) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(t)) => return Err(t),
            Err(TrySendError::Full(t)) => t,
        };
        let done = ctx.done();
        goro::select! {
            send(tx, task) -> r => r.map_err(|e| e.0),
            // The send arm did not run, so `task` was never moved.
            recv(done) -> _ => Err(task),
        }
    }

    /// Queues `f`, waiting while the queue is full (backpressure). `f`
    /// gets the pool's context, which is cancelled by [`abort`](Pool::abort)
    /// or the parent context: long jobs should watch it.
    ///
    /// # Errors
    ///
    /// `Closed(f)` if the pool is shut down or aborted, before or while
    /// this call waits.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (blocks a plain thread) while the queue is full.
    pub fn submit<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(tx) = self.submitter() else {
            return Err(SubmitError::Closed(f));
        };
        let (task, handle) = Self::package(f);
        let r = Self::send(&tx, task, &self.ctx);
        self.accepted(r, handle)
    }

    /// Queues `f`, delivering its result (or why there is none) on
    /// `results` instead of a handle: Go's `results` channel shared by
    /// every job. Waits while the queue is full, as [`submit`](Pool::submit).
    ///
    /// A worker (or [`abort`](Pool::abort), for a cancelled job) sends the
    /// result and waits for room in `results` if it is bounded and full,
    /// so a slow reader of `results` slows the pool down (backpressure); if
    /// every receiver of `results` is gone, the result is dropped.
    ///
    /// ```
    /// let pool = goro_patterns::Pool::new(2, 4);
    /// let (tx, rx) = goro::chan::unbounded();
    /// for i in 0..5u32 {
    ///     pool.submit_to(move |_| i * 10, &tx).unwrap();
    /// }
    /// pool.shutdown();
    /// drop(tx);
    /// let mut got: Vec<u32> = rx.iter().map(|r| r.unwrap()).collect();
    /// got.sort();
    /// assert_eq!(got, [0, 10, 20, 30, 40]);
    /// ```
    ///
    /// # Errors
    ///
    /// `Closed(f)` as for `submit`.
    pub fn submit_to<F, T>(
        &self,
        f: F,
        results: &Sender<Result<T, JobError>>,
    ) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(tx) = self.submitter() else {
            return Err(SubmitError::Closed(f));
        };
        let task: Box<dyn Task> = Box::new(Job {
            f,
            tx: results.clone(),
        });
        match Self::send(&tx, task, &self.ctx) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(t) => Err(SubmitError::Closed(Self::unpackage::<F, T>(t))),
        }
    }

    /// Queues `f` with nobody waiting for its result (Go's `jobs <- f`): no
    /// handle and no result channel, the cheapest way in. A panic is counted
    /// in [`stats`](Pool::stats) as `failed` and the worker carries on. Waits
    /// while the queue is full, as [`submit`](Pool::submit).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// let pool = goro_patterns::Pool::new(2, 8);
    /// let n = Arc::new(AtomicU32::new(0));
    /// for _ in 0..10 {
    ///     let n = n.clone();
    ///     pool.execute(move |_| { n.fetch_add(1, Ordering::Relaxed); }).unwrap();
    /// }
    /// pool.shutdown();
    /// assert_eq!(n.load(Ordering::Relaxed), 10);
    /// ```
    ///
    /// # Errors
    ///
    /// `Closed(f)` if the pool is shut down or aborted.
    pub fn execute<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&Context) + Send + 'static,
    {
        let Some(tx) = self.submitter() else {
            return Err(SubmitError::Closed(f));
        };
        let task: Box<dyn Task> = Box::new(Detached { f });
        match Self::send(&tx, task, &self.ctx) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(t) => match t.into_any().downcast::<Detached<F>>() {
                Ok(d) => Err(SubmitError::Closed(d.f)),
                Err(_) => unreachable!("a rejected job has the type it was submitted with"),
            },
        }
    }

    /// Queues `f` if the queue has room now.
    ///
    /// # Errors
    ///
    /// `Full(f)` if the queue is full, `Closed(f)` if the pool is closed.
    pub fn try_submit<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce(&Context) -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(tx) = self.submitter() else {
            return Err(SubmitError::Closed(f));
        };
        let (task, handle) = Self::package(f);
        match tx.try_send(task) {
            Ok(()) => self.accepted(Ok(()), handle),
            Err(TrySendError::Closed(t)) => Err(SubmitError::Closed(Self::unpackage::<F, T>(t))),
            Err(TrySendError::Full(t)) => Err(SubmitError::Full(Self::unpackage::<F, T>(t))),
        }
    }

    /// Finishes a submit: counts an accepted job, or recovers the closure.
    fn accepted<F: 'static, T: 'static>(
        &self,
        r: Result<(), Box<dyn Task>>,
        handle: JobHandle<T>,
    ) -> Result<JobHandle<T>, SubmitError<F>> {
        match r {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(handle)
            }
            Err(t) => Err(SubmitError::Closed(Self::unpackage::<F, T>(t))),
        }
    }

    /// Closes the queue and waits until every accepted job has run (or
    /// been cancelled, if the context is cancelled meanwhile) and every
    /// worker has ended. Later submits fail with `Closed`. Idempotent.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn shutdown(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tx.close();
        }
        self.join_workers();
    }

    /// Cancels the pool's context, closes the queue, cancels every queued
    /// job (their handles report [`JobError::Cancelled`]) and waits for the
    /// running ones to return. Returns how many queued jobs it cancelled.
    ///
    /// Running jobs are not interrupted: they see `ctx.is_done()`.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn abort(&self) -> usize {
        self.cancel.cancel();
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tx.close();
        }
        let mut n = 0;
        // Empty or Closed: either way nothing is left to cancel here.
        while let Ok(job) = self.rx.try_recv() {
            job.cancel();
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        let before = self.counters.cancelled.load(Ordering::Relaxed);
        self.join_workers();
        // Workers may have taken (and cancelled) queued jobs concurrently.
        n + (self.counters.cancelled.load(Ordering::Relaxed) - before) as usize
    }

    /// Joins every worker not joined yet.
    fn join_workers(&self) {
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            // Workers catch job panics, so they only end by returning.
            let _ = h.join();
        }
    }

    /// The pool's context (cancelled by `abort`).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// True once the pool accepts no more jobs.
    pub fn is_closed(&self) -> bool {
        self.sender().is_none()
    }

    /// A snapshot of the pool's counters.
    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            workers: c.live.load(Ordering::Relaxed),
            queued: self.rx.len(),
            busy: c.busy.load(Ordering::Relaxed),
            submitted: c.submitted.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            peak_workers: c.peak.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tx.close();
        }
    }
}
