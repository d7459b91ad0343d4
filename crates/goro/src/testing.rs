//! Test helpers: leak checks (uber-go/goleak's `VerifyNone`), virtual time
//! (Go's `testing/synctest`) and seeded, replayable schedules.
//!
//! * [`verify_none`]: `#[goro::test]` runs its check on its runtime when the
//!   test body returns; opt out with `#[goro::test(allow_leaks)]`.
//! * [`synctest`] / `#[goro::test(virtual_time)]`: a virtual clock that jumps
//!   to the next timer when every goroutine waits.
//! * [`explore`] / [`Explore`] / `#[goro::test(explore = N)]`: the body under
//!   N seeded schedules; [`run_seeded`]: one seed, with the schedule taken.
//!
//! The guide, with worked examples, is `docs/testing.md` in the repository.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::debug::GoroutineInfo;
use crate::runtime::worker::Shared;

/// How long leaked goroutines get to finish before they count as leaks.
const GRACE: Duration = Duration::from_secs(1);

/// Panics, listing every goroutine of the current runtime other than the
/// caller that is still alive, after giving them up to a second (retrying
/// with backoff, as goleak does) to finish.
///
/// ```
/// let rt = goro::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let h = goro::go(|| 1 + 1);
///     h.join().unwrap();
///     goro::testing::verify_none(); // nothing left behind
/// });
/// ```
///
/// # Panics
///
/// With one line per leaked goroutine: id, name, wait reason, park site and
/// spawn site.
#[track_caller]
pub fn verify_none() {
    let rt = crate::runtime::current_shared();
    let me = crate::current_id();
    if let Err(report) = check(&rt, me.is_some() as usize) {
        panic!("{report}");
    }
}

/// Waits (with backoff, up to `GRACE`) until `rt` has at most `allowed` live
/// goroutines; otherwise describes the others.
pub(crate) fn check(rt: &Arc<Shared>, allowed: usize) -> Result<(), String> {
    let me = crate::current_id();
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if rt.live.load(Ordering::Acquire) <= allowed {
            return Ok(());
        }
        if start.elapsed() >= GRACE {
            break;
        }
        crate::time::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    let leaked: Vec<GoroutineInfo> = crate::debug::goroutines_of(rt)
        .into_iter()
        .filter(|g| Some(g.id) != me)
        .collect();
    let live = rt.live.load(Ordering::Acquire).saturating_sub(allowed);
    let mut s = format!(
        "found {live} leaked goroutine(s) after waiting {} ms:\n",
        GRACE.as_millis()
    );
    for g in &leaked {
        let _ = write!(s, "  goroutine {}", g.id);
        if let Some(n) = &g.name {
            let _ = write!(s, " ({n})");
        }
        match (g.wait_reason, g.park_site) {
            (Some(r), Some(p)) => {
                let _ = write!(s, " [{r}] parked at {p}");
            }
            (Some(r), None) => {
                let _ = write!(s, " [{r}]");
            }
            _ => {
                let _ = write!(s, " [{}]", g.state);
            }
        }
        let _ = writeln!(s, ", created at {}", g.spawn_site);
    }
    if leaked.len() < live {
        let _ = writeln!(s, "  ({} not started yet)", live - leaked.len());
    }
    Err(s)
}

