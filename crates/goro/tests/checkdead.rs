//! Deadlock detection (Go's checkdead): deadlocks are reported under
//! `#[goro::main]`, `Runtime::block_on` and `#[goro::test]`, with a dump;
//! programs that sleep, wait on sockets, signals, `blocking` calls or a
//! computing goroutine are never flagged.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{child_command, is_child, panic_text, run_child, within};
use goro::chan;
use goro::signal::Signal;
use goro::sync::{Barrier, Mutex};
use goro::Runtime;

/// Go's message, the first line of every deadlock report.
const FATAL: &str = "fatal error: all goroutines are asleep - deadlock!";

/// This file's name, as a park site in a dump ends with it.
const THIS_FILE: &str = "checkdead.rs";

/// SIGUSR1 on Linux x86_64 and aarch64.
const SIGUSR1: i32 = 10;

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Runs `f` under a fresh two-worker runtime's `block_on` and returns the
/// text of the panic it must end with (fails if it returns instead).
fn block_on_panic_text<T: Send>(f: impl FnOnce() -> T + Send) -> String {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(f);
    }));
    match r {
        Ok(()) => panic!("block_on returned: the deadlock was not detected"),
        Err(payload) => panic_text(&*payload).unwrap_or_default(),
    }
}

/// The dump block (blank-line separated) whose header names goroutine
/// `name` waiting with `reason`.
fn block_of<'a>(report: &'a str, name: &str, reason: &str) -> &'a str {
    let head = format!("({name}) [{reason}");
    report
        .split("\n\n")
        .find(|b| b.starts_with("goroutine ") && b.lines().next().unwrap().contains(&head))
        .unwrap_or_else(|| panic!("no `{head}` goroutine in the report:\n{report}"))
}

/// The "parked at" line of a dump block.
fn park_line(block: &str) -> &str {
    block
        .lines()
        .find(|l| l.trim_start().starts_with("parked at "))
        .unwrap_or_else(|| panic!("no park site in:\n{block}"))
}

/// A plain-thread guard that ends the process if a test body is still running
/// after `secs` (a missed deadlock would otherwise hang the run forever);
/// dropping it (also by unwinding) disarms it.
struct HangGuard {
    _disarm: mpsc::Sender<()>,
}

impl HangGuard {
    fn arm(secs: u64, what: &'static str) -> HangGuard {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("{what}: still running after {secs} s: the deadlock was not detected");
                std::process::exit(1);
            }
        });
        HangGuard { _disarm: tx }
    }
}

// ---------------------------------------------------------------------------
// Deadlocks that must be detected.
// ---------------------------------------------------------------------------

