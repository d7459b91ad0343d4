//! `select!`: which arm runs, `default`/`default(d)`, send arms, exactly-once
//! under contention, fairness, `never()`, closed channels, and control flow in
//! arm bodies (API.md "select!").

mod common;

use common::{within, SLACK};
use goro::chan::{self, Receiver, RecvError, SendError, Sender};
use goro::select;
use std::thread;
use std::time::{Duration, Instant};

/// The only ready arm is the one that runs, with the value that was sent.
#[test]
fn ready_arm_is_chosen() {
    let (_t1, r1) = chan::bounded::<u32>(1);
    let (t2, r2) = chan::bounded::<u32>(1);
    for i in 0..500 {
        t2.send(i).unwrap();
        let got = select! {
            recv(r1) -> _ => panic!("r1 was never ready"),
            recv(r2) -> v => v.unwrap(),
        };
        assert_eq!(got, i);
    }
}

/// `default` runs when no arm is ready, and nothing is consumed or sent.
#[test]
fn default_runs_when_nothing_is_ready() {
    let (t1, r1) = chan::bounded::<u32>(1);
    let (t2, r2) = chan::bounded::<u32>(1);
    t2.send(0).unwrap(); // t2 is full: its send arm is not ready
    let mut defaults = 0;
    for _ in 0..100 {
        select! {
            recv(r1) -> _ => panic!("r1 is empty"),
            send(t2, 1) -> _ => panic!("t2 is full"),
            default => defaults += 1,
        }
    }
    assert_eq!(defaults, 100);
    assert_eq!(r2.len(), 1);
    assert_eq!(
        r2.try_recv(),
        Ok(0),
        "the failed send arm must not have replaced the value"
    );
    t1.send(9).unwrap();
    let got = select! { recv(r1) -> v => v, default => Ok(0) };
    assert_eq!(got, Ok(9), "a ready arm beats default");
}

/// `default(d)` waits at least d when nothing becomes ready.
#[test]
fn default_with_duration_waits_at_least_that_long() {
    fn check() {
        let (_tx, rx) = chan::bounded::<u8>(0);
        let d = Duration::from_millis(50);
        let start = Instant::now();
        let which = select! {
            recv(rx) -> _ => "recv",
            default(d) => "timeout",
        };
        let took = start.elapsed();
        assert_eq!(which, "timeout");
        assert!(took >= d, "default({d:?}) ran after {took:?}");
        assert!(took < d + SLACK, "default({d:?}) ran after {took:?}");
    }
    within(20, check); // on a plain thread
    within(20, || goro::go(check).join().unwrap()); // in a goroutine
}

/// A value arriving before `default(d)` expires wins over the default.
#[test]
fn value_arriving_before_default_duration_wins() {
    let (tx, rx) = chan::bounded::<u8>(0);
    let start = Instant::now();
    let h = goro::go(move || {
        goro::time::sleep(Duration::from_millis(30));
        tx.send(3)
    });
    let got = select! {
        recv(rx) -> v => v,
        default(Duration::from_secs(10)) => panic!("the value should have arrived"),
    };
    let took = start.elapsed();
    assert_eq!(got, Ok(3));
    assert!(
        took >= Duration::from_millis(30) && took < SLACK,
        "took {took:?}"
    );
    assert_eq!(h.join().unwrap(), Ok(()));
}

/// A select without default blocks until an arm is ready (not earlier).
#[test]
fn blocking_select_waits_for_the_first_ready_arm() {
    let (_t1, r1) = chan::bounded::<u8>(0);
    let (t2, r2) = chan::bounded::<u8>(0);
    let start = Instant::now();
    let h = goro::go(move || {
        goro::time::sleep(Duration::from_millis(40));
        t2.send(2)
    });
    let got = within(20, move || {
        select! {
            recv(r1) -> _ => 1,
            recv(r2) -> v => v.unwrap(),
        }
    });
    assert_eq!(got, 2);
    assert!(start.elapsed() >= Duration::from_millis(40));
    assert_eq!(h.join().unwrap(), Ok(()));
}

