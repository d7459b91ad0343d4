//! Virtual time (`testing::synctest`, `#[goro::test(virtual_time)]`) and
//! seeded schedules (`testing::explore`, `testing::run_seeded`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::chan::{self, RecvTimeoutError};
use goro::context::Context;
use goro::sync::{Cond, Mutex, WaitGroup};
use goro::testing::{explore, run_seeded, synctest, Explore};
use goro::time;

/// Real time a virtual-time test may take (the bound is 50 ms; the
/// margin is for a loaded CI machine starting threads).
const REAL_BUDGET: Duration = Duration::from_millis(500);

#[test]
fn an_hour_of_sleep_is_instant_and_exact() {
    let real = Instant::now();
    let (slept, wall) = synctest(move || {
        let t0 = time::now();
        time::sleep(Duration::from_secs(3600));
        (time::since(t0), real.elapsed())
    });
    assert_eq!(slept, Duration::from_secs(3600));
    assert!(wall < REAL_BUDGET, "took {wall:?} of real time");
}

#[test]
fn sleepers_wake_in_deadline_order_at_their_exact_times() {
    let order = synctest(|| {
        let t0 = time::now();
        let (tx, rx) = chan::unbounded();
        for secs in [30u64, 10, 20, 5] {
            let tx = tx.clone();
            drop(goro::go(move || {
                time::sleep(Duration::from_secs(secs));
                tx.send((secs, time::since(t0))).unwrap();
            }));
        }
        drop(tx);
        rx.iter().collect::<Vec<_>>()
    });
    let want: Vec<(u64, Duration)> = [5u64, 10, 20, 30]
        .iter()
        .map(|&s| (s, Duration::from_secs(s)))
        .collect();
    assert_eq!(order, want);
}

#[test]
fn ticker_ticks_on_the_virtual_grid() {
    let real = Instant::now();
    let ticks = synctest(|| {
        let t0 = time::now();
        let t = time::Ticker::new(Duration::from_secs(60));
        let mut at = Vec::new();
        for _ in 0..10 {
            let when = t.channel().recv().unwrap();
            at.push(when.duration_since(t0));
        }
        t.stop();
        at
    });
    let want: Vec<Duration> = (1..=10).map(|m| Duration::from_secs(60 * m)).collect();
    assert_eq!(ticks, want);
    assert!(real.elapsed() < REAL_BUDGET, "took {:?}", real.elapsed());
}

#[test]
fn context_deadline_fires_in_virtual_time() {
    let real = Instant::now();
    synctest(|| {
        let t0 = time::now();
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(90));
        assert!(ctx.err().is_none());
        ctx.done().recv().ok();
        assert_eq!(time::since(t0), Duration::from_secs(90));
        assert!(ctx.err().is_some());
        // The deadline is on the same clock.
        assert_eq!(ctx.deadline(), Some(t0 + Duration::from_secs(90)));
    });
    assert!(real.elapsed() < REAL_BUDGET, "took {:?}", real.elapsed());
}

#[test]
fn timeouts_and_select_timeouts_use_the_virtual_clock() {
    synctest(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let t0 = time::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(time::since(t0), Duration::from_secs(5));
        // A sender that arrives at 7 s beats a 10 s timeout.
        drop(goro::go(move || {
            time::sleep(Duration::from_secs(7));
            tx.send(1).unwrap();
        }));
        let got = goro::select! {
            recv(rx) -> v => v.ok(),
            default(Duration::from_secs(10)) => None,
        };
        assert_eq!(got, Some(1));
        assert_eq!(time::since(t0), Duration::from_secs(12));
    });
}

#[test]
fn timer_stop_and_reset_in_virtual_time() {
    synctest(|| {
        let t0 = time::now();
        let t = time::Timer::new(Duration::from_secs(10));
        time::sleep(Duration::from_secs(5));
        assert!(t.stop());
        time::sleep(Duration::from_secs(10));
        assert!(t.channel().try_recv().is_err(), "a stopped timer fired");
        t.reset(Duration::from_secs(1));
        let when = t.channel().recv().unwrap();
        assert_eq!(when.duration_since(t0), Duration::from_secs(16));
    });
}

