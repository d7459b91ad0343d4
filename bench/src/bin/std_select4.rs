//! select4 on OS threads: 4 producer threads each send 250,000 distinct
//! values on their own `crossbeam_channel::bounded(0)` channel and drop it;
//! the main thread receives all 1,000,000 with crossbeam's `select!` over
//! the 4 receivers (a closed one is swapped for `crossbeam_channel::never()`,
//! as Go sets it to nil) and checks count and sum.
//! Counterpart of `select4.rs` and `bench/go/select4/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use crossbeam_channel::{bounded, never, select, Receiver};

const CHANNELS: usize = 4;
const PER_CHANNEL: u64 = 250_000;
const TOTAL: u64 = CHANNELS as u64 * PER_CHANNEL;

fn main() {
    let mut rxs: Vec<Receiver<u64>> = Vec::with_capacity(CHANNELS);
    let mut producers = Vec::with_capacity(CHANNELS);

    let start = Instant::now();
    for p in 0..CHANNELS as u64 {
        let (tx, rx) = bounded::<u64>(0);
        rxs.push(rx);
        producers.push(std::thread::spawn(move || {
            let base = p * PER_CHANNEL;
            for k in 0..PER_CHANNEL {
                tx.send(base + k).expect("select4: main stopped listening");
            }
        }));
    }
    let (mut sum, mut count) = (0u64, 0u64);
    let mut live = CHANNELS;
    while live > 0 {
        let mut closed = None;
        select! {
            recv(rxs[0]) -> v => match v {
                Ok(v) => { sum += v; count += 1; }
                Err(_) => closed = Some(0),
            },
            recv(rxs[1]) -> v => match v {
                Ok(v) => { sum += v; count += 1; }
                Err(_) => closed = Some(1),
            },
            recv(rxs[2]) -> v => match v {
                Ok(v) => { sum += v; count += 1; }
                Err(_) => closed = Some(2),
            },
            recv(rxs[3]) -> v => match v {
                Ok(v) => { sum += v; count += 1; }
                Err(_) => closed = Some(3),
            },
        }
        if let Some(i) = closed {
            rxs[i] = never();
            live -= 1;
        }
    }
    for handle in producers {
        handle.join().expect("select4: a producer panicked");
    }
    let elapsed = start.elapsed();

    assert_eq!(count, TOTAL, "select4: wrong number of values received");
    assert_eq!(sum, TOTAL * (TOTAL - 1) / 2, "select4: wrong sum");
    println!("RESULT select4 {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
