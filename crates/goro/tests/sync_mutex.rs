//! `goro::sync::Mutex`: exactness under contention, goroutines and plain
//! threads mixed, `try_lock`, a guard held across a park, starvation mode,
//! const construction, Debug/Display, and cancellation by a Runtime drop
//! (API.md "Synchronisation", Go's `sync.Mutex`).

mod common;

use common::{within, Tracked, SLACK};
use goro::chan;
use goro::sync::Mutex;
use goro::Runtime;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `cond` every millisecond until it holds; fails the test after 10 s.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(ms(1));
    }
}

/// 1000 goroutines × 1000 increments of a plain u64 behind the Mutex: no
/// increment is lost.
#[test]
fn exact_count_1000_goroutines_x_1000_increments() {
    let m = Arc::new(Mutex::new(0u64));
    let total = within(60, {
        let m = m.clone();
        move || {
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let m = m.clone();
                    goro::go(move || {
                        for _ in 0..1000 {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            *m.lock()
        }
    });
    assert_eq!(total, 1_000_000);
    assert!(m.try_lock().is_some(), "mutex left locked");
}

/// Plain OS threads and goroutines contend on the same Mutex; the count is
/// exact and a thread holding the lock keeps goroutines out (and vice versa).
#[test]
fn threads_and_goroutines_mixed() {
    let m = Arc::new(Mutex::new(0u64));
    let total = within(60, {
        let m = m.clone();
        move || {
            // Held by this plain thread while everybody starts.
            let g = m.lock();
            let goroutines: Vec<_> = (0..50)
                .map(|_| {
                    let m = m.clone();
                    goro::go(move || {
                        for i in 0..1000 {
                            let mut g = m.lock();
                            *g += 1;
                            if i % 100 == 0 {
                                goro::yield_now(); // holding it across a yield
                            }
                        }
                    })
                })
                .collect();
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let m = m.clone();
                    thread::spawn(move || {
                        for _ in 0..5000 {
                            *m.lock() += 1;
                        }
                    })
                })
                .collect();
            thread::sleep(ms(30));
            assert_eq!(
                *g, 0,
                "somebody changed the data while a thread held the lock"
            );
            drop(g);
            for h in goroutines {
                h.join().unwrap();
            }
            for t in threads {
                t.join().unwrap();
            }
            // A goroutine holds it now: this thread waits.
            let (locked_tx, locked_rx) = chan::bounded(0);
            let holder = {
                let m = m.clone();
                goro::go(move || {
                    let mut g = m.lock();
                    locked_tx.send(()).unwrap();
                    goro::time::sleep(ms(30));
                    *g += 1;
                })
            };
            locked_rx.recv().unwrap();
            let start = Instant::now();
            let v = *m.lock();
            assert!(
                start.elapsed() >= ms(20),
                "a thread got the lock while a goroutine held it"
            );
            holder.join().unwrap();
            v
        }
    });
    assert_eq!(total, 50 * 1000 + 4 * 5000 + 1);
}

/// try_lock fails while the Mutex is held (by this thread or a goroutine) and
/// succeeds once it is released.
#[test]
fn try_lock_fails_while_held_and_succeeds_after() {
    within(20, || {
        let m = Arc::new(Mutex::new(1u32));
        let g = m.lock();
        assert!(m.try_lock().is_none(), "try_lock succeeded on a held mutex");
        let m2 = m.clone();
        let from_goroutine = goro::go(move || m2.try_lock().is_none()).join().unwrap();
        assert!(
            from_goroutine,
            "try_lock in a goroutine succeeded on a held mutex"
        );
        drop(g);
        {
            let mut g = m.try_lock().expect("try_lock on a free mutex");
            *g = 2;
            assert!(m.try_lock().is_none(), "try_lock succeeded twice");
        }
        assert_eq!(*m.lock(), 2);

        // Held by a goroutine parked on a channel.
        let (locked_tx, locked_rx) = chan::bounded(0);
        let (release_tx, release_rx) = chan::bounded::<()>(0);
        let m2 = m.clone();
        let holder = goro::go(move || {
            let _g = m2.lock();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        locked_rx.recv().unwrap();
        assert!(
            m.try_lock().is_none(),
            "try_lock succeeded while a goroutine held it"
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert!(
            m.try_lock().is_some(),
            "try_lock failed after the holder released"
        );
    });
}

/// On a one-worker runtime, a goroutine that holds the Mutex while sleeping
/// (200 ms) parks only itself: another goroutine keeps exchanging messages on a
/// channel, and a goroutine waiting for the lock parks without blocking the
/// worker either.
#[test]
fn holder_sleeping_does_not_stall_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (rounds, released_at_end, waiter_waited) = within(20, move || {
        rt.block_on(|| {
            let m = Arc::new(Mutex::new(0u32));
            let released = Arc::new(AtomicBool::new(false));
            let (locked_tx, locked_rx) = chan::bounded(0);
            let holder = {
                let (m, released) = (m.clone(), released.clone());
                goro::go(move || {
                    let mut g = m.lock();
                    locked_tx.send(Instant::now()).unwrap();
                    goro::time::sleep(ms(200));
                    *g += 1;
                    released.store(true, Ordering::SeqCst);
                })
            };
            let locked_at = locked_rx.recv().unwrap();
            // A waiter for the lock, on the same worker.
            let waiter = {
                let m = m.clone();
                goro::go(move || {
                    let v = *m.lock();
                    (v, locked_at.elapsed())
                })
            };
            // Ping-pong with an echo goroutine while the holder sleeps.
            let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
            let echo = goro::go(move || {
                for v in &ping_rx {
                    pong_tx.send(v + 1).unwrap();
                }
            });
            let mut rounds = 0;
            for i in 0..100 {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i + 1);
                rounds += 1;
            }
            let released_at_end = released.load(Ordering::SeqCst);
            drop(ping_tx);
            echo.join().unwrap();
            holder.join().unwrap();
            let (seen, waited) = waiter.join().unwrap();
            assert_eq!(
                seen, 1,
                "the waiter got the lock before the holder's update"
            );
            (rounds, released_at_end, waited)
        })
    });
    assert_eq!(rounds, 100);
    assert!(
        !released_at_end,
        "100 channel round trips did not fit into the holder's 200 ms sleep: \
         the worker was stalled"
    );
    assert!(
        waiter_waited >= ms(200),
        "the waiter got the lock after {waiter_waited:?}, before the holder's 200 ms sleep ended"
    );
}

/// The same with the holder parked on a channel receive that another goroutine
/// of the same single worker satisfies: holding the lock across the park
/// does not deadlock the worker.
#[test]
fn holder_parked_on_channel_recv_does_not_stall_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let order = within(20, move || {
        rt.block_on(|| {
            let m = Arc::new(Mutex::new(Vec::<&'static str>::new()));
            let (go_tx, go_rx) = chan::bounded::<()>(0);
            let (locked_tx, locked_rx) = chan::bounded(0);
            let holder = {
                let m = m.clone();
                goro::go(move || {
                    let mut g = m.lock();
                    locked_tx.send(()).unwrap();
                    go_rx.recv().unwrap(); // parks holding the lock
                    g.push("holder");
                })
            };
            locked_rx.recv().unwrap();
            let waiters: Vec<_> = (0..10)
                .map(|_| {
                    let m = m.clone();
                    goro::go(move || m.lock().push("waiter"))
                })
                .collect();
            goro::time::sleep(ms(10));
            // The worker runs this goroutine although 11 others wait on the lock.
            go_tx.send(()).unwrap();
            holder.join().unwrap();
            for w in waiters {
                w.join().unwrap();
            }
            let v = m.lock().clone();
            v
        })
    });
    assert_eq!(order.len(), 11);
    assert_eq!(
        order[0], "holder",
        "a waiter got in while the holder was parked"
    );
}

/// 100 goroutines queue on a held Mutex; none gets in before the release and
/// every one gets in after it.
#[test]
fn contended_waiters_all_eventually_get_the_lock() {
    let m = Arc::new(Mutex::new(0u32));
    let g = m.lock();
    let started = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let (m, started) = (m.clone(), started.clone());
            goro::go(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let mut g = m.lock();
                *g += 1;
                goro::yield_now(); // still held: the others keep waiting
            })
        })
        .collect();
    wait_until("all 100 waiters started", || {
        started.load(Ordering::SeqCst) == 100
    });
    thread::sleep(ms(20));
    assert_eq!(*g, 0, "a waiter got in while the lock was held");
    drop(g);
    within(20, move || {
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(*m.lock(), 100);
}

/// Starvation-mode sanity bound: four goroutines on two workers re-lock the
/// Mutex immediately after each unlock; a separate waiter (a goroutine and a
/// plain thread, several times each) still gets it well within 1 s, and every
/// hammering goroutine makes progress. (Tail latency is measured in the
/// benchmarks; this only catches unbounded starvation.)
#[test]
fn starvation_mode_bounds_the_wait_under_a_hammering_loop() {
    const HAMMERS: usize = 4;
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..HAMMERS).map(|_| AtomicU64::new(0)).collect());
    let hammers: Vec<_> = (0..HAMMERS)
        .map(|i| {
            let (m, stop, counts) = (m.clone(), stop.clone(), counts.clone());
            rt.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut g = m.lock();
                    *g += 1;
                    // A short critical section, then straight back to lock().
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    drop(g);
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    thread::sleep(ms(100)); // let the hammering get going

    // A waiter on a plain thread.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let m = m.clone();
        let waited = within(30, move || {
            let start = Instant::now();
            let g = m.lock();
            let waited = start.elapsed();
            drop(g);
            waited
        });
        worst = worst.max(waited);
        thread::sleep(ms(5));
    }
    // A waiter goroutine in the same runtime.
    let m2 = m.clone();
    let waiter = rt.spawn(move || {
        let mut worst = Duration::ZERO;
        for _ in 0..10 {
            let start = Instant::now();
            let g = m2.lock();
            worst = worst.max(start.elapsed());
            drop(g);
            goro::time::sleep(ms(5));
        }
        worst
    });
    let goroutine_worst = within(30, move || waiter.join().unwrap());
    eprintln!(
        "longest waits under the hammering loop: thread {worst:?}, goroutine {goroutine_worst:?}"
    );

    // Every hammer makes progress over a further window.
    let before: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    thread::sleep(ms(100));
    let after: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    stop.store(true, Ordering::Relaxed);
    within(30, move || {
        for h in hammers {
            h.join().unwrap();
        }
    });
    assert!(
        worst < Duration::from_secs(1),
        "a plain-thread waiter waited {worst:?} under the hammering loop"
    );
    assert!(
        goroutine_worst < Duration::from_secs(1),
        "a goroutine waiter waited {goroutine_worst:?} under the hammering loop"
    );
    for i in 0..HAMMERS {
        assert!(
            before[i] > 0 && after[i] > before[i],
            "hammer {i} made no progress: counts before {before:?}, after {after:?}"
        );
    }
    drop(rt);
}

static STATIC_LOG: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static STATIC_COUNT: Mutex<u64> = Mutex::new(0);

/// `Mutex::new` is a const fn: a Mutex in a static works from goroutines.
#[test]
fn const_new_in_a_static() {
    within(20, || {
        let hs: Vec<_> = (0..20u32)
            .map(|i| {
                goro::go(move || {
                    for _ in 0..100 {
                        *STATIC_COUNT.lock() += 1;
                    }
                    STATIC_LOG.lock().push(i);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(*STATIC_COUNT.lock(), 2000);
    let mut log = STATIC_LOG.lock().clone();
    log.sort_unstable();
    assert_eq!(log, (0..20).collect::<Vec<_>>());
}

/// get_mut borrows the data without locking; into_inner hands it back, also
/// after goroutines have used the Mutex.
#[test]
fn get_mut_and_into_inner() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().push(2);
    assert_eq!(*m.lock(), vec![1, 2]);
    assert_eq!(m.into_inner(), vec![1, 2]);

    let m = Arc::new(Mutex::new(String::new()));
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let m = m.clone();
            goro::go(move || m.lock().push('x'))
        })
        .collect();
    within(20, move || {
        for h in hs {
            h.join().unwrap();
        }
    });
    let mut m = Arc::try_unwrap(m).expect("every goroutine dropped its clone");
    assert_eq!(m.get_mut().len(), 10);
    assert_eq!(m.into_inner(), "x".repeat(10));
}

/// Formatting a locked Mutex with `{:?}` does not wait for the lock (and does
/// not show the data); unlocked, it shows the data.
#[test]
fn debug_does_not_deadlock_while_locked() {
    let m = Arc::new(Mutex::new(12345u32));
    let g = m.lock();
    let m2 = m.clone();
    let locked = within(10, move || format!("{m2:?}"));
    assert!(locked.contains("Mutex"), "{locked}");
    assert!(
        !locked.contains("12345"),
        "Debug of a locked Mutex read the data: {locked}"
    );
    // The same from a goroutine.
    let m2 = m.clone();
    let in_goroutine = within(10, move || {
        goro::go(move || format!("{m2:?}")).join().unwrap()
    });
    assert!(!in_goroutine.contains("12345"), "{in_goroutine}");
    drop(g);
    let unlocked = format!("{m:?}");
    assert!(
        unlocked.contains("12345"),
        "Debug of an unlocked Mutex: {unlocked}"
    );
    // Debug never leaves it locked.
    assert!(m.try_lock().is_some());
}

/// A guard formats as its data, for `{}` and `{:?}`.
#[test]
fn guard_display_and_debug() {
    let m = Mutex::new(String::from("hello"));
    let g = m.lock();
    assert_eq!(format!("{g}"), "hello");
    assert_eq!(format!("{g:?}"), "\"hello\"");
    drop(g);
    let m = Mutex::new(vec![1, 2]);
    assert_eq!(format!("{:?}", m.lock()), "[1, 2]");
}

/// Dropping a Runtime while its goroutines wait on a Mutex that a plain thread
/// holds forever unwinds them (destructors run, handles report cancelled); the
/// Mutex stays usable afterwards.
#[test]
fn runtime_drop_unwinds_waiters_on_a_mutex_held_by_a_thread() {
    let m = Arc::new(Mutex::new(0u32));
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let g = m.lock();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (m, started) = (m.clone(), started.clone());
            let guard = Tracked(dropped.clone());
            rt.spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                *m.lock() += 1;
            })
        })
        .collect();
    wait_until("all 20 waiters started", || {
        started.load(Ordering::SeqCst) == 20
    });
    thread::sleep(ms(50)); // let them park on the lock
    within(20, move || drop(rt));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        20,
        "destructors of the waiters did not run"
    );
    for h in handles {
        let err = within(10, move || h.join()).expect_err("a cancelled waiter has no value");
        assert!(err.is_cancelled(), "{err:?}");
    }
    assert_eq!(*g, 0, "a cancelled waiter got the lock");
    drop(g);
    check_usable(&m, 0);
}

