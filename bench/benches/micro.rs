//! Criterion micro-benchmarks of goro's hot paths, named `area::case/param`.
//!
//! Criterion runs on a plain thread; every measurement here runs inside a
//! goroutine: `iter_custom` hands a batch size to a closure that calls
//! `Runtime::block_on`, and the timed loop runs in that main goroutine, so
//! starting the batch's goroutine is outside the measured time.
//!
//! Two runtimes: a one-worker runtime (`GORO_MAXPROCS=1` style) for the
//! cases that measure a single path without cross-thread wake-ups (a switch,
//! a hand-off between two goroutines on one worker, an uncontended lock, a
//! timer), and a two-worker runtime for `mutex::lock_unlock/contended=2`,
//! whose point is two workers fighting over one lock.
//!
//! Run with `cargo bench -p goro-bench --bench micro` (add a filter such as
//! `-- chan::` for one area).
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use goro::chan;
use goro::sync::Mutex;
use goro::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("micro: cannot build a runtime")
}

/// `spawn::spawn_join/1`: start one goroutine that does nothing and join it.
fn spawn(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("spawn::spawn_join/1", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    goro::go(|| black_box(0u64))
                        .join()
                        .expect("micro: goroutine panicked");
                }
                start.elapsed()
            })
        });
    });
}

/// `switch::yield/goroutines=2`: two goroutines on one worker yield to each
/// other; the time is per `yield_now` of the measured goroutine (each is one
/// switch away and one back).
fn switch(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("switch::yield/goroutines=2", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let stop = Arc::new(AtomicBool::new(false));
                let partner = {
                    let stop = Arc::clone(&stop);
                    goro::go(move || {
                        while !stop.load(Ordering::Relaxed) {
                            goro::yield_now();
                        }
                    })
                };
                // Let the partner start, so that every measured yield switches.
                goro::yield_now();
                let start = Instant::now();
                for _ in 0..iters {
                    goro::yield_now();
                }
                let elapsed = start.elapsed();
                stop.store(true, Ordering::Relaxed);
                partner.join().expect("micro: partner panicked");
                elapsed
            })
        });
    });
}

/// `chan::send_recv/cap=N`: one goroutine sends, another on the same worker
/// receives; the time is per value.
fn chan_send_recv(c: &mut Criterion) {
    let rt = runtime(1);
    for cap in [0usize, 1, 128] {
        c.bench_function(&format!("chan::send_recv/cap={cap}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    let (tx, rx) = chan::bounded::<u64>(cap);
                    let receiver = goro::go(move || {
                        let mut sum = 0u64;
                        for v in &rx {
                            sum = sum.wrapping_add(v);
                        }
                        sum
                    });
                    let start = Instant::now();
                    for i in 0..iters {
                        tx.send(i).expect("micro: receiver vanished");
                    }
                    tx.close();
                    black_box(receiver.join().expect("micro: receiver panicked"));
                    start.elapsed()
                })
            });
        });
    }
}

/// `select::recv/arms=N`: a `select!` over N receivers, all of which a
/// producer goroutine keeps fed (capacity 128 each, round robin); the time is
/// per select.
fn select(c: &mut Criterion) {
    let rt = runtime(1);
    for arms in [2usize, 4] {
        c.bench_function(&format!("select::recv/arms={arms}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    let (txs, rxs): (Vec<_>, Vec<_>) =
                        (0..arms).map(|_| chan::bounded::<u64>(128)).unzip();
                    let producer = goro::go(move || {
                        // Stops when the receivers are dropped.
                        for i in 0.. {
                            if txs[i % txs.len()].send(i as u64).is_err() {
                                break;
                            }
                        }
                    });
                    // A receiver that is never ready fills the unused arms.
                    let never = chan::never::<u64>();
                    let r = |i: usize| rxs.get(i).unwrap_or(&never);
                    let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                    let mut sum = 0u64;
                    let start = Instant::now();
                    for _ in 0..iters {
                        goro::select! {
                            recv(r0) -> v => sum = sum.wrapping_add(v.unwrap_or(0)),
                            recv(r1) -> v => sum = sum.wrapping_add(v.unwrap_or(0)),
                            recv(r2) -> v => sum = sum.wrapping_add(v.unwrap_or(0)),
                            recv(r3) -> v => sum = sum.wrapping_add(v.unwrap_or(0)),
                        }
                    }
                    let elapsed = start.elapsed();
                    black_box(sum);
                    drop(rxs);
                    producer.join().expect("micro: producer panicked");
                    elapsed
                })
            });
        });
    }
}

/// `mutex::lock_unlock/uncontended` on one worker, and
/// `mutex::lock_unlock/contended=2`: two goroutines on two workers share the
/// lock; the time is per lock+unlock pair across both (wall time over all
/// pairs, so two cores working in parallel count once).
fn mutex(c: &mut Criterion) {
    let rt1 = runtime(1);
    c.bench_function("mutex::lock_unlock/uncontended", |b| {
        b.iter_custom(|iters| {
            rt1.block_on(move || {
                let m = Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *m.lock() += 1;
                }
                let elapsed = start.elapsed();
                black_box(m.into_inner());
                elapsed
            })
        });
    });
    let rt2 = runtime(2);
    c.bench_function("mutex::lock_unlock/contended=2", |b| {
        b.iter_custom(|iters| {
            rt2.block_on(move || {
                let m = Arc::new(Mutex::new(0u64));
                let half = iters / 2;
                let start = Instant::now();
                // Two fresh goroutines: main parks in `join`, its worker runs
                // the first and the idle worker steals the second, so both
                // loops run at once.
                let workers: Vec<_> = [half, iters - half]
                    .into_iter()
                    .map(|n| {
                        let m = Arc::clone(&m);
                        goro::go(move || {
                            for _ in 0..n {
                                *m.lock() += 1;
                            }
                        })
                    })
                    .collect();
                for w in workers {
                    w.join().expect("micro: locker panicked");
                }
                let elapsed = start.elapsed();
                assert_eq!(*m.lock(), iters, "micro: lost an increment");
                elapsed
            })
        });
    });
}

/// `timer::new_stop/1s`: insert a one-second timer and cancel it, and
/// `timer::after_func_stop/1s`: the same through `after_func`.
fn timer(c: &mut Criterion) {
    let rt = runtime(1);
    c.bench_function("timer::new_stop/1s", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let t = goro::time::Timer::new(Duration::from_secs(1));
                    black_box(t.stop());
                }
                start.elapsed()
            })
        });
    });
    c.bench_function("timer::after_func_stop/1s", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let t = goro::time::after_func(Duration::from_secs(1), || {});
                    black_box(t.stop());
                }
                start.elapsed()
            })
        });
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = micro;
    config = config();
    targets = spawn, switch, chan_send_recv, select, mutex, timer
}
criterion_main!(micro);