/// Runs `f` as the main goroutine of a fresh runtime on a virtual clock
/// (Go's `testing/synctest`), then checks that it left no goroutine behind.
///
/// Inside, [`time::sleep`](crate::time::sleep), timers, tickers, timeouts,
/// context deadlines and socket deadlines use a clock that stands still
/// while any goroutine can run and jumps to the next timer the moment every
/// goroutine is *durably blocked*: parked on a channel, a lock, a
/// `WaitGroup`, a join, a sleep — something only another goroutine of the
/// runtime or a timer can end. A test that sleeps an hour takes
/// microseconds, and what it measures with [`time::now`](crate::time::now)
/// is exact.
///
/// Waits on the outside world hold the clock: while a goroutine waits for
/// socket readiness or a [`blocking`](crate::blocking) call, time does not
/// move (and after a second of that, a line on stderr names the goroutines
/// and says so). Plain threads and other runtimes are outside too: a
/// goroutine waiting for one looks durably blocked, so the clock may jump
/// past the hand-off; the first such wake is reported on stderr. When every
/// goroutine is blocked for good and no timer is armed, the call panics
/// with Go's deadlock message and the goroutine dump, within ~0.1 s.
///
/// `f` runs on a runtime with one worker; [`std::time::Instant::now`] still
/// reads the real clock.
///
/// ```
/// use std::time::Duration;
/// use goro::context::Context;
///
/// let real = std::time::Instant::now();
/// goro::testing::synctest(|| {
///     let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(30));
///     let t0 = goro::time::now();
///     ctx.done().recv().ok();             // 30 virtual seconds
///     assert_eq!(goro::time::since(t0), Duration::from_secs(30));
///     assert!(ctx.err().is_some());
/// });
/// assert!(real.elapsed() < Duration::from_secs(5));
/// ```
///
/// # Panics
///
/// Re-raises a panic of `f`; panics on a deadlock (with the dump) and when
/// goroutines are still alive one virtual second after `f` returned
/// (listing them, as [`verify_none`], followed by the dump).
#[track_caller]
pub fn synctest<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = crate::Runtime::builder()
        .virtual_time(true)
        .build()
        .unwrap_or_else(|e| panic!("goro::testing::synctest: cannot start a runtime: {e}"));
    run_checked(&rt, f, "goro::testing::synctest")
}

/// Runs `f` and then the leak check as the main goroutine of `rt`.
#[track_caller]
fn run_checked<F, T>(rt: &crate::Runtime, f: F, who: &str) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let shared = rt.shared_for_tests().clone();
    let r = rt.block_on(move || {
        let v = f();
        // A leak report ends with the full dump (stacks included), taken
        // while the leaked goroutines are still parked where they leaked.
        check(&shared, 1)
            .map(|()| v)
            .map_err(|report| format!("{report}\n{}", crate::debug::dump()))
    });
    match r {
        Ok(v) => v,
        Err(report) => panic!("{who}: {report}"),
    }
}

/// Runs `f` under `seeds` different seeded schedules, each on a fresh
/// runtime with a virtual clock (see [`synctest`]) whose scheduling choices
/// — which runnable goroutine runs next, after how many channel operations
/// the running one must yield, which ready `select!` arm wins — come from
/// the seed. Ordering bugs that need one interleaving in a thousand show up
/// in a few hundred seeds, and a failing seed replays exactly.
///
/// The seeds are the same on every run (so a green test stays green); the
/// environment variable `GORO_EXPLORE=<n>` overrides `seeds` to search
/// longer, and `GORO_SEED=<seed>` runs that one seed only, replaying a
/// failure. Each run also fails on a deadlock and on leaked goroutines.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// // A correct program passes under every schedule.
/// goro::testing::explore(50, || {
///     let hits = Arc::new(AtomicUsize::new(0));
///     let wg = goro::sync::WaitGroup::new();
///     for _ in 0..3 {
///         let (hits, wg) = (hits.clone(), wg.clone());
///         wg.add(1);
///         goro::go(move || {
///             hits.fetch_add(1, Ordering::SeqCst);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(hits.load(Ordering::SeqCst), 3);
/// });
/// ```
///
/// # Panics
///
/// At the first seed under which `f` panics, deadlocks or leaks, with that
/// seed and the way to replay it (`GORO_SEED=<seed> cargo test <name>`) in
/// the message, followed by the original failure.
#[track_caller]
pub fn explore<F>(seeds: u64, f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    Explore::new(seeds).run(f)
}

/// [`explore`] with options.
///
/// ```
/// goro::testing::Explore::new(20)
///     .preempt_every_op(true) // yield at every channel operation and spawn
///     .run(|| {
///         let (tx, rx) = goro::chan::bounded(1);
///         goro::go(move || tx.send(7).unwrap());
///         assert_eq!(rx.recv(), Ok(7));
///     });
/// ```
#[derive(Debug, Clone)]
pub struct Explore {
    /// Schedules to try.
    seeds: u64,
    /// Budget of one: a yield at every cooperative point.
    preempt_all: bool,
}

