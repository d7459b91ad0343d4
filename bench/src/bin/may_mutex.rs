//! mutex on may: 1000 coroutines contend on one `may::sync::Mutex`, 1000
//! lock/unlock pairs each (1,000,000 in all); every critical section
//! increments the counter the mutex guards; main waits with may's
//! `WaitGroup`. may's default configuration; the main body runs as a
//! coroutine. Counterpart of `mutex.rs` and `bench/go/mutex/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::sync::Arc;
use std::time::{Duration, Instant};

use may::sync::{Mutex, WaitGroup};
use may_go::go;

const GOROUTINES: usize = 1000;
const PER_GOROUTINE: u64 = 1000;
const TOTAL: u64 = GOROUTINES as u64 * PER_GOROUTINE;

fn run() -> Duration {
    let counter = Arc::new(Mutex::new(0u64));
    let wg = WaitGroup::new();

    let start = Instant::now();
    for _ in 0..GOROUTINES {
        let (wg, counter) = (wg.clone(), Arc::clone(&counter));
        drop(go(move || {
            for _ in 0..PER_GOROUTINE {
                *counter.lock().expect("mutex: poisoned") += 1;
            }
            drop(wg);
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();

    let got = *counter.lock().expect("mutex: poisoned");
    assert_eq!(got, TOTAL, "mutex: wrong count");
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("mutex: main coroutine panicked");
    println!("RESULT mutex {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
