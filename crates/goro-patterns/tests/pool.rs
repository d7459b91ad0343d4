//! `Pool`: every accepted job runs exactly once, shutdown drains exactly the
//! accepted jobs, panics stay inside their job, abort and context
//! cancellation cancel queued jobs, the queue bound is backpressure.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan;
use goro::context::Context;
use goro::sync::WaitGroup;
use goro_patterns::{JobError, Pool, SubmitError};

/// 8 submitters × 2000 jobs through 4 workers and a queue of 8: every job
/// runs exactly once and its handle gives its own result.
#[goro::test]
fn no_job_lost_or_run_twice_under_contention() {
    const SUBMITTERS: usize = 8;
    const PER: usize = 2000;
    let pool = Arc::new(Pool::new(4, 8));
    let runs: Arc<Vec<AtomicU32>> =
        Arc::new((0..SUBMITTERS * PER).map(|_| AtomicU32::new(0)).collect());
    let wg = WaitGroup::new();
    for s in 0..SUBMITTERS {
        let (pool, runs) = (pool.clone(), runs.clone());
        wg.go(move || {
            let mut handles = Vec::with_capacity(PER);
            for i in 0..PER {
                let id = s * PER + i;
                let runs = runs.clone();
                let h = pool
                    .submit(move |_| {
                        runs[id].fetch_add(1, Ordering::SeqCst);
                        if id % 7 == 0 {
                            goro::yield_now();
                        }
                        id
                    })
                    .unwrap();
                handles.push((id, h));
            }
            for (id, h) in handles {
                assert_eq!(h.join(), Ok(id));
            }
        });
    }
    wg.wait();
    pool.shutdown();
    for (id, n) in runs.iter().enumerate() {
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "job {id} ran the wrong number of times"
        );
    }
    let st = pool.stats();
    assert_eq!(st.submitted, (SUBMITTERS * PER) as u64);
    assert_eq!(st.completed, (SUBMITTERS * PER) as u64);
    assert_eq!((st.failed, st.cancelled, st.queued, st.busy), (0, 0, 0, 0));
}

/// Submitters race a shutdown: the jobs that ran are exactly the jobs
/// whose submit returned Ok, and every refused job came back unrun.
#[goro::test]
fn shutdown_drains_exactly_the_accepted_jobs() {
    let pool = Arc::new(Pool::new(2, 16));
    let ran = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for _ in 0..6 {
        let (pool, ran, accepted, refused) =
            (pool.clone(), ran.clone(), accepted.clone(), refused.clone());
        wg.go(move || loop {
            let ran = ran.clone();
            let job = move |_: &Context| {
                goro::time::sleep(Duration::from_micros(200));
                ran.fetch_add(1, Ordering::SeqCst);
            };
            match pool.submit(job) {
                Ok(h) => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    drop(h); // detached: still runs
                }
                Err(SubmitError::Closed(job)) => {
                    refused.fetch_add(1, Ordering::SeqCst);
                    // The job comes back and never ran in the pool.
                    drop(job);
                    return;
                }
                Err(SubmitError::Full(_)) => unreachable!("submit waits instead"),
            }
        });
    }
    goro::time::sleep(Duration::from_millis(30));
    pool.shutdown();
    // After shutdown returns, every accepted job has run.
    let ran_at_shutdown = ran.load(Ordering::SeqCst);
    wg.wait();
    assert!(accepted.load(Ordering::SeqCst) > 0);
    assert_eq!(
        refused.load(Ordering::SeqCst),
        6,
        "every submitter saw Closed"
    );
    assert_eq!(ran_at_shutdown, accepted.load(Ordering::SeqCst));
    assert_eq!(ran.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst));
    assert_eq!(
        pool.stats().completed,
        accepted.load(Ordering::SeqCst) as u64
    );
    assert!(pool.is_closed());
    assert!(matches!(
        pool.try_submit(|_| ()),
        Err(SubmitError::Closed(_))
    ));
}

/// A panicking job reports its panic; the (only) worker carries on.
#[goro::test]
fn a_panicking_job_does_not_kill_the_pool() {
    let pool = Pool::new(1, 4);
    let bad = pool.submit(|_| -> u32 { panic!("job exploded") }).unwrap();
    let good = pool.submit(|_| 7u32).unwrap();
    let bad2 = pool
        .submit(|_| -> u32 { std::panic::panic_any(String::from("owned message")) })
        .unwrap();
    let good2 = pool.submit(|_| 8u32).unwrap();
    assert_eq!(bad.join(), Err(JobError::Panicked("job exploded".into())));
    assert_eq!(good.join(), Ok(7));
    assert_eq!(bad2.join(), Err(JobError::Panicked("owned message".into())));
    assert_eq!(good2.join(), Ok(8));
    pool.shutdown();
    let st = pool.stats();
    assert_eq!((st.completed, st.failed), (2, 2));
}