/// As above, with the Mutex held forever by a goroutine of the same runtime
/// (parked on a channel that never delivers): the holder and the waiters are
/// all unwound, and the Mutex ends up unlocked and usable. Every waiter was
/// parked when the drop began, so none may take the lock that the unwinding
/// holder releases and run on. Five rounds, as the drop races with the
/// holder's unwinding.
#[test]
fn runtime_drop_unwinds_holder_and_waiters() {
    const WAITERS: usize = 20;
    let mut completed_per_round = Vec::new();
    for _round in 0..5 {
        let m = Arc::new(Mutex::new(0u32));
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::builder().workers(2).build().unwrap();
        let (locked_tx, locked_rx) = chan::bounded(0);
        let holder = {
            let m = m.clone();
            let guard = Tracked(dropped.clone());
            rt.spawn(move || {
                let _guard = guard;
                let _g = m.lock();
                locked_tx.send(()).unwrap();
                chan::never::<()>().recv().unwrap();
            })
        };
        within(10, move || locked_rx.recv().unwrap());
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (m, started) = (m.clone(), started.clone());
                let guard = Tracked(dropped.clone());
                rt.spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    *m.lock() += 1;
                })
            })
            .collect();
        wait_until("all waiters started", || {
            started.load(Ordering::SeqCst) == WAITERS
        });
        thread::sleep(ms(20)); // let them park on the lock
        within(20, move || drop(rt));
        assert_eq!(dropped.load(Ordering::SeqCst), WAITERS + 1);
        // The holder's guard unlocked the Mutex while unwinding.
        let value = *m
            .try_lock()
            .expect("the mutex is still locked after the runtime drop");
        check_usable(&m, value);
        assert!(within(10, move || holder.join())
            .unwrap_err()
            .is_cancelled());
        let completed = waiters
            .into_iter()
            .map(|h| within(10, move || h.join()))
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(
            completed, value as usize,
            "each waiter that completed made one increment"
        );
        completed_per_round.push(completed);
    }
    assert_eq!(
        completed_per_round, [0; 5],
        "waiters (of {WAITERS}) per round that were parked on the Mutex when the \
         Runtime drop began, yet took the lock and completed normally"
    );
}

/// The Mutex is unlocked, holds `expect`, and works under fresh contention.
fn check_usable(m: &Arc<Mutex<u32>>, expect: u32) {
    {
        let g = m
            .try_lock()
            .expect("the mutex is still locked after the runtime drop");
        assert_eq!(*g, expect);
    }
    let m = m.clone();
    let total = within(20, move || {
        let start = Instant::now();
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let m = m.clone();
                goro::go(move || {
                    for _ in 0..100 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for _ in 0..100 {
            *m.lock() += 1;
        }
        for h in hs {
            h.join().unwrap();
        }
        assert!(start.elapsed() < SLACK);
        *m.lock()
    });
    assert_eq!(total, expect + 2100);
}

/// `Mutex<T>` is Send + Sync for `T: Send` (as std's), so it can be shared
/// between goroutines and threads.
#[test]
fn mutex_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mutex<u64>>();
    assert_send_sync::<Mutex<std::cell::Cell<u8>>>(); // Send but not Sync data
    assert_send_sync::<Arc<Mutex<Vec<String>>>>();
}
