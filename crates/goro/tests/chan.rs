//! Channels (`goro::chan`): capacities 0/1/N/unbounded, FIFO per sender,
//! exactly-once delivery, close and disconnection, the non-blocking and
//! timed operations, iterators, mixing goroutines with plain threads, and the
//! error types (API.md "Channels").

mod common;

use common::{within, Tracked, SLACK};
use goro::chan::{
    self, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// `Some(n)` is `bounded(n)`, `None` is `unbounded()`.
fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    match cap {
        Some(n) => chan::bounded(n),
        None => chan::unbounded(),
    }
}

/// Every capacity the ordering and delivery tests run with.
const CAPS: [Option<usize>; 4] = [Some(0), Some(1), Some(16), None];

/// Sender and Receiver can be shared between threads and goroutines (Send + Sync, Clone).
#[test]
fn handles_are_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Sender<String>>();
    assert_send_sync::<Receiver<String>>();
    let (tx, rx) = chan::unbounded::<u8>();
    let (tx2, rx2) = (tx.clone(), rx.clone());
    tx2.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    tx.send(2).unwrap();
    assert_eq!(rx2.recv(), Ok(2));
}

/// make(chan T): an unbuffered send blocks until a receiver takes the value.
#[test]
fn unbuffered_send_waits_for_a_receiver() {
    let (tx, rx) = chan::bounded::<u32>(0);
    assert_eq!(tx.capacity(), Some(0));
    assert_eq!(
        tx.try_send(1),
        Err(TrySendError::Full(1)),
        "no receiver is waiting"
    );
    let sent = Arc::new(AtomicBool::new(false));
    let flag = sent.clone();
    let h = goro::go(move || {
        tx.send(7).unwrap();
        flag.store(true, Ordering::SeqCst);
    });
    thread::sleep(Duration::from_millis(50));
    assert!(
        !sent.load(Ordering::SeqCst),
        "unbuffered send completed with no receiver"
    );
    assert_eq!(rx.len(), 0, "an unbuffered channel never holds a value");
    assert_eq!(rx.recv(), Ok(7));
    within(10, move || h.join().unwrap());
    assert!(sent.load(Ordering::SeqCst));
}

/// Non-blocking send/recv on an unbuffered channel succeed when the other side is waiting.
#[test]
fn unbuffered_try_ops_pair_with_a_waiting_peer() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let rx2 = rx.clone();
    let receiver = goro::go(move || rx2.recv());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut v = 0;
    loop {
        match tx.try_send(v) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) => {
                assert_eq!(back, v);
                assert!(
                    Instant::now() < deadline,
                    "try_send never met the parked receiver"
                );
                v += 1;
                thread::sleep(Duration::from_millis(1));
            }
            Err(TrySendError::Closed(_)) => panic!("channel is not closed"),
        }
    }
    assert_eq!(within(10, move || receiver.join().unwrap()), Ok(v));

    let tx2 = tx.clone();
    let sender = goro::go(move || tx2.send(99));
    let got = loop {
        match rx.try_recv() {
            Ok(x) => break x,
            Err(TryRecvError::Empty) => {
                assert!(
                    Instant::now() < deadline,
                    "try_recv never met the parked sender"
                );
                thread::sleep(Duration::from_millis(1));
            }
            Err(TryRecvError::Closed) => panic!("channel is not closed"),
        }
    };
    assert_eq!(got, 99);
    assert_eq!(within(10, move || sender.join().unwrap()), Ok(()));
}

/// make(chan T, 1): one value fits, the second try_send is Full and hands the value back.
#[test]
fn capacity_one_holds_exactly_one_value() {
    let (tx, rx) = chan::bounded::<String>(1);
    assert_eq!(tx.try_send("a".into()), Ok(()));
    assert_eq!(tx.try_send("b".into()), Err(TrySendError::Full("b".into())));
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.recv().unwrap(), "a");
    assert_eq!(tx.try_send("c".into()), Ok(()));
    assert_eq!(rx.try_recv().unwrap(), "c");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// len/cap/is_empty/is_closed report the buffer as Go's len(ch)/cap(ch) do.
