//! skynet on may: a 10-ary tree of coroutines with 1,000,000 leaves
//! (1,111,111 in all); each leaf sends its number to its parent, each inner
//! node sums the 10 values it receives and sends the sum up. may has no
//! unbuffered channel: every node's children send on a `may::sync::mpsc`
//! channel (unbounded). may's default configuration; the main body runs as a
//! coroutine. Counterpart of `skynet.rs` and `bench/go/skynet/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::time::{Duration, Instant};

use may::sync::mpsc::{self, Sender};
use may_go::go;

const LEAVES: u64 = 1_000_000;
const FANOUT: u64 = 10;
const WANT: u64 = 499_999_500_000;

fn skynet(out: Sender<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        out.send(num).expect("skynet: parent stopped listening");
        return;
    }
    let (children_tx, children_rx) = mpsc::channel();
    for i in 0..div {
        let sub = num + i * (size / div);
        let tx = children_tx.clone();
        drop(go(move || skynet(tx, sub, size / div, div)));
    }
    let mut sum = 0;
    for _ in 0..div {
        sum += children_rx.recv().expect("skynet: a child vanished");
    }
    out.send(sum).expect("skynet: parent stopped listening");
}

fn run() -> Duration {
    let start = Instant::now();
    let (root_tx, root_rx) = mpsc::channel();
    drop(go(move || skynet(root_tx, 0, LEAVES, FANOUT)));
    let sum = root_rx.recv().expect("skynet: the root coroutine vanished");
    let elapsed = start.elapsed();

    assert_eq!(sum, WANT, "skynet: wrong sum");
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("skynet: main coroutine panicked");
    println!("RESULT skynet {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