/// `recv(time::after(d))` is a timeout arm: it fires after at least d.
#[test]
fn after_arm_times_out() {
    let (_tx, rx) = chan::bounded::<u8>(0);
    let start = Instant::now();
    let timed_out = select! {
        recv(rx) -> _ => false,
        recv(goro::time::after(Duration::from_millis(40))) -> t => {
            assert!(t.unwrap() >= start + Duration::from_millis(40));
            true
        }
    };
    assert!(timed_out);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < SLACK,
        "took {took:?}"
    );
}

/// A move-only value may appear in several send arms; only the chosen arm takes it.
#[test]
fn send_arms_share_a_move_only_value() {
    let (t1, r1) = chan::bounded::<String>(1);
    let (t2, r2) = chan::bounded::<String>(1);
    t1.send("occupied".into()).unwrap(); // t1 full: only t2 can take the value
    for i in 0..100 {
        let msg = format!("msg {i}");
        select! {
            send(t1, msg) -> _ => panic!("t1 is full"),
            send(&t2, msg) -> res => res.unwrap(),
        }
        assert_eq!(r2.recv().unwrap(), format!("msg {i}"));
    }
    assert_eq!(r1.len(), 1);
    assert_eq!(r1.recv().unwrap(), "occupied");
}

/// An arm that did not run consumed nothing and sent nothing.
#[test]
fn losing_arms_consume_and_send_nothing() {
    let mut firsts = 0;
    for _ in 0..300 {
        let (t1, r1) = chan::bounded::<u8>(1);
        let (t2, r2) = chan::bounded::<u8>(1);
        t1.send(1).unwrap();
        t2.send(2).unwrap();
        let got = select! {
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap(),
        };
        assert_eq!(r1.len() + r2.len(), 1, "both ready arms consumed a value");
        if got == 1 {
            firsts += 1;
            assert_eq!(r2.try_recv(), Ok(2));
        } else {
            assert_eq!(r1.try_recv(), Ok(1));
        }
    }
    assert!(
        firsts > 0 && firsts < 300,
        "one arm was always chosen: {firsts}/300"
    );

    for _ in 0..300 {
        let (t1, r1) = chan::bounded::<Box<u8>>(1);
        let (t2, r2) = chan::bounded::<Box<u8>>(1);
        let (t3, r3) = chan::bounded::<u8>(1);
        t3.send(3).unwrap();
        let value = Box::new(7);
        select! {
            send(t1, value) -> r => r.unwrap(),
            send(t2, value) -> r => r.unwrap(),
            recv(r3) -> v => assert_eq!(v, Ok(3)),
        }
        assert_eq!(
            r1.len() + r2.len() + (1 - r3.len()),
            1,
            "more than one arm took effect"
        );
    }
}

/// `never` once the channel was seen closed, so its arm stops firing (Go: set it to nil).
fn live_or_never<'a, T>(
    closed: bool,
    rx: &'a Receiver<T>,
    never: &'a Receiver<T>,
) -> &'a Receiver<T> {
    if closed {
        never
    } else {
        rx
    }
}

/// Exactly-once under contention: many goroutines select over several channels
/// (recv arms and send arms); every value sent is received once, none lost.
#[test]
fn exactly_once_under_heavy_contention() {
    check_exactly_once(5000);
}

/// Stress: the exactly-once check with 200k values per producer.
#[test]
#[ignore = "stress: long-running variant of exactly_once_under_heavy_contention"]
fn stress_exactly_once_under_heavy_contention() {
    check_exactly_once(200_000);
}