#[test]
fn len_capacity_is_empty_is_closed() {
    let (tx, rx) = chan::bounded::<u32>(5);
    assert_eq!((tx.capacity(), rx.capacity()), (Some(5), Some(5)));
    assert!(tx.is_empty() && rx.is_empty());
    for i in 0..5 {
        assert_eq!(tx.len(), i as usize);
        tx.try_send(i).unwrap();
    }
    assert_eq!((tx.len(), rx.len()), (5, 5));
    assert!(!tx.is_empty() && !rx.is_empty());
    assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)));
    assert!(!tx.is_closed() && !rx.is_closed());
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.len(), 4);
    assert!(tx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(rx.len(), 4, "closing keeps the buffered values");

    let (utx, urx) = chan::unbounded::<u32>();
    assert_eq!((utx.capacity(), urx.capacity()), (None, None));
    for i in 0..100_000 {
        utx.send(i).unwrap(); // never blocks
    }
    assert_eq!(urx.len(), 100_000);
    assert!((0..100_000).eq(urx.try_iter()));
    assert!(urx.is_empty());
}

/// An unbuffered channel's len stays 0 even with senders parked on it.
#[test]
fn unbuffered_len_ignores_parked_senders() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let senders: Vec<_> = (0..3)
        .map(|i| {
            let tx = tx.clone();
            goro::go(move || tx.send(i))
        })
        .collect();
    thread::sleep(Duration::from_millis(30));
    assert_eq!(rx.len(), 0);
    assert!(rx.is_empty());
    let mut got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    for h in senders {
        assert_eq!(h.join().unwrap(), Ok(()));
    }
}

/// Per sender, values arrive in the order sent, for capacities 0, 1, N and unbounded.
#[test]
fn fifo_per_sender_for_every_capacity() {
    const SENDERS: usize = 4;
    const PER: u64 = 3000;
    for cap in CAPS {
        within(30, move || {
            let (tx, rx) = make::<(usize, u64)>(cap);
            let mut goroutines = Vec::new();
            for s in 0..SENDERS - 1 {
                let tx = tx.clone();
                goroutines.push(goro::go(move || {
                    for i in 0..PER {
                        tx.send((s, i)).unwrap();
                        if i % 97 == 0 {
                            goro::yield_now();
                        }
                    }
                }));
            }
            let thread_tx = tx.clone();
            let thread_sender = thread::spawn(move || {
                for i in 0..PER {
                    thread_tx.send((SENDERS - 1, i)).unwrap();
                }
            });
            drop(tx);
            let mut next = [0u64; SENDERS];
            for (s, i) in rx.iter() {
                assert_eq!(i, next[s], "cap {cap:?}: sender {s} out of order");
                next[s] += 1;
            }
            assert_eq!(next, [PER; SENDERS], "cap {cap:?}: values missing");
            for h in goroutines {
                h.join().unwrap();
            }
            thread_sender.join().unwrap();
        });
    }
}

/// MPMC 4x4: every value is received exactly once; each receiver sees each sender in order.
#[test]
fn mpmc_every_value_received_exactly_once() {
    check_mpmc(5000);
}

/// Stress: MPMC 4x4 with 200k values per sender and capacity.
#[test]
#[ignore = "stress: long-running variant of mpmc_every_value_received_exactly_once"]
fn stress_mpmc_every_value_received_exactly_once() {
    check_mpmc(200_000);
}

