//! sleepers on may: 1,000,000 coroutines each `may::coroutine::sleep` a
//! pseudo-random time between 10 ms and 1 s (the same seeded sequence as the
//! other sides), then add their delay to a counter; main waits with may's
//! `WaitGroup` and checks the sum. may's default configuration; the main
//! body runs as a coroutine.
//! Counterpart of `sleepers.rs` and `bench/go/sleepers/main.go`.
#![allow(missing_docs)]

#[path = "../shared/may_go.rs"]
mod may_go;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use may::sync::WaitGroup;
use may_go::go;

const N: u64 = 1_000_000;
const SEED: u64 = 0x5EED_0F5E_EEE5;

static TOTAL_US: AtomicU64 = AtomicU64::new(0);

/// splitmix64: the delay of coroutine `i` in microseconds, 10 ms to 1 s.
fn delay_us(i: u64) -> u64 {
    let mut z = SEED.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    10_000 + z % 990_001
}

fn run() -> Duration {
    let wg = WaitGroup::new();

    let start = Instant::now();
    for i in 0..N {
        let wg = wg.clone();
        drop(go(move || {
            let d = delay_us(i);
            may::coroutine::sleep(Duration::from_micros(d));
            TOTAL_US.fetch_add(d, Ordering::Relaxed);
            drop(wg);
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
    elapsed
}

fn main() {
    may_go::exit_on_panic();
    let elapsed = go(run).join().expect("sleepers: main coroutine panicked");
    println!("RESULT sleepers {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