/// Four direct and two selecting producers send `per` values each; four
/// selecting consumers must receive each of them exactly once.
fn check_exactly_once(per: u64) {
    const DIRECT: u64 = 4; // one plain sender per channel
    const SELECTING: u64 = 2; // senders that select over all four send arms
    const CONSUMERS: usize = 4;

    let received = within(300, move || {
        let chans: Vec<(Sender<u64>, Receiver<u64>)> = vec![
            chan::bounded(0),
            chan::bounded(1),
            chan::bounded(8),
            chan::unbounded(),
        ];
        let txs: Vec<Sender<u64>> = chans.iter().map(|c| c.0.clone()).collect();
        let rxs: Vec<Receiver<u64>> = chans.iter().map(|c| c.1.clone()).collect();
        drop(chans);

        let mut producers = Vec::new();
        for p in 0..DIRECT {
            let tx = txs[p as usize].clone();
            producers.push(goro::go(move || {
                for i in 0..per {
                    tx.send(p * 1_000_000 + i).unwrap();
                }
            }));
        }
        for p in DIRECT..DIRECT + SELECTING {
            let txs = txs.clone();
            producers.push(goro::go(move || {
                for i in 0..per {
                    let v = p * 1_000_000 + i;
                    select! {
                        send(txs[0], v) -> r => r.unwrap(),
                        send(txs[1], v) -> r => r.unwrap(),
                        send(txs[2], v) -> r => r.unwrap(),
                        send(txs[3], v) -> r => r.unwrap(),
                    }
                }
            }));
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rxs = rxs.clone();
                goro::go(move || {
                    let never = chan::never::<u64>();
                    let mut closed = [false; 4];
                    let mut got = Vec::new();
                    while !closed.iter().all(|c| *c) {
                        let a = live_or_never(closed[0], &rxs[0], &never);
                        let b = live_or_never(closed[1], &rxs[1], &never);
                        let c = live_or_never(closed[2], &rxs[2], &never);
                        let d = live_or_never(closed[3], &rxs[3], &never);
                        select! {
                            recv(a) -> v => match v { Ok(x) => got.push((0, x)), Err(_) => closed[0] = true },
                            recv(b) -> v => match v { Ok(x) => got.push((1, x)), Err(_) => closed[1] = true },
                            recv(c) -> v => match v { Ok(x) => got.push((2, x)), Err(_) => closed[2] = true },
                            recv(d) -> v => match v { Ok(x) => got.push((3, x)), Err(_) => closed[3] = true },
                        }
                    }
                    got
                })
            })
            .collect();
        drop(rxs);
        for h in producers {
            h.join().unwrap();
        }
        for tx in &txs {
            tx.close();
        }
        let mut all = Vec::new();
        for h in consumers {
            all.extend(h.join().unwrap());
        }
        all
    });

    let total = (DIRECT + SELECTING) * per;
    assert_eq!(received.len() as u64, total, "values lost or duplicated");
    let mut seen = vec![false; ((DIRECT + SELECTING) * 1_000_000) as usize];
    let mut per_channel = [0u64; 4];
    for (ch, v) in received {
        assert!(!seen[v as usize], "value {v} received twice");
        seen[v as usize] = true;
        per_channel[ch] += 1;
        let producer = v / 1_000_000;
        if producer < DIRECT {
            assert_eq!(
                producer, ch as u64,
                "a direct producer's value came out of another channel"
            );
        }
    }
    for p in 0..DIRECT + SELECTING {
        for i in 0..per {
            assert!(
                seen[(p * 1_000_000 + i) as usize],
                "value {p}/{i} never received"
            );
        }
    }
    assert!(per_channel.iter().all(|n| *n >= per));
}

/// Go's fairness: with two always-ready arms each is chosen about half the time.
#[test]
fn fairness_between_two_ready_arms() {
    const ROUNDS: usize = 10_000;
    let (t1, r1) = chan::unbounded::<u8>();
    let (t2, r2) = chan::unbounded::<u8>();
    t1.send(1).unwrap();
    t2.send(2).unwrap();
    let mut counts = [0usize; 2];
    for _ in 0..ROUNDS {
        select! {
            recv(r1) -> v => { assert_eq!(v, Ok(1)); counts[0] += 1; t1.send(1).unwrap(); }
            recv(r2) -> v => { assert_eq!(v, Ok(2)); counts[1] += 1; t2.send(2).unwrap(); }
        }
    }
    for c in counts {
        assert!(
            (ROUNDS * 4 / 10..=ROUNDS * 6 / 10).contains(&c),
            "arm chosen {c} of {ROUNDS} times: {counts:?}"
        );
    }
}

