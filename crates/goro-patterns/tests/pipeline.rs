//! `Pipeline`: ordered stages keep order, unordered ones lose nothing, the
//! first error (or panic, or cancellation) stops every stage and leaves no
//! goroutine behind, stats count what went through and name the
//! bottleneck.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::chan;
use goro::context::Context;
use goro_patterns::pipeline::{self, Pipeline};

/// Eight workers with uneven work: the ordered stage's output is in input
/// order, filtering included.
#[goro::test]
fn ordered_output_is_ordered() {
    const N: u64 = 5000;
    let out = Pipeline::<u64, String>::source(0..N)
        .ordered_stage("uneven", 8, |x| {
            // Make later items often finish first.
            if x % 13 == 0 {
                goro::time::sleep(Duration::from_micros(300));
            } else if x % 3 == 0 {
                goro::yield_now();
            }
            Ok(x * 2)
        })
        .ordered_filter_stage("odd-thirds", 3, |x| {
            if x % 3 == 0 {
                goro::yield_now();
            }
            Ok((x % 3 != 0).then_some(x))
        })
        .collect()
        .unwrap();
    let want: Vec<u64> = (0..N).map(|x| x * 2).filter(|x| x % 3 != 0).collect();
    assert_eq!(out, want);
}

/// Unordered stages with many workers: the same multiset comes out.
#[goro::test]
fn unordered_stages_lose_nothing() {
    const N: u64 = 20_000;
    let mut out = Pipeline::<u64, ()>::source(0..N)
        .stage("a", 4, |x| Ok(x + 1))
        .buffer(0)
        .stage("b", 7, |x| {
            if x % 100 == 0 {
                goro::yield_now();
            }
            Ok(x * 3)
        })
        .buffer(64)
        .filter_stage("even", 2, |x| Ok((x % 2 == 0).then_some(x)))
        .collect()
        .unwrap();
    out.sort_unstable();
    let want: Vec<u64> = (0..N).map(|x| (x + 1) * 3).filter(|x| x % 2 == 0).collect();
    assert_eq!(out, want);
}

/// An endless source, a stage that fails on one item: the error comes back
/// with its stage's name, every other stage stops (the leak check of
/// #[goro::test] and an explicit one say no goroutine is left), and only
/// the first error is reported although several workers fail.
#[goro::test]
fn first_error_cancels_every_stage_without_leaks() {
    let p = Pipeline::source(0u64..)
        .stage("double", 4, |x| Ok(x * 2))
        .stage("check", 3, |x| {
            if x >= 2000 {
                Err(format!("too big: {x}"))
            } else {
                Ok(x)
            }
        })
        .ordered_stage("inc", 2, |x| Ok(x + 1))
        .stage("fine", 2, Ok);
    let stats = p.stats();
    let r = p.collect();
    let err = r.unwrap_err();
    assert_eq!(err.stage(), Some("check"));
    let msg = err.into_inner().unwrap();
    assert!(msg.starts_with("too big: "), "{msg}");
    goro::testing::verify_none();
    // The source stopped: it produced a bounded number of items.
    let snap = stats.snapshot();
    assert_eq!(snap[0].name, "source");
    assert!(snap[0].items_out < 1_000_000, "{:?}", snap[0]);
    assert_eq!(
        snap.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["source", "double", "check", "inc", "fine", "sink"]
    );
}

/// A panic in a stage is an error naming the stage; nothing leaks.
#[goro::test]
fn a_panicking_stage_is_an_error() {
    let r = Pipeline::<u32, String>::source(0..1_000_000)
        .stage("boom", 2, |x| {
            if x == 77 {
                panic!("stage blew up at {x}");
            }
            Ok(x)
        })
        .collect();
    assert_eq!(
        r,
        Err(pipeline::Error::Panicked {
            stage: "boom".into(),
            message: "stage blew up at 77".into()
        })
    );
}

/// The sink's own error cancels the stages too.
#[goro::test]
fn a_sink_error_cancels_the_stages() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let r = Pipeline::source(0u64..)
        .stage("id", 2, move |x| {
            s.fetch_add(1, Ordering::SeqCst);
            Ok(x)
        })
        .for_each(|x| if x == 100 { Err("enough") } else { Ok(()) });
    assert_eq!(r.unwrap_err().stage(), Some("sink"));
    let n = seen.load(Ordering::SeqCst);
    goro::time::sleep(Duration::from_millis(20));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        n,
        "a stage kept working after the run returned"
    );
}

/// Cancelling the caller's context stops an endless pipeline with
/// Error::Canceled.
#[goro::test]
fn external_cancellation() {
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(50));
    let r = Pipeline::<u64, ()>::source(0..)
        .with_context(&ctx)
        .stage("slow", 2, |x| {
            goro::time::sleep(Duration::from_millis(1));
            Ok(x)
        })
        .for_each(|_| Ok(()));
    assert_eq!(
        r,
        Err(pipeline::Error::Canceled(
            goro::context::Error::DeadlineExceeded
        ))
    );
    drop(cancel);
}

/// Sources from channels, sinks into channels, and a background run.
#[goro::test]
fn channel_source_and_channel_sink() {
    let (in_tx, in_rx) = chan::bounded(4);
    let (out_tx, out_rx) = chan::bounded(4);
    let producer = goro::go(move || {
        for i in 0..100u32 {
            in_tx.send(i).unwrap();
        }
    });
    let running = Pipeline::<u32, ()>::from_channel(in_rx)
        .ordered_stage("sq", 3, |x| Ok(x * x))
        .into_channel(out_tx);
    let got: Vec<u32> = out_rx.iter().collect();
    assert_eq!(got, (0..100).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(running.wait(), Ok(()));
    producer.join().unwrap();
}

/// Dropping the receiver of a spawned pipeline stops it without an error.
#[goro::test]
fn dropping_the_output_stops_the_pipeline() {
    let (rx, running) = Pipeline::<u64, ()>::source(0..).stage("x", 3, Ok).spawn();
    for _ in 0..10 {
        rx.recv().unwrap();
    }
    drop(rx);
    assert_eq!(running.wait(), Ok(()));
}

/// Item counts add up, and the slow stage is named the bottleneck.
#[goro::test]
fn stats_count_items_and_name_the_bottleneck() {
    let p = Pipeline::<u32, ()>::source(0..300)
        .stage("fast", 2, |x| Ok(x + 1))
        .stage("slow", 1, |x| {
            goro::time::sleep(Duration::from_micros(500));
            Ok(x)
        })
        .filter_stage("half", 2, |x| Ok((x % 2 == 0).then_some(x)));
    let stats = p.stats();
    let n = p.fold(0usize, |n, _| Ok(n + 1)).unwrap();
    assert_eq!(n, 150);
    let snap = stats.snapshot();
    let by = |name: &str| snap.iter().find(|s| s.name == name).unwrap().clone();
    assert_eq!(
        (
            by("source").items_out,
            by("fast").items_in,
            by("fast").items_out
        ),
        (300, 300, 300)
    );
    assert_eq!(
        (
            by("slow").items_out,
            by("half").items_in,
            by("half").items_out
        ),
        (300, 300, 150)
    );
    assert_eq!(by("sink").items_in, 150);
    assert!(
        by("slow").busy >= Duration::from_millis(150),
        "{:?}",
        by("slow")
    );
    assert_eq!(stats.bottleneck().as_deref(), Some("slow"), "{stats}");
    // Stages upstream of the bottleneck wait on output, downstream on input.
    assert!(by("fast").blocked_out > by("fast").busy, "{stats}");
    assert!(by("half").blocked_in > by("half").busy, "{stats}");
}
