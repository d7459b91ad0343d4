//! Seeing inside the runtime. For now: reports of goroutines that hold their
//! worker without parking (the stuck-worker monitor).

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::GoId;

/// A goroutine that has held its worker thread without parking for longer
/// than the monitor's threshold (10 ms): every other goroutine pinned to that
/// worker waited meanwhile.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StallReport {
    /// The goroutine.
    pub id: GoId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawn_site: &'static Location<'static>,
    /// How long it had held the worker when reported (it may still be).
    pub held: Duration,
    /// Index of the worker it holds.
    pub worker: usize,
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "goro: goroutine {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " ({n})")?;
        }
        write!(
            f,
            " has held worker {} for {} ms without parking (spawned at {}); \
             no other goroutine pinned to that worker can run meanwhile. \
             Move blocking or long CPU work into goro::blocking(..)",
            self.worker,
            self.held.as_millis(),
            self.spawn_site
        )
    }
}

type Hook = Arc<dyn Fn(&StallReport) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Replaces what happens when the monitor finds a stuck worker (by default
/// the report's `Display` goes to stderr). Reports come at most once per
/// goroutine and at most 10 per second.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// goro::debug::set_stall_hook(move |r| s.lock().unwrap().push(r.id));
/// # goro::debug::reset_stall_hook();
/// ```
pub fn set_stall_hook(hook: impl Fn(&StallReport) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
}

/// Restores the default stall report (a line on stderr).
pub fn reset_stall_hook() {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = None;
}

pub(crate) fn report_stall(r: &StallReport) {
    let hook = HOOK.read().unwrap_or_else(|e| e.into_inner()).clone();
    match hook {
        Some(h) => h(r),
        None => eprintln!("{r}"),
    }
}

/// What a goroutine is doing, as a dump shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoroutineState {
    /// Running on its worker right now.
    Running,
    /// Ready to run, waiting for its worker.
    Runnable,
    /// Parked: see its wait reason.
    Waiting,
}

impl fmt::Display for GoroutineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GoroutineState::Running => "running",
            GoroutineState::Runnable => "runnable",
            GoroutineState::Waiting => "waiting",
        })
    }
}

/// One started goroutine, as seen by [`goroutines`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GoroutineInfo {
    /// Its id.
    pub id: GoId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Running, runnable or waiting.
    pub state: GoroutineState,
    /// Why it waits (`chan receive`, `sync.Mutex.Lock`, `IO wait`, ...).
    pub wait_reason: Option<crate::WaitReason>,
    /// How long it has been waiting (coarse: a few ms).
    pub waiting_for: Option<Duration>,
    /// Where it parked (the blocking call in the user's code).
    pub park_site: Option<&'static Location<'static>>,
    /// Where it was spawned.
    pub spawn_site: &'static Location<'static>,
    /// The goroutine that spawned it (`None`: a plain thread).
    pub parent: Option<GoId>,
    /// Its labels (see [`with_labels`]).
    pub labels: Vec<(String, String)>,
    /// The worker it is pinned to.
    pub worker: usize,
    /// Its stack, when recorded ([`goroutines_with_stacks`], [`dump`]).
    pub stack: Option<String>,
}

/// Every started goroutine of the current runtime (the default one on a
/// plain thread). Cheap: no stacks (see [`goroutines_with_stacks`]).
/// Goroutines that have not started yet are counted by
/// [`num_goroutine`](crate::num_goroutine) but not listed.
///
/// ```
/// let (tx, rx) = goro::chan::bounded::<()>(0);
/// let h = goro::Builder::new().name("waiter").spawn(move || { let _ = rx.recv(); }).unwrap();
/// while !goro::debug::goroutines().iter().any(|g| g.id == h.id() && g.wait_reason.is_some()) {
///     goro::yield_now();
/// }
/// let info = goro::debug::goroutines().into_iter().find(|g| g.id == h.id()).unwrap();
/// assert_eq!(info.name.as_deref(), Some("waiter"));
/// assert_eq!(info.wait_reason, Some(goro::WaitReason::ChanReceive));
/// drop(tx);
/// h.join().unwrap();
/// ```
pub fn goroutines() -> Vec<GoroutineInfo> {
    collect(false)
}