/// Fairness holds for send arms too (two channels with room).
#[test]
fn fairness_between_two_ready_send_arms() {
    const ROUNDS: usize = 10_000;
    let (t1, r1) = chan::unbounded::<u8>();
    let (t2, r2) = chan::unbounded::<u8>();
    for _ in 0..ROUNDS {
        select! {
            send(t1, 1) -> r => r.unwrap(),
            send(t2, 2) -> r => r.unwrap(),
        }
    }
    let (a, b) = (r1.len(), r2.len());
    assert_eq!(a + b, ROUNDS);
    assert!(
        (ROUNDS * 4 / 10..=ROUNDS * 6 / 10).contains(&a),
        "send arms split {a}/{b}"
    );
}

/// An arm on `never()` (Go's nil channel) is never chosen.
#[test]
fn never_arm_is_never_chosen() {
    let nv = chan::never::<u8>();
    for _ in 0..1000 {
        let chosen_default = select! { recv(nv) -> _ => false, default => true };
        assert!(chosen_default);
    }
    let (tx, rx) = chan::bounded::<u8>(1);
    for i in 0..1000 {
        tx.send(i as u8).unwrap();
        let got = select! {
            recv(chan::never::<u8>()) -> _ => panic!("never() chosen"),
            recv(rx) -> v => v.unwrap(),
        };
        assert_eq!(got, i as u8);
    }
    let start = Instant::now();
    select! {
        recv(nv) -> _ => panic!("never() chosen"),
        recv(goro::time::after(Duration::from_millis(30))) -> _ => {}
    }
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(!nv.is_closed(), "never() is never closed");
    assert_eq!(nv.try_recv(), Err(chan::TryRecvError::Empty));
    let start = Instant::now();
    assert_eq!(
        nv.recv_timeout(Duration::from_millis(20)),
        Err(chan::RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
}

/// A closed channel's recv arm is ready and yields Err(RecvError), beating default.
#[test]
fn closed_channel_arm_yields_recv_error() {
    let (tx, rx) = chan::bounded::<u8>(0);
    tx.close();
    for _ in 0..100 {
        let got = select! { recv(rx) -> v => v, default => panic!("a closed channel is ready") };
        assert_eq!(got, Err(RecvError));
    }
    // A blocking select returns at once too.
    let got = within(
        10,
        move || select! { recv(rx) -> v => v, recv(chan::never::<u8>()) -> _ => Ok(0) },
    );
    assert_eq!(got, Err(RecvError));
}

/// A select parked on a channel wakes with Err(RecvError) when that channel is closed.
#[test]
fn close_wakes_a_parked_select() {
    let (_t1, r1) = chan::bounded::<u8>(0);
    let (t2, r2) = chan::bounded::<u8>(0);
    let h = goro::go(move || {
        select! {
            recv(r1) -> _ => "r1",
            recv(r2) -> v => { assert_eq!(v, Err(RecvError)); "r2 closed" }
        }
    });
    thread::sleep(Duration::from_millis(30));
    assert!(!h.is_finished());
    drop(t2);
    assert_eq!(within(10, move || h.join().unwrap()), "r2 closed");
}

/// A send arm on a closed channel is ready and hands the value back (Go would panic).
#[test]
fn send_arm_on_closed_channel_returns_the_value() {
    let (tx, _rx) = chan::bounded::<String>(0);
    tx.close();
    let res = select! {
        send(tx, String::from("back")) -> r => r,
        default => panic!("a send on a closed channel is ready (it fails at once)"),
    };
    assert_eq!(res, Err(SendError(String::from("back"))));
}

/// Arm bodies are not closures: break, continue, return and `?` act on the enclosing code.
#[test]
fn control_flow_inside_arm_bodies() {
    fn consume(rx: &Receiver<u32>, stop: &Receiver<()>) -> Result<u32, RecvError> {
        let mut sum = 0;
        loop {
            select! {
                recv(rx) -> v => {
                    let v = v?;
                    if v % 2 == 0 {
                        continue;
                    }
                    if v == 99 {
                        return Ok(sum * 1000);
                    }
                    sum += v;
                }
                recv(stop) -> _ => break,
            }
        }
        Ok(sum + 1_000_000)
    }

    let run = |values: &'static [u32], end: &'static str| {
        within(20, move || {
            let (tx, rx) = chan::bounded::<u32>(0);
            let (stop_tx, stop_rx) = chan::bounded::<()>(0);
            let h = goro::go(move || consume(&rx, &stop_rx));
            for v in values {
                tx.send(*v).unwrap(); // unbuffered: returns once the select took it
            }
            match end {
                "stop" => drop(stop_tx),
                "close" => drop(tx),
                _ => {}
            }
            h.join().unwrap()
        })
    };
    assert_eq!(
        run(&[1, 2, 3, 4], "stop"),
        Ok(1_000_004),
        "continue/break misbehaved"
    );
    assert_eq!(run(&[1, 2, 5, 99], "none"), Ok(6000), "return misbehaved");
    assert_eq!(run(&[1, 3], "close"), Err(RecvError), "? misbehaved");

    // A labelled break out of nested loops.
    let (tx, rx) = chan::bounded::<u8>(1);
    let mut rounds = 0;
    'outer: for round in 0..10 {
        for _ in 0..2 {
            rounds += 1;
            if round == 3 {
                tx.send(0).unwrap();
            }
            select! { recv(rx) -> _ => break 'outer, default => {} }
        }
    }
    assert_eq!(
        rounds, 7,
        "break 'outer from an arm body must leave both loops"
    );
}

/// The same channel may appear in two arms: one value, one arm, received once.
#[test]
fn same_channel_in_two_arms() {
    let (tx, rx) = chan::bounded::<u32>(1);
    let (mut a, mut b) = (0, 0);
    for i in 0..1000 {
        tx.send(i).unwrap();
        select! {
            recv(rx) -> v => { assert_eq!(v, Ok(i)); a += 1; }
            recv(rx) -> v => { assert_eq!(v, Ok(i)); b += 1; }
        }
        assert!(rx.is_empty());
    }
    assert_eq!(a + b, 1000);
    assert!(a > 0 && b > 0, "arms on the same channel: {a}/{b}");

    // Parked on both arms of one unbuffered channel, then one send: the loser
    // must be dequeued, so no second receiver is left waiting.
    let (tx, rx) = chan::bounded::<u32>(0);
    let h = goro::go(move || {
        let v = select! { recv(rx) -> v => v, recv(rx) -> v => v };
        (v, rx)
    });
    thread::sleep(Duration::from_millis(20));
    tx.send(5).unwrap();
    let (v, rx) = within(10, move || h.join().unwrap());
    assert_eq!(v, Ok(5));
    assert_eq!(
        tx.try_send(6),
        Err(chan::TrySendError::Full(6)),
        "a stale waiter took a value"
    );
    drop(rx);
}

/// Two goroutines selecting on each other's unbuffered channels always pair up.
#[test]
fn select_pairs_with_select() {
    within(30, || {
        for _ in 0..500 {
            let (a_tx, a_rx) = chan::bounded::<u8>(0);
            let (b_tx, b_rx) = chan::bounded::<u8>(0);
            let (a1, b1) = (a_tx.clone(), b_rx.clone());
            let g1 = goro::go(move || {
                select! {
                    send(a1, 1) -> r => { r.unwrap(); "sent" }
                    recv(b1) -> v => { assert_eq!(v, Ok(2)); "received" }
                }
            });
            let (b2, a2) = (b_tx.clone(), a_rx.clone());
            let g2 = goro::go(move || {
                select! {
                    send(b2, 2) -> r => { r.unwrap(); "sent" }
                    recv(a2) -> v => { assert_eq!(v, Ok(1)); "received" }
                }
            });
            let outcome = (g1.join().unwrap(), g2.join().unwrap());
            assert!(
                outcome == ("sent", "received") || outcome == ("received", "sent"),
                "selects did not pair: {outcome:?}"
            );
            assert!(a_rx.is_empty() && b_rx.is_empty());
            drop((a_tx, b_tx));
        }
    });
}
