//! `goro::sync::RwLock`: readers share, a writer excludes everybody, writer
//! preference as Go's `sync.RWMutex` (a waiting writer holds back new
//! readers), waiting readers proceed together after a writer, `try_*`, and
//! exactness under mixed load (API.md "Synchronisation").

mod common;

use common::{within, Tracked};
use goro::chan;
use goro::sync::RwLock;
use goro::Runtime;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
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

/// Waits until a writer is queued on `lock`: while readers hold it, a new
/// `try_read` fails only once a writer waits (writer preference).
fn wait_for_queued_writer<T>(lock: &RwLock<T>) {
    wait_until("try_read fails because a writer waits", || {
        lock.try_read().is_none()
    });
}

/// Eight goroutines all hold read guards at the same time: each reports from
/// inside `read()` and then waits, still holding its guard, until all eight
/// are inside. Exclusive readers would never get there.
#[test]
fn readers_hold_the_lock_at_the_same_time() {
    const N: usize = 8;
    let lock = Arc::new(RwLock::new(7u32));
    let inside = Arc::new(AtomicUsize::new(0));
    let (in_tx, in_rx) = chan::unbounded::<()>();
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let readers: Vec<_> = (0..N)
        .map(|_| {
            let (lock, inside) = (lock.clone(), inside.clone());
            let (in_tx, release_rx) = (in_tx.clone(), release_rx.clone());
            goro::go(move || {
                let g = lock.read();
                inside.fetch_add(1, Ordering::SeqCst);
                in_tx.send(()).unwrap();
                let _ = release_rx.recv(); // parks holding the read guard
                let v = *g;
                inside.fetch_sub(1, Ordering::SeqCst);
                v
            })
        })
        .collect();
    drop(in_tx);
    within(20, move || {
        for _ in 0..N {
            in_rx.recv().unwrap();
        }
    });
    assert_eq!(inside.load(Ordering::SeqCst), N, "readers inside at once");
    // Still shared: another reader gets in at once, a writer does not.
    assert!(
        lock.try_read().is_some(),
        "try_read failed while only readers hold it"
    );
    assert!(
        lock.try_write().is_none(),
        "try_write succeeded while 8 readers hold it"
    );
    release_tx.close();
    within(20, move || {
        for r in readers {
            assert_eq!(r.join().unwrap(), 7);
        }
    });
    assert!(lock.try_write().is_some());
}

