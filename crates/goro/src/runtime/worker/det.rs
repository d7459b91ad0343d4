//! The deterministic testing modes: virtual time and seeded schedules
//! (`goro::testing::synctest`, `goro::testing::explore`).
//!
//! A runtime built with `virtual_time` or `seed` has one worker, and that
//! worker runs [`Worker::run_det`] instead of the ordinary scheduler loop.
//! The ordinary loop never looks at any of this: the modes cost one branch
//! when a worker starts.
//!
//! # Virtual time
//!
//! The runtime's clock is `epoch + vnow` nanoseconds. It stands still while
//! any goroutine can run. When the worker finds nothing to run, it looks at
//! every goroutine pinned to it: if each is parked on something only another
//! goroutine or a timer can release (a channel, a lock, a sleep — *durably
//! blocked*, in Go's `synctest` words), the clock jumps to the earliest timer
//! and that timer fires. If some goroutine waits on the outside world
//! (socket readiness, a `blocking` call), the clock cannot move: the worker
//! sleeps for real until the outside wakes it, and says so on stderr when
//! that lasts a second. With no timer and nothing outside, every goroutine
//! is blocked for good: the monitor reports the deadlock (with the dump)
//! after `DET_DEADLOCK_AFTER` instead of its usual 500 ms.
//!
//! # Seeded schedules
//!
//! With a seed, every scheduling decision comes from a splitmix64 generator
//! seeded with it: all runnable goroutines (woken, spawned, yielded, injected)
//! sit in one ready list and the next one is drawn from it uniformly; the
//! running goroutine's cooperative budget (channel operations and spawns it
//! may complete before it yields) is drawn too, so preemption points vary;
//! and `select!`'s choice among ready arms uses the same generator. With
//! nothing but goroutines of this runtime involved, the same seed replays the
//! same interleaving; the schedule log (spawn ordinals of the goroutines
//! picked) shows it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_deque::Steal;
use parking_lot::Mutex;

use super::{announce_sleep, bump, Worker, BUDGET};
use crate::runtime::goroutine::{GRef, Goroutine};
use crate::runtime::park::{WaitReason, PARKED};

/// How long every goroutine of a deterministic runtime must be blocked for
/// good (and no timer armed) before the monitor calls it a deadlock. Short:
/// nothing inside the runtime can change while its worker is idle; the wait
/// only gives plain threads a chance to act.
pub(crate) const DET_DEADLOCK_AFTER: Duration = Duration::from_millis(60);

/// How long the clock stands still for waits outside the runtime before the
/// worker reports them and moves it on anyway (so a deadline on a socket
/// nobody writes to still expires, half a second late in real time).
const OUTSIDE_PATIENCE: Duration = Duration::from_millis(500);

/// State of the deterministic modes, in `Shared::det`.
pub(crate) struct Det {
    /// Virtual nanoseconds since the runtime's epoch.
    pub(crate) vnow: AtomicU64,
    /// Seed of the scheduling generator; `None`: virtual time only, FIFO.
    pub(crate) seed: Option<u64>,
    /// Spawn ordinals of the goroutines picked, in order (seeded mode).
    pub(crate) log: Mutex<Vec<u32>>,
    /// Seeded mode: every goroutine runs with a budget of one.
    preempt_all: bool,
    /// A wake from outside the runtime was reported already.
    outside_wake_reported: AtomicBool,
}

impl Det {
    pub(crate) fn new(seed: Option<u64>, preempt_all: bool) -> Det {
        Det {
            preempt_all,
            vnow: AtomicU64::new(0),
            seed,
            log: Mutex::new(Vec::new()),
            outside_wake_reported: AtomicBool::new(false),
        }
    }

    /// Called when a thread that is not this runtime's worker wakes `g`.
    /// Wakes by the poller or the blocking pool are expected (those waits
    /// hold the clock); any other means a plain thread or another runtime
    /// acted on a goroutine the clock treated as durably blocked, so time
    /// may have jumped past that hand-off: say so, once.
    pub(crate) fn outside_wake(&self, g: &Goroutine) {
        match g.wait_reason() {
            WaitReason::IoWait | WaitReason::Blocking | WaitReason::Dump | WaitReason::Running => {}
            r => {
                if !self.outside_wake_reported.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "goro (virtual time): goroutine {} [{r}] was woken by a thread outside \
                         its runtime; the virtual clock does not wait for plain threads or \
                         other runtimes, so it may have advanced while this goroutine waited \
                         for one",
                        g.id
                    );
                }
            }
        }
    }
}

/// splitmix64: a small, fast generator with good 64-bit output.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the clock may jump: what the goroutines pinned here wait on.
enum Blocked {
    /// Every one waits on a goroutine or a timer of this runtime.
    Durably,
    /// Some goroutine waits on the outside (socket, blocking call), or is
    /// being woken right now.
    Outside(Vec<(u64, WaitReason)>),
}

