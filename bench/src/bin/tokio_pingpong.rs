//! pingpong on tokio: two tasks (main and one echo task) bounce a value over
//! two `tokio::sync::mpsc` channels of capacity 1 (tokio has no unbuffered
//! channel; capacity 1 is the closest), 1,000,000 round trips. Multi-thread
//! runtime with its default worker count; the main body runs as a spawned
//! task, like goro's and Go's main goroutine.
//! Counterpart of `pingpong.rs` and `bench/go/pingpong/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

const ROUNDS: u64 = 1_000_000;

async fn run() -> Duration {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);

    let echo = tokio::spawn(async move {
        let mut count = 0u64;
        while let Some(v) = ping_rx.recv().await {
            pong_tx
                .send(v + 1)
                .await
                .expect("pingpong: main stopped listening");
            count += 1;
        }
        count
    });

    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..ROUNDS {
        ping_tx.send(i).await.expect("pingpong: echo task vanished");
        let got = pong_rx.recv().await.expect("pingpong: echo task vanished");
        assert_eq!(got, i + 1, "pingpong: sent {i}, got back {got}");
        sum += got;
    }
    // Dropping the only sender closes the channel, as Go's close(ping) does.
    drop(ping_tx);
    let count = echo.await.expect("pingpong: echo task panicked");
    let elapsed = start.elapsed();

    assert_eq!(
        count, ROUNDS,
        "pingpong: echo task saw the wrong number of values"
    );
    assert_eq!(sum, ROUNDS * (ROUNDS + 1) / 2, "pingpong: wrong sum");
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("pingpong: main task panicked");
    println!("RESULT pingpong {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
