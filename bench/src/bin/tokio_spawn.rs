//! spawn on tokio: start 1,000,000 tasks with `tokio::spawn` that each do one
//! atomic add, and wait for all of them. The tasks are detached, as goro's
//! and Go's goroutines are; where those sides wait with a WaitGroup, this one
//! counts down an atomic and the last task wakes main through a `Notify`.
//! Multi-thread runtime with its default worker count; the main body runs as
//! a spawned task, like goro's and Go's main goroutine.
//! Counterpart of `spawn.rs` and `bench/go/spawn/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const N: u64 = 1_000_000;

static TOTAL: AtomicU64 = AtomicU64::new(0);

/// A WaitGroup of the simplest kind: a count of the tasks still running and
/// the `Notify` the last of them signals.
struct WaitGroup {
    left: AtomicU64,
    done: Notify,
}

async fn run() -> Duration {
    let wg = Arc::new(WaitGroup {
        left: AtomicU64::new(0),
        done: Notify::new(),
    });

    let start = Instant::now();
    wg.left.store(N, Ordering::Relaxed);
    for i in 0..N {
        let wg = Arc::clone(&wg);
        // Detached, as `go f()` is: completion is tracked by the count.
        drop(tokio::spawn(async move {
            TOTAL.fetch_add(i, Ordering::Relaxed);
            if wg.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                // notify_one stores a permit if main is not waiting yet.
                wg.done.notify_one();
            }
        }));
    }
    wg.done.notified().await;
    let elapsed = start.elapsed();

    assert_eq!(wg.left.load(Ordering::Acquire), 0, "spawn: woken too early");
    let want = N * (N - 1) / 2;
    let got = TOTAL.load(Ordering::Relaxed);
    assert_eq!(got, want, "spawn: wrong sum");
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("spawn: main task panicked");
    println!("RESULT spawn {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
