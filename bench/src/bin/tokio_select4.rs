//! select4 on tokio: 4 producer tasks each send 250,000 distinct values on
//! their own `tokio::sync::mpsc` channel of capacity 1 (tokio has no
//! unbuffered channel) and drop it; the main task receives all 1,000,000
//! with `tokio::select!` over the 4 receivers (a closed one is disabled with
//! a branch precondition, as Go sets it to nil) and checks count and sum.
//! Multi-thread runtime with its default worker count; the main body runs as
//! a spawned task. Counterpart of `select4.rs` and `bench/go/select4/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

const CHANNELS: usize = 4;
const PER_CHANNEL: u64 = 250_000;
const TOTAL: u64 = CHANNELS as u64 * PER_CHANNEL;

/// Adds a received value to the tally, or marks the channel closed.
fn take(v: Option<u64>, open: &mut bool, sum: &mut u64, count: &mut u64) {
    match v {
        Some(v) => {
            *sum += v;
            *count += 1;
        }
        None => *open = false,
    }
}

async fn run() -> Duration {
    let mut rxs = Vec::with_capacity(CHANNELS);
    let mut producers = Vec::with_capacity(CHANNELS);

    let start = Instant::now();
    for p in 0..CHANNELS as u64 {
        let (tx, rx) = mpsc::channel::<u64>(1);
        rxs.push(rx);
        producers.push(tokio::spawn(async move {
            let base = p * PER_CHANNEL;
            for k in 0..PER_CHANNEL {
                tx.send(base + k)
                    .await
                    .expect("select4: main stopped listening");
            }
        }));
    }
    let [mut r0, mut r1, mut r2, mut r3]: [mpsc::Receiver<u64>; CHANNELS] =
        rxs.try_into().expect("select4: four receivers");
    let mut open = [true; CHANNELS];
    let (mut sum, mut count) = (0u64, 0u64);
    while open.iter().any(|&o| o) {
        tokio::select! {
            v = r0.recv(), if open[0] => take(v, &mut open[0], &mut sum, &mut count),
            v = r1.recv(), if open[1] => take(v, &mut open[1], &mut sum, &mut count),
            v = r2.recv(), if open[2] => take(v, &mut open[2], &mut sum, &mut count),
            v = r3.recv(), if open[3] => take(v, &mut open[3], &mut sum, &mut count),
        }
    }
    for handle in producers {
        handle.await.expect("select4: a producer panicked");
    }
    let elapsed = start.elapsed();

    assert_eq!(count, TOTAL, "select4: wrong number of values received");
    assert_eq!(sum, TOTAL * (TOTAL - 1) / 2, "select4: wrong sum");
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("select4: main task panicked");
    println!("RESULT select4 {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
