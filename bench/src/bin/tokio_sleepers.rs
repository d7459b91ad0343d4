//! sleepers on tokio: 1,000,000 tasks each `tokio::time::sleep` a
//! pseudo-random time between 10 ms and 1 s (the same seeded sequence as the
//! other sides), then add their delay to a counter; the last one wakes main
//! through a `Notify`, and main checks the sum. Multi-thread runtime with its
//! default worker count; the main body runs as a spawned task.
//! Counterpart of `sleepers.rs` and `bench/go/sleepers/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const N: u64 = 1_000_000;
const SEED: u64 = 0x5EED_0F5E_EEE5;

static TOTAL_US: AtomicU64 = AtomicU64::new(0);

/// splitmix64: the delay of task `i` in microseconds, 10 ms to 1 s.
fn delay_us(i: u64) -> u64 {
    let mut z = SEED.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    10_000 + z % 990_001
}

/// A count of the tasks still running and the `Notify` the last one signals.
struct WaitGroup {
    left: AtomicU64,
    done: Notify,
}

async fn run() -> Duration {
    let wg = Arc::new(WaitGroup {
        left: AtomicU64::new(N),
        done: Notify::new(),
    });

    let start = Instant::now();
    for i in 0..N {
        let wg = Arc::clone(&wg);
        drop(tokio::spawn(async move {
            let d = delay_us(i);
            tokio::time::sleep(Duration::from_micros(d)).await;
            TOTAL_US.fetch_add(d, Ordering::Relaxed);
            if wg.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                wg.done.notify_one();
            }
        }));
    }
    wg.done.notified().await;
    let elapsed = start.elapsed();

    let want: u64 = (0..N).map(delay_us).sum();
    assert_eq!(
        TOTAL_US.load(Ordering::Relaxed),
        want,
        "sleepers: wrong sum"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("sleepers: main task panicked");
    println!("RESULT sleepers {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
