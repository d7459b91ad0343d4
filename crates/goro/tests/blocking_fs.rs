//! `goro::blocking` and `goro::fs`: blocking work leaves the worker free
//! for other goroutines, panics come back to the caller, the pool runs jobs
//! in parallel, and the fs helpers round-trip files and directories.

mod common;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{panic_text, within};
use goro::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

#[test]
fn blocking_on_one_worker_keeps_other_goroutines_ticking() {
    within(30, || {
        runtime(1).block_on(|| {
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicUsize::new(0));
            let (t, s) = (ticks.clone(), stop.clone());
            let ticker = goro::go(move || {
                while s.load(Ordering::Relaxed) == 0 {
                    goro::time::sleep(Duration::from_millis(5));
                    t.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Let the ticker start.
            while ticks.load(Ordering::Relaxed) == 0 {
                goro::time::sleep(Duration::from_millis(1));
            }
            let before = ticks.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let v = goro::go(|| {
                goro::blocking(|| {
                    thread::sleep(Duration::from_millis(200));
                    7
                })
            })
            .join()
            .unwrap();
            let took = t0.elapsed();
            let during = ticks.load(Ordering::Relaxed) - before;
            stop.store(1, Ordering::Relaxed);
            ticker.join().unwrap();
            assert_eq!(v, 7);
            assert!(took >= Duration::from_millis(200));
            // ~40 ticks in 200 ms; 0 if the sleep had held the only worker.
            assert!(
                during >= 5,
                "only {during} ticks while the blocking call ran"
            );
        })
    });
}

#[test]
fn panic_inside_blocking_is_reraised_to_the_caller() {
    within(30, || {
        let rt = runtime(1);
        let err = rt
            .spawn(|| goro::blocking(|| -> u32 { panic!("boom in the pool") }))
            .join()
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(
            panic_text(&*err.into_panic()).as_deref(),
            Some("boom in the pool")
        );
        // The caller can also catch it, and the pool keeps working.
        rt.block_on(|| {
            let r = std::panic::catch_unwind(|| goro::blocking(|| panic!("again")));
            assert_eq!(panic_text(&*r.unwrap_err()).as_deref(), Some("again"));
            assert_eq!(goro::blocking(|| 1 + 1), 2);
        });
    });
}

#[test]
fn blocking_on_a_plain_thread_runs_inline() {
    let me = thread::current().id();
    let ran_on = goro::blocking(move || thread::current().id());
    assert_eq!(ran_on, me);
}

#[test]
fn blocking_runs_on_a_pool_thread_from_a_goroutine() {
    within(30, || {
        runtime(1).block_on(|| {
            let worker = thread::current().id();
            let pool = goro::blocking(|| thread::current().id());
            assert_ne!(pool, worker);
        })
    });
}

#[test]
fn blocking_calls_run_in_parallel() {
    within(60, || {
        runtime(1).block_on(|| {
            const CALLS: u32 = 40;
            let t0 = Instant::now();
            let hs: Vec<_> = (0..CALLS)
                .map(|i| {
                    goro::go(move || {
                        goro::blocking(move || {
                            thread::sleep(Duration::from_millis(100));
                            i
                        })
                    })
                })
                .collect();
            let sum: u32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            let took = t0.elapsed();
            assert_eq!(sum, (0..CALLS).sum());
            assert!(took >= Duration::from_millis(100));
            // One at a time would take 4 s.
            assert!(
                took < Duration::from_secs(2),
                "blocking calls ran one by one? {took:?}"
            );
        })
    });
}

/// A fresh directory under the temp dir, unique to this process and `name`.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("goro-test-fs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn fs_helpers_round_trip_from_a_goroutine() {
    let root = temp_dir("goroutine");
    let r = root.clone();
    within(30, move || {
        runtime(1).block_on(move || {
            let dir = r.join("a/b");
            goro::fs::create_dir_all(&dir).unwrap();
            assert!(goro::fs::metadata(&dir).unwrap().is_dir());
            let file = dir.join("f.txt");
            assert!(!goro::fs::exists(&file).unwrap());
            goro::fs::write(&file, "hello, fs").unwrap();
            assert!(goro::fs::exists(&file).unwrap());
            assert_eq!(goro::fs::read(&file).unwrap(), b"hello, fs");
            assert_eq!(goro::fs::read_to_string(&file).unwrap(), "hello, fs");
            assert_eq!(goro::fs::metadata(&file).unwrap().len(), 9);
            let copy = dir.join("g.txt");
            assert_eq!(goro::fs::copy(&file, &copy).unwrap(), 9);
            let moved = r.join("a/h.txt");
            goro::fs::rename(&copy, &moved).unwrap();
            assert_eq!(goro::fs::read_to_string(&moved).unwrap(), "hello, fs");
            let mut names: Vec<String> = goro::fs::read_dir(r.join("a"))
                .unwrap()
                .iter()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["b", "h.txt"]);
            let canon = goro::fs::canonicalize(r.join("a/b/../h.txt")).unwrap();
            assert_eq!(canon, std::fs::canonicalize(&moved).unwrap());
            goro::fs::remove_file(&moved).unwrap();
            assert_eq!(
                goro::fs::read(&moved).unwrap_err().kind(),
                io::ErrorKind::NotFound
            );
            goro::fs::create_dir(r.join("empty")).unwrap();
            goro::fs::remove_dir(r.join("empty")).unwrap();
            goro::fs::remove_dir_all(&r).unwrap();
            assert!(!goro::fs::exists(&r).unwrap());
        })
    });
    assert!(!root.exists());
}

#[test]
fn fs_helpers_work_on_a_plain_thread() {
    let root = temp_dir("thread");
    goro::fs::create_dir_all(&root).unwrap();
    let f = root.join("x");
    let contents = vec![1u8, 2, 3];
    goro::fs::write(&f, &contents).unwrap();
    assert_eq!(goro::fs::read(&f).unwrap(), contents);
    assert_eq!(
        goro::fs::read_to_string(root.join("missing"))
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
    goro::fs::remove_dir_all(&root).unwrap();
    assert!(!root.exists());
}
