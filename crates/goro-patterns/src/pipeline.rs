//! Typed pipelines: a source, stages connected by bounded channels, a sink.
//!
//! Vocabulary: a *stage* is a function applied by its own `workers`
//! goroutines to every item of its input channel, sending results to its
//! output channel. A *source* produces the first channel (from an iterator,
//! in a goroutine, or a channel you give); a *sink* consumes the last one
//! (a closure in the calling goroutine, a `Vec`, or a channel).
//!
//! A [`Pipeline`] is a description: stages are added lazily and nothing
//! runs until a sink is called. Then every stage's goroutines start, and
//! the sink returns once all of them have ended — so a pipeline never
//! leaves a goroutine behind, whatever way it ends.
//!
//! Errors: a stage returns `Result`. The *first* error (or panic) is kept,
//! the run's [`Context`] is cancelled, every goroutine parked on a channel
//! of the pipeline wakes through that context's `done()` and returns, and
//! the sink returns the error. Later errors (a stage failing because of the
//! cancellation) are dropped, as in Go's errgroup.
//!
//! Order: a stage with one worker keeps order. A stage with several
//! workers is unordered unless made with [`ordered_stage`](Pipeline::ordered_stage):
//! then a dispatcher numbers the items, the workers process them in any
//! order, and a reorderer releases them in number order. A window of
//! `4 × workers + buffer` numbered items bounds the reorderer's memory: the
//! dispatcher waits for a slot, the reorderer frees one per released item.
//!
//! Statistics: every stage counts items in and out and the nanoseconds its
//! workers spent working, waiting for input and waiting to send output
//! (summed over workers). A stage that is mostly *working* while its
//! neighbours mostly *wait* is the bottleneck; [`PipelineStats`] names it.
//! The counters are Relaxed atomics: they order nothing.
//!
//! Rejected alternative: building the pipeline eagerly, one goroutine per
//! stage at the time it is added. Then an error between two `stage` calls,
//! or a pipeline that is built and dropped, would leave goroutines behind.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::chan::{self, Receiver, Sender, TryRecvError, TrySendError};
use goro::context::{self, CancelFunc, Context};
use goro::sync::WaitGroup;

/// Why a pipeline failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// A stage (or the sink) returned an error: the first one.
    Stage {
        /// The stage's name.
        stage: String,
        /// Its error.
        error: E,
    },
    /// A stage's function panicked.
    Panicked {
        /// The stage's name.
        stage: String,
        /// The panic's message.
        message: String,
    },
    /// The context given with [`Pipeline::with_context`] was cancelled.
    Canceled(context::Error),
}

