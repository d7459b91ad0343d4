//! idle on tokio: tasks left waiting for seconds. Two workloads, chosen by
//! the first argument:
//!
//! - none (`idle`): 1,000,000 tasks each wait on their clone of one
//!   `tokio::sync::watch` receiver (`changed().await`, which fails once the
//!   sender is dropped: tokio's closest thing to receiving on a channel that
//!   is then closed, as in `tokio_parked.rs`); once every task has been
//!   polled they are left waiting for `IDLE_HOLD_MS` (default 5000) ms, then
//!   the resident memory they added is read from `/proc/self/status` and
//!   printed as `RESULT_BYTES_PER_G idle <bytes>`; then the sender is
//!   dropped, which releases every task, and all are waited for. The time
//!   covers the release and the wait only.
//! - `wake` (`idle_wake`): 10,000 tasks each wait on their own
//!   `tokio::sync::mpsc` request channel of capacity 1 (tokio has no
//!   unbuffered channel), all replying on one shared capacity-1 reply
//!   channel; they are left waiting for `IDLE_HOLD_MS` (default 3000) ms;
//!   then the main task, one task after the other, sends it a value and
//!   waits for its reply: 10,000 sequential round trips, each waking a task
//!   idle for seconds. The time covers the 10,000 round trips; their median
//!   is printed as an `INFO` line.
//!
//! Multi-thread runtime with its default worker count; the main body runs as
//! a spawned task.
//! Counterpart of `idle.rs` and `bench/go/idle/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

#[path = "../shared/measure.rs"]
mod measure;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

/// Tasks of the `idle` workload.
const IDLE_N: usize = 1_000_000;
/// Tasks (and round trips) of the `idle_wake` workload.
const WAKE_N: usize = 10_000;

/// A count of tasks still to arrive and the `Notify` the last one signals.
struct Latch {
    left: AtomicUsize,
    done: Notify,
}

impl Latch {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Latch {
            left: AtomicUsize::new(n),
            done: Notify::new(),
        })
    }

    fn count_down(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// The `idle` workload: the release time and the bytes per task.
async fn idle() -> (Duration, u64) {
    let (release_tx, release_rx) = watch::channel(());
    let started = Latch::new(IDLE_N);
    let finished = Latch::new(IDLE_N);

    let before = measure::vm_rss();
    for _ in 0..IDLE_N {
        let mut rx = release_rx.clone();
        let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
        drop(tokio::spawn(async move {
            started.count_down();
            assert!(rx.changed().await.is_err(), "idle: a value was sent");
            finished.count_down();
        }));
    }
    started.done.notified().await;
    tokio::time::sleep(measure::idle_hold(5000)).await;
    let after = measure::vm_rss();

    let start = Instant::now();
    drop(release_tx);
    finished.done.notified().await;
    let elapsed = start.elapsed();

    (elapsed, after.saturating_sub(before) / IDLE_N as u64)
}

/// The `idle_wake` workload: the time of the round trips and their median.
async fn idle_wake() -> (Duration, Duration) {
    let (reply_tx, mut reply_rx) = mpsc::channel::<u64>(1);
    let started = Latch::new(WAKE_N);
    let finished = Latch::new(WAKE_N);

    let requests: Vec<_> = (0..WAKE_N)
        .map(|_| {
            let (tx, mut rx) = mpsc::channel::<u64>(1);
            let reply = reply_tx.clone();
            let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
            drop(tokio::spawn(async move {
                started.count_down();
                // Waits for its request, then until the channel is closed.
                while let Some(v) = rx.recv().await {
                    reply
                        .send(v + 1)
                        .await
                        .expect("idle: main stopped listening");
                }
                finished.count_down();
            }));
            tx
        })
        .collect();
    started.done.notified().await;
    tokio::time::sleep(measure::idle_hold(3000)).await;

    let mut trips = Vec::with_capacity(WAKE_N);
    let start = Instant::now();
    for (i, tx) in (0u64..).zip(&requests) {
        let t = Instant::now();
        tx.send(i).await.expect("idle: a task vanished");
        let got = reply_rx.recv().await.expect("idle: every task vanished");
        trips.push(t.elapsed());
        assert_eq!(got, i + 1, "idle: sent {i}, got back {got}");
    }
    let elapsed = start.elapsed();

    // Dropping the only senders closes the channels, as Go's close does.
    drop(requests);
    finished.done.notified().await;
    trips.sort_unstable();
    (elapsed, trips[WAKE_N / 2])
}

#[tokio::main]
async fn main() {
    let wake = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("wake") => true,
        Some(other) => panic!("idle: unknown argument '{other}' (none, or `wake`)"),
    };
    if wake {
        let (elapsed, median) = tokio::spawn(idle_wake())
            .await
            .expect("idle: main task panicked");
        println!("INFO idle_wake median_round_trip_ns={}", median.as_nanos());
        println!("RESULT idle_wake {:.3} ms", elapsed.as_secs_f64() * 1e3);
    } else {
        let (elapsed, per_task) = tokio::spawn(idle())
            .await
            .expect("idle: main task panicked");
        println!("RESULT_BYTES_PER_G idle {per_task}");
        println!("RESULT idle {:.3} ms", elapsed.as_secs_f64() * 1e3);
    }
}