/// Like [`goroutines`], with each goroutine's real stack: every worker briefly
/// resumes its suspended goroutines to record their backtraces (state
/// unchanged). Costs nothing until asked for; a worker held by a goroutine
/// that never parks is waited for at most one second.
pub fn goroutines_with_stacks() -> Vec<GoroutineInfo> {
    collect(true)
}

/// The started goroutines of `rt`.
pub(crate) fn goroutines_of(
    rt: &std::sync::Arc<crate::runtime::worker::Shared>,
) -> Vec<GoroutineInfo> {
    collect_from(rt, false)
}

fn collect(stacks: bool) -> Vec<GoroutineInfo> {
    collect_from(&crate::runtime::current_shared(), stacks)
}

fn collect_from(
    rt: &std::sync::Arc<crate::runtime::worker::Shared>,
    stacks: bool,
) -> Vec<GoroutineInfo> {
    use std::sync::atomic::Ordering;
    // Waiting times are as of the request, not of the end of the (slower)
    // stack recording.
    let now = crate::runtime::goroutine::tick_coarse_clock();
    if stacks {
        crate::runtime::worker::trace_all(rt, Duration::from_secs(1));
    }
    let mut out = Vec::new();
    for (wi, w) in rt.workers.iter().enumerate() {
        let gs: Vec<_> = w.registry.lock().slots.iter().flatten().cloned().collect();
        let running = w.running.load(Ordering::Relaxed);
        for g in gs {
            let parked = g.state.load(Ordering::Acquire) == crate::runtime::park::PARKED;
            let state = if running == g.id {
                GoroutineState::Running
            } else if parked {
                GoroutineState::Waiting
            } else {
                GoroutineState::Runnable
            };
            let reason = g.wait_reason();
            let wait_reason = (state == GoroutineState::Waiting
                && reason != crate::WaitReason::Running)
                .then_some(reason);
            let site = g.park_site.load(Ordering::Relaxed);
            let park_site = if wait_reason.is_some() && !site.is_null() {
                // SAFETY: only ever set from a `&'static Location`.
                Some(unsafe { &*site })
            } else {
                None
            };
            let at = g.parked_at.load(Ordering::Relaxed);
            out.push(GoroutineInfo {
                id: GoId::from_u64(g.id),
                name: g.name.as_deref().map(String::from),
                state,
                wait_reason,
                waiting_for: wait_reason.map(|_| Duration::from_millis(now.saturating_sub(at))),
                park_site,
                spawn_site: g.spawn_site,
                parent: (g.parent != 0).then(|| GoId::from_u64(g.parent)),
                labels: g.labels.lock().as_deref().cloned().unwrap_or_default(),
                worker: wi,
                stack: if stacks {
                    g.trace.lock().take().map(|t| trim_stack(&t))
                } else {
                    None
                },
            });
        }
    }
    out.sort_by_key(|g| g.id);
    out
}

/// Reformats a recorded backtrace the way Go prints a goroutine's stack
/// (`function` then a tab and `file:line`), dropping the frames above the
/// blocking call's own code (the backtrace capture) and below the
/// goroutine's entry (the runtime that started it).
fn trim_stack(bt: &str) -> String {
    let mut frames: Vec<(String, Option<String>)> = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        if let Some(at) = t.strip_prefix("at ") {
            if let Some(f) = frames.last_mut() {
                f.1.get_or_insert_with(|| at.to_string());
            }
            continue;
        }
        match t.split_once(": ") {
            Some((n, func)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                frames.push((func.to_string(), None));
            }
            _ => {}
        }
    }
    let capture = |f: &str| {
        f.contains("std::backtrace")
            || f.contains("goro::runtime::goroutine::")
            || f.contains("goro::runtime::park::")
            || f.starts_with("std::sys::backtrace")
    };
    let start = frames.iter().position(|(f, _)| !capture(f)).unwrap_or(0);
    let end = frames
        .iter()
        .position(|(f, _)| {
            f.contains("goro::spawn::Packet") || f.contains("goro::runtime::goroutine::Unstarted")
        })
        .unwrap_or(frames.len());
    let mut s = String::new();
    for (func, at) in frames.iter().take(end.max(start)).skip(start) {
        s.push_str(&format!("{func}(...)\n"));
        if let Some(at) = at {
            s.push_str(&format!("\t{at}\n"));
        }
    }
    s
}

