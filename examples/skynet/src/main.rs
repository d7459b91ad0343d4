//! skynet with a million goroutines: what `cargo run --release` shows.
//!
//! Skynet is a 10-ary tree of goroutines with 1,000,000 leaves (1,111,111
//! goroutines in all). Every inner goroutine makes an unbuffered channel,
//! starts its 10 children, receives one number from each and sends the sum
//! to its own parent; leaf `n` simply sends `n`. The root's sum must be
//! 0 + 1 + … + 999,999 = 499,999,500,000.
//!
//! Besides the time, the demo reports what a million goroutines cost:
//!
//! * the peak number of live goroutines, from a plain OS thread that samples
//!   [`goro::num_goroutine`] about every millisecond while the tree runs.
//!   It is far below 1,111,111: a worker runs its newest unstarted goroutine
//!   first, so each subtree tends to finish before its siblings start, and a
//!   goroutine that has not started yet owns no stack;
//! * the peak and current resident set size (`VmHWM`, `VmRSS` from
//!   `/proc/self/status`);
//! * the number of worker threads (`GORO_MAXPROCS`, default: every core).
//!
//! The sampler shows that channels join threads and goroutines: it waits for
//! the stop signal with `recv_timeout` (which blocks the plain thread) and
//! hands its result back over a goro channel (which parks the main goroutine).

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use goro::chan::{self, RecvTimeoutError, Sender};

/// Leaves of the tree.
const LEAVES: u64 = 1_000_000;
/// Children per inner goroutine.
const FANOUT: u64 = 10;
/// Sum of the leaf numbers 0..LEAVES.
const WANT: u64 = LEAVES * (LEAVES - 1) / 2;
/// How often the sampler reads the goroutine count.
const SAMPLE_EVERY: Duration = Duration::from_millis(1);

/// The goroutine for the subtree whose leaves are `first..first + size`:
/// sends the sum of those numbers on `parent`.
fn skynet(parent: Sender<u64>, first: u64, size: u64) {
    if size == 1 {
        parent
            .send(first)
            .expect("skynet: the parent stopped listening");
        return;
    }
    let (tx, rx) = chan::bounded(0);
    let step = size / FANOUT;
    for i in 0..FANOUT {
        let tx = tx.clone();
        // Detached, as Go's `go skynet(..)`: the result comes back on `rx`.
        drop(goro::go(move || skynet(tx, first + i * step, step)));
    }
    let sum: u64 = (0..FANOUT)
        .map(|_| rx.recv().expect("skynet: a child ended without sending"))
        .sum();
    parent
        .send(sum)
        .expect("skynet: the parent stopped listening");
}

/// Total goroutines in the tree: 1 + 10 + 100 + … + LEAVES.
fn tree_goroutines() -> u64 {
    let (mut level, mut total) = (1, 0);
    while level <= LEAVES {
        total += level;
        level *= FANOUT;
    }
    total
}

/// A field of `/proc/self/status` given in kB, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Worker threads of the runtime: the threads named `goro-worker-N`; if
/// none can be seen, the documented default (`GORO_MAXPROCS`, else the
/// available parallelism).
fn workers() -> usize {
    let named = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.starts_with("goro-worker"))
                .count()
        })
        .unwrap_or(0);
    if named > 0 {
        return named;
    }
    std::env::var("GORO_MAXPROCS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Bytes as MiB, one decimal.
fn mib(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        None => String::from("unknown"),
    }
}

/// A count with thousands separators.
fn grouped(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{},{:03}", grouped(n / 1000), n % 1000)
    }
}

#[goro::main]
fn main() {
    // The sampler: a plain thread that reads the goroutine count until the
    // stop channel closes, then sends the highest count it saw.
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let (peak_tx, peak_rx) = chan::bounded::<usize>(1);
    let sampler = std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            let mut peak = goro::num_goroutine();
            while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(SAMPLE_EVERY) {
                peak = peak.max(goro::num_goroutine());
            }
            let _ = peak_tx.send(peak);
        })
        .expect("cannot start the sampler thread");

    let start = Instant::now();
    let (root_tx, root_rx) = chan::bounded(0);
    drop(goro::go(move || skynet(root_tx, 0, LEAVES)));
    let sum = root_rx
        .recv()
        .expect("skynet: the root ended without sending");
    let elapsed = start.elapsed();

    drop(stop_tx); // closing the channel tells the sampler to stop
    let peak = peak_rx.recv().expect("the sampler ended without a result");
    sampler.join().expect("the sampler thread panicked");

    assert_eq!(sum, WANT, "skynet: wrong sum");
    println!(
        "skynet: {} leaves, {} goroutines, sum {} (correct)",
        grouped(LEAVES),
        grouped(tree_goroutines()),
        grouped(sum)
    );
    println!("  time        {:.1} ms", elapsed.as_secs_f64() * 1e3);
    println!(
        "  goroutines  {} live at the peak (sampled every {} ms)",
        grouped(peak as u64),
        SAMPLE_EVERY.as_millis()
    );
    println!("  memory      peak RSS {}", mib(status_bytes("VmHWM")));
    println!("              current RSS {}", mib(status_bytes("VmRSS")));
    println!("  workers     {}", workers());
}
