//! ring: 503 goroutines in a ring, each linked to the next by an unbuffered
//! channel; a token is passed 10,000,000 hops in total (the "thread-ring"
//! workload). Measures hand-off throughput along a chain where only one
//! goroutine is runnable at a time.
//! Counterpart of `bench/go/ring/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::chan::{self, Receiver, Sender};

const MEMBERS: usize = 503;
const HOPS: u64 = 10_000_000;

/// Forwards the token, decremented by one hop, until it reads 0; that member
/// reports its index and closes its outgoing channel, and the close runs round
/// the ring so that every member returns.
fn member(id: usize, input: Receiver<u64>, output: Sender<u64>, done: Sender<usize>) {
    for v in &input {
        if v == 0 {
            done.send(id).expect("ring: main stopped listening");
            break;
        }
        output.send(v - 1).expect("ring: next member vanished");
    }
    output.close();
}

#[goro::main]
fn main() {
    let links: Vec<_> = (0..MEMBERS).map(|_| chan::bounded::<u64>(0)).collect();
    let (done_tx, done_rx) = chan::bounded(1);
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let input = links[i].1.clone();
            let output = links[(i + 1) % MEMBERS].0.clone();
            let done = done_tx.clone();
            goro::go(move || member(i, input, output, done))
        })
        .collect();
    let inject = links[0].0.clone();
    // Only the members hold the ring's ends from here on.
    drop(links);
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
    println!("RESULT ring {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