impl<E> Error<E> {
    /// The stage's own error, if that is what this is.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Stage { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The name of the stage that failed, if a stage did.
    pub fn stage(&self) -> Option<&str> {
        match self {
            Error::Stage { stage, .. } | Error::Panicked { stage, .. } => Some(stage),
            Error::Canceled(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stage { stage, error } => write!(f, "stage {stage}: {error}"),
            Error::Panicked { stage, message } => write!(f, "stage {stage} panicked: {message}"),
            Error::Canceled(e) => write!(f, "pipeline: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Error<E> {}

/// Counters of one stage (Relaxed: statistics only).
#[derive(Debug)]
struct Counters {
    /// Stage name.
    name: String,
    /// Worker goroutines.
    workers: usize,
    /// Items taken from the input.
    items_in: AtomicU64,
    /// Items sent to the output.
    items_out: AtomicU64,
    /// When the counters were made: the origin of the `*_at` offsets.
    epoch: Instant,
    /// Nanoseconds lived by workers that have ended.
    ended_ns: AtomicU64,
    /// Workers running now.
    running: AtomicU64,
    /// Sum of the start offsets (ns since `epoch`) of running workers.
    running_since_sum: AtomicU64,
    /// Nanoseconds spent waiting for input.
    blocked_in_ns: AtomicU64,
    /// Nanoseconds spent waiting for room in the output.
    blocked_out_ns: AtomicU64,
}

impl Counters {
    /// Fresh counters.
    fn new(name: &str, workers: usize) -> Arc<Counters> {
        Arc::new(Counters {
            name: name.to_string(),
            workers,
            items_in: AtomicU64::new(0),
            items_out: AtomicU64::new(0),
            epoch: Instant::now(),
            ended_ns: AtomicU64::new(0),
            running: AtomicU64::new(0),
            running_since_sum: AtomicU64::new(0),
            blocked_in_ns: AtomicU64::new(0),
            blocked_out_ns: AtomicU64::new(0),
        })
    }

    /// Adds the time since `t` to `c`.
    fn add(c: &AtomicU64, t: Instant) {
        c.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Nanoseconds since `epoch`.
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Counts a worker as running until the guard drops.
    fn enter(self: &Arc<Self>) -> Active {
        let since = self.now();
        self.running_since_sum.fetch_add(since, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        Active {
            c: self.clone(),
            since,
        }
    }

    /// Worker time not spent waiting: everything workers lived minus their
    /// waits. Measured this way, the fast path of an item (a buffered
    /// value taken, room found) reads no clock; only waits do.
    fn busy(&self) -> Duration {
        let now = self.now();
        let running = self.running.load(Ordering::Relaxed);
        let live = (running * now).saturating_sub(self.running_since_sum.load(Ordering::Relaxed));
        let lived = self.ended_ns.load(Ordering::Relaxed) + live;
        let waited = self.blocked_in_ns.load(Ordering::Relaxed)
            + self.blocked_out_ns.load(Ordering::Relaxed);
        Duration::from_nanos(lived.saturating_sub(waited))
    }
}

/// A running worker of a stage (see [`Counters::enter`]).
struct Active {
    /// The stage's counters.
    c: Arc<Counters>,
    /// When the worker started (ns since `epoch`).
    since: u64,
}

impl Drop for Active {
    fn drop(&mut self) {
        let c = &self.c;
        c.ended_ns
            .fetch_add(c.now() - self.since, Ordering::Relaxed);
        c.running.fetch_sub(1, Ordering::Relaxed);
        c.running_since_sum.fetch_sub(self.since, Ordering::Relaxed);
    }
}

/// A snapshot of one stage's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageStats {
    /// The stage's name (`source` and `sink` for the ends).
    pub name: String,
    /// Its worker goroutines.
    pub workers: usize,
    /// Items taken from its input.
    pub items_in: u64,
    /// Items sent to its output.
    pub items_out: u64,
    /// Time spent working, summed over workers.
    pub busy: Duration,
    /// Time spent waiting for input (upstream too slow), summed over workers.
    pub blocked_in: Duration,
    /// Time spent waiting to send (downstream too slow), summed over workers.
    pub blocked_out: Duration,
}

impl StageStats {
    /// The share of its time the stage spent working, 0.0 to 1.0.
    pub fn utilization(&self) -> f64 {
        let total = (self.busy + self.blocked_in + self.blocked_out).as_secs_f64();
        if total == 0.0 {
            0.0
        } else {
            self.busy.as_secs_f64() / total
        }
    }
}

impl fmt::Display for StageStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<12} x{:<3} in {:>9} out {:>9}  busy {:>9.3?}  wait-in {:>9.3?}  wait-out {:>9.3?}  util {:>5.1}%",
            self.name,
            self.workers,
            self.items_in,
            self.items_out,
            self.busy,
            self.blocked_in,
            self.blocked_out,
            self.utilization() * 100.0
        )
    }
}

/// A live view of a pipeline's per-stage counters; cheap to clone, readable
/// while the pipeline runs (from another goroutine) and after.
#[derive(Debug, Clone, Default)]
pub struct PipelineStats {
    /// Every stage's counters, in pipeline order.
    stages: Arc<Mutex<Vec<Arc<Counters>>>>,
}

impl PipelineStats {
    /// Registers a stage.
    fn register(&self, c: Arc<Counters>) {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(c);
    }

    /// A snapshot of every stage, in pipeline order.
    pub fn snapshot(&self) -> Vec<StageStats> {
        let stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        stages
            .iter()
            .map(|c| StageStats {
                name: c.name.clone(),
                workers: c.workers,
                items_in: c.items_in.load(Ordering::Relaxed),
                items_out: c.items_out.load(Ordering::Relaxed),
                busy: c.busy(),
                blocked_in: Duration::from_nanos(c.blocked_in_ns.load(Ordering::Relaxed)),
                blocked_out: Duration::from_nanos(c.blocked_out_ns.load(Ordering::Relaxed)),
            })
            .collect()
    }

    /// The stage (source and sink included) with the highest utilization:
    /// the one the others wait for.
    pub fn bottleneck(&self) -> Option<String> {
        self.snapshot()
            .into_iter()
            .filter(|s| s.items_in + s.items_out > 0)
            .max_by(|a, b| a.utilization().total_cmp(&b.utilization()))
            .map(|s| s.name)
    }
}

impl fmt::Display for PipelineStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in self.snapshot() {
            writeln!(f, "{s}")?;
        }
        if let Some(b) = self.bottleneck() {
            writeln!(f, "bottleneck: {b}")?;
        }
        Ok(())
    }
}

