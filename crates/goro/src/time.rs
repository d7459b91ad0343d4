//! Time: `sleep`, `after`, `tick`, `Timer`, `Ticker`, `after_func`.
//!
//! Everything here parks a goroutine (its worker runs others meanwhile) and
//! blocks a plain thread. Timers live in per-worker heaps (see
//! `runtime/timer.rs`); a goroutine's timers go to its own worker.
//!
//! [`Timer`] and [`Ticker`] follow Go 1.23: once `stop` or `reset` returns, no
//! value from the old schedule can be received. Firing and stop/reset
//! serialise on the timer's lock, and stop/reset drain the channel's
//! one-value buffer under it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! let start = Instant::now();
//! goro::time::sleep(Duration::from_millis(5));
//! assert!(start.elapsed() >= Duration::from_millis(5));
//! ```

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::runtime::current_shared;
use crate::runtime::goroutine;
use crate::runtime::park::{self, WaitReason};
use crate::runtime::timer::{self as rt_timer, deadline_after, Fire, TimerAction, TimerNode};
use crate::runtime::worker::Shared;

/// The current time on the caller's runtime clock (Go's `time.Now`).
///
/// That is [`Instant::now`] everywhere except inside a runtime on a virtual
/// clock ([`crate::testing::synctest`], [`RuntimeBuilder::virtual_time`]),
/// where it is the virtual time: it stands still while goroutines run and
/// jumps when they all wait. Code that measures or computes deadlines with
/// `goro::time::now()` behaves the same under both clocks; `Instant::now()`
/// always reads the real one.
///
/// [`RuntimeBuilder::virtual_time`]: crate::RuntimeBuilder::virtual_time
///
/// ```
/// let t0 = goro::time::now();
/// goro::time::sleep(std::time::Duration::from_millis(2));
/// assert!(goro::time::since(t0) >= std::time::Duration::from_millis(2));
/// ```
#[inline]
pub fn now() -> Instant {
    crate::runtime::worker::with_worker(|w| match w {
        Some(w) if w.shared.det.is_some() => Some(w.shared.now()),
        _ => None,
    })
    .unwrap_or_else(Instant::now)
}

/// Time elapsed since `t` on the caller's runtime clock (Go's `time.Since`);
/// see [`now`].
pub fn since(t: Instant) -> Duration {
    now().saturating_duration_since(t)
}

