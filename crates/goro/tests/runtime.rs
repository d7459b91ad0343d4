//! Explicit runtimes: `Runtime::builder`, `block_on`, `spawn`, what dropping a
//! runtime does to its goroutines, and `#[goro::test]` (API.md "Goroutines").

mod common;

use common::{
    assert_child_passed, child_command, child_command_in_shell, is_child, panic_text, run_child,
    within, Tracked,
};
use goro::chan;
use goro::Runtime;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Runtime::builder().workers(n).build() gives a runtime whose main goroutine returns a value.
#[test]
fn builder_builds_and_block_on_returns_value() {
    let rt = Runtime::builder()
        .workers(2)
        .build()
        .expect("build a runtime");
    assert_eq!(rt.block_on(|| 6 * 7), 42);
    let s = rt.block_on(|| String::from("from the main goroutine"));
    assert_eq!(s, "from the main goroutine");
    // block_on's body is a goroutine.
    assert!(rt.block_on(goro::current_id).is_some());
}

/// GOMAXPROCS: a runtime with n workers runs its goroutines on at most n OS threads.
#[test]
fn goroutines_run_on_at_most_n_worker_threads() {
    for n in [1usize, 3] {
        let rt = Runtime::builder().workers(n).build().unwrap();
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let threads = threads.clone();
                rt.spawn(move || {
                    for _ in 0..3 {
                        threads.lock().unwrap().insert(thread::current().id());
                        goro::time::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let seen = threads.lock().unwrap().len();
        assert!(
            seen >= 1 && seen <= n,
            "workers({n}) ran goroutines on {seen} threads"
        );
        assert!(!threads.lock().unwrap().contains(&thread::current().id()));
    }
}

/// A panic in block_on's main goroutine is re-raised on the caller with its payload.
#[test]
fn block_on_reraises_panic_of_main_goroutine() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let res = panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(|| -> u32 { panic!("main goroutine fails: {}", 99) })
    }));
    let payload = res.expect_err("block_on must re-raise the panic");
    assert_eq!(
        panic_text(&*payload).as_deref(),
        Some("main goroutine fails: 99")
    );
    // The runtime is still usable after that.
    assert_eq!(rt.block_on(|| 5), 5);
}

/// block_on needs no 'static: the main goroutine may borrow the caller's stack.
#[test]
fn block_on_borrows_non_static_data() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let numbers: Vec<u64> = (1..=10).collect();
    let mut log = String::new();
    let total = rt.block_on(|| {
        log.push_str("ran");
        numbers.iter().sum::<u64>()
    });
    assert_eq!(total, 55);
    assert_eq!(log, "ran");
    // scope inside block_on may hand that borrow on to more goroutines.
    let doubled = rt.block_on(|| {
        let out = Mutex::new(Vec::new());
        goro::scope(|s| {
            for n in &numbers {
                let out = &out;
                let _ = s.go(move || out.lock().unwrap().push(n * 2));
            }
        });
        let mut v = out.into_inner().unwrap();
        v.sort();
        v
    });
    assert_eq!(doubled, (1..=10).map(|n| n * 2).collect::<Vec<u64>>());
}

/// rt.spawn starts a goroutine in that runtime from a plain thread; join returns its value.
#[test]
fn runtime_spawn_from_plain_thread() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            rt.spawn(move || {
                assert!(goro::current_id().is_some());
                goro::yield_now();
                i * 3
            })
        })
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 3 * 99 * 100 / 2);
}

/// Goroutines spawned with `go` inside a runtime belong to that runtime (its NumGoroutine).
#[test]
fn go_inside_a_runtime_spawns_into_it() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = chan::bounded::<()>(0);
    let (counted, base) = rt.block_on(|| {
        let base = goro::num_goroutine();
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let rx = rx.clone();
                goro::go(move || rx.recv().is_err())
            })
            .collect();
        let counted = goro::num_goroutine();
        tx.close();
        for h in hs {
            assert!(h.join().unwrap());
        }
        (counted, base)
    });
    assert_eq!(counted, base + 5);
}