impl Explore {
    /// Explores `seeds` schedules (overridden by `GORO_EXPLORE`).
    pub fn new(seeds: u64) -> Explore {
        Explore {
            seeds,
            preempt_all: false,
        }
    }

    /// Makes the running goroutine yield at every cooperative point (each
    /// channel operation that does not park, each spawn), the most thorough
    /// and slowest walk. By default the number of operations between forced
    /// yields is drawn from the seed.
    pub fn preempt_every_op(mut self, on: bool) -> Explore {
        self.preempt_all = on;
        self
    }

    /// Runs `f` under each seed; see [`explore`].
    ///
    /// # Panics
    ///
    /// As [`explore`].
    #[track_caller]
    pub fn run<F>(self, f: F)
    where
        F: Fn() + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        if let Some(seed) = env_seed() {
            self.run_seed(seed, &f, None);
            return;
        }
        let n = match std::env::var("GORO_EXPLORE") {
            Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
                panic!("goro::testing::explore: GORO_EXPLORE={v:?} is not a number of seeds")
            }),
            Err(_) => self.seeds,
        };
        for i in 0..n {
            self.run_seed(seed_for(i), &f, Some((i, n)));
        }
    }

    /// One schedule; panics with the seed on failure.
    #[track_caller]
    fn run_seed<F>(&self, seed: u64, f: &Arc<F>, nth: Option<(u64, u64)>)
    where
        F: Fn() + Send + Sync + 'static,
    {
        let f = f.clone();
        let preempt_all = self.preempt_all;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let rt = crate::Runtime::builder()
                .seed(seed)
                .preempt_all(preempt_all)
                .build()
                .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"));
            run_checked(&rt, move || f(), "leak check");
        }));
        if let Err(e) = r {
            let msg = panic_message(&*e);
            let which = match nth {
                Some((i, n)) => format!(" (schedule {} of {n})", i + 1),
                None => " (from GORO_SEED)".to_string(),
            };
            panic!(
                "goro::testing::explore: failed under seed {seed}{which}; replay it with \
                 GORO_SEED={seed} cargo test <this test>\n\n{msg}"
            );
        }
    }
}

/// The seed in `GORO_SEED`, if set (decimal or `0x` hex).
fn env_seed() -> Option<u64> {
    let v = std::env::var("GORO_SEED").ok()?;
    let t = v.trim();
    let parsed = match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("goro::testing: GORO_SEED={v:?} is not a seed")))
}

/// The `i`-th seed explored: fixed, spread over the whole range.
fn seed_for(i: u64) -> u64 {
    let mut s = i;
    crate::runtime::worker::splitmix(&mut s)
}

/// The message of a panic payload.
fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// Runs `f` once under the schedule of `seed` (as one run of [`explore`])
/// and returns its value with the schedule taken: the spawn ordinal of the
/// goroutine each scheduling decision picked (the main goroutine is 0, the
/// next goroutine to run for the first time 1, and so on). The same seed
/// gives the same schedule, which is what makes a failure replayable.
///
/// ```
/// let body = || {
///     let (tx, rx) = goro::chan::bounded(0);
///     for i in 0..3 {
///         let tx = tx.clone();
///         goro::go(move || tx.send(i).unwrap());
///     }
///     drop(tx);
///     rx.iter().collect::<Vec<i32>>()
/// };
/// let (a, sched_a) = goro::testing::run_seeded(7, body);
/// let (b, sched_b) = goro::testing::run_seeded(7, body);
/// assert_eq!(a, b);
/// assert_eq!(sched_a, sched_b);
/// ```
///
/// # Panics
///
/// As [`synctest`].
#[track_caller]
pub fn run_seeded<F, T>(seed: u64, f: F) -> (T, Vec<u32>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let rt = crate::Runtime::builder()
        .seed(seed)
        .build()
        .unwrap_or_else(|e| panic!("goro::testing::run_seeded: cannot start a runtime: {e}"));
    let v = run_checked(&rt, f, "goro::testing::run_seeded");
    let log = rt
        .shared_for_tests()
        .det
        .as_ref()
        .map(|d| std::mem::take(&mut *d.log.lock()))
        .unwrap_or_default();
    (v, log)
}