/// Pauses the caller for at least `d` (Go's `time.Sleep`).
///
/// # Blocking
///
/// Parks a goroutine; blocks a plain thread.
#[track_caller]
pub fn sleep(d: Duration) {
    let site = Location::caller();
    let deadline = deadline_after(d);
    if goroutine::in_goroutine() {
        while now() < deadline {
            park::park_until(WaitReason::Sleep, site, Some(deadline));
        }
    } else {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

/// Pauses until `deadline` (no-op if it has passed).
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    let t = now();
    if deadline > t {
        sleep(deadline - t);
    }
}

/// A channel that receives the current time once, after `d`, then closes
/// (Go's `time.After`).
///
/// ```
/// use std::time::Duration;
/// let t = goro::time::after(Duration::from_millis(1));
/// assert!(t.recv().is_ok());
/// assert!(t.recv().is_err()); // one value, then closed
/// ```
pub fn after(d: Duration) -> Receiver<std::time::Instant> {
    let (tx, rx) = chan::bounded(1);
    let f = Arc::new(AfterOnce {
        tx: Mutex::new(Some(tx)),
    });
    rt_timer::add_timer(
        &current_shared(),
        deadline_after(d),
        TimerAction::Fire(f, 0),
    );
    rx
}

/// Fires once into a channel, then drops its sender (closing it).
struct AfterOnce {
    /// The sender, until fired.
    tx: Mutex<Option<Sender<Instant>>>,
}

impl Fire for AfterOnce {
    fn fire(&self, _seq: u64, now: Instant) {
        if let Some(tx) = self.tx.lock().take() {
            let _ = tx.try_send(now);
        }
    }
}

/// A channel that receives the time every `d`; ticks are dropped for a slow
/// receiver (Go's `time.Tick`). It stops once every receiver is dropped.
///
/// # Panics
///
/// If `d` is zero (as Go's `NewTicker`).
#[track_caller]
pub fn tick(d: Duration) -> Receiver<Instant> {
    assert!(
        !d.is_zero(),
        "goro::time::tick: the period must be greater than zero"
    );
    // No handle keeps the schedule: it ends when the last receiver is
    // dropped (the next tick's `try_send` then fails).
    let (_sched, rx) = Sched::start(d, Some(d), None, Location::caller());
    rx
}

/// State shared by a `Timer` or `Ticker` and its armed heap entries.
struct Sched {
    /// Guarded schedule; firing and stop/reset serialise on it.
    st: Mutex<SchedState>,
    /// Sends ticks (`None` for `after_func` timers).
    tx: Option<Sender<Instant>>,
    /// `after_func`'s function.
    func: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Runtime whose workers own the heap entries.
    rt: Arc<Shared>,
    /// Ourselves, for arming heap entries from `&self`.
    me: Weak<Sched>,
    /// Where the timer was made (spawn site of `after_func` goroutines).
    site: &'static Location<'static>,
}

struct SchedState {
    /// Incremented by every stop/reset: older firings are ignored.
    seq: u64,
    /// Armed and not yet fired (timers) / running (tickers).
    active: bool,
    /// Period, for tickers.
    period: Option<Duration>,
    /// When the current schedule is due.
    when: Instant,
    /// The armed heap entry.
    node: Option<Arc<TimerNode>>,
}

impl Sched {
    /// Creates and arms a schedule due after `d`.
    fn start(
        d: Duration,
        period: Option<Duration>,
        func: Option<Arc<dyn Fn() + Send + Sync>>,
        site: &'static Location<'static>,
    ) -> (Arc<Sched>, Receiver<Instant>) {
        let (tx, rx) = if func.is_some() {
            // after_func: a channel that is never ready.
            (None, chan::never())
        } else {
            let (tx, rx) = chan::bounded(1);
            (Some(tx), rx)
        };
        let sched = Arc::new_cyclic(|me| Sched {
            st: Mutex::new(SchedState {
                seq: 0,
                active: true,
                period,
                when: deadline_after(d),
                node: None,
            }),
            tx,
            func,
            rt: current_shared(),
            me: me.clone(),
            site,
        });
        {
            let mut st = sched.st.lock();
            sched.arm(&mut st);
        }
        (sched, rx)
    }

    fn arm(&self, st: &mut SchedState) {
        let Some(me) = self.me.upgrade() else { return };
        let f: Arc<dyn Fire> = me;
        st.node = Some(rt_timer::add_timer(
            &self.rt,
            st.when,
            TimerAction::Fire(f, st.seq),
        ));
    }

    /// Cancels the schedule and drains a stale value; true if it was active
    /// or a value was pending.
    fn stop_locked(&self, st: &mut SchedState, rx: &Receiver<Instant>) -> bool {
        st.seq += 1;
        let was = st.active;
        st.active = false;
        if let Some(n) = st.node.take() {
            n.cancel();
        }
        let drained = rx.try_recv().is_ok();
        was || drained
    }
}

impl Fire for Sched {
    fn fire(&self, seq: u64, now: Instant) {
        let mut st = self.st.lock();
        if st.seq != seq || !st.active {
            return;
        }
        match st.period {
            None => {
                st.active = false;
                st.node = None;
                if let Some(f) = &self.func {
                    let f = f.clone();
                    drop(st);
                    // SAFETY: `f` is 'static.
                    let _ = unsafe {
                        crate::spawn::spawn_unchecked(
                            &self.rt,
                            Some("time.AfterFunc".into()),
                            self.rt.stack_size,
                            self.site,
                            None,
                            move || f(),
                        )
                    };
                } else if let Some(tx) = &self.tx {
                    let _ = tx.try_send(now);
                }
            }
            Some(p) => {
                if let Some(tx) = &self.tx {
                    if let Err(TrySendError::Closed(_)) = tx.try_send(now) {
                        // Nobody can receive any more: stop ticking.
                        st.active = false;
                        st.node = None;
                        return;
                    }
                }
                // Next tick on the original grid, skipping missed ones.
                let mut next = st.when + p;
                if next <= now {
                    let behind = now.duration_since(st.when).as_nanos() / p.as_nanos().max(1);
                    next = st.when + p * (behind as u32).saturating_add(1);
                    if next <= now {
                        next = now + p;
                    }
                }
                st.when = next;
                self.arm(&mut st);
            }
        }
    }
}

/// A single event (Go's `time.Timer`): its channel receives the time once,
/// after the duration, unless stopped.
///
/// ```
/// use std::time::Duration;
/// let t = goro::time::Timer::new(Duration::from_secs(60));
/// assert!(t.stop()); // stopped before it fired
/// assert!(t.channel().try_recv().is_err());
/// ```
pub struct Timer {
    /// Shared with the heap entry.
    sched: Arc<Sched>,
    /// The channel users receive from.
    rx: Receiver<Instant>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("active", &self.sched.st.lock().active)
            .finish()
    }
}