/// Dropping a runtime unwinds goroutines parked forever (destructors run) and
/// their handles report is_cancelled().
#[test]
fn dropping_runtime_unwinds_parked_goroutines() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (keep_tx, rx) = chan::bounded::<u32>(0); // keep_tx stays alive: recv never ends
    let mut handles = Vec::new();
    for i in 0..40u32 {
        let guard = Tracked(dropped.clone());
        let started = started.clone();
        let rx = rx.clone();
        handles.push(rt.spawn(move || -> u32 {
            let _guard = guard;
            started.fetch_add(1, Ordering::SeqCst);
            match i % 4 {
                0 => rx.recv().unwrap_or(0),
                1 => chan::never::<u32>().recv().unwrap_or(0),
                2 => {
                    goro::time::sleep(Duration::from_secs(3600));
                    0
                }
                _ => goro::select! {
                    recv(rx) -> v => v.unwrap_or(0),
                    recv(goro::time::after(Duration::from_secs(3600))) -> _ => 0,
                },
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.load(Ordering::SeqCst) < 40 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(started.load(Ordering::SeqCst), 40);
    thread::sleep(Duration::from_millis(50)); // let them reach their parks
    assert_eq!(dropped.load(Ordering::SeqCst), 0);

    within(20, move || drop(rt));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        40,
        "destructors of parked goroutines did not run"
    );
    for h in handles {
        let err = within(10, move || h.join()).expect_err("a cancelled goroutine has no value");
        assert!(
            err.is_cancelled(),
            "handle of a goroutine ended by Runtime drop: {err:?}"
        );
        assert!(!err.is_panic());
    }
    drop(keep_tx);
}

/// Dropping a one-worker runtime right after 100 spawns cancels queued and parked goroutines alike.
#[test]
fn dropping_runtime_cancels_queued_and_parked_goroutines() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (gate_tx, gate_rx) = chan::bounded::<()>(0);
    // Fill the runtime with parked goroutines and queued ones.
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let guard = Tracked(dropped.clone());
            let gate_rx = gate_rx.clone();
            rt.spawn(move || {
                let _guard = guard;
                let _ = gate_rx.recv();
            })
        })
        .collect();
    within(20, move || drop(rt));
    assert_eq!(dropped.load(Ordering::SeqCst), 100);
    for h in handles {
        assert!(within(10, move || h.join()).unwrap_err().is_cancelled());
    }
    drop(gate_tx);
}

/// Calling block_on from inside one of the runtime's own goroutines panics with a message.
#[test]
fn nested_block_on_panics() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let outcome = rt.block_on(|| {
        let inner = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(|| 1)));
        inner.map_err(|p| panic_text(&*p).unwrap_or_default())
    });
    let msg = outcome.expect_err("nested block_on must panic instead of deadlocking");
    assert!(!msg.is_empty(), "the panic should carry a message");
}

/// checkdead: block_on panics with Go's deadlock text when nothing can ever wake main.
#[test]
fn block_on_reports_deadlock() {
    let res = within(10, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let res = panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(|| {
                let (_tx, rx) = chan::bounded::<u8>(0);
                rx.recv()
            })
        }));
        res.map_err(|p| panic_text(&*p).unwrap_or_default())
    });
    let msg = res.expect_err("block_on must panic on a deadlock");
    assert!(
        msg.contains("all goroutines are asleep - deadlock!"),
        "unexpected deadlock message: {msg}"
    );
}

/// `#[goro::test]`: the body runs as the main goroutine of a runtime.
#[goro::test]
fn test_attribute_body_runs_as_a_goroutine() {
    assert!(goro::current_id().is_some());
    let (tx, rx) = chan::bounded(0);
    let h = goro::go(move || tx.send(String::from("hi")).unwrap());
    assert_eq!(rx.recv().unwrap(), "hi");
    h.join().unwrap();
    let start = Instant::now();
    goro::time::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
}

