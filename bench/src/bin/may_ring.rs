//! ring on may: 503 coroutines in a ring, each linked to the next by a
//! `may::sync::mpsc` channel (may has no unbuffered channel; only one token
//! is ever in flight), pass a token 10,000,000 hops; the member that
//! receives 0 reports its index and drops its sender, and the close runs
//! round the ring. may's default configuration; the main body runs as a
//! coroutine. Counterpart of `ring.rs` and `bench/go/ring/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::time::{Duration, Instant};

use may::sync::mpsc::{self, Receiver, Sender};
use may_go::go;

const MEMBERS: usize = 503;
const HOPS: u64 = 10_000_000;

fn member(id: usize, input: Receiver<u64>, output: Sender<u64>, done: Sender<usize>) {
    for v in input.iter() {
        if v == 0 {
            done.send(id).expect("ring: main stopped listening");
            break;
        }
        output.send(v - 1).expect("ring: next member vanished");
    }
    drop(output);
}

fn run() -> Duration {
    let (mut txs, mut rxs): (Vec<_>, Vec<_>) = (0..MEMBERS)
        .map(|_| mpsc::channel::<u64>())
        .map(|(t, r)| (Some(t), Some(r)))
        .unzip();
    let (done_tx, done_rx) = mpsc::channel();
    let inject = txs[0].clone().expect("ring: first link");
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let input = rxs[i].take().expect("ring: each receiver once");
            let output = txs[(i + 1) % MEMBERS]
                .take()
                .expect("ring: each sender once");
            let done = done_tx.clone();
            go(move || member(i, input, output, done))
        })
        .collect();
    drop(done_tx);

    let start = Instant::now();
    inject.send(HOPS).expect("ring: first member vanished");
    drop(inject);
    let last = done_rx.recv().expect("ring: no member reported the end");
    for handle in members {
        handle.join().expect("ring: a member panicked");
    }
    let elapsed = start.elapsed();

    assert_eq!(
        last,
        (HOPS % MEMBERS as u64) as usize,
        "ring: token ended at the wrong member"
    );
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("ring: main coroutine panicked");
    println!("RESULT ring {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