/// abort: the running job sees the context, every queued job is cancelled
/// (never runs), and later submits are refused.
#[goro::test]
fn abort_cancels_queued_jobs() {
    let pool = Pool::new(1, 10);
    let (started_tx, started) = chan::bounded::<()>(1);
    let running = pool
        .submit(move |ctx| {
            started_tx.send(()).unwrap();
            // Runs until the pool is aborted.
            let _ = ctx.done().recv();
            "saw cancel"
        })
        .unwrap();
    started.recv().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..10)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    assert_eq!(pool.stats().queued, 10);
    assert_eq!(pool.abort(), 10);
    assert_eq!(running.join(), Ok("saw cancel"));
    for h in queued {
        assert_eq!(h.join(), Err(JobError::Cancelled));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let st = pool.stats();
    assert_eq!((st.completed, st.cancelled, st.queued), (1, 10, 0));
    assert!(matches!(pool.submit(|_| ()), Err(SubmitError::Closed(_))));
}

/// A full queue: try_submit gives the job back, submit waits until a
/// worker takes a job (backpressure), and abort frees a waiting submit.
#[goro::test]
fn full_queue_is_backpressure() {
    let pool = Arc::new(Pool::new(1, 1));
    let (gate_tx, gate) = chan::bounded::<()>(0);
    let _blocker = pool
        .submit(move |_| {
            let _ = gate.recv();
        })
        .unwrap();
    // Wait until the worker holds the blocker, then fill the queue.
    while pool.stats().busy == 0 {
        goro::yield_now();
    }
    let _queued = pool.submit(|_| ()).unwrap();
    let back = match pool.try_submit(|_| 41 + 1) {
        Err(SubmitError::Full(f)) => f,
        other => panic!("expected Full, got {other:?}"),
    };
    assert_eq!(back(&Context::background()), 42);

    let returned = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (pool, returned) = (pool.clone(), returned.clone());
        goro::go(move || {
            let r = pool.submit(|_| ()).map(|_| ());
            returned.store(true, Ordering::SeqCst);
            r
        })
    };
    goro::time::sleep(Duration::from_millis(50));
    assert!(
        !returned.load(Ordering::SeqCst),
        "submit must wait while the queue is full"
    );
    gate_tx.send(()).unwrap(); // the worker finishes the blocker, takes the next job
    assert!(waiter.join().unwrap().is_ok());
    pool.shutdown();
}

/// A submit parked on a full queue fails with Closed when the pool is
/// aborted.
#[goro::test]
fn abort_frees_a_waiting_submit() {
    let pool = Arc::new(Pool::new(1, 0));
    let (gate_tx, gate) = chan::bounded::<()>(0);
    let _blocker = pool
        .submit(move |ctx| {
            goro::select! {
                recv(gate) -> _ => {},
                recv(ctx.done()) -> _ => {},
            }
        })
        .unwrap();
    let waiter = {
        let pool = pool.clone();
        goro::go(move || pool.submit(|_| ()).map(|_| ()).map_err(|e| e.to_string()))
    };
    goro::time::sleep(Duration::from_millis(20));
    pool.abort();
    assert_eq!(
        waiter.join().unwrap(),
        Err("the pool is closed".to_string())
    );
    drop(gate_tx);
}

/// Cancelling the parent context cancels queued jobs as abort does.
#[goro::test]
fn parent_context_cancels_the_pool() {
    let (ctx, cancel) = Context::background().with_cancel();
    let pool = Pool::builder()
        .workers(1)
        .queue(8)
        .context(&ctx)
        .name("ctx-pool")
        .build()
        .unwrap();
    let blocker = pool
        .submit(|ctx| {
            let _ = ctx.done().recv();
            ctx.err()
        })
        .unwrap();
    while pool.stats().busy == 0 {
        goro::yield_now();
    }
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move |_| i).unwrap()).collect();
    let t = Instant::now();
    cancel.cancel();
    assert_eq!(blocker.join(), Ok(Some(goro::context::Error::Canceled)));
    for h in queued {
        assert_eq!(h.join(), Err(JobError::Cancelled));
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(pool.is_closed());
    pool.shutdown();
    assert_eq!(pool.stats().cancelled, 5);
}

/// join_timeout gives the handle back until the job is done.
#[goro::test]
fn join_timeout_and_is_finished() {
    let pool = Pool::new(1, 1);
    let (gate_tx, gate) = chan::bounded::<()>(0);
    let h = pool
        .submit(move |_| {
            gate.recv().unwrap();
            5
        })
        .unwrap();
    let t = Instant::now();
    let h = h.join_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(!h.is_finished());
    gate_tx.send(()).unwrap();
    assert_eq!(h.join(), Ok(5));
    pool.shutdown();
}

/// Dropping the pool without shutdown: the workers drain and end (the leak
/// check of #[goro::test] would fail otherwise).
#[goro::test]
fn drop_drains_and_ends_the_workers() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = Pool::new(3, 100);
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let ran = ran.clone();
            pool.submit(move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    drop(pool);
    for h in handles {
        assert_eq!(h.join(), Ok(()));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 50);
}

