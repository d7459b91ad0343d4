//! switch: two goroutines on a one-worker runtime hand the CPU to each other
//! with `goro::yield_now`, 10,000,000 switches in all: the bare cost of a
//! goroutine switch through the scheduler. Counterpart of
//! `bench/go/switch/main.go` (which pins Go to GOMAXPROCS=1 likewise).
//!
//! It also prints, on stderr, the cost of a bare corosensei resume+suspend
//! pair on this machine, the floor a scheduler switch is measured against.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const SWITCHES: u64 = 10_000_000;

fn bare_corosensei() -> f64 {
    let mut co = corosensei::Coroutine::new(|y: &corosensei::Yielder<(), ()>, ()| loop {
        y.suspend(());
    });
    let n = SWITCHES / 2;
    let start = Instant::now();
    for _ in 0..n {
        co.resume(());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let rt = goro::Runtime::builder()
        .workers(1)
        .build()
        .expect("runtime");
    let count = Arc::new(AtomicU64::new(0));
    let elapsed = rt.block_on(|| {
        let start = Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let count = count.clone();
                goro::go(move || {
                    for _ in 0..SWITCHES / 2 {
                        count.fetch_add(1, Ordering::Relaxed);
                        goro::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("switch: a goroutine panicked");
        }
        start.elapsed()
    });
    assert_eq!(
        count.load(Ordering::Relaxed),
        SWITCHES,
        "switch: wrong yield count"
    );
    let per = elapsed.as_nanos() as f64 / SWITCHES as f64;
    eprintln!(
        "switch: {per:.1} ns per goroutine switch; bare corosensei resume+suspend {:.1} ns",
        bare_corosensei()
    );
    println!("RESULT switch {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
