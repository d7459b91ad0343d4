//! select4 on may: 4 producer coroutines each send 250,000 distinct values
//! on their own `may::sync::mpsc` channel (unbounded: may has no other
//! kind); the main coroutine receives all 1,000,000 with may's `select!`
//! over the 4 receivers and checks count and sum. may's `select!` runs each
//! arm in a coroutine of its own (a `cqueue`) and cancels the losers, so a
//! closed channel would win every round: instead of watching for closes,
//! main keeps a clone of every sender (the channels never close) and stops
//! after the 1,000,000th value. An arm's receive and its tally
//! run in that arm's coroutine, so the tallies are atomics.
//! may's default configuration; the main body runs as a coroutine.
//! Counterpart of `select4.rs` and `bench/go/select4/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use may::sync::mpsc;
use may_go::go;

const CHANNELS: usize = 4;
const PER_CHANNEL: u64 = 250_000;
const TOTAL: u64 = CHANNELS as u64 * PER_CHANNEL;

static SUM: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

fn tally(v: Result<u64, std::sync::mpsc::RecvError>) {
    let v = v.expect("select4: a producer vanished");
    SUM.fetch_add(v, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
}

fn run() -> Duration {
    let mut rxs = Vec::with_capacity(CHANNELS);
    let mut producers = Vec::with_capacity(CHANNELS);
    let mut keep_open = Vec::with_capacity(CHANNELS);

    let start = Instant::now();
    for p in 0..CHANNELS as u64 {
        let (tx, rx) = mpsc::channel::<u64>();
        rxs.push(rx);
        keep_open.push(tx.clone());
        producers.push(go(move || {
            let base = p * PER_CHANNEL;
            for k in 0..PER_CHANNEL {
                tx.send(base + k).expect("select4: main stopped listening");
            }
        }));
    }
    let (r0, r1, r2, r3) = (&rxs[0], &rxs[1], &rxs[2], &rxs[3]);
    while COUNT.load(Ordering::Relaxed) < TOTAL {
        may::select!(
            v = r0.recv() => tally(v),
            v = r1.recv() => tally(v),
            v = r2.recv() => tally(v),
            v = r3.recv() => tally(v)
        );
    }
    for handle in producers {
        handle.join().expect("select4: a producer panicked");
    }
    drop(keep_open);
    let elapsed = start.elapsed();

    assert_eq!(
        COUNT.load(Ordering::Relaxed),
        TOTAL,
        "select4: wrong number of values received"
    );
    assert_eq!(
        SUM.load(Ordering::Relaxed),
        TOTAL * (TOTAL - 1) / 2,
        "select4: wrong sum"
    );
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("select4: main coroutine panicked");
    println!("RESULT select4 {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
