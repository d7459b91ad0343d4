//! Throughput of the worker pool and the pipeline, for comparison with the
//! same shapes written by hand in Go (`throughput.go` next to this file).
//!
//! ```text
//! cargo run -p goro-patterns --release --example throughput
//! go run crates/goro-patterns/examples/throughput.go
//! ```
//!
//! * `pool`: 1,000,000 tiny jobs (an atomic add) through 8 workers and a
//!   queue of 64, submitted from one goroutine; `submit_to` with one shared
//!   results channel drained by another goroutine (Go: a jobs channel, 8
//!   workers, a results channel).
//! * `pipeline`: 1,000,000 integers through 4 single-worker stages (`+1`)
//!   with channels of 16 between them (Go: the blog's pipeline shape).
//!
//! A measurement, not a test: the numbers go in the report, not in
//! assertions.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use goro_patterns::{Pipeline, Pool};

/// Jobs or items per run.
const N: u64 = 1_000_000;

/// Best of `runs` timings of `f`, in seconds.
fn best(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[goro::main]
fn main() {
    let pool = best(3, || {
        let sum = Arc::new(AtomicU64::new(0));
        let pool = Pool::new(8, 64);
        let (tx, rx) = goro::chan::bounded(64);
        let drain = goro::go(move || rx.iter().count());
        for i in 0..N {
            let sum = sum.clone();
            pool.submit_to(
                move |_| {
                    sum.fetch_add(i, Ordering::Relaxed);
                },
                &tx,
            )
            .unwrap();
        }
        pool.shutdown();
        drop(tx);
        assert_eq!(drain.join().unwrap() as u64, N);
        assert_eq!(sum.load(Ordering::Relaxed), N * (N - 1) / 2);
    });
    println!(
        "pool::tiny_jobs/1M/8w      {:>8.1} ms  ({:.0} ns/job)",
        pool * 1e3,
        pool * 1e9 / N as f64
    );

    let pipe = best(3, || {
        let sum = Pipeline::<u64, ()>::source(0..N)
            .stage("s1", 1, |x| Ok(x + 1))
            .stage("s2", 1, |x| Ok(x + 1))
            .stage("s3", 1, |x| Ok(x + 1))
            .stage("s4", 1, |x| Ok(x + 1))
            .fold(0u64, |a, x| Ok(a + x))
            .unwrap();
        assert_eq!(sum, N * (N - 1) / 2 + 4 * N);
    });
    println!(
        "pipeline::4_stages/1M      {:>8.1} ms  ({:.0} ns/item)",
        pipe * 1e3,
        pipe * 1e9 / N as f64
    );
}