fn header(g: &GoroutineInfo) -> String {
    let mut h = format!("goroutine {}", g.id);
    if let Some(n) = &g.name {
        h.push_str(&format!(" ({n})"));
    }
    match (g.wait_reason, g.waiting_for) {
        (Some(r), Some(d)) if d >= Duration::from_secs(60) => {
            h.push_str(&format!(" [{r}, {} minutes]", d.as_secs() / 60))
        }
        (Some(r), Some(d)) => h.push_str(&format!(" [{r}, {} ms]", d.as_millis())),
        (Some(r), None) => h.push_str(&format!(" [{r}]")),
        _ => h.push_str(&format!(" [{}]", g.state)),
    }
    if !g.labels.is_empty() {
        let l: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        h.push_str(&format!(" {{{}}}", l.join(", ")));
    }
    h.push(':');
    h
}

fn created_by(g: &GoroutineInfo) -> String {
    match g.parent {
        Some(p) => format!("created by goroutine {p} at {}", g.spawn_site),
        None => format!("created by a thread at {}", g.spawn_site),
    }
}

/// A dump of every goroutine in Go's format, with real stacks:
///
/// ```text
/// goroutine 17 (worker) [chan receive, 3 ms]:
///   parked at src/main.rs:12:9
///    4: my_app::worker
///              at ./src/main.rs:12:9
///   ...
/// created by goroutine 1 at src/main.rs:30:5
/// ```
pub fn dump() -> String {
    dump_of(&crate::runtime::current_shared())
}

/// [`dump`] of a given runtime.
pub(crate) fn dump_of(rt: &std::sync::Arc<crate::runtime::worker::Shared>) -> String {
    let gs = collect_from(rt, true);
    let mut s = String::new();
    for g in &gs {
        s.push_str(&header(g));
        s.push('\n');
        if let Some(p) = g.park_site {
            s.push_str(&format!("  parked at {p}\n"));
        }
        if let Some(st) = &g.stack {
            s.push_str(st);
        }
        s.push_str(&created_by(g));
        s.push_str("\n\n");
    }
    let live = rt.live.load(std::sync::atomic::Ordering::Relaxed);
    if live > gs.len() {
        s.push_str(&format!(
            "({} goroutines not started yet)\n",
            live - gs.len()
        ));
    }
    s
}

/// Goroutines grouped by (state, wait reason, park site, spawn site), with a
/// count per group, largest first: pprof's `debug=1` view, what you read
/// with 100,000 goroutines.
pub fn dump_grouped() -> String {
    use std::collections::HashMap;
    let gs = goroutines();
    let mut groups: HashMap<(String, String, String), usize> = HashMap::new();
    for g in &gs {
        let what = match g.wait_reason {
            Some(r) => r.to_string(),
            None => g.state.to_string(),
        };
        let park = g.park_site.map(|p| p.to_string()).unwrap_or_default();
        *groups
            .entry((what, park, g.spawn_site.to_string()))
            .or_default() += 1;
    }
    let mut v: Vec<_> = groups.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut s = format!("{} goroutines\n", gs.len());
    for ((what, park, spawn), n) in v {
        s.push_str(&format!("{n} @ [{what}]"));
        if !park.is_empty() {
            s.push_str(&format!(" parked at {park}"));
        }
        s.push_str(&format!(", created at {spawn}\n"));
    }
    s
}

