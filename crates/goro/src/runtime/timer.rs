//! Per-worker timer heaps.
//!
//! Each worker owns a min-heap of timers keyed by deadline (nanoseconds since
//! the runtime epoch). A goroutine's timers go to its own worker (so a
//! sleeper's wake is local); timers made on plain threads go round-robin and
//! wake the chosen worker if it sleeps. Workers fire due timers on every
//! scheduling tick (only when their heap is non-empty) and sleep no longer
//! than their earliest deadline.
//!
//! Cancelling is lazy: [`TimerNode::cancel`] flips the node's state and the
//! entry is discarded when it reaches the top; the heap is compacted when it
//! doubles in size and more than half of it is cancelled, so a loop of
//! `recv_timeout(1h)` that always succeeds at once cannot grow it forever.
//!
//! Firing runs outside the heap lock and never blocks: it unparks a waiter,
//! does a `try_send` on a timer channel, or spawns an `after_func` goroutine.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::park::Unparker;
use super::worker::{with_worker, Shared};

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// Something a timer does when it fires (channel timers, tickers, `after_func`).
pub(crate) trait Fire: Send + Sync {
    /// Called once per firing on a worker thread; must not block.
    fn fire(&self, seq: u64, now: Instant);
}

/// What a timer does when due.
pub(crate) enum TimerAction {
    /// Wake a parked goroutine or thread (sleep, timed waits).
    Unpark(Unparker),
    /// Call a `Fire` with the sequence number it was armed with.
    Fire(Arc<dyn Fire>, u64),
}

/// One armed timer.
pub(crate) struct TimerNode {
    /// `PENDING`, `FIRED` or `CANCELLED`; leaves `PENDING` exactly once.
    state: AtomicU8,
    /// What to do when due.
    action: TimerAction,
}

impl TimerNode {
    /// Stops the timer; true if it had not fired yet.
    pub(crate) fn cancel(&self) -> bool {
        self.state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Heap entry: earliest deadline first, then first armed first.
struct Entry {
    /// Deadline, ns since the runtime epoch.
    when: u64,
    /// Arming order, for a stable order among equal deadlines.
    seq: u64,
    /// The timer.
    node: Arc<TimerNode>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.when == o.when && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        // Reversed: BinaryHeap is a max-heap.
        (o.when, o.seq).cmp(&(self.when, self.seq))
    }
}

/// A worker's timers.
pub(crate) struct TimerQueue {
    /// The heap; locked briefly by the owner (to fire) and by arming threads.
    heap: Mutex<BinaryHeap<Entry>>,
    /// Earliest deadline in the heap, `u64::MAX` when empty. Lets the owner
    /// skip the lock (and the clock read) when it has no timers.
    next: AtomicU64,
    /// Arming counter.
    seq: AtomicU64,
    /// Heap length at the last compaction.
    compacted_at: AtomicUsize,
}

impl TimerQueue {
    pub(crate) fn new() -> TimerQueue {
        TimerQueue {
            heap: Mutex::new(BinaryHeap::new()),
            next: AtomicU64::new(u64::MAX),
            seq: AtomicU64::new(0),
            compacted_at: AtomicUsize::new(1024),
        }
    }

    /// Whether the heap holds any timer.
    #[inline]
    pub(crate) fn has_any(&self) -> bool {
        self.next.load(Ordering::Acquire) != u64::MAX
    }

    /// Whether a timer is due at `now`.
    pub(crate) fn due(&self, now: u64) -> bool {
        self.next.load(Ordering::Acquire) <= now
    }

    /// Earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        match self.next.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// Adds a timer; returns true if it became the earliest.
    fn push(&self, when: u64, node: Arc<TimerNode>) -> bool {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut h = self.heap.lock();
        h.push(Entry { when, seq, node });
        let len = h.len();
        if len >= 2 * self.compacted_at.load(Ordering::Relaxed) {
            let live = h
                .iter()
                .filter(|e| e.node.state.load(Ordering::Relaxed) == PENDING)
                .count();
            if live * 2 < len {
                h.retain(|e| e.node.state.load(Ordering::Relaxed) == PENDING);
            }
            self.compacted_at
                .store(h.len().max(1024), Ordering::Relaxed);
        }
        let earliest = h.peek().map_or(u64::MAX, |e| e.when);
        let prev = self.next.swap(earliest, Ordering::AcqRel);
        earliest < prev
    }

    /// Fires every timer due at `now` (ns since the epoch; `instant` is the
    /// same moment, handed to channel timers).
    pub(crate) fn run_due(&self, now: u64, instant: Instant) {
        if self.next.load(Ordering::Acquire) > now {
            return;
        }
        let mut due = Vec::new();
        {
            let mut h = self.heap.lock();
            while let Some(e) = h.peek() {
                if e.when > now {
                    break;
                }
                let e = h.pop().expect("peeked");
                if e.node
                    .state
                    .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    due.push(e.node);
                }
            }
            self.next
                .store(h.peek().map_or(u64::MAX, |e| e.when), Ordering::Release);
        }
        if due.is_empty() {
            return;
        }
        for node in due {
            match &node.action {
                TimerAction::Unpark(u) => u.unpark(),
                TimerAction::Fire(f, seq) => f.fire(*seq, instant),
            }
        }
    }

    /// Entries in the heap (cancelled ones included until discarded).
    pub(crate) fn len(&self) -> usize {
        self.heap.lock().len()
    }

    /// Drops every timer (worker exit).
    pub(crate) fn clear(&self) {
        let drained: Vec<Entry> = self.heap.lock().drain().collect();
        self.next.store(u64::MAX, Ordering::Release);
        drop(drained);
    }
}

/// Arms a timer on `rt` at `when`. From a worker of `rt` it goes to that
/// worker's heap; otherwise round-robin, waking the worker if needed.
pub(crate) fn add_timer(rt: &Arc<Shared>, when: Instant, action: TimerAction) -> Arc<TimerNode> {
    let node = Arc::new(TimerNode {
        state: AtomicU8::new(PENDING),
        action,
    });
    let mine = with_worker(|w| match w {
        Some(w) if Arc::ptr_eq(&w.shared, rt) => Some(w.index),
        _ => None,
    });
    let idx = mine
        .unwrap_or_else(|| rt.next_timer_worker.fetch_add(1, Ordering::Relaxed) % rt.workers.len());
    let when_ns = rt.nanos(when);
    let earliest = rt.workers[idx].timers.push(when_ns, node.clone());
    if earliest && mine.is_none() {
        rt.notify_worker(idx);
    }
    node
}

/// Arms a timer that unparks the running goroutine at `deadline`.
pub(crate) fn add_unpark_timer(rt: &Arc<Shared>, deadline: Instant) -> Arc<TimerNode> {
    add_timer(rt, deadline, TimerAction::Unpark(Unparker::current()))
}

/// `deadline` for a timeout of `d` from now, saturating far in the future.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = crate::time::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
