//! ring on tokio: 503 tasks in a ring, each linked to the next by a
//! `tokio::sync::mpsc` channel of capacity 1 (tokio has no unbuffered channel;
//! capacity 1 is the closest); a token is passed 10,000,000 hops in total.
//! Multi-thread runtime with its default worker count; the main body runs as
//! a spawned task, like goro's and Go's main goroutine.
//! Counterpart of `ring.rs` and `bench/go/ring/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, Receiver, Sender};

const MEMBERS: usize = 503;
const HOPS: u64 = 10_000_000;

/// Forwards the token, decremented by one hop, until it reads 0; that member
/// reports its index and drops its outgoing sender (the channel's only one),
/// which closes it, and the close runs round the ring so that every member
/// returns.
async fn member(id: usize, mut input: Receiver<u64>, output: Sender<u64>, done: Sender<usize>) {
    while let Some(v) = input.recv().await {
        if v == 0 {
            done.send(id).await.expect("ring: main stopped listening");
            break;
        }
        output
            .send(v - 1)
            .await
            .expect("ring: next member vanished");
    }
    drop(output);
}

async fn run() -> Duration {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..MEMBERS).map(|_| mpsc::channel::<u64>(1)).unzip();
    let (done_tx, mut done_rx) = mpsc::channel(1);
    let members: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let output = senders[(i + 1) % MEMBERS].clone();
            let done = done_tx.clone();
            tokio::spawn(member(i, input, output, done))
        })
        .collect();
    let inject = senders[0].clone();
    // Only the members hold the ring's senders from here on.
    drop(senders);
    drop(done_tx);

    let start = Instant::now();
    inject
        .send(HOPS)
        .await
        .expect("ring: first member vanished");
    drop(inject);
    let last = done_rx
        .recv()
        .await
        .expect("ring: no member reported the end");
    for handle in members {
        handle.await.expect("ring: a member panicked");
    }
    let elapsed = start.elapsed();

    assert_eq!(
        last,
        (HOPS % MEMBERS as u64) as usize,
        "ring: token ended at the wrong member"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run()).await.expect("ring: main task panicked");
    println!("RESULT ring {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
