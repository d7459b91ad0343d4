//! Graceful shutdown: workers pull jobs under a root context that the first
//! SIGINT or SIGTERM cancels.
//!
//! ```text
//!              shutdown_context()  (SIGINT / SIGTERM)
//!                     │
//!                     ▼
//!   producer ──jobs──▶ [queue] ──▶ worker 0..N ──▶ tally
//!                                      │
//!              hard context: cancelled GRACE after shutdown
//! ```
//!
//! * A producer goroutine makes jobs (each a simulated piece of work of
//!   10–300 ms) and sends them into a bounded queue until the root context
//!   is done.
//! * `WORKERS` goroutines, run as a [`goro::errgroup::Group`], take jobs while
//!   the root context is live. A job waits in `select!` on its work timer
//!   and on the *hard* context.
//! * On the signal, the root context is cancelled: the producer stops and
//!   closes the queue, workers take no new jobs. Jobs already running get
//!   `GRACE` to finish (they count as completed); then the hard context is
//!   cancelled (by [`context::after_func`]) and the rest stop at once (they
//!   count as cancelled). Jobs still queued were never started: they are
//!   drained and counted.
//! * The program prints a summary and exits 0. Without a signal it stops by
//!   itself after 60 s (or `GRACEFUL_SHUTDOWN_MAX_MS` milliseconds), the
//!   same way.
//!
//! Output (stdout), for `kill -TERM <pid>` after a second or so:
//!
//! ```text
//! ready: 4 workers, pid 12345
//! shutdown: terminated; 4 jobs in flight get 100 ms to finish
//! summary: produced=31 completed=18 cancelled=2 drained=11 finished_in_grace=2 reason=terminated
//! ```

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan::{self, Receiver, Sender};
use goro::context::{self, Context};
use goro::errgroup::Group;
use goro::signal;
use goro::time::Timer;

/// Worker goroutines.
const WORKERS: usize = 4;
/// Jobs the queue holds beyond those being worked on.
const QUEUE: usize = 8;
/// How long running jobs may continue after the shutdown signal.
const GRACE: Duration = Duration::from_millis(100);
/// How long the program runs when nobody signals it.
const MAX_RUN: Duration = Duration::from_secs(60);

/// A unit of simulated work.
#[derive(Debug)]
struct Job {
    /// How long it takes.
    work: Duration,
}

/// What happened to the jobs (shared by the workers and `main`).
#[derive(Debug, Default)]
struct Tally {
    /// Jobs whose work ran to the end.
    completed: AtomicU64,
    /// Of those, jobs that finished after the shutdown began.
    finished_in_grace: AtomicU64,
    /// Jobs stopped by the hard context before their work was done.
    cancelled: AtomicU64,
    /// Jobs taken from the queue but never started (shutdown had begun).
    drained: AtomicU64,
    /// Jobs running right now.
    in_flight: AtomicU64,
}

/// The run-time bound: `GRACEFUL_SHUTDOWN_MAX_MS` or [`MAX_RUN`].
fn max_run() -> Duration {
    std::env::var("GRACEFUL_SHUTDOWN_MAX_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(MAX_RUN, Duration::from_millis)
}

/// The work time of job `id`: 10–300 ms, from a fixed pseudo-random
/// sequence (so runs are comparable).
fn work_for(id: u64) -> Duration {
    let x = id
        .wrapping_add(1)
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(29);
    Duration::from_millis(10 + x % 291)
}

/// Sends jobs until `ctx` is done; closes the queue (by dropping `tx`) and
/// returns how many it sent.
fn produce(ctx: &Context, tx: Sender<Job>) -> u64 {
    let mut next = 0;
    loop {
        goro::select! {
            send(tx, Job { work: work_for(next) }) -> sent => {
                if sent.is_err() {
                    break;
                }
                next += 1;
            },
            recv(ctx.done()) -> _ => break,
        }
    }
    next
}

/// Takes jobs while `ctx` is live and runs each until its work is done or
/// `hard` is cancelled.
fn work(ctx: &Context, hard: &Context, jobs: &Receiver<Job>, tally: &Tally) {
    loop {
        let job = goro::select! {
            recv(jobs) -> job => match job {
                Ok(job) => job,
                Err(_) => return, // closed and empty
            },
            recv(ctx.done()) -> _ => return,
        };
        if ctx.is_done() {
            // Both arms were ready and the job won the draw: shutdown has
            // begun, so this job is not started.
            tally.drained.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        tally.in_flight.fetch_add(1, Ordering::Relaxed);
        let timer = Timer::new(job.work);
        goro::select! {
            recv(timer.channel()) -> _ => {
                tally.completed.fetch_add(1, Ordering::Relaxed);
                if ctx.is_done() {
                    tally.finished_in_grace.fetch_add(1, Ordering::Relaxed);
                }
            },
            recv(hard.done()) -> _ => {
                timer.stop();
                // A real job would roll back its partial work here.
                tally.cancelled.fetch_add(1, Ordering::Relaxed);
            },
        }
        tally.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[goro::main]
fn main() {
    // Cancelled by the first SIGINT or SIGTERM (a second one kills us).
    let shutdown = signal::shutdown_context();
    let (ctx, _stop) = shutdown.with_timeout(max_run());

    // Running jobs stop when `hard` is cancelled: GRACE after `ctx` is done.
    let (hard, hard_cancel) = Context::background().with_cancel();
    let _grace = context::after_func(&ctx, move || {
        goro::time::sleep(GRACE);
        hard_cancel.cancel();
    });

    let tally = Arc::new(Tally::default());
    let (tx, jobs) = chan::bounded::<Job>(QUEUE);
    let producer = goro::go({
        let ctx = ctx.clone();
        move || produce(&ctx, tx)
    });
    let workers: Group<String> = Group::new();
    for _ in 0..WORKERS {
        let (ctx, hard, jobs, tally) = (ctx.clone(), hard.clone(), jobs.clone(), tally.clone());
        workers.go(move || {
            work(&ctx, &hard, &jobs, &tally);
            Ok(())
        });
    }
    println!("ready: {WORKERS} workers, pid {}", std::process::id());

    // Wait for the shutdown signal (or the time bound).
    let _ = ctx.done().recv();
    let reason = ctx
        .cause()
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    println!(
        "shutdown: {reason}; {} jobs in flight get {} ms to finish",
        tally.in_flight.load(Ordering::Relaxed),
        GRACE.as_millis()
    );

    let produced = producer.join().expect("the producer panicked");
    if let Err(e) = workers.wait() {
        eprintln!("a worker failed: {e}");
        std::process::exit(1);
    }
    // Whatever is still queued was never started.
    let queued = jobs.try_iter().count() as u64;
    tally.drained.fetch_add(queued, Ordering::Relaxed);

    let t = &*tally;
    println!(
        "summary: produced={produced} completed={} cancelled={} drained={} finished_in_grace={} reason={reason}",
        t.completed.load(Ordering::Relaxed),
        t.cancelled.load(Ordering::Relaxed),
        t.drained.load(Ordering::Relaxed),
        t.finished_in_grace.load(Ordering::Relaxed),
    );
}
