//! mpmc: 4 producers and 4 consumers share one channel; each producer sends
//! 250,000 distinct values (1,000,000 in all), the consumers sum what they
//! receive. The capacity is the first argument (0, 1 or 128; default 128) and
//! the workload is reported as `mpmc_c<capacity>`. Measures a contended
//! channel: rendezvous hand-off at 0, a one-slot buffer at 1, a buffered
//! channel at 128. Counterpart of `bench/go/mpmc/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::Instant;

use goro::chan;

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const PER_PRODUCER: u64 = 250_000;
const TOTAL: u64 = PRODUCERS * PER_PRODUCER;

#[goro::main]
fn main() {
    let capacity: usize = std::env::args()
        .nth(1)
        .map_or(128, |a| a.parse().expect("mpmc: capacity must be a number"));
    let (tx, rx) = chan::bounded::<u64>(capacity);

    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            goro::go(move || {
                let base = p * PER_PRODUCER;
                for k in 0..PER_PRODUCER {
                    tx.send(base + k).expect("mpmc: every consumer vanished");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let rx = rx.clone();
            goro::go(move || {
                let (mut sum, mut count) = (0u64, 0u64);
                for v in &rx {
                    sum += v;
                    count += 1;
                }
                (sum, count)
            })
        })
        .collect();
    drop(rx);
    for handle in producers {
        handle.join().expect("mpmc: a producer panicked");
    }
    tx.close();
    let (mut sum, mut count) = (0u64, 0u64);
    for handle in consumers {
        let (s, c) = handle.join().expect("mpmc: a consumer panicked");
        sum += s;
        count += c;
    }
    let elapsed = start.elapsed();

    assert_eq!(count, TOTAL, "mpmc: wrong number of values received");
    assert_eq!(sum, TOTAL * (TOTAL - 1) / 2, "mpmc: wrong sum");
    println!(
        "RESULT mpmc_c{capacity} {:.3} ms",
        elapsed.as_secs_f64() * 1e3
    );
}