/// 4 sender and 4 receiver goroutines move `n` values per sender, for every capacity.
fn check_mpmc(n: u64) {
    for cap in CAPS {
        within(30, move || {
            let (tx, rx) = make::<(u64, u64)>(cap);
            let senders: Vec<_> = (0..4u64)
                .map(|s| {
                    let tx = tx.clone();
                    goro::go(move || {
                        for i in 0..n {
                            tx.send((s, i)).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let receivers: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    goro::go(move || rx.iter().collect::<Vec<(u64, u64)>>())
                })
                .collect();
            drop(rx);
            for h in senders {
                h.join().unwrap();
            }
            let mut seen = vec![vec![false; n as usize]; 4];
            let mut total = 0;
            for h in receivers {
                let got = h.join().unwrap();
                let mut last: HashMap<u64, u64> = HashMap::new();
                for (s, i) in got {
                    if let Some(prev) = last.insert(s, i) {
                        assert!(
                            prev < i,
                            "cap {cap:?}: sender {s} reordered at one receiver"
                        );
                    }
                    assert!(
                        !seen[s as usize][i as usize],
                        "cap {cap:?}: ({s},{i}) twice"
                    );
                    seen[s as usize][i as usize] = true;
                    total += 1;
                }
            }
            assert_eq!(total, 4 * n, "cap {cap:?}: values lost");
        });
    }
}

/// close(ch): receivers drain every buffered value, then get RecvError.
#[test]
fn close_drains_buffered_values_then_errors() {
    for cap in [Some(4), None] {
        let (tx, rx) = make::<u32>(cap);
        for i in 1..=3 {
            tx.send(i).unwrap();
        }
        assert!(tx.close(), "the first close closes");
        assert!(!tx.close(), "a second close reports it was already closed");
        assert!(rx.is_closed());
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(3));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(RecvTimeoutError::Closed)
        );
        assert!(
            start.elapsed() < SLACK,
            "recv_timeout on a closed channel waited"
        );
    }
}

/// Of many concurrent close calls exactly one reports that it closed the channel.
#[test]
fn exactly_one_close_wins() {
    let (tx, _rx) = chan::bounded::<u8>(1);
    let closers: Vec<_> = (0..16)
        .map(|_| {
            let tx = tx.clone();
            goro::go(move || tx.close())
        })
        .collect();
    let wins = closers.into_iter().map(|h| h.join().unwrap());
    assert_eq!(wins.filter(|&closed_it| closed_it).count(), 1);
}

/// close wakes every parked receiver (goroutines and a plain thread) with RecvError.
#[test]
fn close_wakes_all_blocked_receivers() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let goroutines: Vec<_> = (0..8)
        .map(|_| {
            let rx = rx.clone();
            goro::go(move || rx.recv())
        })
        .collect();
    let rx2 = rx.clone();
    let plain = thread::spawn(move || rx2.recv());
    thread::sleep(Duration::from_millis(30));
    tx.close();
    for h in goroutines {
        assert_eq!(within(10, move || h.join().unwrap()), Err(RecvError));
    }
    assert_eq!(within(10, move || plain.join().unwrap()), Err(RecvError));
}

/// A send on a closed channel fails with the value handed back (Go would panic).
#[test]
fn send_on_closed_channel_returns_the_value() {
    for cap in CAPS {
        let (tx, _rx) = make::<String>(cap);
        tx.close();
        assert_eq!(tx.send("lost?".into()), Err(SendError("lost?".into())));
        assert_eq!(
            tx.try_send("x".into()),
            Err(TrySendError::Closed("x".into()))
        );
        let start = Instant::now();
        assert_eq!(
            tx.send_timeout("y".into(), Duration::from_secs(10)),
            Err(SendTimeoutError::Closed("y".into()))
        );
        assert!(
            start.elapsed() < SLACK,
            "send_timeout on a closed channel waited"
        );
    }
    // Closed beats Full: a full, closed channel reports Closed.
    let (tx, rx) = chan::bounded::<u8>(1);
    tx.send(1).unwrap();
    tx.close();
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    assert_eq!(rx.recv(), Ok(1));
}

/// A sender parked on a full channel gets its value back when the channel is closed.
#[test]
fn close_fails_parked_sender_with_its_value() {
    let (tx, rx) = chan::bounded::<String>(1);
    tx.send("buffered".into()).unwrap();
    let tx2 = tx.clone();
    let blocked = goro::go(move || tx2.send("blocked".into()));
    thread::sleep(Duration::from_millis(30));
    assert!(!blocked.is_finished());
    tx.close();
    assert_eq!(
        within(10, move || blocked.join().unwrap()),
        Err(SendError("blocked".to_string()))
    );
    assert_eq!(rx.recv().unwrap(), "buffered");
    assert_eq!(
        rx.recv(),
        Err(RecvError),
        "a failed send must not deliver its value"
    );
}