/// Runs `f` with `labels` added to the running goroutine's labels (replacing
/// equal keys); goroutines spawned inside inherit them, and dumps show them.
/// On a plain thread it just runs `f`.
///
/// ```
/// goro::go(|| {
///     goro::debug::with_labels(&[("route", "/api")], || {
///         assert_eq!(goro::debug::labels(), vec![("route".to_string(), "/api".to_string())]);
///     });
///     assert!(goro::debug::labels().is_empty());
/// }).join().unwrap();
/// ```
pub fn with_labels<R>(labels: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let prev = crate::runtime::goroutine::with_current(|g| {
        g.map(|g| {
            let mut cur = g.labels.lock();
            let old = cur.clone();
            let mut v: Vec<(String, String)> = old.as_deref().cloned().unwrap_or_default();
            for (k, val) in labels {
                v.retain(|(kk, _)| kk != k);
                v.push((k.to_string(), val.to_string()));
            }
            *cur = Some(Arc::new(v));
            g.has_labels
                .store(true, std::sync::atomic::Ordering::Relaxed);
            old
        })
    });
    struct Restore(Option<Option<crate::runtime::goroutine::Labels>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(old) = self.0.take() {
                crate::runtime::goroutine::with_current(|g| {
                    if let Some(g) = g {
                        *g.labels.lock() = old;
                    }
                });
            }
        }
    }
    let _restore = Restore(prev);
    f()
}

/// The running goroutine's labels (empty on a plain thread).
pub fn labels() -> Vec<(String, String)> {
    crate::runtime::goroutine::with_current(|g| {
        g.filter(|g| g.has_labels.load(std::sync::atomic::Ordering::Relaxed))
            .and_then(|g| g.labels.lock().as_deref().cloned())
            .unwrap_or_default()
    })
}

/// Counters of one worker, from [`stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Goroutine resumptions.
    pub runs: u64,
    /// Goroutines spawned by goroutines running here.
    pub spawned: u64,
    /// Goroutines that ended here.
    pub finished: u64,
    /// Successful steals (batches) from other workers or the injector.
    pub steals: u64,
    /// Times it went to sleep on its futex.
    pub sleeps: u64,
    /// Timers in its heap (cancelled ones included until discarded).
    pub timers: usize,
    /// Started goroutines pinned to it.
    pub pinned: usize,
}

/// A snapshot of a runtime's counters, from [`stats`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Live goroutines (`num_goroutine`).
    pub goroutines: usize,
    /// Of which running now.
    pub running: usize,
    /// Of which runnable (waiting for their worker).
    pub runnable: usize,
    /// Of which parked.
    pub waiting: usize,
    /// Of which not started yet.
    pub not_started: usize,
    /// Parked goroutines per wait reason, most common first.
    pub by_reason: Vec<(crate::WaitReason, usize)>,
    /// Goroutines spawned since the runtime started.
    pub spawned: u64,
    /// Goroutines finished since the runtime started.
    pub finished: u64,
    /// Per-worker counters.
    pub workers: Vec<WorkerStats>,
    /// Goroutines and threads waiting for socket readiness (process-wide).
    pub io_waiters: usize,
    /// `goro::blocking` jobs queued or running (process-wide).
    pub blocking_jobs: usize,
    /// Idle-stack compaction (process-wide counters; see
    /// [`RuntimeBuilder::stack_compaction`](crate::RuntimeBuilder::stack_compaction)).
    pub compaction: CompactionStats,
}