impl Timer {
    /// A timer that fires after `d`.
    #[track_caller]
    pub fn new(d: Duration) -> Timer {
        let (sched, rx) = Sched::start(d, None, None, Location::caller());
        Timer { sched, rx }
    }

    /// The channel that receives the time when the timer fires.
    pub fn channel(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. Returns true if this call stopped it before its
    /// value could be received (it had not fired, or had fired but nobody
    /// received the value, which is discarded). After `stop` returns, no
    /// value can be received from the channel (Go 1.23 semantics).
    pub fn stop(&self) -> bool {
        let mut st = self.sched.st.lock();
        self.sched.stop_locked(&mut st, &self.rx)
    }

    /// Re-arms the timer to fire after `d`, discarding any pending value.
    /// Returns what [`stop`](Timer::stop) would have returned.
    pub fn reset(&self, d: Duration) -> bool {
        let mut st = self.sched.st.lock();
        let was = self.sched.stop_locked(&mut st, &self.rx);
        st.active = true;
        st.when = deadline_after(d);
        self.sched.arm(&mut st);
        was
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // A dropped timer's function must still run (Go keeps AfterFunc
        // timers alive); a channel timer nobody can observe just stops.
        if self.sched.func.is_none() {
            let mut st = self.sched.st.lock();
            st.seq += 1;
            st.active = false;
            if let Some(n) = st.node.take() {
                n.cancel();
            }
        }
    }
}

/// Runs `f` in its own goroutine after `d` (Go's `time.AfterFunc`). The
/// returned timer's `stop` prevents it if it has not started; its channel is
/// never ready.
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = goro::chan::bounded(1);
/// let _t = goro::time::after_func(Duration::from_millis(1), move || { tx.send("ran").unwrap(); });
/// assert_eq!(rx.recv().unwrap(), "ran");
/// ```
#[track_caller]
pub fn after_func<F: FnOnce() + Send + 'static>(d: Duration, f: F) -> Timer {
    let cell = Mutex::new(Some(f));
    let func: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(f) = cell.lock().take() {
            f();
        }
    });
    let (sched, rx) = Sched::start(d, None, Some(func), Location::caller());
    Timer { sched, rx }
}

/// Delivers the time every period (Go's `time.Ticker`); ticks are dropped
/// for a slow receiver.
///
/// ```
/// use std::time::Duration;
/// let t = goro::time::Ticker::new(Duration::from_millis(1));
/// t.channel().recv().unwrap();
/// t.channel().recv().unwrap();
/// t.stop();
/// ```
pub struct Ticker {
    /// Shared with the heap entry.
    sched: Arc<Sched>,
    /// The channel users receive from.
    rx: Receiver<Instant>,
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("period", &self.sched.st.lock().period)
            .finish()
    }
}

impl Ticker {
    /// A ticker with period `d`.
    ///
    /// # Panics
    ///
    /// If `d` is zero (as Go's `NewTicker`).
    #[track_caller]
    pub fn new(d: Duration) -> Ticker {
        assert!(
            !d.is_zero(),
            "Ticker::new: the period must be greater than zero"
        );
        let (sched, rx) = Sched::start(d, Some(d), None, Location::caller());
        Ticker { sched, rx }
    }

    /// The channel that receives the ticks.
    pub fn channel(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker; no tick can be received after it returns.
    pub fn stop(&self) {
        let mut st = self.sched.st.lock();
        self.sched.stop_locked(&mut st, &self.rx);
    }

    /// Restarts the ticker with period `d`, discarding a pending tick.
    ///
    /// # Panics
    ///
    /// If `d` is zero.
    pub fn reset(&self, d: Duration) {
        assert!(
            !d.is_zero(),
            "Ticker::reset: the period must be greater than zero"
        );
        let mut st = self.sched.st.lock();
        self.sched.stop_locked(&mut st, &self.rx);
        st.active = true;
        st.period = Some(d);
        st.when = deadline_after(d);
        self.sched.arm(&mut st);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let mut st = self.sched.st.lock();
        st.seq += 1;
        st.active = false;
        if let Some(n) = st.node.take() {
            n.cancel();
        }
    }
}
