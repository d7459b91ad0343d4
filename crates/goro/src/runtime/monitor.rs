//! The stuck-worker monitor (Go's `sysmon`, for cooperative goroutines).
//!
//! Goroutines switch only at runtime calls, so one that computes (or makes a
//! blocking syscall) without parking holds its worker and stalls every
//! goroutine pinned there. A monitor thread per runtime samples each worker
//! every `SAMPLE`: a worker whose switch counter has not moved while the same
//! goroutine kept running for more than `STALL` is stuck. The monitor then
//!
//! * reports it once per goroutine (at most `MAX_REPORTS_PER_SEC`), through
//!   the hook set with [`crate::debug::set_stall_hook`] — by default a line
//!   on stderr naming the goroutine, its spawn site, how long, and the advice
//!   to use `goro::blocking`;
//! * wakes an idle worker, so that unstarted goroutines queued behind the
//!   stuck one are stolen and run elsewhere.
//!
//! The workers' side costs three relaxed stores per resumption.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::worker::Shared;
use crate::debug::{report_stall, StallReport};
use crate::GoId;

/// How often workers are sampled while any is busy.
const SAMPLE: Duration = Duration::from_millis(2);
/// How often they are sampled while all are idle.
const IDLE_SAMPLE: Duration = Duration::from_millis(20);
/// A goroutine holding its worker longer than this is reported.
pub(crate) const STALL: Duration = Duration::from_millis(10);
/// Report rate limit.
const MAX_REPORTS_PER_SEC: u32 = 10;

/// What the monitor remembers about one worker.
#[derive(Clone, Copy, Default)]
struct Seen {
    /// Goroutine id running at the last sample (0: none).
    id: u64,
    /// Switch counter at the last sample.
    switches: u64,
    /// When this goroutine was first seen running without a switch.
    since: Option<Instant>,
    /// The thread's (CPU time, run-queue wait) in ns, from schedstat, when
    /// the goroutine was first seen still running at a second sample.
    base: Option<(u64, u64)>,
}

/// Nanoseconds thread `tid` has spent on the CPU and runnable but not
/// running (preempted by the OS), from `/proc/self/task/<tid>/schedstat`.
fn schedstat(tid: i32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let mut f = s.split_whitespace();
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Whether thread `tid` is asleep in the kernel (a blocking system call)
/// rather than running or runnable, from `/proc/self/task/<tid>/stat`.
fn blocked_in_kernel(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s.rsplit_once(')')?.1.split_whitespace().next()?;
            Some(matches!(state, "S" | "D"))
        })
        .unwrap_or(false)
}

/// Body of the monitor thread of `rt`.
pub(crate) fn run(rt: Arc<Shared>) {
    super::park::mark_internal_thread();
    let mut dead = Deadlock::default();
    let n = rt.workers.len();
    let mut seen = vec![Seen::default(); n];
    let mut reported: HashSet<u64> = HashSet::new();
    let mut window = Instant::now();
    let mut in_window = 0u32;
    while !rt.exit.load(Ordering::Acquire) {
        super::goroutine::tick_coarse_clock();
        let mut busy = false;
        let now = Instant::now();
        for (i, w) in rt.workers.iter().enumerate() {
            let id = w.running.load(Ordering::Relaxed);
            let sw = w.switches.load(Ordering::Relaxed);
            let s = &mut seen[i];
            if id == 0 || id != s.id || sw != s.switches {
                *s = Seen {
                    id,
                    switches: sw,
                    since: if id != 0 { Some(now) } else { None },
                    base: None,
                };
                busy |= id != 0;
                continue;
            }
            busy = true;
            let Some(since) = s.since else { continue };
            let tid = w.tid.load(Ordering::Relaxed);
            if s.base.is_none() {
                s.base = schedstat(tid);
            }
            let mut held = now.duration_since(since);
            if held < STALL || reported.contains(&id) {
                continue;
            }
            // Time the OS kept the worker thread off the CPU is not the
            // goroutine's doing (a busy machine): discount it. The kernel
            // adds a run-queue wait to schedstat only once the wait ends, so
            // a thread preempted right now still looks busy; hence a second
            // test: a goroutine that computes has used the CPU for most of
            // the time, one in a blocking system call is asleep in the
            // kernel. Anything else (runnable, barely any CPU) is the OS's
            // doing, not a stall.
            if let (Some((cpu0, wait0)), Some((cpu, wait))) = (s.base, schedstat(tid)) {
                held = held.saturating_sub(Duration::from_nanos(wait.saturating_sub(wait0)));
                if held < STALL {
                    continue;
                }
                let on_cpu = Duration::from_nanos(cpu.saturating_sub(cpu0));
                if on_cpu < STALL / 2 && !blocked_in_kernel(tid) {
                    continue;
                }
            }
            // Steal what waits behind it.
            rt.wake_idle();
            if now.duration_since(window) >= Duration::from_secs(1) {
                window = now;
                in_window = 0;
            }
            if in_window >= MAX_REPORTS_PER_SEC {
                continue;
            }
            in_window += 1;
            if reported.len() > 100_000 {
                reported.clear();
            }
            reported.insert(id);
            let slot = w.running_slot.load(Ordering::Relaxed);
            let g = w
                .registry
                .lock()
                .slots
                .get(slot)
                .and_then(|g| g.clone())
                .filter(|g| g.id == id);
            let Some(g) = g else { continue };
            report_stall(&StallReport {
                id: GoId::from_u64(id),
                name: g.name.as_deref().map(String::from),
                spawn_site: g.spawn_site,
                held,
                worker: i,
            });
        }
        if !busy {
            dead.check(&rt);
        } else {
            dead.since = None;
        }
        std::thread::sleep(if busy { SAMPLE } else { IDLE_SAMPLE });
    }
}