#[test]
fn retry_with_backoff_waits_an_hour_in_a_blink() {
    // The guide's example: a client retrying with exponential backoff (capped
    // at 10 minutes) against a service that recovers after an hour.
    let real = Instant::now();
    let (attempts, waited) = synctest(|| {
        let t0 = time::now();
        let healthy_at = t0 + Duration::from_secs(3600);
        let call = move || time::now() >= healthy_at;
        let mut backoff = Duration::from_secs(1);
        let mut attempts = 1;
        while !call() {
            time::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(600));
            attempts += 1;
        }
        (attempts, time::since(t0))
    });
    // 1+2+...+512 = 1023 s, then 600 s steps: 1023 + 5*600 = 4023 >= 3600.
    assert_eq!(attempts, 16);
    assert_eq!(waited, Duration::from_secs(4023));
    assert!(real.elapsed() < REAL_BUDGET, "took {:?}", real.elapsed());
}

#[goro::test(virtual_time)]
fn the_test_attribute_takes_virtual_time() {
    let t0 = time::now();
    let wg = WaitGroup::new();
    for i in 1..=3u64 {
        let wg = wg.clone();
        wg.add(1);
        drop(goro::go(move || {
            time::sleep(Duration::from_secs(i * 1000));
            wg.done();
        }));
    }
    wg.wait();
    assert_eq!(time::since(t0), Duration::from_secs(3000));
}

#[test]
fn mutex_starvation_uses_the_runtime_clock() {
    // Under virtual time the clock does not move while goroutines run, so
    // lock hand-off decisions cannot depend on how fast the machine is:
    // two runs give the same acquisition order.
    let run = || {
        synctest(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let wg = WaitGroup::new();
            for i in 0..4 {
                let (m, wg) = (m.clone(), wg.clone());
                wg.add(1);
                drop(goro::go(move || {
                    for _ in 0..3 {
                        m.lock().push(i);
                        goro::yield_now();
                    }
                    wg.done();
                }));
            }
            wg.wait();
            let v = m.lock().clone();
            v
        })
    };
    assert_eq!(run(), run());
}

#[test]
fn deadlock_under_virtual_time_fails_fast_with_the_dump() {
    let real = Instant::now();
    let r = std::panic::catch_unwind(|| {
        synctest(|| {
            let (_tx, rx) = chan::bounded::<()>(0);
            time::sleep(Duration::from_secs(10)); // timers first, then stuck
            let _ = rx.recv();
        })
    });
    let msg = panic_text(r.expect_err("a deadlock must fail"));
    assert!(
        msg.contains("all goroutines are asleep - deadlock!"),
        "{msg}"
    );
    assert!(msg.contains("chan receive"), "no dump in: {msg}");
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "took {:?}",
        real.elapsed()
    );
}

#[test]
fn leaks_after_the_body_are_reported() {
    let r = std::panic::catch_unwind(|| {
        synctest(|| {
            let (tx, rx) = chan::bounded::<()>(0);
            drop(goro::go(move || {
                let _ = rx.recv();
            }));
            std::mem::forget(tx);
        })
    });
    let msg = panic_text(r.expect_err("a leak must fail"));
    assert!(msg.contains("leaked goroutine"), "{msg}");
    // The dump follows, with the leaked goroutine's stack.
    assert!(msg.contains("[chan receive"), "no dump in: {msg}");
    assert!(msg.contains("deterministic.rs"), "no stack in: {msg}");
}

#[test]
fn a_socket_deadline_with_no_peer_still_expires() {
    // Waiting on a socket holds the clock (the outside may answer), but not
    // forever: after a short real-time patience the clock moves to the
    // deadline, and the accept times out at its virtual deadline.
    let real = Instant::now();
    synctest(|| {
        let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t0 = time::now();
        l.set_deadline(Some(t0 + Duration::from_secs(30))).unwrap();
        let e = l.accept().expect_err("nobody connects");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(time::since(t0), Duration::from_secs(30));
    });
    assert!(real.elapsed() < Duration::from_secs(10));
}

