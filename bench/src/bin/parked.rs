//! parked: 1,000,000 goroutines each park receiving on one shared unbuffered
//! channel; once all have started, the resident memory they added is read
//! from `/proc/self/status` (VmRSS after − VmRSS before, divided by 1M) and
//! printed as `RESULT_BYTES_PER_G parked <bytes>`; then the channel is
//! closed, which releases every goroutine, and all are waited for. The time
//! covers spawning, parking, the release and the wait.
//! Counterpart of `bench/go/parked/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

#[path = "../shared/measure.rs"]
mod measure;

use std::time::Instant;

use goro::chan;
use goro::sync::WaitGroup;

const N: usize = 1_000_000;

#[goro::main]
fn main() {
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let started = WaitGroup::new();
    let finished = WaitGroup::new();

    let before = measure::vm_rss();
    let start = Instant::now();
    started.add(N);
    finished.add(N);
    for _ in 0..N {
        let (rx, started, finished) = (release_rx.clone(), started.clone(), finished.clone());
        drop(goro::go(move || {
            started.done();
            // Parks until the channel is closed.
            assert!(rx.recv().is_err(), "parked: a value was sent");
            finished.done();
        }));
    }
    started.wait();
    let after = measure::vm_rss();
    release_tx.close();
    finished.wait();
    let elapsed = start.elapsed();

    let per_g = after.saturating_sub(before) / N as u64;
    println!("RESULT parked {:.3} ms", elapsed.as_secs_f64() * 1e3);
    println!("RESULT_BYTES_PER_G parked {per_g}");
}
