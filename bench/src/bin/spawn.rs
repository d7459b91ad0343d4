//! spawn: start 1,000,000 goroutines that each do one atomic add, and wait
//! for all of them with a `WaitGroup`. Measures goroutine creation, first run
//! and exit. Counterpart of `bench/go/spawn/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use goro::sync::WaitGroup;

const N: u64 = 1_000_000;

static TOTAL: AtomicU64 = AtomicU64::new(0);

#[goro::main]
fn main() {
    let wg = WaitGroup::new();

    let start = Instant::now();
    wg.add(N as usize);
    for i in 0..N {
        let wg = wg.clone();
        // Detached, as `go f()` is: completion is tracked by the WaitGroup.
        drop(goro::go(move || {
            TOTAL.fetch_add(i, Ordering::Relaxed);
            wg.done();
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();

    let want = N * (N - 1) / 2;
    let got = TOTAL.load(Ordering::Relaxed);
    assert_eq!(got, want, "spawn: wrong sum");
    println!("RESULT spawn {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