/// How long "everyone is asleep" must hold before it is called a deadlock.
/// Longer than any hand-off in flight; it also gives plain threads that have
/// never touched goro (and so cannot be seen) time to act.
const DEADLOCK_AFTER: Duration = Duration::from_millis(500);

/// Go's `checkdead`, run by the monitor while every worker is idle.
///
/// A runtime is deadlocked when every one of its goroutines has started and
/// is parked on a goro primitive that only another goroutine or a plain
/// thread could release — not asleep on a timer, not waiting for I/O or a
/// `blocking` call — nothing is queued, no timer is armed, no signal
/// registration could fire, and every plain thread that has ever waited on a
/// goro primitive is parked in one now; and all that has held for
/// `DEADLOCK_AFTER`.
#[derive(Default)]
struct Deadlock {
    /// Since when the condition has held.
    since: Option<Instant>,
    /// Already reported.
    reported: bool,
}

impl Deadlock {
    fn check(&mut self, rt: &Arc<Shared>) {
        if self.reported || !condition(rt) {
            self.since = None;
            return;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        let after = if rt.det.is_some() {
            super::worker::DET_DEADLOCK_AFTER
        } else {
            DEADLOCK_AFTER
        };
        if since.elapsed() < after {
            return;
        }
        self.reported = true;
        let dump = crate::debug::dump_of(rt);
        let msg = format!("fatal error: all goroutines are asleep - deadlock!\n\n{dump}");
        if rt.main_mode.load(Ordering::Acquire) {
            eprintln!("{msg}");
            std::process::exit(2);
        }
        let waiters = std::mem::take(&mut *rt.block_on_waiters.lock());
        if !waiters.is_empty() {
            *rt.deadlock.lock() = Some(msg);
            for w in waiters {
                w.unpark();
            }
        }
    }
}

/// The instantaneous deadlock condition (see [`Deadlock`]).
fn condition(rt: &Arc<Shared>) -> bool {
    use super::park::WaitReason as R;
    let live = rt.live.load(Ordering::Acquire);
    if live == 0 || !rt.injector.is_empty() {
        return false;
    }
    for w in rt.workers.iter() {
        if w.running.load(Ordering::Relaxed) != 0
            || !w.inbox.is_empty()
            || !w.stealer.is_empty()
            || w.timers.has_any()
            || !w.spawn_next.load(Ordering::Relaxed).is_null()
        {
            return false;
        }
    }
    // These counts are process-wide; a deterministic runtime looks only at
    // its own goroutines' wait reasons below (plain threads, signals and
    // other runtimes are outside it by definition).
    let det = rt.det.is_some();
    if !det
        && (super::poller::waiting() != 0
            || crate::blocking::in_flight() != 0
            || crate::signal::has_registrations())
    {
        return false;
    }
    let mut stuck = 0;
    for w in rt.workers.iter() {
        for g in w.registry.lock().slots.iter().flatten() {
            if g.state.load(Ordering::Acquire) != super::park::PARKED {
                return false;
            }
            match g.wait_reason() {
                R::Sleep
                | R::IoWait
                | R::Blocking
                | R::Dump
                | R::RuntimeDrop
                | R::Yield
                | R::Running => return false,
                _ => stuck += 1,
            }
        }
    }
    stuck == live && (det || super::park::all_plain_threads_parked())
}