/// Idle-stack compaction counters, from [`stats`]. Process-wide: every
/// runtime's compacted goroutines are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionStats {
    /// Compaction threshold of the current runtime; `None`: off.
    pub threshold: Option<std::time::Duration>,
    /// Why compaction cannot run in this process, if it cannot (then it is
    /// off whatever was asked).
    pub unavailable: Option<String>,
    /// Goroutines whose stack is compacted now.
    pub compacted: u64,
    /// Stack memory given back by the compacted stacks now, net of their
    /// buffers (bytes).
    pub bytes_saved: u64,
    /// Compactions since the process started.
    pub compactions: u64,
    /// Stacks left alone (too deep, or the kernel refused the move).
    pub skipped: u64,
    /// Restores by the home worker before resuming a goroutine.
    pub owner_restores: u64,
    /// Restores by the fault handler (another thread touched a compacted
    /// stack).
    pub handler_restores: u64,
    /// Restores by a waker, inline, before it wrote the waiter record on a
    /// compacted stack (a channel send or close reaching a compacted
    /// receiver): no fault, no round trip through the handler.
    pub waker_restores: u64,
    /// Never-touched stack pages of registered slabs filled by the handler.
    pub lazy_fills: u64,
    /// Stack pages below the used part of compacted stacks (the goroutine
    /// once ran deeper) given back to the kernel, in total (bytes). They do
    /// not come back on restore. Counted as mapped pages: the zero pages a
    /// lazy fill maps ahead of a growing stack count too.
    pub trimmed_bytes: u64,
    /// Median latency of owner and waker restores (bucketed: within 19 %).
    pub median_restore: std::time::Duration,
    /// Slowest owner or waker restore.
    pub max_restore: std::time::Duration,
}

/// Counters of the current runtime (the default one on a plain thread).
/// `spawned - finished` is the number of live goroutines, up to the
/// goroutines being spawned or finishing while the snapshot is taken.
///
/// ```
/// let rt = goro::Runtime::builder().workers(2).build().unwrap();
/// let s = rt.block_on(|| {
///     for _ in 0..10 { goro::go(|| ()).join().unwrap(); }
///     goro::debug::stats()
/// });
/// assert_eq!(s.spawned - s.finished, s.goroutines as u64);
/// assert!(s.spawned >= 11); // the 10 and the main goroutine
/// ```
pub fn stats() -> Stats {
    use std::sync::atomic::Ordering;
    let rt = crate::runtime::current_shared();
    let mut st = Stats {
        goroutines: rt.live.load(Ordering::Acquire),
        ..Stats::default()
    };
    let mut reasons: std::collections::HashMap<crate::WaitReason, usize> =
        std::collections::HashMap::new();
    // Counted in place, a chunk of each registry per lock hold: no
    // snapshot of a million goroutines (0.8 s, and spawns on that worker
    // waiting for the lock), a few atomic loads each.
    let mut listed = 0;
    for w in rt.workers.iter() {
        let running = w.running.load(Ordering::Relaxed);
        let mut i = 0;
        loop {
            let reg = w.registry.lock();
            let end = (i + 4096).min(reg.slots.len());
            for g in reg.slots[i.min(end)..end].iter().flatten() {
                listed += 1;
                if g.id == running {
                    st.running += 1;
                } else if g.state.load(Ordering::Acquire) == crate::runtime::park::PARKED {
                    st.waiting += 1;
                    let r = g.wait_reason();
                    if r != crate::WaitReason::Running {
                        *reasons.entry(r).or_default() += 1;
                    }
                } else {
                    st.runnable += 1;
                }
            }
            if end >= reg.slots.len() {
                break;
            }
            i = end;
        }
    }
    st.not_started = st.goroutines.saturating_sub(listed);
    st.by_reason = reasons.into_iter().collect();
    st.by_reason.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    st.spawned = rt.spawned_outside.load(Ordering::Relaxed);
    for w in rt.workers.iter() {
        let ws = WorkerStats {
            runs: w.switches.load(Ordering::Relaxed),
            spawned: w.spawned.load(Ordering::Relaxed),
            finished: w.finished.load(Ordering::Relaxed),
            steals: w.steals.load(Ordering::Relaxed),
            sleeps: w.sleeps.load(Ordering::Relaxed),
            timers: w.timers.len(),
            pinned: w.registry.lock().slots.iter().flatten().count(),
        };
        st.spawned += ws.spawned;
        st.finished += ws.finished;
        st.workers.push(ws);
    }
    st.io_waiters = crate::runtime::poller::waiting();
    st.blocking_jobs = crate::blocking::in_flight();
    st.compaction = compaction_stats(&rt);
    st
}