impl Worker {
    /// The scheduler loop of a deterministic runtime (one worker). Kept out
    /// of line so that the ordinary loop stays as it was.
    #[cold]
    #[inline(never)]
    pub(super) fn run_det(&self, det: &Det) {
        let mut rng = det.seed.unwrap_or(0);
        // The worker's own generator (select! arms) starts from the seed too.
        if let Some(s) = det.seed {
            let mut st = s ^ 0x5DEE_CE66_D1CE_4E5B;
            self.rng.set(splitmix(&mut st) | 1);
        }
        let mut ready: VecDeque<GRef> = VecDeque::new();
        let mut ordinals: HashMap<u64, u32> = HashMap::new();
        let mut outside_since: Option<Instant> = None;
        let mut outside_reported = false;
        loop {
            if self.me().trace_pending.load(Ordering::Relaxed) {
                self.serve_traces();
            }
            self.collect(&mut ready);
            let me = self.me();
            let vnow = det.vnow.load(Ordering::Acquire);
            if me.timers.due(vnow) {
                me.timers
                    .run_due(vnow, self.shared.epoch + Duration::from_nanos(vnow));
                self.collect(&mut ready);
            }
            if !ready.is_empty() {
                outside_since = None;
                let (g, budget) = if det.seed.is_some() {
                    let i = (splitmix(&mut rng) % ready.len() as u64) as usize;
                    let g = ready.remove(i).expect("index in range");
                    let next = ordinals.len() as u32;
                    let ord = *ordinals.entry(g.id).or_insert(next);
                    det.log.lock().push(ord);
                    // Between 1 and BUDGET operations before a forced yield,
                    // mostly few: preemption at varied points.
                    let b = match splitmix(&mut rng) % 4 {
                        _ if det.preempt_all => 1,
                        0 => BUDGET,
                        _ => 1 + (splitmix(&mut rng) % 8) as u32,
                    };
                    (g, b)
                } else {
                    (ready.pop_front().expect("not empty"), BUDGET)
                };
                self.run_goroutine(g, budget);
                continue;
            }
            if self.shared.exit.load(Ordering::Acquire) {
                break;
            }
            match self.blocked() {
                Blocked::Durably => {
                    outside_since = None;
                    if let Some(next) = me.timers.next_deadline() {
                        if next > vnow {
                            det.vnow.store(next, Ordering::Release);
                        }
                        continue;
                    }
                    // Blocked for good (or waiting for a plain thread): the
                    // monitor reports the deadlock; sleep until woken.
                    self.det_sleep(None);
                }
                Blocked::Outside(who) => {
                    let since = *outside_since.get_or_insert_with(Instant::now);
                    let waited = since.elapsed();
                    if waited < OUTSIDE_PATIENCE {
                        self.det_sleep(Some(
                            (OUTSIDE_PATIENCE - waited).max(Duration::from_millis(1)),
                        ));
                        continue;
                    }
                    let next = me.timers.next_deadline();
                    if !outside_reported {
                        outside_reported = true;
                        let list: Vec<String> = who
                            .iter()
                            .map(|(id, r)| format!("goroutine {id} [{r}]"))
                            .collect();
                        eprintln!(
                            "goro (virtual time): {} waiting outside the runtime ({}) and \
                             nothing has happened for {} ms; {}",
                            if list.len() == 1 {
                                "a goroutine is"
                            } else {
                                "goroutines are"
                            },
                            list.join(", "),
                            waited.as_millis(),
                            if next.is_some() {
                                "moving the clock to the next timer anyway (virtual time \
                                 cannot know when the outside will answer)"
                            } else {
                                "no timer is armed, so virtual time cannot move"
                            }
                        );
                    }
                    match next {
                        Some(next) => {
                            outside_since = None;
                            if next > vnow {
                                det.vnow.store(next, Ordering::Release);
                            }
                        }
                        None => self.det_sleep(None),
                    }
                }
            }
        }
    }

    /// Moves every runnable goroutine this worker can see into `ready`, in a
    /// fixed order (so the seed alone decides what runs).
    fn collect(&self, ready: &mut VecDeque<GRef>) {
        if let Some(g) = self.runnext.take() {
            ready.push_back(g);
        }
        if let Some(g) = self.take_spawned() {
            ready.push_back(g);
        }
        ready.extend(self.runq.borrow_mut().drain(..));
        // `unstarted` pops newest first; keep spawn order instead.
        let mut fresh = Vec::new();
        while let Some(g) = self.unstarted.pop() {
            fresh.push(g);
        }
        ready.extend(fresh.into_iter().rev());
        ready.extend(self.yieldq.borrow_mut().drain(..));
        let me = self.me();
        while let Some(g) = me.inbox.pop() {
            ready.push_back(g);
        }
        loop {
            match self.shared.injector.steal() {
                Steal::Success(g) => ready.push_back(g),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
    }

    /// What the goroutines pinned here wait on (see [`Blocked`]).
    fn blocked(&self) -> Blocked {
        let mut outside = Vec::new();
        for g in self.me().registry.lock().slots.iter().flatten() {
            if g.state.load(Ordering::Acquire) != PARKED {
                // Being woken by another thread: its wake is on the way.
                outside.push((g.id, WaitReason::Running));
                continue;
            }
            let r = g.wait_reason();
            if matches!(
                r,
                WaitReason::IoWait | WaitReason::Blocking | WaitReason::RuntimeDrop
            ) {
                outside.push((g.id, r));
            }
        }
        if outside.is_empty() {
            Blocked::Durably
        } else {
            Blocked::Outside(outside)
        }
    }

    /// Sleeps until something is queued here (or `timeout`), with the same
    /// handshake as the ordinary idle loop.
    fn det_sleep(&self, timeout: Option<Duration>) {
        let me = self.me();
        {
            let mut s = self.shared.sleepers.lock();
            s.push(self.index);
            self.shared.num_sleeping.fetch_add(1, Ordering::SeqCst);
        }
        announce_sleep(&me.sleeping);
        let work = !me.inbox.is_empty()
            || !self.shared.injector.is_empty()
            || !me.spawn_next.load(Ordering::Relaxed).is_null()
            || me.trace_pending.load(Ordering::Relaxed)
            || self.shared.exit.load(Ordering::Acquire);
        if !work {
            bump(&me.sleeps);
            me.parker.park(timeout.map(|t| Instant::now() + t));
        }
        me.sleeping.store(false, Ordering::SeqCst);
        let mut s = self.shared.sleepers.lock();
        if let Some(pos) = s.iter().position(|&i| i == self.index) {
            s.swap_remove(pos);
            self.shared.num_sleeping.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
