//! skynet on tokio: a 10-ary tree of tasks with 1,000,000 leaves (1,111,111
//! tasks in all); each leaf sends its number to its parent over the parent's
//! `tokio::sync::mpsc` channel of capacity 1 (tokio has no unbuffered channel;
//! capacity 1 is the closest), each inner node sums the 10 values it receives
//! and sends the sum up. Each node is a detached `tokio::spawn`; its future is
//! boxed because an async fn cannot spawn itself without indirection.
//! Multi-thread runtime with its default worker count; the main body runs as
//! a spawned task, like goro's and Go's main goroutine.
//! Counterpart of `skynet.rs` and `bench/go/skynet/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, Sender};

const LEAVES: u64 = 1_000_000;
const FANOUT: u64 = 10;
const WANT: u64 = 499_999_500_000;

fn skynet(
    out: Sender<u64>,
    num: u64,
    size: u64,
    div: u64,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            out.send(num)
                .await
                .expect("skynet: parent stopped listening");
            return;
        }
        let (children_tx, mut children_rx) = mpsc::channel(1);
        for i in 0..div {
            let sub = num + i * (size / div);
            // Detached, as `go skynet(..)` is: the results come back over the channel.
            drop(tokio::spawn(skynet(
                children_tx.clone(),
                sub,
                size / div,
                div,
            )));
        }
        drop(children_tx);
        let mut sum = 0;
        for _ in 0..div {
            sum += children_rx.recv().await.expect("skynet: a child vanished");
        }
        out.send(sum)
            .await
            .expect("skynet: parent stopped listening");
    })
}

async fn run() -> Duration {
    let start = Instant::now();
    let (root_tx, mut root_rx) = mpsc::channel(1);
    drop(tokio::spawn(skynet(root_tx, 0, LEAVES, FANOUT)));
    let sum = root_rx
        .recv()
        .await
        .expect("skynet: the root task vanished");
    let elapsed = start.elapsed();

    assert_eq!(sum, WANT, "skynet: wrong sum");
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("skynet: main task panicked");
    println!("RESULT skynet {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
