//! parked on may: 1,000,000 coroutines each park receiving on their clone of
//! one `may::sync::mpmc` channel; once all have started, the resident memory
//! they added is read from `/proc/self/status` and printed as
//! `RESULT_BYTES_PER_G parked <bytes>`; then the only sender is dropped,
//! which releases every coroutine, and all are waited for (may's
//! `WaitGroup`s for both steps). may's default configuration; the main body
//! runs as a coroutine.
//! Counterpart of `parked.rs` and `bench/go/parked/main.go`.
#![allow(missing_docs)]

#[path = "../shared/measure.rs"]
mod measure;

#[path = "../shared/may_go.rs"]
mod may_go;

use std::time::{Duration, Instant};

use may::sync::{mpmc, WaitGroup};
use may_go::go;

const N: usize = 1_000_000;

fn run() -> (Duration, u64) {
    let (release_tx, release_rx) = mpmc::channel::<()>();
    let started = WaitGroup::new();
    let finished = WaitGroup::new();

    let before = measure::vm_rss();
    let start = Instant::now();
    for _ in 0..N {
        let (rx, started, finished) = (release_rx.clone(), started.clone(), finished.clone());
        drop(go(move || {
            drop(started);
            assert!(rx.recv().is_err(), "parked: a value was sent");
            drop(finished);
        }));
    }
    started.wait();
    let after = measure::vm_rss();
    drop(release_tx);
    finished.wait();
    let elapsed = start.elapsed();

    (elapsed, after.saturating_sub(before) / N as u64)
}

fn main() {
    may_go::exit_on_panic();
    let (elapsed, per_g) = go(run).join().expect("parked: main coroutine panicked");
    println!("RESULT parked {:.3} ms", elapsed.as_secs_f64() * 1e3);
    println!("RESULT_BYTES_PER_G parked {per_g}");
}
