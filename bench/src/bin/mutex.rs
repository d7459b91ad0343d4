//! mutex: 1000 goroutines contend on one `goro::sync::Mutex`, 1000
//! lock/unlock pairs each (1,000,000 in all); every critical section
//! increments the counter the mutex guards. Measures a contended mutex:
//! spinning, parking and waking waiters, hand-off under starvation mode.
//! Counterpart of `bench/go/mutex/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::sync::{Mutex, WaitGroup};

const GOROUTINES: usize = 1000;
const PER_GOROUTINE: u64 = 1000;
const TOTAL: u64 = GOROUTINES as u64 * PER_GOROUTINE;

/// A package-level mutex and counter, as Go's `var mu sync.Mutex`.
static COUNTER: Mutex<u64> = Mutex::new(0);

#[goro::main]
fn main() {
    let wg = WaitGroup::new();

    let start = Instant::now();
    wg.add(GOROUTINES);
    for _ in 0..GOROUTINES {
        let wg = wg.clone();
        drop(goro::go(move || {
            for _ in 0..PER_GOROUTINE {
                *COUNTER.lock() += 1;
            }
            wg.done();
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();

    let got = *COUNTER.lock();
    assert_eq!(got, TOTAL, "mutex: wrong count");
    println!("RESULT mutex {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
