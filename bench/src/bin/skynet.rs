//! skynet: the classic skynet benchmark. A 10-ary tree of goroutines with
//! 1,000,000 leaves (1,111,111 goroutines in all); each leaf sends its number
//! to its parent over the parent's unbuffered channel, each inner node sums
//! the 10 values it receives and sends the sum up. Measures spawn plus
//! channel hand-off under a wide, deep fan-out.
//! Counterpart of `bench/go/skynet/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::chan::{self, Sender};

const LEAVES: u64 = 1_000_000;
const FANOUT: u64 = 10;
const WANT: u64 = 499_999_500_000;

fn skynet(out: Sender<u64>, num: u64, size: u64, div: u64) {
    if size == 1 {
        out.send(num).expect("skynet: parent stopped listening");
        return;
    }
    let (children_tx, children_rx) = chan::bounded(0);
    for i in 0..div {
        let sub = num + i * (size / div);
        let tx = children_tx.clone();
        // Detached, as `go skynet(..)` is: the results come back over the channel.
        drop(goro::go(move || skynet(tx, sub, size / div, div)));
    }
    let mut sum = 0;
    for _ in 0..div {
        sum += children_rx.recv().expect("skynet: a child vanished");
    }
    out.send(sum).expect("skynet: parent stopped listening");
}

#[goro::main]
fn main() {
    let start = Instant::now();
    let (root_tx, root_rx) = chan::bounded(0);
    drop(goro::go(move || skynet(root_tx, 0, LEAVES, FANOUT)));
    let sum = root_rx.recv().expect("skynet: the root goroutine vanished");
    let elapsed = start.elapsed();

    assert_eq!(sum, WANT, "skynet: wrong sum");
    println!("RESULT skynet {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