#[test]
fn loopback_io_under_virtual_time_works() {
    synctest(|| {
        use std::io::{Read, Write};
        let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let srv = goro::go(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            time::sleep(Duration::from_secs(60)); // think for a virtual minute
            s.write_all(&b).unwrap();
        });
        let mut c = goro::net::TcpStream::connect(addr).unwrap();
        let t0 = time::now();
        c.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert_eq!(time::since(t0), Duration::from_secs(60));
        srv.join().unwrap();
    });
}

// ---- seeded schedules ---------------------------------------------------

/// Two goroutines each check a shared flag, do channel work (where a yield
/// may come), then set the flag and count themselves as the one winner: a
/// check-then-act race that needs a switch between the check and the act.
fn check_then_act() {
    let claimed = Arc::new(AtomicBool::new(false));
    let winners = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded::<u32>(16);
    let wg = WaitGroup::new();
    for _ in 0..2 {
        let (claimed, winners, tx, wg) = (claimed.clone(), winners.clone(), tx.clone(), wg.clone());
        wg.add(1);
        drop(goro::go(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
            }
            if !claimed.load(Ordering::SeqCst) {
                tx.send(99).unwrap(); // a cooperative point between check and act
                claimed.store(true, Ordering::SeqCst);
                winners.fetch_add(1, Ordering::SeqCst);
            }
            wg.done();
        }));
    }
    wg.wait();
    drop(tx);
    while rx.try_recv().is_ok() {}
    assert_eq!(
        winners.load(Ordering::SeqCst),
        1,
        "two goroutines claimed the flag"
    );
}

#[test]
fn explore_finds_a_check_then_act_race_and_its_seed_replays() {
    let r = std::panic::catch_unwind(|| explore(300, check_then_act));
    let msg = panic_text(r.expect_err("300 schedules must find the race"));
    assert!(msg.contains("two goroutines claimed the flag"), "{msg}");
    let seed: u64 = msg
        .split("GORO_SEED=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seed in: {msg}"));
    // The seed fails again, with the very same schedule, every time.
    let mut schedules = Vec::new();
    for _ in 0..3 {
        let r = std::panic::catch_unwind(|| run_seeded(seed, check_then_act));
        assert!(r.is_err(), "seed {seed} did not fail again");
        schedules.push(last_schedule(seed));
    }
    assert!(schedules.windows(2).all(|w| w[0] == w[1]), "{schedules:?}");
}

/// The schedule of `seed` for `check_then_act`, recorded without its assert.
fn last_schedule(seed: u64) -> Vec<u32> {
    run_seeded(seed, || {
        let _ = std::panic::catch_unwind(check_then_act);
    })
    .1
}

#[test]
fn the_same_seed_gives_the_same_schedule_and_result() {
    let body = || {
        let (tx, rx) = chan::bounded(2);
        let wg = WaitGroup::new();
        for id in 0..4u32 {
            let (tx, wg) = (tx.clone(), wg.clone());
            wg.add(1);
            drop(goro::go(move || {
                for k in 0..5 {
                    tx.send(id * 10 + k).unwrap();
                }
                wg.done();
            }));
        }
        drop(tx);
        let out: Vec<u32> = rx.iter().collect();
        wg.wait();
        out
    };
    let mut distinct = std::collections::HashSet::new();
    for seed in [1u64, 2, 3, 42, 0xDEAD_BEEF] {
        let (a, sa) = run_seeded(seed, body);
        let (b, sb) = run_seeded(seed, body);
        assert_eq!(a, b, "seed {seed}: different results");
        assert_eq!(sa, sb, "seed {seed}: different schedules");
        assert!(sa.len() > 5, "schedule too short: {sa:?}");
        distinct.insert(a);
    }
    assert!(distinct.len() > 1, "five seeds gave one interleaving");
}