/// Goroutines of the current runtime whose stack is compacted now (for
/// tests of stack compaction).
#[doc(hidden)]
pub fn compacted_goroutines() -> usize {
    use std::sync::atomic::Ordering;
    let rt = crate::runtime::current_shared();
    rt.workers
        .iter()
        .map(|w| {
            w.registry
                .lock()
                .slots
                .iter()
                .flatten()
                .filter(|g| {
                    g.saved_sp.load(Ordering::Relaxed) & crate::runtime::compact::COMPACTED_BIT != 0
                })
                .count()
        })
        .sum()
}

/// The compaction counters for runtime `rt`.
fn compaction_stats(rt: &crate::runtime::worker::Shared) -> CompactionStats {
    use crate::runtime::compact::{self, COUNTERS};
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;
    let after = rt.compact_after_ms;
    CompactionStats {
        threshold: (after != 0).then(|| Duration::from_millis(after)),
        unavailable: compact::probe_result().err().map(str::to_owned),
        compacted: COUNTERS.compacted_now.load(Relaxed),
        bytes_saved: COUNTERS.bytes_saved.load(Relaxed),
        compactions: COUNTERS.compactions.load(Relaxed),
        skipped: COUNTERS.skipped.load(Relaxed),
        owner_restores: COUNTERS.owner_restores.load(Relaxed),
        handler_restores: COUNTERS.handler_restores.load(Relaxed),
        waker_restores: COUNTERS.waker_restores.load(Relaxed),
        lazy_fills: COUNTERS.lazy_fills.load(Relaxed),
        trimmed_bytes: COUNTERS.trimmed_bytes.load(Relaxed),
        median_restore: Duration::from_nanos(compact::median_restore_ns()),
        max_restore: Duration::from_nanos(COUNTERS.max_restore_ns.load(Relaxed)),
    }
}

