//! ring on OS threads: 503 threads in a ring, each linked to the next by a
//! `crossbeam_channel::bounded(0)` channel, pass a token 10,000,000 hops;
//! the member that receives 0 reports its index and drops its sender, and
//! the close runs round the ring. Every hop wakes one sleeping OS thread.
//! Threads get 64 KiB stacks (they need only a few frames).
//! Counterpart of `ring.rs` and `bench/go/ring/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

const MEMBERS: usize = 503;
const HOPS: u64 = 10_000_000;

fn member(id: usize, input: Receiver<u64>, output: Sender<u64>, done: Sender<usize>) {
    for v in &input {
        if v == 0 {
            done.send(id).expect("ring: main stopped listening");
            break;
        }
        output.send(v - 1).expect("ring: next member vanished");
    }
    drop(output);
}

fn main() {
    let links: Vec<_> = (0..MEMBERS).map(|_| bounded::<u64>(0)).collect();
    let (done_tx, done_rx) = bounded(1);
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let input = links[i].1.clone();
            let output = links[(i + 1) % MEMBERS].0.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || member(i, input, output, done))
                .expect("ring: cannot start a thread")
        })
        .collect();
    let inject = links[0].0.clone();
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