#[test]
fn select_picks_are_seeded_too() {
    let body = || {
        let (a_tx, a) = chan::bounded(64);
        let (b_tx, b) = chan::bounded(64);
        for i in 0..32 {
            a_tx.send(i).unwrap();
            b_tx.send(i).unwrap();
        }
        let mut picks = Vec::new();
        for _ in 0..32 {
            goro::select! {
                recv(a) -> _ => picks.push('a'),
                recv(b) -> _ => picks.push('b'),
            }
        }
        picks
    };
    let (p1, _) = run_seeded(9, body);
    let (p2, _) = run_seeded(9, body);
    let (p3, _) = run_seeded(10, body);
    assert_eq!(p1, p2);
    assert_ne!(p1, p3, "two seeds picked the same 32 arms");
}

/// A lost wake-up: the waiter checks `ready` before taking the lock, so a
/// notify that lands between the check and the wait is lost and the waiter
/// sleeps forever (a deadlock, which the runtime reports).
fn lost_wakeup() {
    let ready = Arc::new(AtomicBool::new(false));
    let state = Arc::new((Mutex::new(()), Cond::new()));
    let (r2, s2) = (ready.clone(), state.clone());
    let waiter = goro::go(move || {
        if !r2.load(Ordering::SeqCst) {
            goro::yield_now(); // e.g. logging, a channel send...
            let (m, c) = &*s2;
            let g = m.lock();
            let _g = c.wait(g);
        }
    });
    ready.store(true, Ordering::SeqCst);
    let (m, c) = &*state;
    drop(m.lock());
    c.notify_all();
    waiter.join().unwrap();
}

#[test]
fn explore_finds_a_lost_wakeup_as_a_deadlock() {
    let r = std::panic::catch_unwind(|| explore(200, lost_wakeup));
    let msg = panic_text(r.expect_err("200 schedules must find the lost wake-up"));
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains("sync.Cond.Wait"), "no dump in: {msg}");
}

#[goro::test(explore = 100)]
fn the_test_attribute_explores() {
    // A correct hand-off passes under every schedule.
    let (tx, rx) = chan::bounded(0);
    let h = goro::go(move || (0..10).map(|_| rx.recv().unwrap()).sum::<u32>());
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(h.join().unwrap(), 45);
}

#[test]
fn preempt_every_op_runs_every_schedule_to_the_same_answer() {
    Explore::new(30).preempt_every_op(true).run(|| {
        let total = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for i in 1..=5 {
            let (total, wg) = (total.clone(), wg.clone());
            wg.add(1);
            drop(goro::go(move || {
                let (tx, rx) = chan::bounded(1);
                tx.send(i).unwrap();
                total.fetch_add(rx.recv().unwrap(), Ordering::SeqCst);
                wg.done();
            }));
        }
        wg.wait();
        assert_eq!(total.load(Ordering::SeqCst), 15);
    });
}

/// Child side of `goro_seed_replays_from_the_environment` (run with
/// `GORO_SEED` set by the parent).
#[test]
#[ignore = "child process of goro_seed_replays_from_the_environment"]
fn goro_seed_child() {
    // Meant to fail, under the seed its parent passes; a plain
    // `cargo test -- --ignored` (no GORO_SEED) has nothing to check here.
    if std::env::var_os("GORO_SEED").is_none() {
        return;
    }
    explore(1_000_000, check_then_act);
}

#[test]
fn goro_seed_replays_from_the_environment() {
    // Find a failing seed in-process, then run the explore in a child with
    // GORO_SEED: it must run exactly that seed and fail the same way.
    let r = std::panic::catch_unwind(|| explore(300, check_then_act));
    let msg = panic_text(r.expect_err("the race is found"));
    let seed = msg
        .split("GORO_SEED=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "goro_seed_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GORO_SEED", &seed)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child passed: {text}");
    assert!(
        text.contains(&format!("failed under seed {seed} (from GORO_SEED)")),
        "{text}"
    );
    assert!(text.contains("two goroutines claimed the flag"), "{text}");
}

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else {
        String::from("(non-string panic)")
    }
}
