//! idle: goroutines parked long enough for goro's idle-stack compaction, on a
//! runtime built with `stack_compaction(Some(1 s))`. Two workloads, chosen by
//! the first argument:
//!
//! - none (`idle`): 1,000,000 goroutines each park receiving on one shared
//!   unbuffered channel; once all have started they are left parked for
//!   `IDLE_HOLD_MS` (default 5000) ms, and if compaction is on but has not
//!   reached 99 % of them by then, for up to 10 s more until it has (steady
//!   state is what is measured). Then the resident memory they added is read
//!   from `/proc/self/status` (VmRSS after the hold − VmRSS before the first
//!   spawn, divided by 1M) and printed as `RESULT_BYTES_PER_G idle <bytes>`;
//!   then the channel is closed, which releases every goroutine, and all are
//!   waited for. The time covers the release and the wait only: waking
//!   1,000,000 long-idle goroutines.
//! - `wake` (`idle_wake`): 10,000 goroutines each park receiving on their own
//!   unbuffered request channel, all replying on one shared unbuffered reply
//!   channel; they are left parked for `IDLE_HOLD_MS` (default 3000) ms (and
//!   the same wait for compaction); then the main goroutine, one goroutine
//!   after the other, sends it a value and waits for its reply: 10,000
//!   sequential round trips, each waking a goroutine parked for seconds (on
//!   goro: compacted, so the wake restores its stack). The time covers the
//!   10,000 round trips; their median is printed as an `INFO` line.
//!
//! `INFO` lines (not parsed by bench/run) give the compaction counters of
//! `goro::debug::stats()` after the hold and after the wakes.
//! Counterpart of `bench/go/idle/main.go` and `tokio_idle.rs`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

#[path = "../shared/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use goro::chan;
use goro::sync::WaitGroup;

/// Goroutines of the `idle` workload.
const IDLE_N: usize = 1_000_000;
/// Goroutines (and round trips) of the `idle_wake` workload.
const WAKE_N: usize = 10_000;
/// The compaction threshold: a goroutine parked this long is compacted.
const THRESHOLD: Duration = Duration::from_secs(1);
/// How long to wait past the hold for compaction to reach 99 %.
const MAX_EXTRA_WAIT: Duration = Duration::from_secs(10);

/// Whether compaction is on in this runtime: asked for and available. Read
/// before the goroutines are spawned, while `debug::stats` is still cheap.
fn compaction_on() -> bool {
    let c = goro::debug::stats().compaction;
    c.threshold.is_some() && c.unavailable.is_none()
}

/// Parks the caller for the hold, then, if compaction is `on` and has not
/// yet compacted 99 % of the `n` goroutines, for up to `MAX_EXTRA_WAIT` more
/// until it has. The polling counts compacted goroutines with
/// `debug::compacted_goroutines` (a scan of the workers' registries, about
/// 12 ms for 1M here), which reads less than `debug::stats` (35 ms).
fn hold_until_compacted(workload: &str, n: usize, default_hold_ms: u64, on: bool) {
    goro::time::sleep(measure::idle_hold(default_hold_ms));
    let wanted = n * 99 / 100;
    if on && goro::debug::compacted_goroutines() < wanted {
        let waiting = Instant::now();
        let mut compacted = 0;
        while waiting.elapsed() < MAX_EXTRA_WAIT {
            goro::time::sleep(Duration::from_millis(100));
            compacted = goro::debug::compacted_goroutines();
            if compacted >= wanted {
                break;
            }
        }
        println!(
            "INFO {workload} waited {} ms past the hold for compaction ({compacted} of {n} compacted)",
            waiting.elapsed().as_millis()
        );
    }
}

