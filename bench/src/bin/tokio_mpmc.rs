//! mpmc on tokio: 4 producer and 4 consumer tasks share one bounded
//! `tokio::sync::mpsc` channel of the capacity given as the first argument
//! (default 128). tokio has no capacity-0 channel: for 0 this side runs
//! capacity 1 (and still reports `mpmc_c0`; the runner notes it). Each
//! producer sends 250,000 distinct values (1,000,000 in all), the consumers
//! sum what they receive.
//! tokio's mpsc is single-consumer (and async-channel is not in the
//! workspace's Cargo.lock), so the 4 consumers share the one `Receiver`
//! behind a `tokio::sync::Mutex`, taking the lock for each `recv`: that lock
//! is part of what this side measures. Multi-thread runtime with its default
//! worker count; the main body runs as a spawned task, like goro's and Go's
//! main goroutine.
//! Counterpart of `mpmc.rs` and `bench/go/mpmc/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const PER_PRODUCER: u64 = 250_000;
const TOTAL: u64 = PRODUCERS * PER_PRODUCER;

async fn run(capacity: usize) -> Duration {
    let (tx, rx) = mpsc::channel::<u64>(capacity.max(1));
    let rx = Arc::new(Mutex::new(rx));

    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                let base = p * PER_PRODUCER;
                for k in 0..PER_PRODUCER {
                    tx.send(base + k)
                        .await
                        .expect("mpmc: every consumer vanished");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let rx = Arc::clone(&rx);
            tokio::spawn(async move {
                let (mut sum, mut count) = (0u64, 0u64);
                loop {
                    // The guard is dropped at the end of this statement: one
                    // lock per value, not held while the value is summed.
                    let next = rx.lock().await.recv().await;
                    let Some(v) = next else { break };
                    sum += v;
                    count += 1;
                }
                (sum, count)
            })
        })
        .collect();
    drop(rx);
    for handle in producers {
        handle.await.expect("mpmc: a producer panicked");
    }
    // Dropping the last sender closes the channel, as Go's close(ch) does.
    drop(tx);
    let (mut sum, mut count) = (0u64, 0u64);
    for handle in consumers {
        let (s, c) = handle.await.expect("mpmc: a consumer panicked");
        sum += s;
        count += c;
    }
    let elapsed = start.elapsed();

    assert_eq!(count, TOTAL, "mpmc: wrong number of values received");
    assert_eq!(sum, TOTAL * (TOTAL - 1) / 2, "mpmc: wrong sum");
    elapsed
}

#[tokio::main]
async fn main() {
    let capacity: usize = std::env::args()
        .nth(1)
        .map_or(128, |a| a.parse().expect("mpmc: capacity must be a number"));
    let elapsed = tokio::spawn(run(capacity))
        .await
        .expect("mpmc: main task panicked");
    println!(
        "RESULT mpmc_c{capacity} {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
