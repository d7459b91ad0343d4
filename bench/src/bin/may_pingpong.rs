//! pingpong on may: two coroutines (main and one echo coroutine) bounce a
//! value over two `may::sync::mpsc` channels (may has no unbuffered channel;
//! with one value in flight an unbounded one behaves the same), 1,000,000
//! round trips. may's default configuration; the main body runs as a
//! coroutine. Counterpart of `pingpong.rs` and `bench/go/pingpong/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::time::{Duration, Instant};

use may::sync::mpsc;
use may_go::go;

const ROUNDS: u64 = 1_000_000;

fn run() -> Duration {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();

    let echo = go(move || {
        let mut count = 0u64;
        for v in ping_rx.iter() {
            pong_tx
                .send(v + 1)
                .expect("pingpong: main stopped listening");
            count += 1;
        }
        count
    });

    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..ROUNDS {
        ping_tx.send(i).expect("pingpong: echo coroutine vanished");
        let got = pong_rx.recv().expect("pingpong: echo coroutine vanished");
        assert_eq!(got, i + 1, "pingpong: sent {i}, got back {got}");
        sum += got;
    }
    drop(ping_tx);
    let count = echo.join().expect("pingpong: echo coroutine panicked");
    let elapsed = start.elapsed();

    assert_eq!(
        count, ROUNDS,
        "pingpong: echo saw the wrong number of values"
    );
    assert_eq!(sum, ROUNDS * (ROUNDS + 1) / 2, "pingpong: wrong sum");
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("pingpong: main coroutine panicked");
    println!("RESULT pingpong {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