/// Prints the compaction counters after the hold.
fn print_compaction(workload: &str) {
    let c = goro::debug::stats().compaction;
    let unavailable = match (&c.unavailable, c.threshold) {
        (Some(why), _) => why.clone(),
        (None, None) => "off".to_string(),
        (None, Some(_)) => "-".to_string(),
    };
    println!(
        "INFO {workload} compaction compacted={} bytes_saved={} unavailable={unavailable}",
        c.compacted, c.bytes_saved
    );
}

/// Prints the restore counters after the wakes.
fn print_restores(workload: &str) {
    let c = goro::debug::stats().compaction;
    println!(
        "INFO {workload} waker_restores={} owner_restores={} handler_restores={} median_restore={:?}",
        c.waker_restores, c.owner_restores, c.handler_restores, c.median_restore
    );
}

/// The `idle` workload.
fn idle() {
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let started = WaitGroup::new();
    let finished = WaitGroup::new();

    let on = compaction_on();
    let before = measure::vm_rss();
    started.add(IDLE_N);
    finished.add(IDLE_N);
    for _ in 0..IDLE_N {
        let (rx, started, finished) = (release_rx.clone(), started.clone(), finished.clone());
        drop(goro::go(move || {
            started.done();
            // Parks until the channel is closed.
            assert!(rx.recv().is_err(), "idle: a value was sent");
            finished.done();
        }));
    }
    started.wait();
    hold_until_compacted("idle", IDLE_N, 5000, on);
    let after = measure::vm_rss();
    // After the reading: with 1M goroutines `debug::stats` allocates and
    // takes a while.
    print_compaction("idle");

    let start = Instant::now();
    release_tx.close();
    finished.wait();
    let elapsed = start.elapsed();

    print_restores("idle");
    let per_g = after.saturating_sub(before) / IDLE_N as u64;
    println!("RESULT_BYTES_PER_G idle {per_g}");
    println!("RESULT idle {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

/// The `idle_wake` workload.
fn idle_wake() {
    let (reply_tx, reply_rx) = chan::bounded::<u64>(0);
    let started = WaitGroup::new();
    let finished = WaitGroup::new();

    let on = compaction_on();
    started.add(WAKE_N);
    finished.add(WAKE_N);
    let requests: Vec<_> = (0..WAKE_N)
        .map(|_| {
            let (tx, rx) = chan::bounded::<u64>(0);
            let (reply, started, finished) = (reply_tx.clone(), started.clone(), finished.clone());
            drop(goro::go(move || {
                started.done();
                // Parks until its request comes, then until the channel is
                // closed.
                for v in &rx {
                    reply.send(v + 1).expect("idle: main stopped listening");
                }
                finished.done();
            }));
            tx
        })
        .collect();
    started.wait();
    hold_until_compacted("idle_wake", WAKE_N, 3000, on);
    print_compaction("idle_wake");

    let mut trips = Vec::with_capacity(WAKE_N);
    let start = Instant::now();
    for (i, tx) in (0u64..).zip(&requests) {
        let t = Instant::now();
        tx.send(i).expect("idle: a goroutine vanished");
        let got = reply_rx.recv().expect("idle: every goroutine vanished");
        trips.push(t.elapsed());
        assert_eq!(got, i + 1, "idle: sent {i}, got back {got}");
    }
    let elapsed = start.elapsed();

    print_restores("idle_wake");
    for tx in &requests {
        tx.close();
    }
    finished.wait();
    trips.sort_unstable();
    println!(
        "INFO idle_wake median_round_trip_ns={}",
        trips[WAKE_N / 2].as_nanos()
    );
    println!("RESULT idle_wake {:.3} ms", elapsed.as_secs_f64() * 1e3);
}

fn main() {
    let wake = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("wake") => true,
        Some(other) => panic!("idle: unknown argument '{other}' (none, or `wake`)"),
    };
    let rt = goro::Runtime::builder()
        .stack_compaction(Some(THRESHOLD))
        .build()
        .expect("idle: cannot start the runtime");
    rt.block_on(|| if wake { idle_wake() } else { idle() });
}
