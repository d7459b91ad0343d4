//! spawn on may: start 1,000,000 coroutines that each do one atomic add, and
//! wait for all of them with may's `WaitGroup` (a clone per coroutine,
//! dropped when it ends). may's default configuration (one worker per core,
//! default stack size); the main body runs as a coroutine.
//! Counterpart of `spawn.rs` and `bench/go/spawn/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use may::sync::WaitGroup;
use may_go::go;

const N: u64 = 1_000_000;

static TOTAL: AtomicU64 = AtomicU64::new(0);

fn run() -> Duration {
    let wg = WaitGroup::new();

    let start = Instant::now();
    for i in 0..N {
        let wg = wg.clone();
        // Detached: completion is tracked by the WaitGroup.
        drop(go(move || {
            TOTAL.fetch_add(i, Ordering::Relaxed);
            drop(wg);
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();

    let want = N * (N - 1) / 2;
    assert_eq!(TOTAL.load(Ordering::Relaxed), want, "spawn: wrong sum");
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("spawn: main coroutine panicked");
    println!("RESULT spawn {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
