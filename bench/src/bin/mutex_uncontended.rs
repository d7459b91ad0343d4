//! mutex_uncontended: one goroutine locks and unlocks a `goro::sync::Mutex`
//! nobody else touches, 10,000,000 pairs; each critical section increments
//! the counter the mutex guards. Measures the uncontended fast path
//! (total ms / 10,000,000 = ns per lock+unlock pair).
//! Counterpart of `bench/go/mutex_uncontended/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::sync::Mutex;

const PAIRS: u64 = 10_000_000;

/// A package-level mutex and counter, as Go's `var mu sync.Mutex`.
static COUNTER: Mutex<u64> = Mutex::new(0);

#[goro::main]
fn main() {
    let start = Instant::now();
    for _ in 0..PAIRS {
        *COUNTER.lock() += 1;
    }
    let elapsed = start.elapsed();

    let got = *COUNTER.lock();
    assert_eq!(got, PAIRS, "mutex_uncontended: wrong count");
    println!(
        "RESULT mutex_uncontended {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