/// Results on a shared channel: one per accepted job, panics and
/// cancellations included.
#[goro::test]
fn results_on_a_channel() {
    let pool = Pool::new(3, 4);
    let (tx, rx) = chan::bounded(2); // smaller than the load: backpressure
    let consumer = goro::go(move || {
        let (mut ok, mut failed) = (Vec::new(), 0);
        for r in &rx {
            match r {
                Ok(v) => ok.push(v),
                Err(JobError::Panicked(_)) => failed += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        ok.sort_unstable();
        (ok, failed)
    });
    for i in 0..100u32 {
        pool.submit_to(
            move |_| {
                if i % 10 == 0 {
                    panic!("job {i}");
                }
                i
            },
            &tx,
        )
        .unwrap();
    }
    pool.shutdown();
    drop(tx);
    let (ok, failed) = consumer.join().unwrap();
    assert_eq!(failed, 10);
    assert_eq!(ok, (0..100).filter(|i| i % 10 != 0).collect::<Vec<_>>());
}

/// A scaling pool (2..=6 workers, 50 ms idle time) under a burst of slow
/// jobs: the worker count grows past the minimum, never exceeds the
/// maximum (sampled throughout, and the peak counter), every job runs
/// exactly once, and once idle the pool shrinks back to the minimum.
#[goro::test]
fn scaling_pool_grows_under_a_burst_and_shrinks_when_idle() {
    const JOBS: usize = 300;
    const MIN: usize = 2;
    const MAX: usize = 6;
    let pool = Arc::new(
        Pool::builder()
            .scaling(MIN, MAX)
            .queue(4)
            .idle_timeout(Duration::from_millis(50))
            .build()
            .unwrap(),
    );
    assert_eq!(pool.stats().workers, MIN);

    // A sampler watches the worker count while the burst runs.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (pool, stop, most) = (pool.clone(), stop.clone(), most.clone());
        goro::go(move || {
            while !stop.load(Ordering::SeqCst) {
                let w = pool.stats().workers;
                most.fetch_max(w, Ordering::SeqCst);
                assert!(w <= MAX, "{w} workers, max is {MAX}");
                goro::time::sleep(Duration::from_micros(200));
            }
        })
    };

    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..JOBS).map(|_| AtomicU32::new(0)).collect());
    let handles: Vec<_> = (0..JOBS)
        .map(|id| {
            let runs = runs.clone();
            pool.submit(move |_| {
                runs[id].fetch_add(1, Ordering::SeqCst);
                goro::time::sleep(Duration::from_micros(500));
                id
            })
            .unwrap()
        })
        .collect();
    for (id, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), id);
    }
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    let st = pool.stats();
    assert!(st.peak_workers > MIN, "never grew: {st}");
    assert!(st.peak_workers <= MAX, "grew past max: {st}");
    assert!(most.load(Ordering::SeqCst) <= MAX);
    assert_eq!(st.completed, JOBS as u64);
    assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));

    // Idle for well over the idle time: back to the minimum, not below.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.stats().workers > MIN && Instant::now() < deadline {
        goro::time::sleep(Duration::from_millis(10));
    }
    assert_eq!(pool.stats().workers, MIN, "{}", pool.stats());
    goro::time::sleep(Duration::from_millis(200));
    assert_eq!(pool.stats().workers, MIN, "shrank below min");

    // Still serves jobs after shrinking, and grows again.
    let more: Vec<_> = (0..50u64)
        .map(|i| {
            pool.submit(move |_| {
                goro::time::sleep(Duration::from_micros(300));
                i
            })
            .unwrap()
        })
        .collect();
    let sum: u64 = more.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 49 * 50 / 2);
    pool.shutdown();
    let st = pool.stats();
    assert_eq!(st.completed, JOBS as u64 + 50);
    assert_eq!(st.submitted, st.completed);
    assert!(st.peak_workers <= MAX);
}

/// A fixed pool never changes size, and `scaling(n, n)` is a fixed pool.
#[goro::test]
fn fixed_pool_and_degenerate_scaling_keep_their_size() {
    for pool in [
        Pool::new(3, 1),
        Pool::builder().scaling(3, 3).queue(1).build().unwrap(),
        Pool::builder().scaling(3, 1).queue(1).build().unwrap(),
    ] {
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                pool.submit(move |_| {
                    goro::yield_now();
                    i
                })
                .unwrap()
            })
            .collect();
        assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(), 4950);
        let st = pool.stats();
        assert_eq!((st.workers, st.peak_workers), (3, 3), "{st}");
        pool.shutdown();
    }
}

/// `execute` runs detached jobs exactly once; a panicking one is counted as
/// failed and the worker carries on.
#[goro::test]
fn execute_runs_detached_jobs_and_counts_panics() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let pool = goro_patterns::Pool::new(3, 8);
    let sum = Arc::new(AtomicU64::new(0));
    for i in 1..=100u64 {
        let sum = sum.clone();
        pool.execute(move |_| {
            sum.fetch_add(i, Ordering::Relaxed);
        })
        .unwrap();
    }
    pool.execute(|_| panic!("boom in a detached job")).unwrap();
    pool.shutdown();
    assert_eq!(sum.load(Ordering::Relaxed), 5050);
    let st = pool.stats();
    assert_eq!(
        (st.submitted, st.completed, st.failed),
        (101, 100, 1),
        "{st:?}"
    );
    assert!(pool.execute(|_| ()).is_err(), "closed after shutdown");
}