/// Under `#[goro::main]` a deadlock prints Go's message and a dump with each goroutine's wait reason and park site, and exits 2.
#[test]
fn main_program_deadlock_exits_2_with_reasons_and_park_sites() {
    let out = run_child(&mut child_command("main_deadlock_child"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the deadlocked program must exit with status 2 ({:?}); stderr:\n{err}",
        out.status
    );
    assert!(err.contains(FATAL), "{err}");
    let main = block_of(&err, "main", "chan send");
    assert!(park_line(main).contains(THIS_FILE), "{main}");
    let peer = block_of(&err, "peer", "chan receive");
    assert!(park_line(peer).contains(THIS_FILE), "{peer}");
}

/// The child of `main_program_deadlock_exits_2_with_reasons_and_park_sites`: main and a goroutine wait on each other's channels.
#[test]
#[ignore = "helper: runs only as the child of main_program_deadlock_exits_2_with_reasons_and_park_sites"]
fn main_deadlock_child() {
    if !is_child("main_deadlock_child") {
        return;
    }
    goro::__private::run_main(|| {
        let (a_tx, a_rx) = chan::bounded::<u8>(0);
        let (b_tx, b_rx) = chan::bounded::<u8>(0);
        let _peer = goro::Builder::new()
            .name("peer")
            .spawn(move || {
                // Waits for main, which is waiting for it.
                let _ = a_rx.recv();
                let _ = b_rx.recv();
            })
            .unwrap();
        let _ = b_tx.send(1);
        let _ = a_tx.send(1);
    });
}

/// Two goroutines locking two mutexes in opposite order deadlock: block_on panics with Go's message and `sync.Mutex.Lock`.
#[test]
fn mutex_deadlock_under_block_on_is_detected() {
    let msg = within(20, || {
        block_on_panic_text(|| {
            let a = Arc::new(Mutex::new(0u32));
            let b = Arc::new(Mutex::new(0u32));
            let both = Arc::new(Barrier::new(2));
            let (a1, b1, both1) = (a.clone(), b.clone(), both.clone());
            let g1 = goro::Builder::new()
                .name("a-then-b")
                .spawn(move || {
                    let _ga = a1.lock();
                    both1.wait(); // the other holds b now
                    let _gb = b1.lock();
                })
                .unwrap();
            let g2 = goro::Builder::new()
                .name("b-then-a")
                .spawn(move || {
                    let _gb = b.lock();
                    both.wait(); // the other holds a now
                    let _ga = a.lock();
                })
                .unwrap();
            let _ = g1.join();
            let _ = g2.join();
        })
    });
    assert!(msg.starts_with(FATAL), "{msg}");
    assert!(msg.contains("sync.Mutex.Lock"), "{msg}");
    for name in ["a-then-b", "b-then-a"] {
        let block = block_of(&msg, name, "sync.Mutex.Lock");
        assert!(park_line(block).contains(THIS_FILE), "{block}");
    }
    block_of(&msg, "main", "goroutine join");
}

/// A channel deadlock in a `#[goro::test]` fails the test with Go's message instead of hanging.
#[goro::test]
#[should_panic(expected = "all goroutines are asleep")]
fn channel_deadlock_fails_a_goro_test() {
    let _hang = HangGuard::arm(20, "channel_deadlock_fails_a_goro_test");
    let (tx, rx) = chan::bounded::<u8>(0);
    let (_keep, never) = chan::bounded::<u8>(0);
    let _h = goro::go(move || {
        // Nobody will ever send: main keeps the only sender and waits too.
        let _ = never.recv();
        let _ = tx.send(1);
    });
    let _ = rx.recv();
}

/// The deadlock panic carries a dump with exactly one `goroutine N` header per goroutine of the runtime.
#[test]
fn deadlock_message_dumps_every_goroutine_once() {
    let (msg, ids) = within(20, || {
        let ids = std::sync::Mutex::new(Vec::new());
        let msg = block_on_panic_text(|| {
            ids.lock()
                .unwrap()
                .push(goro::current_id().unwrap().as_u64());
            let mut keep = Vec::new();
            for i in 0..3 {
                let (tx, rx) = chan::bounded::<u8>(0);
                keep.push(tx);
                let h = goro::Builder::new()
                    .name(format!("waiter-{i}"))
                    .spawn(move || {
                        let _ = rx.recv();
                    })
                    .unwrap();
                ids.lock().unwrap().push(h.id().as_u64());
            }
            let (_tx, never) = chan::bounded::<u8>(0);
            let _ = never.recv();
            drop(keep);
        });
        (msg, ids.into_inner().unwrap())
    });
    assert!(msg.starts_with(FATAL), "{msg}");
    let mut headers: Vec<u64> = msg
        .lines()
        .filter_map(|l| l.strip_prefix("goroutine "))
        .map(|rest| {
            let n = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap();
            n.parse()
                .unwrap_or_else(|_| panic!("bad header `goroutine {rest}`"))
        })
        .collect();
    headers.sort_unstable();
    let mut want = ids;
    want.sort_unstable();
    assert_eq!(
        headers, want,
        "one header per goroutine expected in:\n{msg}"
    );
    assert!(!msg.contains("not started yet"), "{msg}");
    for i in 0..3 {
        block_of(&msg, &format!("waiter-{i}"), "chan receive");
    }
    block_of(&msg, "main", "chan receive");
}

// ---------------------------------------------------------------------------
// No false positives: each of these must complete normally.
// ---------------------------------------------------------------------------

/// Goroutines that sleep 1.2 s in total, in several timer sleeps with hand-offs between them, are not a deadlock.
#[test]
fn sleeping_goroutines_are_not_a_deadlock() {
    let took = within(30, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let start = Instant::now();
        let sum = rt.block_on(|| {
            let (tx, rx) = chan::bounded::<u32>(0);
            let first = goro::go(move || {
                for i in 0..4 {
                    goro::time::sleep(Duration::from_millis(150));
                    tx.send(i).unwrap();
                }
            });
            let second = goro::go(move || {
                let mut sum = 0;
                while let Ok(v) = rx.recv() {
                    sum += v;
                }
                for _ in 0..3 {
                    goro::time::sleep(Duration::from_millis(200));
                }
                sum
            });
            first.join().unwrap();
            second.join().unwrap()
        });
        assert_eq!(sum, 6);
        start.elapsed()
    });
    assert!(took >= Duration::from_millis(1200), "{took:?}");
}

/// A goroutine blocked in a TCP accept for ~800 ms, until another goroutine connects after a goro sleep, is not a deadlock.
#[test]
fn tcp_accept_wait_is_not_a_deadlock() {
    within(30, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| {
            let listener = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = goro::go(move || {
                let start = Instant::now();
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                (b[0], start.elapsed())
            });
            let connector = goro::go(move || {
                goro::time::sleep(Duration::from_millis(800));
                let mut s = goro::net::TcpStream::connect(addr).unwrap();
                s.write_all(&[7]).unwrap();
            });
            connector.join().unwrap();
            let (b, waited) = acceptor.join().unwrap();
            assert_eq!(b, 7);
            assert!(waited >= Duration::from_millis(700), "{waited:?}");
        });
    });
}