/// The same with plain OS threads, which meet at a std Barrier while each
/// holds a read guard.
#[test]
fn readers_share_across_plain_threads() {
    const N: usize = 4;
    let lock = Arc::new(RwLock::new(()));
    let meet = Arc::new(std::sync::Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (lock, meet) = (lock.clone(), meet.clone());
            thread::spawn(move || {
                let _g = lock.read();
                meet.wait();
            })
        })
        .collect();
    within(20, move || {
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// A writer excludes readers and other writers: both wait until it releases,
/// and `try_read`/`try_write` fail meanwhile.
#[test]
fn writer_excludes_readers_and_writers() {
    let lock = Arc::new(RwLock::new(0u32));
    let mut w = lock.write();
    let reader_in = Arc::new(AtomicBool::new(false));
    let writer_in = Arc::new(AtomicBool::new(false));
    let reader = {
        let (lock, reader_in) = (lock.clone(), reader_in.clone());
        goro::go(move || {
            let g = lock.read();
            reader_in.store(true, Ordering::SeqCst);
            *g
        })
    };
    let writer = {
        let (lock, writer_in) = (lock.clone(), writer_in.clone());
        goro::go(move || {
            let mut g = lock.write();
            writer_in.store(true, Ordering::SeqCst);
            *g += 10;
        })
    };
    let thread_reader = {
        let lock = lock.clone();
        thread::spawn(move || *lock.read())
    };
    thread::sleep(ms(50));
    assert!(
        !reader_in.load(Ordering::SeqCst),
        "a reader got in while a writer held the lock"
    );
    assert!(
        !writer_in.load(Ordering::SeqCst),
        "two writers held the lock"
    );
    assert!(
        lock.try_read().is_none(),
        "try_read succeeded while a writer held the lock"
    );
    assert!(
        lock.try_write().is_none(),
        "try_write succeeded while a writer held the lock"
    );
    *w = 1;
    drop(w);
    let (seen, thread_seen) = within(20, move || {
        writer.join().unwrap();
        (reader.join().unwrap(), thread_reader.join().unwrap())
    });
    // Each reader saw the first writer's value, or the second one's too.
    assert!(seen == 1 || seen == 11, "reader saw {seen}");
    assert!(
        thread_seen == 1 || thread_seen == 11,
        "thread reader saw {thread_seen}"
    );
    assert_eq!(*lock.read(), 11);
}

/// Writer preference (Go's RWMutex): while readers hold the lock and a writer
/// waits, a new `try_read` fails and a new `read` waits until after the
/// writer has had the lock.
#[test]
fn waiting_writer_holds_back_new_readers() {
    let lock = Arc::new(RwLock::new(Vec::<&'static str>::new()));
    let order = Arc::new(StdMutex::new(Vec::new()));
    let first_reader = lock.read();
    assert!(
        lock.try_read().is_some(),
        "no writer waits yet: readers share"
    );

    let writer = {
        let (lock, order) = (lock.clone(), order.clone());
        goro::go(move || {
            let mut g = lock.write();
            order.lock().unwrap().push("writer");
            goro::time::sleep(ms(20)); // hold it a while
            g.push("writer");
        })
    };
    wait_for_queued_writer(&lock);
    assert!(
        lock.try_read().is_none(),
        "try_read succeeded past a waiting writer"
    );
    assert!(lock.try_write().is_none());

    let late_reader = {
        let (lock, order) = (lock.clone(), order.clone());
        goro::go(move || {
            let g = lock.read();
            order.lock().unwrap().push("late reader");
            g.clone()
        })
    };
    let thread_reader = {
        let (lock, order) = (lock.clone(), order.clone());
        thread::spawn(move || {
            let g = lock.read();
            order.lock().unwrap().push("late reader");
            g.clone()
        })
    };
    thread::sleep(ms(50));
    assert!(
        order.lock().unwrap().is_empty(),
        "somebody got in while the first reader held the lock: {:?}",
        order.lock().unwrap()
    );
    // The first reader still reads freely.
    assert!(first_reader.is_empty());
    drop(first_reader);

    let (seen, thread_seen) = within(20, move || {
        writer.join().unwrap();
        (late_reader.join().unwrap(), thread_reader.join().unwrap())
    });
    assert_eq!(
        *order.lock().unwrap(),
        ["writer", "late reader", "late reader"]
    );
    assert_eq!(seen, ["writer"], "the late reader ran before the writer");
    assert_eq!(
        thread_seen,
        ["writer"],
        "the late thread reader ran before the writer"
    );
}

/// After a writer releases, every reader that waited for it proceeds
/// together: all of them hold read guards at the same time.
#[test]
fn waiting_readers_proceed_together_after_the_writer() {
    const N: usize = 6;
    let lock = Arc::new(RwLock::new(0u32));
    let w = lock.write();
    let (in_tx, in_rx) = chan::unbounded::<u32>();
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let started = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..N)
        .map(|_| {
            let (lock, started) = (lock.clone(), started.clone());
            let (in_tx, release_rx) = (in_tx.clone(), release_rx.clone());
            goro::go(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let g = lock.read();
                in_tx.send(*g).unwrap();
                let _ = release_rx.recv(); // hold the guard until released
            })
        })
        .collect();
    drop(in_tx);
    wait_until("all readers started", || {
        started.load(Ordering::SeqCst) == N
    });
    thread::sleep(ms(30));
    assert!(
        in_rx.try_recv().is_err(),
        "a reader got in while the writer held the lock"
    );
    let mut w = w;
    *w = 5;
    drop(w);
    // All N get in while none has released its guard.
    let seen = within(20, move || {
        (0..N).map(|_| in_rx.recv().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(seen, vec![5; N]);
    assert!(
        lock.try_write().is_none(),
        "try_write succeeded while readers hold the lock"
    );
    release_tx.close();
    within(20, move || {
        for r in readers {
            r.join().unwrap();
        }
    });
    assert!(lock.try_write().is_some());
}

/// try_write fails while any reader holds the lock (one or several, from this
/// thread or a goroutine), and succeeds once the last has gone.
#[test]
fn try_write_fails_while_any_reader_holds() {
    let lock = Arc::new(RwLock::new(1u8));
    let r1 = lock.read();
    assert!(lock.try_write().is_none());
    let r2 = lock.try_read().expect("readers share");
    assert!(lock.try_write().is_none());
    drop(r1);
    assert!(
        lock.try_write().is_none(),
        "try_write succeeded while one reader remained"
    );
    drop(r2);
    {
        let mut w = lock.try_write().expect("try_write on a free lock");
        *w = 2;
        assert!(
            lock.try_read().is_none(),
            "try_read succeeded while a writer held the lock"
        );
        assert!(lock.try_write().is_none());
    }
    // A reader parked in a goroutine.
    let (in_tx, in_rx) = chan::bounded(0);
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    let l = lock.clone();
    let reader = goro::go(move || {
        let g = l.read();
        in_tx.send(*g).unwrap();
        let _ = release_rx.recv();
    });
    assert_eq!(within(10, move || in_rx.recv().unwrap()), 2);
    assert!(
        lock.try_write().is_none(),
        "try_write succeeded while a goroutine reads"
    );
    release_tx.send(()).unwrap();
    within(10, move || reader.join().unwrap());
    assert!(lock.try_write().is_some());
}

/// Mixed load from goroutines and plain threads: writers bump two fields
/// together, readers never see them differ or go backwards, and no write is
/// lost.
#[test]
fn exact_under_mixed_read_write_load() {
    const WRITERS: u64 = 8;
    const WRITES: u64 = 2000;
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let reads = Arc::new(AtomicUsize::new(0));
    within(60, {
        let (lock, reads) = (lock.clone(), reads.clone());
        move || {
            let mut hs = Vec::new();
            for i in 0..WRITERS {
                let lock = lock.clone();
                hs.push(goro::go(move || {
                    for j in 0..WRITES {
                        let mut g = lock.write();
                        g.0 += 1;
                        if (i + j) % 64 == 0 {
                            goro::yield_now(); // a torn update would show now
                        }
                        g.1 += 1;
                    }
                }));
            }
            for _ in 0..8 {
                let (lock, reads) = (lock.clone(), reads.clone());
                hs.push(goro::go(move || {
                    let mut last = 0;
                    for k in 0..2000u64 {
                        let g = lock.read();
                        assert_eq!(g.0, g.1, "a reader saw a half-done write");
                        assert!(g.0 >= last, "the count went backwards");
                        last = g.0;
                        if k % 64 == 0 {
                            goro::yield_now();
                        }
                        drop(g);
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    thread::spawn(move || {
                        for k in 0..2000u64 {
                            if k % 2 == 0 {
                                let mut g = lock.write();
                                g.0 += 1;
                                g.1 += 1;
                            } else {
                                let g = lock.read();
                                assert_eq!(g.0, g.1, "a thread reader saw a half-done write");
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            for t in threads {
                t.join().unwrap();
            }
        }
    });
    let total = WRITERS * WRITES + 2 * 1000;
    assert_eq!(*lock.read(), (total, total));
    assert_eq!(reads.load(Ordering::Relaxed), 8 * 2000);
}

static STATIC_LOCK: RwLock<u32> = RwLock::new(3);

/// `RwLock::new` is a const fn; `get_mut` and `into_inner` need no locking.
#[test]
fn const_new_get_mut_into_inner() {
    assert_eq!(*STATIC_LOCK.read(), 3);
    *STATIC_LOCK.write() += 1;
    assert_eq!(*STATIC_LOCK.read(), 4);
    let mut l = RwLock::new(vec![1]);
    l.get_mut().push(2);
    assert_eq!(l.into_inner(), vec![1, 2]);
}

/// A writer that waits (behind a reader) when its Runtime is dropped is
/// unwound, and no longer holds back the readers queued behind it.
#[test]
fn cancelled_waiting_writer_releases_the_readers_behind_it() {
    let lock = Arc::new(RwLock::new(0u32));
    let first_reader = lock.read();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let writer = {
        let lock = lock.clone();
        let guard = Tracked(dropped.clone());
        rt.spawn(move || {
            let _guard = guard;
            *lock.write() += 1;
        })
    };
    wait_for_queued_writer(&lock);
    // A reader behind the writer, on a plain thread.
    let behind = {
        let lock = lock.clone();
        thread::spawn(move || *lock.read())
    };
    thread::sleep(ms(30));
    assert!(
        !behind.is_finished(),
        "a reader overtook the waiting writer"
    );
    within(20, move || drop(rt));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(within(10, move || writer.join())
        .unwrap_err()
        .is_cancelled());
    // The reader behind it gets in although the first reader still holds.
    assert_eq!(within(10, move || behind.join().unwrap()), 0);
    drop(first_reader);
    let mut w = lock.try_write().expect("the lock is free");
    *w += 1;
    drop(w);
    assert_eq!(*lock.read(), 1);
}

/// `RwLock<T>` is Send + Sync for `T: Send + Sync` (as std's).
#[test]
fn rwlock_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RwLock<u64>>();
    assert_send_sync::<Arc<RwLock<Vec<String>>>>();
}
