//! Goroutine dumps, labels, leak checks and SIGQUIT.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{child_command, is_child};
use goro::chan;
use goro::debug::{self, GoroutineState};
use goro::{Runtime, WaitReason};

/// Parks in a function with a recognisable name, so its frame can be
/// looked for in a recorded stack.
#[inline(never)]
fn parked_in_a_named_function(rx: chan::Receiver<u32>) -> u32 {
    rx.recv().unwrap_or(0)
}

/// Waits until goroutine `id` is parked with `reason`.
fn wait_parked(id: goro::GoId, reason: WaitReason) {
    let start = Instant::now();
    while !debug::goroutines()
        .iter()
        .any(|g| g.id == id && g.wait_reason == Some(reason))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "goroutine {id} never parked with {reason}"
        );
        goro::time::sleep(Duration::from_millis(1));
    }
}

/// goroutines() reports name, state, wait reason, park site, spawn site,
/// parent and labels; dump() adds the real stack of a parked goroutine.
#[test]
fn dump_shows_reason_sites_labels_and_real_stacks() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = debug::with_labels(&[("route", "/api")], || {
            goro::Builder::new()
                .name("receiver")
                .spawn(move || parked_in_a_named_function(rx))
                .unwrap()
        });
        wait_parked(h.id(), WaitReason::ChanReceive);
        let me = goro::current_id().unwrap();
        let info = debug::goroutines()
            .into_iter()
            .find(|g| g.id == h.id())
            .unwrap();
        assert_eq!(info.name.as_deref(), Some("receiver"));
        assert_eq!(info.state, GoroutineState::Waiting);
        assert_eq!(info.parent, Some(me));
        assert_eq!(info.labels, vec![("route".to_string(), "/api".to_string())]);
        assert!(
            info.park_site.unwrap().file().ends_with("debug.rs"),
            "{:?}",
            info.park_site
        );
        assert!(info.spawn_site.file().ends_with("debug.rs"));

        let dump = debug::dump();
        let block = dump
            .split("\n\n")
            .find(|b| b.starts_with(&format!("goroutine {} (receiver) [chan receive, ", h.id())))
            .unwrap_or_else(|| panic!("no block for the receiver in:\n{dump}"));
        assert!(block.contains("{route=/api}"), "{block}");
        assert!(block.contains("parked at "), "{block}");
        assert!(
            block.contains("parked_in_a_named_function"),
            "the real stack is missing:\n{block}"
        );
        assert!(
            block.contains(&format!("created by goroutine {me} at ")),
            "{block}"
        );

        tx.send(7).unwrap();
        assert_eq!(h.join().unwrap(), 7);
    });
}

/// The grouped view collapses identical goroutines with a count.
#[test]
fn dump_grouped_counts_identical_goroutines() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = chan::bounded::<()>(0);
        let hs: Vec<_> = (0..50)
            .map(|_| {
                let rx = rx.clone();
                goro::go(move || {
                    let _ = rx.recv();
                })
            })
            .collect();
        for h in &hs {
            wait_parked(h.id(), WaitReason::ChanReceive);
        }
        let g = debug::dump_grouped();
        assert!(
            g.lines()
                .any(|l| l.starts_with("50 @ [chan receive] parked at ")),
            "{g}"
        );
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// Labels are inherited by goroutines spawned inside `with_labels`, and
/// removed again when it returns.
#[test]
fn labels_are_inherited_and_scoped() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let inner = debug::with_labels(&[("job", "7")], || {
            debug::with_labels(&[("stage", "parse")], || {
                goro::go(debug::labels).join().unwrap()
            })
        });
        assert_eq!(
            inner,
            vec![
                ("job".to_string(), "7".to_string()),
                ("stage".to_string(), "parse".to_string())
            ]
        );
        assert!(debug::labels().is_empty());
        assert!(goro::go(debug::labels).join().unwrap().is_empty());
    });
}

/// verify_none catches a goroutine parked on a channel whose sender is kept
/// alive, naming its park site, and passes once it has exited.
#[test]
fn verify_none_catches_a_leak_and_passes_after() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = chan::bounded::<()>(0);
        let h = goro::Builder::new()
            .name("leaky")
            .spawn(move || {
                let _ = rx.recv();
            })
            .unwrap();
        let err = std::panic::catch_unwind(goro::testing::verify_none).unwrap_err();
        let msg = common::panic_text(&*err).unwrap_or_default();
        assert!(msg.contains("leaked goroutine"), "{msg}");
        assert!(
            msg.contains(&format!(
                "goroutine {} (leaky) [chan receive] parked at",
                h.id()
            )),
            "{msg}"
        );
        drop(tx);
        h.join().unwrap();
        goro::testing::verify_none();
    });
}

/// `#[goro::test]` fails a test that leaves a goroutine behind.
#[goro::test]
#[should_panic(expected = "leaked goroutine")]
fn goro_test_fails_on_a_leak() {
    let (tx, rx) = chan::bounded::<()>(0);
    std::mem::forget(tx);
    let _ = goro::go(move || {
        let _ = rx.recv();
    });
}

