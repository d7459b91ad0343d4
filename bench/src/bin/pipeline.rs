//! pipeline: 1,000,000 integers from a source goroutine through 4 stages of
//! one goroutine each (x+1, x*2, x+3, x-5: 2x in all), every two neighbours
//! linked by a channel of capacity 64, into a sink in the main goroutine
//! that sums them; built with `goro_patterns::Pipeline`. Checks the sum
//! (N(N-1)). Measures hand-off along a chain of bounded channels where every
//! goroutine is runnable at once, plus the pipeline's per-item bookkeeping
//! (cancellation-aware send/receive, the stage counters). Counterpart of
//! `bench/go/pipeline/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::time::Instant;

use goro_patterns::Pipeline;

const N: u64 = 1_000_000;
const BUFFER: usize = 64;

#[goro::main]
fn main() {
    let start = Instant::now();
    let sum = Pipeline::<u64, Infallible>::source(0..N)
        .buffer(BUFFER)
        .stage("add1", 1, |x| Ok(x + 1))
        .stage("mul2", 1, |x| Ok(x * 2))
        .stage("add3", 1, |x| Ok(x + 3))
        .stage("sub5", 1, |x| Ok(x - 5))
        .fold(0u64, |acc, x| Ok(acc + x))
        .unwrap_or_else(|e| panic!("pipeline: run failed: {e:?}"));
    let elapsed = start.elapsed();

    assert_eq!(sum, N * (N - 1), "pipeline: wrong sum");
    println!("RESULT pipeline {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
