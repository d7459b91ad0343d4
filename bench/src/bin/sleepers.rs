//! sleepers: 1,000,000 goroutines each sleep a pseudo-random time between
//! 10 ms and 1 s (drawn from a fixed seed, the same on every side), then add
//! their delay to a counter; the main goroutine waits for all of them with a
//! `WaitGroup` and checks the sum. The floor is 1 s (the longest sleep);
//! what is above it is timer insertion, expiry and wake-up of 1M goroutines.
//! Counterpart of `bench/go/sleepers/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use goro::sync::WaitGroup;

const N: u64 = 1_000_000;
const SEED: u64 = 0x5EED_0F5E_EEE5;

static TOTAL_US: AtomicU64 = AtomicU64::new(0);

/// splitmix64: the delay of goroutine `i` in microseconds, 10 ms to 1 s.
fn delay_us(i: u64) -> u64 {
    let mut z = SEED.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    10_000 + z % 990_001
}

#[goro::main]
fn main() {
    let wg = WaitGroup::new();

    let start = Instant::now();
    wg.add(N as usize);
    for i in 0..N {
        let wg = wg.clone();
        drop(goro::go(move || {
            let d = delay_us(i);
            goro::time::sleep(Duration::from_micros(d));
            TOTAL_US.fetch_add(d, Ordering::Relaxed);
            wg.done();
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();

    let want: u64 = (0..N).map(delay_us).sum();
    assert_eq!(
        TOTAL_US.load(Ordering::Relaxed),
        want,
        "sleepers: wrong sum"
    );
    println!("RESULT sleepers {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