/// `#[goro::test(allow_leaks)]` opts out.
#[goro::test(allow_leaks)]
fn goro_test_allow_leaks_opts_out() {
    let (tx, rx) = chan::bounded::<()>(0);
    std::mem::forget(tx);
    let _ = goro::go(move || {
        let _ = rx.recv();
    });
}

/// SIGQUIT under `#[goro::main]` prints every goroutine and exits 2, as Go.
#[test]
fn sigquit_prints_a_dump_and_exits_2() {
    let child = child_command("sigquit_child")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to start its runtime and park.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc_kill(child.id() as i32, 3) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(err.contains("SIGQUIT"), "{err}");
    assert!(err.contains("goroutine 1 (main) [sleep, "), "{err}");
    assert!(err.contains("(napper) [chan receive"), "{err}");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// The child of `sigquit_prints_a_dump_and_exits_2`.
#[test]
#[ignore = "helper: runs only as the child of sigquit_prints_a_dump_and_exits_2"]
fn sigquit_child() {
    if !is_child("sigquit_child") {
        return;
    }
    goro::__private::run_main(|| {
        let (_tx, rx) = chan::bounded::<()>(0);
        let _h = goro::Builder::new().name("napper").spawn(move || {
            let _ = rx.recv();
        });
        goro::time::sleep(Duration::from_secs(30));
    });
}

/// checkdead: `block_on` panics with Go's message and a dump when every
/// goroutine is asleep for good, after unwinding them (destructors run).
#[test]
fn block_on_panics_on_a_deadlock() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d = dropped.clone();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(move || {
            let _guard = common::Tracked(d);
            let (tx, rx) = chan::bounded::<u8>(0);
            let _h = goro::Builder::new().name("stuck").spawn(move || {
                let _ = rx.recv();
            });
            // Holds the only sender and waits on nothing that can come.
            let (_tx2, rx2) = chan::bounded::<u8>(0);
            let _keep = tx;
            rx2.recv()
        })
    }))
    .unwrap_err();
    let msg = common::panic_text(&*err).unwrap_or_default();
    assert!(
        msg.starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{msg}"
    );
    assert!(msg.contains("(stuck) [chan receive"), "{msg}");
    assert!(
        msg.contains("goroutine") && msg.contains("(main) [chan receive"),
        "{msg}"
    );
    assert_eq!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the main goroutine was unwound"
    );
}

/// No false positive: goroutines asleep on timers, and a goroutine woken by
/// a plain thread that is busy for a while, are not a deadlock.
#[test]
fn sleeping_and_thread_fed_goroutines_are_not_a_deadlock() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = chan::bounded::<u8>(0);
    let feeder = std::thread::spawn(move || {
        tx.send(0).unwrap(); // touches goro once, then works for a while
        std::thread::sleep(Duration::from_millis(800));
        tx.send(1).unwrap();
    });
    let got = rt.block_on(move || {
        goro::time::sleep(Duration::from_millis(700));
        let a = rx.recv().unwrap();
        let b = rx.recv().unwrap();
        a + b
    });
    assert_eq!(got, 1);
    feeder.join().unwrap();
}

/// stats() adds up: spawned - finished = live, and parked goroutines are
/// counted per wait reason; the Prometheus text carries the same numbers.
#[test]
fn stats_add_up() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for _ in 0..20 {
            goro::go(|| ()).join().unwrap();
        }
        let (tx, rx) = chan::bounded::<()>(0);
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let rx = rx.clone();
                goro::go(move || {
                    let _ = rx.recv();
                })
            })
            .collect();
        for h in &hs {
            wait_parked(h.id(), WaitReason::ChanReceive);
        }
        let s = debug::stats();
        assert_eq!(s.goroutines, 6, "{s:?}");
        assert_eq!(s.spawned - s.finished, s.goroutines as u64, "{s:?}");
        assert!(s.spawned >= 26, "{s:?}");
        assert!(s.by_reason.contains(&(WaitReason::ChanReceive, 5)), "{s:?}");
        assert_eq!(s.running, 1, "the caller: {s:?}");
        assert!(s.workers.iter().map(|w| w.runs).sum::<u64>() >= 26);
        let text = s.to_prometheus();
        assert!(text.contains("goro_goroutines 6\n"), "{text}");
        assert!(
            text.contains("goro_goroutines_waiting{reason=\"chan receive\"} 5\n"),
            "{text}"
        );
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// The watchdog notices a goroutine count that keeps growing (a leak).
#[test]
fn watchdog_reports_steady_growth() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let grew = rt.block_on(|| {
        let (seen_tx, seen) = chan::bounded::<Vec<usize>>(1);
        let _w = debug::Watchdog::start(Duration::from_millis(30), 3, move |counts| {
            let _ = seen_tx.try_send(counts.to_vec());
        });
        let (_keep, rx) = chan::bounded::<()>(0);
        let start = Instant::now();
        loop {
            let rx = rx.clone();
            let _ = goro::go(move || {
                let _ = rx.recv();
            });
            if let Ok(c) = seen.recv_timeout(Duration::from_millis(10)) {
                break Some(c);
            }
            if start.elapsed() > Duration::from_secs(10) {
                break None;
            }
        }
    });
    let counts = grew.expect("the watchdog never reported the growth");
    assert!(counts.windows(2).all(|w| w[1] > w[0]), "{counts:?}");
    drop(rt);
}
