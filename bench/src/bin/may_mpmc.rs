//! mpmc on may: 4 producer and 4 consumer coroutines share one
//! `may::sync::mpmc` channel; each producer sends 250,000 distinct values
//! (1,000,000 in all), the consumers sum what they receive. may's channels
//! are all unbounded, so the capacity (first argument, 1 or 128; default
//! 128) is enforced by a `may::sync::Semphore` of that many slots: a
//! producer takes a slot before each send, a consumer gives one back after
//! each receive. may has no rendezvous channel, so capacity 0 is refused
//! (the runner does not run this side for `mpmc_c0`). may's default
//! configuration; the main body runs as a coroutine.
//! Counterpart of `mpmc.rs` and `bench/go/mpmc/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::sync::Arc;
use std::time::{Duration, Instant};

use may::sync::{mpmc, Semphore};
use may_go::go;

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const PER_PRODUCER: u64 = 250_000;
const TOTAL: u64 = PRODUCERS * PER_PRODUCER;

fn run(capacity: usize) -> Duration {
    let (tx, rx) = mpmc::channel::<u64>();
    let slots = Arc::new(Semphore::new(capacity));

    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (tx, slots) = (tx.clone(), Arc::clone(&slots));
            go(move || {
                let base = p * PER_PRODUCER;
                for k in 0..PER_PRODUCER {
                    slots.wait();
                    tx.send(base + k).expect("mpmc: every consumer vanished");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (rx, slots) = (rx.clone(), Arc::clone(&slots));
            go(move || {
                let (mut sum, mut count) = (0u64, 0u64);
                while let Ok(v) = rx.recv() {
                    slots.post();
                    sum += v;
                    count += 1;
                }
                (sum, count)
            })
        })
        .collect();
    drop(rx);
    for handle in producers {
        handle.join().expect("mpmc: a producer panicked");
    }
    // Dropping the last sender closes the channel, as Go's close(ch) does.
    drop(tx);
    let (mut sum, mut count) = (0u64, 0u64);
    for handle in consumers {
        let (s, c) = handle.join().expect("mpmc: a consumer panicked");
        sum += s;
        count += c;
    }
    let elapsed = start.elapsed();

    assert_eq!(count, TOTAL, "mpmc: wrong number of values received");
    assert_eq!(sum, TOTAL * (TOTAL - 1) / 2, "mpmc: wrong sum");
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let capacity: usize = std::env::args()
        .nth(1)
        .map_or(128, |a| a.parse().expect("mpmc: capacity must be a number"));
    if capacity == 0 {
        eprintln!("mpmc: may has no rendezvous (capacity-0) channel");
        std::process::exit(2);
    }
    let elapsed = go(move || run(capacity))
        .join()
        .expect("mpmc: main coroutine panicked");
    println!(
        "RESULT mpmc_c{capacity} {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