/// Dropping every Sender closes the channel; buffered values are still drained first.
#[test]
fn dropping_all_senders_closes() {
    let (tx, rx) = chan::bounded::<u32>(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "one Sender is still alive"
    );
    assert!(!rx.is_closed());
    tx2.send(2).unwrap();
    let waiter = {
        let rx = rx.clone();
        goro::go(move || (rx.recv(), rx.recv()))
    };
    thread::sleep(Duration::from_millis(20));
    drop(tx2);
    assert_eq!(
        within(10, move || waiter.join().unwrap()),
        (Ok(2), Err(RecvError))
    );
    assert!(rx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// Dropping every Receiver makes blocked and new sends fail with their value (no leak).
#[test]
fn dropping_all_receivers_fails_sends() {
    let (tx, rx) = chan::bounded::<Vec<u8>>(0);
    let rx2 = rx.clone();
    let tx2 = tx.clone();
    let blocked = goro::go(move || tx2.send(vec![1, 2, 3]));
    thread::sleep(Duration::from_millis(30));
    drop(rx);
    thread::sleep(Duration::from_millis(10));
    assert!(!blocked.is_finished(), "one Receiver is still alive");
    drop(rx2);
    assert_eq!(
        within(10, move || blocked.join().unwrap()),
        Err(SendError(vec![1, 2, 3]))
    );
    assert_eq!(tx.send(vec![4]), Err(SendError(vec![4])));
    assert_eq!(tx.try_send(vec![5]), Err(TrySendError::Closed(vec![5])));
    assert_eq!(
        tx.send_timeout(vec![6], Duration::from_secs(10)),
        Err(SendTimeoutError::Closed(vec![6]))
    );

    // Even with room in the buffer, nobody can ever receive: the send fails.
    let (tx, rx) = chan::bounded::<u8>(4);
    drop(rx);
    assert_eq!(tx.send(1), Err(SendError(1)));
    let (tx, rx) = chan::unbounded::<u8>();
    drop(rx);
    assert_eq!(tx.send(1), Err(SendError(1)));
}

/// try_send: Full on a full buffer, Closed on a closed channel, value returned each time.
#[test]
fn try_send_full_and_closed() {
    let (tx, rx) = chan::bounded::<Box<u32>>(2);
    assert_eq!(tx.try_send(Box::new(1)), Ok(()));
    assert_eq!(tx.try_send(Box::new(2)), Ok(()));
    match tx.try_send(Box::new(3)) {
        Err(TrySendError::Full(b)) => assert_eq!(*b, 3),
        other => panic!("expected Full(3), got {other:?}"),
    }
    drop(rx);
    match tx.try_send(Box::new(4)) {
        Err(TrySendError::Closed(b)) => assert_eq!(*b, 4),
        other => panic!("expected Closed(4), got {other:?}"),
    }
}

/// try_recv: Empty while open, values in order, Closed once closed and drained.
#[test]
fn try_recv_empty_and_closed() {
    let (tx, rx) = chan::bounded::<u8>(2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// recv_timeout/send_timeout wait at least the timeout, then give up (value returned).
#[test]
fn timeouts_wait_at_least_the_duration() {
    fn check() {
        let d = Duration::from_millis(50);
        let (tx, rx) = chan::bounded::<u8>(1);
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
        let took = start.elapsed();
        assert!(took >= d, "recv_timeout returned after {took:?} < {d:?}");
        assert!(took < d + SLACK, "recv_timeout took {took:?}");

        tx.send(1).unwrap();
        let start = Instant::now();
        assert_eq!(tx.send_timeout(2, d), Err(SendTimeoutError::Timeout(2)));
        let took = start.elapsed();
        assert!(took >= d, "send_timeout returned after {took:?} < {d:?}");
        assert!(took < d + SLACK, "send_timeout took {took:?}");

        // Ready operations succeed without waiting.
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
        assert_eq!(tx.send_timeout(3, Duration::ZERO), Ok(()));
    }
    within(20, check); // plain thread: blocks
    within(20, || goro::go(check).join().unwrap()); // goroutine: parks
}

/// A value that arrives before the timeout is received (and not before it was sent).
#[test]
fn recv_timeout_gets_a_late_value() {
    let (tx, rx) = chan::bounded::<u8>(0);
    let start = Instant::now();
    let h = goro::go(move || {
        goro::time::sleep(Duration::from_millis(30));
        tx.send(5)
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(5));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(30) && took < SLACK,
        "took {took:?}"
    );
    assert_eq!(h.join().unwrap(), Ok(()));

    // send_timeout succeeds when a receiver turns up in time.
    let (tx, rx) = chan::bounded::<u8>(0);
    let h = goro::go(move || {
        goro::time::sleep(Duration::from_millis(30));
        rx.recv()
    });
    assert_eq!(tx.send_timeout(9, Duration::from_secs(10)), Ok(()));
    assert_eq!(h.join().unwrap(), Ok(9));
}

/// iter() ends at close; try_iter() takes only what is buffered; IntoIterator both ways.
#[test]
fn iterators() {
    let (tx, rx) = chan::unbounded::<u32>();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    // try_iter never blocks even though a Sender is alive.
    let first: Vec<u32> = within(10, {
        let rx = rx.clone();
        move || rx.try_iter().collect()
    });
    assert_eq!(first, [0, 1, 2, 3, 4]);

    let h = goro::go(move || {
        for i in 10..15 {
            tx.send(i).unwrap();
            goro::time::sleep(Duration::from_millis(1));
        }
        // tx dropped here: iteration ends.
    });
    assert_eq!(rx.iter().collect::<Vec<_>>(), [10, 11, 12, 13, 14]);
    h.join().unwrap();

    let (tx, rx) = chan::bounded::<u32>(3);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    tx.close();
    let mut by_ref = Vec::new();
    for v in &rx {
        by_ref.push(v);
        if by_ref.len() == 2 {
            break;
        }
    }
    let rest: Vec<u32> = rx.into_iter().collect();
    assert_eq!((by_ref, rest), (vec![0, 1], vec![2]));
}

/// Plain OS threads send, goroutines receive: nothing lost or duplicated.
#[test]
fn threads_send_goroutines_receive() {
    let (tx, rx) = chan::bounded::<u64>(8);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..2000 {
                    tx.send(t * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            goro::go(move || rx.iter().fold((0u64, 0u64), |(n, s), v| (n + 1, s + v)))
        })
        .collect();
    drop(rx);
    for t in threads {
        t.join().unwrap();
    }
    let (mut n, mut sum) = (0, 0);
    for h in receivers {
        let (c, s) = within(20, move || h.join().unwrap());
        n += c;
        sum += s;
    }
    let expected: u64 = (0..4u64)
        .map(|t| (0..2000).map(|i| t * 1_000_000 + i).sum::<u64>())
        .sum();
    assert_eq!((n, sum), (8000, expected));
}

/// Goroutines send, plain OS threads receive, through an unbuffered channel.
#[test]
fn goroutines_send_threads_receive_unbuffered() {
    let (tx, rx) = chan::bounded::<u64>(0);
    let senders: Vec<_> = (0..4u64)
        .map(|g| {
            let tx = tx.clone();
            goro::go(move || {
                for i in 0..1000 {
                    tx.send(g * 10_000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || rx.iter().collect::<Vec<u64>>())
        })
        .collect();
    drop(rx);
    for h in senders {
        within(20, move || h.join().unwrap());
    }
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    let mut expected: Vec<u64> = (0..4u64)
        .flat_map(|g| (0..1000).map(move |i| g * 10_000 + i))
        .collect();
    expected.sort();
    assert_eq!(all, expected);
}

/// Unbuffered ping-pong between two goroutines keeps strict alternation.
#[test]
fn unbuffered_ping_pong() {
    let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
    let echo = goro::go(move || {
        let mut n = 0;
        for v in ping_rx {
            pong_tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    let main = goro::go(move || {
        let mut v = 0;
        for _ in 0..20_000 {
            ping_tx.send(v).unwrap();
            v = pong_rx.recv().unwrap();
        }
        v
    });
    assert_eq!(within(20, move || main.join().unwrap()), 20_000);
    assert_eq!(within(10, move || echo.join().unwrap()), 20_000);
}

/// Values buffered when the last Sender goes stay receivable; dropping the
/// last Receiver then drops them (nothing leaks).
#[test]
fn buffered_values_are_dropped_with_the_channel() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded(4);
    for _ in 0..3 {
        tx.send(Tracked(drops.clone())).unwrap();
    }
    drop(tx);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "close must keep buffered values for receivers"
    );
    drop(rx.recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3, "buffered values leaked");
}

/// Go's concurrent prime sieve: a chain of filter goroutines yields the first 100 primes,
/// and dropping the last Receiver unwinds the whole chain.
#[test]
fn prime_sieve_first_hundred_primes() {
    let primes = within(30, || {
        let (tx, mut rx) = chan::bounded::<u64>(0);
        let mut chain = vec![goro::go(move || {
            let mut i = 2;
            while tx.send(i).is_ok() {
                i += 1;
            }
        })];
        let mut primes = Vec::new();
        for _ in 0..100 {
            let p = rx.recv().unwrap();
            primes.push(p);
            let (next_tx, next_rx) = chan::bounded(0);
            let input = std::mem::replace(&mut rx, next_rx);
            chain.push(goro::go(move || {
                for v in input {
                    if v % p != 0 && next_tx.send(v).is_err() {
                        return;
                    }
                }
            }));
        }
        drop(rx);
        for h in chain {
            h.join().unwrap(); // every stage ends once its downstream is gone
        }
        primes
    });
    let expected: Vec<u64> = (2u64..)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .take(100)
        .collect();
    assert_eq!(primes, expected);
    assert_eq!(primes[99], 541);
}

/// The error types print distinct, non-empty messages and are std errors.
#[test]
fn error_types_display_and_traits() {
    let msgs = [
        SendError(1u8).to_string(),
        TrySendError::Full(1u8).to_string(),
        TrySendError::Closed(1u8).to_string(),
        SendTimeoutError::Timeout(1u8).to_string(),
        SendTimeoutError::Closed(1u8).to_string(),
        RecvError.to_string(),
        TryRecvError::Empty.to_string(),
        TryRecvError::Closed.to_string(),
        RecvTimeoutError::Timeout.to_string(),
        RecvTimeoutError::Closed.to_string(),
    ];
    for m in &msgs {
        assert!(!m.is_empty());
    }
    assert_ne!(msgs[1], msgs[2], "Full and Closed must read differently");
    assert_ne!(msgs[3], msgs[4], "Timeout and Closed must read differently");
    assert_ne!(msgs[6], msgs[7], "Empty and Closed must read differently");
    assert_ne!(msgs[8], msgs[9], "Timeout and Closed must read differently");

    let boxed: Vec<Box<dyn std::error::Error + Send + Sync>> = vec![
        Box::new(SendError(1u8)),
        Box::new(TrySendError::Full(1u8)),
        Box::new(SendTimeoutError::Timeout(1u8)),
        Box::new(RecvError),
        Box::new(TryRecvError::Empty),
        Box::new(RecvTimeoutError::Timeout),
    ];
    assert_eq!(boxed.len(), 6);

    let e = SendError(String::from("payload"));
    assert_eq!(e.clone(), e);
    assert_eq!(e.0, "payload");
    assert!(format!("{:?}", TrySendError::Full(3u8)).contains("Full"));
    assert!(format!("{:?}", TryRecvError::Closed).contains("Closed"));
}