/// `#[goro::test]` uses a fresh runtime: its goroutine count is its own.
#[goro::test]
fn test_attribute_uses_a_fresh_runtime() {
    let base = goro::num_goroutine();
    let (tx, rx) = chan::bounded::<()>(0);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            goro::go(move || rx.recv().is_err())
        })
        .collect();
    assert_eq!(goro::num_goroutine(), base + 3);
    drop(tx);
    for h in hs {
        assert!(h.join().unwrap());
    }
}

/// A panic in a `#[goro::test]` body fails the test like a plain #[test] (should_panic works).
#[goro::test]
#[should_panic(expected = "expected failure inside goro::test")]
fn test_attribute_propagates_panics() {
    goro::yield_now();
    panic!("expected failure inside goro::test");
}

/// Child: the default runtime under GORO_MAXPROCS=1 runs every goroutine on one thread.
#[test]
#[ignore = "helper: runs only as the child of goro_maxprocs_sets_default_worker_count"]
fn child_maxprocs_one() {
    if !is_child("child_maxprocs_one") {
        return;
    }
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let threads = threads.clone();
            goro::go(move || {
                for _ in 0..3 {
                    threads.lock().unwrap().insert(thread::current().id());
                    goro::time::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(threads.lock().unwrap().len(), 1, "GORO_MAXPROCS=1 ignored");
}

/// GOMAXPROCS: the environment variable GORO_MAXPROCS sets the default runtime's worker count.
#[test]
fn goro_maxprocs_sets_default_worker_count() {
    let name = "child_maxprocs_one";
    let out = run_child(child_command(name).env("GORO_MAXPROCS", "1"));
    assert_child_passed(name, &out);
}

/// Soft and hard "Max open files" of this process, from /proc/self/limits.
fn open_file_limits() -> (String, String) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/self/limits");
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

/// Child: started with a low soft limit, the runtime raises it to the hard limit.
#[test]
#[ignore = "helper: runs only as the child of runtime_raises_open_file_limit"]
fn child_open_file_limit() {
    if !is_child("child_open_file_limit") {
        return;
    }
    let (soft, hard) = open_file_limits();
    assert_eq!(
        soft, "256",
        "the parent lowered the soft limit for this child"
    );
    assert_ne!(soft, hard);
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| ());
    let (soft, hard) = open_file_limits();
    assert_eq!(
        soft, hard,
        "the runtime did not raise the soft open-file limit"
    );
}

/// As Go does at start, the runtime raises the soft open-file limit to the hard limit.
#[test]
fn runtime_raises_open_file_limit() {
    let name = "child_open_file_limit";
    let out = run_child(&mut child_command_in_shell(name, "ulimit -Sn 256"));
    assert_child_passed(name, &out);
}

/// Dropping a runtime waits for a running goroutine to reach its next park,
/// then unwinds it there; a goroutine that already finished keeps its result.
#[test]
fn dropping_runtime_waits_for_running_goroutines_to_park() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let finished = rt.spawn(|| String::from("done before the drop"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !finished.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(finished.is_finished());

    let (started_tx, started_rx) = mpsc::channel();
    let reached_park = Arc::new(AtomicUsize::new(0));
    let busy = {
        let guard = Tracked(dropped.clone());
        let reached_park = reached_park.clone();
        rt.spawn(move || {
            let _guard = guard;
            started_tx.send(()).unwrap();
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop(); // runs without parking
            }
            reached_park.store(1, Ordering::SeqCst);
            let _ = chan::never::<()>().recv();
        })
    };
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    within(20, move || drop(rt));
    assert_eq!(
        reached_park.load(Ordering::SeqCst),
        1,
        "drop cut a running goroutine short"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "its destructors did not run"
    );
    assert!(within(10, move || busy.join()).unwrap_err().is_cancelled());
    assert_eq!(
        within(10, move || finished.join()).expect("finished before the drop"),
        "done before the drop"
    );
}