/// Goroutines waiting on socket I/O (an accept, then a read) that only a plain thread outside goro will satisfy are not a deadlock: nothing but the poller shows the runtime is alive.
#[test]
fn socket_waits_fed_by_an_outside_thread_are_not_a_deadlock() {
    within(30, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let listener = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Never touches goro: invisible to the detector.
        let outside = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_millis(400));
            s.write_all(&[9]).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            b[0]
        });
        let start = Instant::now();
        let got = rt.block_on(move || {
            goro::go(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                s.write_all(&[b[0] + 1]).unwrap();
                b[0]
            })
            .join()
            .unwrap()
        });
        assert_eq!(got, 9);
        assert_eq!(outside.join().unwrap(), 10);
        assert!(start.elapsed() >= Duration::from_millis(1100));
    });
}

/// Marker line the signal child prints once its `notify` registration is in place.
const SIGNAL_READY: &str = "checkdead-signal-child-ready";

/// A goroutine waiting ~800 ms on `signal::notify(User1)` (in a child process) is not a deadlock: the child gets the signal and exits 0.
#[test]
fn signal_wait_is_not_a_deadlock() {
    let mut child = child_command("signal_wait_child")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let _ = line_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = stderr.read_to_string(&mut v);
        v
    });
    // Wait until the child has registered, so the signal is never fatal to it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match line_rx.recv_timeout(left) {
            Ok(l) if l.contains(SIGNAL_READY) => {
                ready = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if ready {
        std::thread::sleep(Duration::from_millis(800));
        // SAFETY: sends SIGUSR1 to our own child process, which handles it.
        unsafe { libc_kill(child.id() as i32, SIGUSR1) };
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline + Duration::from_secs(10) {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        ready,
        "the child never registered ({status:?}):\n{out}\n{err}"
    );
    let status = status.unwrap_or_else(|| panic!("the child hung:\n{out}\n{err}"));
    assert!(
        status.code() == Some(0) && out.contains("1 passed"),
        "the child must get the signal and exit 0 ({status:?}):\n{out}\n{err}"
    );
}

/// The child of `signal_wait_is_not_a_deadlock`: registers for SIGUSR1 inside block_on and waits for it.
#[test]
#[ignore = "helper: runs only as the child of signal_wait_is_not_a_deadlock"]
fn signal_wait_child() {
    if !is_child("signal_wait_child") {
        return;
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    let start = Instant::now();
    let sig = rt.block_on(|| {
        let rx = goro::signal::notify(&[Signal::User1]);
        println!("{SIGNAL_READY}");
        std::io::stdout().flush().unwrap();
        rx.recv().unwrap()
    });
    assert_eq!(sig, Signal::User1);
    assert!(start.elapsed() >= Duration::from_millis(700));
}

/// A goroutine waiting ~800 ms on a `goro::blocking` call is not a deadlock.
#[test]
fn blocking_call_wait_is_not_a_deadlock() {
    within(30, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let start = Instant::now();
        let v = rt.block_on(|| {
            goro::go(|| {
                goro::blocking(|| {
                    std::thread::sleep(Duration::from_millis(800));
                    42
                })
            })
            .join()
            .unwrap()
        });
        assert_eq!(v, 42);
        assert!(start.elapsed() >= Duration::from_millis(800));
    });
}

/// A main goroutine joining a goroutine that computes (spins) for 700 ms, then 700 ms more yielding now and then, is not a deadlock.
#[test]
fn waiting_on_a_computing_goroutine_is_not_a_deadlock() {
    /// Spins for `d`, calling `yield_now` every `every` if it is given.
    fn spin(d: Duration, every: Option<Duration>) -> u64 {
        let start = Instant::now();
        let mut last_yield = start;
        let mut n = 0u64;
        while start.elapsed() < d {
            n = std::hint::black_box(n.wrapping_add(1));
            if every.is_some_and(|e| last_yield.elapsed() >= e) {
                goro::yield_now();
                last_yield = Instant::now();
            }
        }
        n
    }
    within(30, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let n = rt.block_on(|| {
            // Never parks: the worker is seen running.
            let a = goro::go(|| spin(Duration::from_millis(700), None))
                .join()
                .unwrap();
            // Parks only to yield: runnable, not asleep.
            let b = goro::go(|| spin(Duration::from_millis(700), Some(Duration::from_millis(5))))
                .join()
                .unwrap();
            a.wrapping_add(b)
        });
        assert!(n > 0);
    });
}
