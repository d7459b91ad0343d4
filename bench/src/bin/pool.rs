//! pool: 1,000,000 tiny jobs (one atomic add of the job's index each)
//! submitted from the main goroutine to a `goro_patterns::Pool` of 8 workers
//! with a queue of 1024, then `shutdown` (close the queue, wait for the
//! workers); checks the sum. Measures a worker pool's per-job cost: a
//! bounded-channel hand-off plus the pool's bookkeeping (boxing the job and
//! its result channel, the counters). Counterpart of
//! `bench/go/pool/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use goro_patterns::Pool;

const WORKERS: usize = 8;
const QUEUE: usize = 1024;
const JOBS: u64 = 1_000_000;

static TOTAL: AtomicU64 = AtomicU64::new(0);

#[goro::main]
fn main() {
    let start = Instant::now();
    let pool = Pool::new(WORKERS, QUEUE);
    for i in 0..JOBS {
        // Detached, as a Go job on a `chan func()` is (no handle, no result
        // channel); shutdown below is the WaitGroup's Wait.
        pool.execute(move |_| {
            TOTAL.fetch_add(i, Ordering::Relaxed);
        })
        .unwrap_or_else(|_| panic!("pool: the pool closed while submitting"));
    }
    pool.shutdown();
    let elapsed = start.elapsed();

    let want = JOBS * (JOBS - 1) / 2;
    assert_eq!(TOTAL.load(Ordering::Relaxed), want, "pool: wrong sum");
    assert_eq!(pool.stats().completed, JOBS, "pool: wrong job count");
    println!("RESULT pool {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