/// One run of a pipeline: its context, first error and goroutines.
struct Run<E> {
    /// The caller's context (to tell its cancellation from ours).
    parent: Context,
    /// Cancelled on the first error, or when the sink goes away.
    ctx: Context,
    /// Cancels `ctx`.
    cancel: CancelFunc,
    /// The first error; later ones are dropped.
    error: Mutex<Option<Error<E>>>,
    /// Every goroutine of the run.
    wg: WaitGroup,
}

impl<E> Run<E> {
    /// Records `e` if it is the first error, then cancels the run.
    fn fail(&self, e: Error<E>) {
        {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() && !self.ctx.is_done() {
                *slot = Some(e);
            }
        }
        self.cancel.cancel();
    }

    /// Starts `f` as a goroutine of the run, named `name`.
    fn spawn(self: &Arc<Self>, name: String, f: impl FnOnce() + Send + 'static)
    where
        E: Send + 'static,
    {
        /// Marks the goroutine done however it ends.
        struct Done(WaitGroup);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.wg.add(1);
        let done = Done(self.wg.clone());
        let spawned = goro::Builder::new().name(name.clone()).spawn(move || {
            let _done = done;
            f();
        });
        if let Err(e) = spawned {
            self.fail(Error::Panicked {
                stage: name,
                message: format!("cannot start a goroutine: {e}"),
            });
        }
    }

    /// Waits for every goroutine, then reports how the run ended.
    fn finish(&self) -> Result<(), Error<E>> {
        self.wg.wait();
        self.cancel.cancel();
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        match self.parent.err() {
            Some(e) => Err(Error::Canceled(e)),
            None => Ok(()),
        }
    }
}

/// Receives from `rx` unless the run is cancelled first.
///
/// Fast path: a value already buffered is taken with `try_recv`, without
/// the cost of a two-arm select; only an empty channel waits in `select!`
/// on the channel and the run's `done`.
fn recv_or_done<T>(
    rx: &Receiver<T>,
    ctx: &Context,
    done: &Receiver<()>,
    blocked: Option<&AtomicU64>,
) -> Option<T> {
    if ctx.is_done() {
        return None;
    }
    match rx.try_recv() {
        Ok(v) => return Some(v),
        Err(TryRecvError::Closed) => return None,
        Err(TryRecvError::Empty) => {}
    }
    let t = Instant::now();
    let v = goro::select! {
        recv(rx) -> v => v.ok(),
        recv(done) -> _ => None,
    };
    if let Some(b) = blocked {
        Counters::add(b, t);
    }
    v
}

/// Sends `v` on `tx` unless the run is cancelled first; false if it was,
/// or if the receiving side is gone (then the run is cancelled too: there
/// is nobody to produce for).
///
/// Fast path as `recv_or_done`: `try_send` first, `select!` only when the
/// channel is full.
fn send_or_done<T, E>(
    tx: &Sender<T>,
    v: T,
    run: &Run<E>,
    done: &Receiver<()>,
    blocked: Option<&AtomicU64>,
) -> bool {
    if run.ctx.is_done() {
        return false;
    }
    let v = match tx.try_send(v) {
        Ok(()) => return true,
        Err(TrySendError::Closed(_)) => {
            run.cancel.cancel();
            return false;
        }
        Err(TrySendError::Full(v)) => v,
    };
    let t = Instant::now();
    let sent = goro::select! {
        send(tx, v) -> r => {
            if r.is_err() {
                run.cancel.cancel();
            }
            r.is_ok()
        },
        recv(done) -> _ => false,
    };
    if let Some(b) = blocked {
        Counters::add(b, t);
    }
    sent
}

/// Starts the goroutines of a pipeline's stages; returns the last channel.
type Launch<T, E> = Box<dyn FnOnce(&Arc<Run<E>>) -> Receiver<T> + Send>;

/// A pipeline producing items of type `T`, failing with errors of type `E`.
///
/// ```
/// use goro_patterns::Pipeline;
///
/// let squares: Vec<u64> = Pipeline::<u64, String>::source(1..=10)
///     .ordered_stage("square", 4, |x| Ok(x * x))
///     .stage("check", 1, |x| if x > 0 { Ok(x) } else { Err("zero".to_string()) })
///     .collect()
///     .unwrap();
/// assert_eq!(squares, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
/// ```
///
/// The first error cancels everything and is returned:
///
/// ```
/// use goro_patterns::{pipeline, Pipeline};
///
/// let r = Pipeline::source(0..1_000_000u32)
///     .stage("parse", 4, |x| if x == 500 { Err("bad item") } else { Ok(x) })
///     .collect();
/// assert!(matches!(r, Err(pipeline::Error::Stage { error: "bad item", .. })));
/// ```
#[must_use = "a pipeline does nothing until a sink (collect, for_each, ...) runs it"]
pub struct Pipeline<T, E> {
    /// Starts every stage so far.
    launch: Launch<T, E>,
    /// Per-stage counters.
    stats: PipelineStats,
    /// Capacity of the channels of stages added from now on.
    buffer: usize,
    /// The parent of the run's context.
    ctx: Context,
}

impl<T, E> fmt::Debug for Pipeline<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stats.snapshot().len())
            .field("buffer", &self.buffer)
            .finish()
    }
}

