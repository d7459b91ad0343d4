//! select4: 4 producer goroutines each send 250,000 distinct values on their
//! own unbuffered channel and close it; the main goroutine receives all
//! 1,000,000 with a `select!` over the 4 channels (a closed one is swapped
//! for `chan::never()`, as Go sets it to nil) and checks count and sum.
//! Measures select over several busy channels: registering on every arm,
//! the random choice, unregistering from the arms that lost.
//! Counterpart of `bench/go/select4/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::chan::{self, Receiver};

const CHANNELS: usize = 4;
const PER_CHANNEL: u64 = 250_000;
const TOTAL: u64 = CHANNELS as u64 * PER_CHANNEL;

#[goro::main]
fn main() {
    let mut rxs: Vec<Receiver<u64>> = Vec::with_capacity(CHANNELS);
    let mut producers = Vec::with_capacity(CHANNELS);

    let start = Instant::now();
    for p in 0..CHANNELS as u64 {
        let (tx, rx) = chan::bounded::<u64>(0);
        rxs.push(rx);
        producers.push(goro::go(move || {
            let base = p * PER_CHANNEL;
            for k in 0..PER_CHANNEL {
                tx.send(base + k).expect("select4: main stopped listening");
            }
            // Dropping the only sender closes the channel.
        }));
    }
    let (mut sum, mut count) = (0u64, 0u64);
    let mut live = CHANNELS;
    while live > 0 {
        let mut closed = None;
        goro::select! {
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
            rxs[i] = chan::never();
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