impl Stats {
    /// The counters in Prometheus' text exposition format.
    ///
    /// ```
    /// let text = goro::debug::stats().to_prometheus();
    /// assert!(text.contains("# TYPE goro_goroutines gauge"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        metric(
            "goro_goroutines",
            "gauge",
            "Live goroutines.",
            vec![(String::new(), self.goroutines.to_string())],
        );
        metric(
            "goro_goroutines_by_state",
            "gauge",
            "Live goroutines by state.",
            [
                ("running", self.running),
                ("runnable", self.runnable),
                ("waiting", self.waiting),
                ("not_started", self.not_started),
            ]
            .iter()
            .map(|(k, v)| (format!("{{state=\"{k}\"}}"), v.to_string()))
            .collect(),
        );
        metric(
            "goro_goroutines_waiting",
            "gauge",
            "Parked goroutines by wait reason.",
            self.by_reason
                .iter()
                .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), n.to_string()))
                .collect(),
        );
        metric(
            "goro_spawned_total",
            "counter",
            "Goroutines spawned.",
            vec![(String::new(), self.spawned.to_string())],
        );
        metric(
            "goro_finished_total",
            "counter",
            "Goroutines finished.",
            vec![(String::new(), self.finished.to_string())],
        );
        let per = |f: &dyn Fn(&WorkerStats) -> String| {
            self.workers
                .iter()
                .enumerate()
                .map(|(i, w)| (format!("{{worker=\"{i}\"}}"), f(w)))
                .collect::<Vec<_>>()
        };
        metric(
            "goro_worker_runs_total",
            "counter",
            "Goroutine resumptions per worker.",
            per(&|w| w.runs.to_string()),
        );
        metric(
            "goro_worker_steals_total",
            "counter",
            "Steals per worker.",
            per(&|w| w.steals.to_string()),
        );
        metric(
            "goro_worker_sleeps_total",
            "counter",
            "Futex sleeps per worker.",
            per(&|w| w.sleeps.to_string()),
        );
        metric(
            "goro_worker_timers",
            "gauge",
            "Timers per worker heap.",
            per(&|w| w.timers.to_string()),
        );
        metric(
            "goro_io_waiters",
            "gauge",
            "Waiters on socket readiness.",
            vec![(String::new(), self.io_waiters.to_string())],
        );
        metric(
            "goro_blocking_jobs",
            "gauge",
            "Blocking-pool jobs queued or running.",
            vec![(String::new(), self.blocking_jobs.to_string())],
        );
        let c = &self.compaction;
        let one = |v: String| vec![(String::new(), v)];
        metric(
            "goro_stack_compaction_enabled",
            "gauge",
            "Whether idle-stack compaction is on for this runtime.",
            one(u8::from(c.threshold.is_some()).to_string()),
        );
        metric(
            "goro_stack_compacted_goroutines",
            "gauge",
            "Goroutines whose stack is compacted now.",
            one(c.compacted.to_string()),
        );
        metric(
            "goro_stack_compaction_saved_bytes",
            "gauge",
            "Stack memory given back by compacted stacks, net of their buffers.",
            one(c.bytes_saved.to_string()),
        );
        metric(
            "goro_stack_compactions_total",
            "counter",
            "Stack compactions.",
            one(c.compactions.to_string()),
        );
        metric(
            "goro_stack_trimmed_bytes_total",
            "counter",
            "Stack pages below compacted stacks given back (the goroutine once ran deeper).",
            one(c.trimmed_bytes.to_string()),
        );
        metric(
            "goro_stack_restores_total",
            "counter",
            "Compacted stacks restored, by whom.",
            vec![
                ("{by=\"owner\"}".to_string(), c.owner_restores.to_string()),
                (
                    "{by=\"fault_handler\"}".to_string(),
                    c.handler_restores.to_string(),
                ),
                ("{by=\"waker\"}".to_string(), c.waker_restores.to_string()),
            ],
        );
        metric(
            "goro_stack_restore_seconds",
            "gauge",
            "Restore latency (owner and waker restores).",
            vec![
                (
                    "{quantile=\"0.5\"}".to_string(),
                    c.median_restore.as_secs_f64().to_string(),
                ),
                (
                    "{quantile=\"1\"}".to_string(),
                    c.max_restore.as_secs_f64().to_string(),
                ),
            ],
        );
        s
    }
}

/// Samples the goroutine count of the current runtime and calls a function
/// when it has grown at every one of the last `samples` samples: "a steady
/// increase indicates a leak", made automatic. Stops when dropped.
///
/// ```
/// use std::time::Duration;
/// let w = goro::debug::Watchdog::start(Duration::from_millis(100), 10, |counts| {
///     eprintln!("goroutines keep growing: {counts:?}");
/// });
/// drop(w);
/// ```
#[derive(Debug)]
pub struct Watchdog {
    /// Dropping it (closing the channel) stops the sampler.
    _stop: crate::chan::Sender<()>,
}

impl Watchdog {
    /// Starts sampling every `every`; `on_growth` gets the last `samples + 1`
    /// counts each time they rose monotonically (then the window restarts).
    pub fn start(
        every: Duration,
        samples: usize,
        mut on_growth: impl FnMut(&[usize]) + Send + 'static,
    ) -> Watchdog {
        let rt = crate::runtime::current_shared();
        let (tx, rx) = crate::chan::bounded::<()>(0);
        let samples = samples.max(1);
        let _ = std::thread::Builder::new()
            .name("goro-watchdog".into())
            .spawn(move || {
                crate::runtime::park::mark_internal_thread();
                let mut counts: Vec<usize> = Vec::new();
                while let Err(crate::chan::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    counts.push(rt.live.load(std::sync::atomic::Ordering::Relaxed));
                    if counts.len() > samples + 1 {
                        counts.remove(0);
                    }
                    if counts.len() == samples + 1 && counts.windows(2).all(|w| w[1] > w[0]) {
                        on_growth(&counts);
                        counts.clear();
                    }
                }
            });
        Watchdog { _stop: tx }
    }
}