/// Default channel capacity between stages.
const DEFAULT_BUFFER: usize = 16;

impl<T: Send + 'static, E: Send + 'static> Pipeline<T, E> {
    /// A pipeline whose source goroutine (stage `source`) sends every item
    /// of `iter`.
    pub fn source<I>(iter: I) -> Pipeline<T, E>
    where
        I: IntoIterator<Item = T> + Send + 'static,
    {
        let stats = PipelineStats::default();
        let c = Counters::new("source", 1);
        stats.register(c.clone());
        let buffer = DEFAULT_BUFFER;
        Pipeline {
            launch: Box::new(move |run: &Arc<Run<E>>| {
                let (tx, rx) = chan::bounded(buffer);
                let r = run.clone();
                run.spawn("pipeline:source".into(), move || {
                    let _active = c.enter();
                    let done = r.ctx.done();
                    let mut it = iter.into_iter();
                    loop {
                        let next = catch_unwind(AssertUnwindSafe(|| it.next()));
                        let v = match next {
                            Ok(Some(v)) => v,
                            Ok(None) => break,
                            Err(p) => {
                                r.fail(Error::Panicked {
                                    stage: "source".into(),
                                    message: crate::pool::panic_message(&*p),
                                });
                                break;
                            }
                        };
                        c.items_in.fetch_add(1, Ordering::Relaxed);
                        if !send_or_done(&tx, v, &r, &done, Some(&c.blocked_out_ns)) {
                            break;
                        }
                        c.items_out.fetch_add(1, Ordering::Relaxed);
                    }
                });
                rx
            }),
            stats,
            buffer,
            ctx: Context::background(),
        }
    }

