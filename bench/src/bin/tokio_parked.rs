//! parked on tokio: 1,000,000 tasks each wait on their clone of one
//! `tokio::sync::watch` receiver (`changed().await`, which fails once the
//! sender is dropped: tokio's closest thing to receiving on a channel that
//! is then closed); once every task has been polled, the resident memory
//! they added is read from `/proc/self/status` and printed as
//! `RESULT_BYTES_PER_G parked <bytes>`; then the sender is dropped, which
//! releases every task, and all are waited for. Multi-thread runtime with
//! its default worker count; the main body runs as a spawned task.
//! Counterpart of `parked.rs` and `bench/go/parked/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

#[path = "../shared/measure.rs"]
mod measure;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

const N: usize = 1_000_000;

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

async fn run() -> (Duration, u64) {
    let (release_tx, release_rx) = watch::channel(());
    let started = Latch::new(N);
    let finished = Latch::new(N);

    let before = measure::vm_rss();
    let start = Instant::now();
    for _ in 0..N {
        let mut rx = release_rx.clone();
        let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
        drop(tokio::spawn(async move {
            started.count_down();
            assert!(rx.changed().await.is_err(), "parked: a value was sent");
            finished.count_down();
        }));
    }
    started.done.notified().await;
    let after = measure::vm_rss();
    drop(release_tx);
    finished.done.notified().await;
    let elapsed = start.elapsed();

    (elapsed, after.saturating_sub(before) / N as u64)
}

#[tokio::main]
async fn main() {
    let (elapsed, per_task) = tokio::spawn(run())
        .await
        .expect("parked: main task panicked");
    println!("RESULT parked {:.3} ms", elapsed.as_secs_f64() * 1e3);
    println!("RESULT_BYTES_PER_G parked {per_task}");
}