    /// A pipeline whose items come from `rx` until it is closed. The
    /// channel's producer is yours: a cancelled pipeline stops receiving
    /// but does not stop it.
    pub fn from_channel(rx: Receiver<T>) -> Pipeline<T, E> {
        Pipeline {
            launch: Box::new(move |_: &Arc<Run<E>>| rx),
            stats: PipelineStats::default(),
            buffer: DEFAULT_BUFFER,
            ctx: Context::background(),
        }
    }

    /// Runs the pipeline under `ctx`: cancelling it cancels every stage and
    /// the sink returns [`Error::Canceled`].
    pub fn with_context(mut self, ctx: &Context) -> Self {
        self.ctx = ctx.clone();
        self
    }

    /// Sets the capacity of the channels of stages added after this call.
    pub fn buffer(mut self, cap: usize) -> Self {
        self.buffer = cap;
        self
    }

    /// The live per-stage counters (stages added later appear as they are
    /// added; the sink appears when it starts).
    pub fn stats(&self) -> PipelineStats {
        self.stats.clone()
    }

    /// Adds a stage: `workers` goroutines apply `f` to every item; output
    /// order is arrival order (kept with one worker, not with several).
    ///
    /// # Panics
    ///
    /// If `workers` is 0.
    pub fn stage<U, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U, E>
    where
        U: Send + 'static,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        self.add_stage(name, workers, false, move |t| f(t).map(Some))
    }

    /// As [`stage`](Pipeline::stage), but the output keeps the input's order
    /// whatever the number of workers.
    pub fn ordered_stage<U, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U, E>
    where
        U: Send + 'static,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        self.add_stage(name, workers, true, move |t| f(t).map(Some))
    }

    /// A stage that may drop items: `Ok(None)` sends nothing.
    pub fn filter_stage<U, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U, E>
    where
        U: Send + 'static,
        F: Fn(T) -> Result<Option<U>, E> + Send + Sync + 'static,
    {
        self.add_stage(name, workers, false, f)
    }

    /// An order-keeping [`filter_stage`](Pipeline::filter_stage).
    pub fn ordered_filter_stage<U, F>(self, name: &str, workers: usize, f: F) -> Pipeline<U, E>
    where
        U: Send + 'static,
        F: Fn(T) -> Result<Option<U>, E> + Send + Sync + 'static,
    {
        self.add_stage(name, workers, true, f)
    }

    /// The one stage builder.
    fn add_stage<U, F>(self, name: &str, workers: usize, ordered: bool, f: F) -> Pipeline<U, E>
    where
        U: Send + 'static,
        F: Fn(T) -> Result<Option<U>, E> + Send + Sync + 'static,
    {
        assert!(
            workers > 0,
            "goro_patterns::Pipeline: stage {name} needs at least one worker"
        );
        let c = Counters::new(name, workers);
        self.stats.register(c.clone());
        let f = Arc::new(f);
        let name = name.to_string();
        let buffer = self.buffer;
        let prev = self.launch;
        let launch: Launch<U, E> = Box::new(move |run: &Arc<Run<E>>| {
            let input = prev(run);
            let (tx, out) = chan::bounded(buffer);
            if ordered && workers > 1 {
                launch_ordered(run, &name, workers, buffer, input, tx, f, c);
            } else {
                for i in 0..workers {
                    let (input, tx, f, c, r) =
                        (input.clone(), tx.clone(), f.clone(), c.clone(), run.clone());
                    let stage = name.clone();
                    run.spawn(format!("pipeline:{name}#{i}"), move || {
                        let _active = c.enter();
                        let done = r.ctx.done();
                        while let Some(u) = work(&input, &*f, &c, &r, &stage, &done) {
                            if let Some(u) = u {
                                if !send_or_done(&tx, u, &r, &done, Some(&c.blocked_out_ns)) {
                                    break;
                                }
                                c.items_out.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
            out
        });
        Pipeline {
            launch,
            stats: self.stats,
            buffer: self.buffer,
            ctx: self.ctx,
        }
    }

    /// Starts the run: every goroutine, and the last channel.
    fn start(self, sink: bool) -> (Arc<Run<E>>, Receiver<T>, Arc<Counters>) {
        let (ctx, cancel) = self.ctx.with_cancel();
        let run = Arc::new(Run {
            parent: self.ctx,
            ctx,
            cancel,
            error: Mutex::new(None),
            wg: WaitGroup::new(),
        });
        let c = Counters::new("sink", 1);
        if sink {
            self.stats.register(c.clone());
        }
        let rx = (self.launch)(&run);
        (run, rx, c)
    }

    /// Runs the pipeline, calling `f` on every output item in the calling
    /// goroutine (stage `sink`). Returns when every goroutine of the
    /// pipeline has ended.
    ///
    /// # Errors
    ///
    /// The first error of any stage or of `f` (which cancels the rest), or
    /// [`Error::Canceled`] if the context given to
    /// [`with_context`](Pipeline::with_context) was cancelled.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (blocks a plain thread) until the run ends.
    pub fn for_each<F>(self, mut f: F) -> Result<(), Error<E>>
    where
        F: FnMut(T) -> Result<(), E>,
    {
        let (run, rx, c) = self.start(true);
        let done = run.ctx.done();
        let active = c.enter();
        loop {
            let Some(v) = recv_or_done(&rx, &run.ctx, &done, Some(&c.blocked_in_ns)) else {
                break;
            };
            c.items_in.fetch_add(1, Ordering::Relaxed);
            let r = f(v);
            if let Err(e) = r {
                run.fail(Error::Stage {
                    stage: "sink".into(),
                    error: e,
                });
                break;
            }
        }
        drop((rx, active));
        run.finish()
    }

    /// Runs the pipeline, folding its output.
    ///
    /// # Errors
    ///
    /// As [`for_each`](Pipeline::for_each).
    pub fn fold<A, F>(self, init: A, mut f: F) -> Result<A, Error<E>>
    where
        F: FnMut(A, T) -> Result<A, E>,
    {
        let mut acc = Some(init);
        self.for_each(|v| {
            let a = acc
                .take()
                .expect("fold: the accumulator is put back after every item");
            acc = Some(f(a, v)?);
            Ok(())
        })?;
        Ok(acc.expect("fold: the accumulator is put back after every item"))
    }

    /// Runs the pipeline, collecting its output.
    ///
    /// # Errors
    ///
    /// As [`for_each`](Pipeline::for_each).
    pub fn collect(self) -> Result<Vec<T>, Error<E>> {
        let mut out = Vec::new();
        self.for_each(|v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// Starts the pipeline in the background, sending its output into `tx`
    /// (a sink goroutine forwards it). Wait for the end with
    /// [`Running::wait`]. If every receiver of `tx` goes away the pipeline
    /// stops without an error.
    pub fn into_channel(self, tx: Sender<T>) -> Running<E> {
        let (run, rx, c) = self.start(true);
        let r = run.clone();
        run.spawn("pipeline:sink".into(), move || {
            let _active = c.enter();
            let done = r.ctx.done();
            loop {
                let Some(v) = recv_or_done(&rx, &r.ctx, &done, Some(&c.blocked_in_ns)) else {
                    break;
                };
                c.items_in.fetch_add(1, Ordering::Relaxed);
                if !send_or_done(&tx, v, &r, &done, Some(&c.blocked_out_ns)) {
                    break;
                }
                c.items_out.fetch_add(1, Ordering::Relaxed);
            }
        });
        Running { run }
    }

    /// Starts the pipeline in the background and returns its last channel
    /// to receive from, with the handle to wait on. Dropping the receiver
    /// early stops the pipeline without an error.
    pub fn spawn(self) -> (Receiver<T>, Running<E>) {
        let (run, rx, _) = self.start(false);
        (rx, Running { run })
    }
}

/// A pipeline running in the background.
#[must_use = "wait on a running pipeline to see its error"]
pub struct Running<E> {
    /// The run.
    run: Arc<Run<E>>,
}

impl<E> fmt::Debug for Running<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("cancelled", &self.run.ctx.is_done())
            .finish()
    }
}

impl<E> Running<E> {
    /// Cancels the run (without an error).
    pub fn cancel(&self) {
        self.run.cancel.cancel();
    }

    /// Waits until every goroutine of the pipeline has ended.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::for_each`].
    pub fn wait(self) -> Result<(), Error<E>> {
        self.run.finish()
    }
}

/// Takes one item, applies `f`; `None` when the input is closed, the run
/// cancelled or `f` failed (recorded).
fn work<T, U, E, F>(
    input: &Receiver<T>,
    f: &F,
    c: &Counters,
    run: &Run<E>,
    stage: &str,
    done: &Receiver<()>,
) -> Option<Option<U>>
where
    F: Fn(T) -> Result<Option<U>, E>,
{
    let v = recv_or_done(input, &run.ctx, done, Some(&c.blocked_in_ns))?;
    c.items_in.fetch_add(1, Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(|| f(v)));
    match r {
        Ok(Ok(u)) => Some(u),
        Ok(Err(e)) => {
            run.fail(Error::Stage {
                stage: stage.to_string(),
                error: e,
            });
            None
        }
        Err(p) => {
            run.fail(Error::Panicked {
                stage: stage.to_string(),
                message: crate::pool::panic_message(&*p),
            });
            None
        }
    }
}

/// Starts an order-keeping stage: dispatcher, workers, reorderer.
#[allow(clippy::too_many_arguments)]
fn launch_ordered<T, U, E, F>(
    run: &Arc<Run<E>>,
    name: &str,
    workers: usize,
    buffer: usize,
    input: Receiver<T>,
    out: Sender<U>,
    f: Arc<F>,
    c: Arc<Counters>,
) where
    T: Send + 'static,
    U: Send + 'static,
    E: Send + 'static,
    F: Fn(T) -> Result<Option<U>, E> + Send + Sync + 'static,
{
    let window = 4 * workers + buffer;
    // Slots of the window: the dispatcher sends one per item, the
    // reorderer takes one back per item released.
    let (slot_tx, slot_rx) = chan::bounded::<()>(window);
    let (work_tx, work_rx) = chan::bounded::<(u64, T)>(workers);
    let (done_tx, done_rx) = chan::bounded::<(u64, Option<U>)>(workers);

    let r = run.clone();
    run.spawn(format!("pipeline:{name}:dispatch"), move || {
        let done = r.ctx.done();
        let mut seq = 0u64;
        while let Some(v) = recv_or_done(&input, &r.ctx, &done, None) {
            if !send_or_done(&slot_tx, (), &r, &done, None)
                || !send_or_done(&work_tx, (seq, v), &r, &done, None)
            {
                break;
            }
            seq += 1;
        }
    });

    for i in 0..workers {
        let (work_rx, done_tx, f, c, r) = (
            work_rx.clone(),
            done_tx.clone(),
            f.clone(),
            c.clone(),
            run.clone(),
        );
        let stage = name.to_string();
        run.spawn(format!("pipeline:{name}#{i}"), move || {
            let _active = c.enter();
            let done = r.ctx.done();
            let numbered = |(seq, v): (u64, T)| f(v).map(|u| Some((seq, u)));
            while let Some(Some((seq, u))) = work(&work_rx, &numbered, &c, &r, &stage, &done) {
                if !send_or_done(&done_tx, (seq, u), &r, &done, Some(&c.blocked_out_ns)) {
                    break;
                }
            }
        });
    }
    drop((work_rx, done_tx));

    let r = run.clone();
    run.spawn(format!("pipeline:{name}:reorder"), move || {
        let done = r.ctx.done();
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        while let Some((seq, u)) = recv_or_done(&done_rx, &r.ctx, &done, None) {
            pending.insert(seq, u);
            while let Some(u) = pending.remove(&next) {
                next += 1;
                // The dispatcher sent this item's slot before the item.
                let _ = slot_rx.try_recv();
                if let Some(u) = u {
                    // The workers' waits on this reorderer already show
                    // the output's backpressure; its own are not counted.
                    if !send_or_done(&out, u, &r, &done, None) {
                        return;
                    }
                    c.items_out.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}
