//! `goro::signal`: signals delivered to channels and to shutdown contexts,
//! full receivers dropping signals, and the default action coming back once
//! nothing is registered (Go's `os/signal` docs).
//!
//! Every test that sends a signal runs an `#[ignore]`d helper test of this
//! binary in a child process and signals the child, never the test harness.
//! The child prints `ready` once it has registered; the parent sends the
//! signal only after reading that line.

mod common;

use goro::context::{Context, Error};
use goro::signal::{self, Signal};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// In-process tests (no signal is ever sent to this process).

/// Numbers, names and Go's descriptions.
#[test]
fn signal_numbers_and_names() {
    let table = [
        (Signal::Hangup, libc::SIGHUP, "hangup"),
        (Signal::Interrupt, libc::SIGINT, "interrupt"),
        (Signal::Quit, libc::SIGQUIT, "quit"),
        (Signal::User1, libc::SIGUSR1, "user defined signal 1"),
        (Signal::User2, libc::SIGUSR2, "user defined signal 2"),
        (Signal::Pipe, libc::SIGPIPE, "broken pipe"),
        (Signal::Alarm, libc::SIGALRM, "alarm clock"),
        (Signal::Terminate, libc::SIGTERM, "terminated"),
        (Signal::Child, libc::SIGCHLD, "child exited"),
        (Signal::WindowChange, libc::SIGWINCH, "window changed"),
    ];
    for (sig, raw, text) in table {
        assert_eq!(sig.as_raw(), raw);
        assert_eq!(Signal::from_raw(raw), sig);
        assert!(matches!(Signal::from_raw(raw), s if format!("{s:?}") == format!("{sig:?}")));
        assert_eq!(sig.to_string(), text);
        assert_eq!(Signal::Other(raw), sig, "Other({raw}) != {sig:?}");
        assert_eq!(Signal::Other(raw).to_string(), text);
    }
    assert_eq!(Signal::from_raw(40), Signal::Other(40));
    assert_eq!(Signal::Other(40).to_string(), "signal 40");
    // Hash agrees with Eq.
    let set: HashSet<Signal> = [Signal::Interrupt, Signal::Other(libc::SIGINT)].into();
    assert_eq!(set.len(), 1);
    let e: Box<dyn std::error::Error> = Box::new(Signal::Terminate);
    assert_eq!(e.to_string(), "terminated");
}

/// Signals that cannot be caught (or that goro uses itself) are refused
/// before anything is installed; so are empty lists and bad numbers.
#[test]
fn unregistrable_signals_are_refused() {
    for n in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        0,
        -3,
        500,
    ] {
        let err = signal::try_notify(&[Signal::Other(n)]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {n}");
    }
    let err = signal::try_notify(&[]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let p = std::panic::catch_unwind(|| signal::notify(&[Signal::Other(libc::SIGKILL)]));
    assert!(p.is_err());
}

/// stop reports whether the receiver was registered; a notify_context is
/// cancelled by its CancelFunc (no signal involved), with its parent, and
/// never by anything else.
#[test]
fn stop_and_notify_context_without_signals() {
    // SIGUSR2 gets a handler in this process, but nobody sends it.
    let rx = signal::notify(&[Signal::User2]);
    let clone = rx.clone();
    assert!(signal::stop(&clone), "a clone names the same registration");
    assert!(!signal::stop(&rx));
    assert_eq!(rx.capacity(), Some(signal::NOTIFY_CAPACITY));

    let (parent, cancel_parent) = Context::background().with_cancel();
    let (ctx, cancel) = signal::notify_context(&parent, &[Signal::User2]);
    assert!(!ctx.is_done());
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(!parent.is_done());
    let (ctx, _cancel) = signal::notify_context(&parent, &[Signal::User2]);
    cancel_parent.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    // (shutdown_context is tested in a child only: here it would take the
    // harness's first Ctrl-C.)
}

// ---------------------------------------------------------------------------
// A child process of this test binary, driven line by line.

/// A running helper test.
struct Proc {
    /// The child.
    child: Child,
    /// Its stdout, line by line.
    lines: mpsc::Receiver<String>,
    /// Everything it printed so far (for failure messages).
    seen: Vec<String>,
    /// Its stderr, read to the end.
    stderr: thread::JoinHandle<String>,
}

impl Proc {
    /// Starts helper test `name`.
    fn start(name: &str) -> Proc {
        let mut child = common::child_command(name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child test process");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits (at most 30 s) for a stdout line ending with `want`.
    fn expect_line(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // libtest prints "test <name> ... " without a
                    // newline before the test's own output.
                    let hit = line.trim_end().ends_with(want);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "child never printed {want:?}; stdout so far: {:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Sends signal `sig` to the child.
    fn send(&self, sig: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; `pid` is our own child, which has not been reaped (we hold
        // its `Child` and have not waited), so the pid cannot be reused.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits (at most 30 s) for the child to exit; returns its status and
    /// all of its stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for the child") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child hung; stdout: {:#?}", self.seen);
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.seen.extend(self.lines.try_iter());
        // The reader may still be draining the pipe.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (status, self.seen.join("\n"), self.stderr.join().unwrap())
    }
}

/// Fails unless the child exited successfully after running its one test.
fn assert_passed(name: &str, status: ExitStatus, out: &str, err: &str) {
    assert!(
        status.success() && out.contains("1 passed"),
        "child `{name}` failed ({status:?}):\n{out}\n{err}"
    );
}

// ---------------------------------------------------------------------------
// Tests that signal a child.

/// SIGUSR1 reaches every channel registered for it, and only those.
#[test]
fn user1_is_delivered_to_every_registered_channel() {
    let mut p = Proc::start("child_user1");
    p.expect_line("ready");
    p.send(libc::SIGUSR1);
    let (status, out, err) = p.finish();
    assert_passed("child_user1", status, &out, &err);
    assert!(out.contains("a: user defined signal 1"), "{out}");
    assert!(out.contains("b: user defined signal 1"), "{out}");
}

#[test]
#[ignore = "helper: run in a child process by user1_is_delivered_to_every_registered_channel"]
fn child_user1() {
    if !common::is_child("child_user1") {
        return;
    }
    let a = signal::notify(&[Signal::User1]);
    let b = signal::notify(&[Signal::User2, Signal::User1]);
    let other = signal::notify(&[Signal::User2]);
    let ctx = signal::shutdown_context();
    println!("ready");
    let got_a = a
        .recv_timeout(Duration::from_secs(30))
        .expect("a: no signal");
    let got_b = b
        .recv_timeout(Duration::from_secs(30))
        .expect("b: no signal");
    assert_eq!(got_a, Signal::User1);
    assert_eq!(got_b, Signal::User1);
    println!("a: {got_a}");
    println!("b: {got_b}");
    thread::sleep(Duration::from_millis(50));
    assert!(
        other.try_recv().is_err(),
        "SIGUSR1 went to a SIGUSR2 channel"
    );
    assert!(!ctx.is_done(), "SIGUSR1 cancelled the shutdown context");
}

/// A full channel drops further signals (Go: "the package will not block
/// sending to c"), and the process is not killed by them.
#[test]
fn full_channel_drops_signals() {
    let mut p = Proc::start("child_full");
    p.expect_line("ready");
    p.send(libc::SIGUSR1);
    p.expect_line("one buffered");
    p.send(libc::SIGUSR1);
    p.expect_line("second sent");
    let (status, out, err) = p.finish();
    assert_passed("child_full", status, &out, &err);
    assert!(out.contains("dropped"), "{out}");
}

#[test]
#[ignore = "helper: run in a child process by full_channel_drops_signals"]
fn child_full() {
    if !common::is_child("child_full") {
        return;
    }
    // A sentinel channel tells us when the dispatcher has handled the
    // second signal (each channel gets each signal).
    let rx = signal::notify(&[Signal::User1]);
    let sentinel = signal::notify(&[Signal::User1]);
    println!("ready");
    sentinel
        .recv_timeout(Duration::from_secs(30))
        .expect("first signal");
    assert_eq!(rx.len(), 1);
    println!("one buffered");
    sentinel
        .recv_timeout(Duration::from_secs(30))
        .expect("second signal");
    println!("second sent");
    // The second signal was dispatched after the first was buffered: the
    // full channel dropped it.
    assert_eq!(rx.len(), 1, "a full channel grew");
    assert_eq!(rx.try_recv(), Ok(Signal::User1));
    assert!(rx.try_recv().is_err());
    println!("dropped");
}

/// After stop, the signal's default action (terminate) is back.
#[test]
fn stop_restores_the_default_action() {
    let mut p = Proc::start("child_stop");
    p.expect_line("ready");
    p.send(libc::SIGUSR1);
    let (status, out, _) = p.finish();
    assert_eq!(status.signal(), Some(libc::SIGUSR1), "{status:?}\n{out}");
    assert!(!out.contains("survived"));
}

#[test]
#[ignore = "helper: run in a child process by stop_restores_the_default_action"]
fn child_stop() {
    if !common::is_child("child_stop") {
        return;
    }
    let rx = signal::notify(&[Signal::User1]);
    assert!(signal::stop(&rx));
    println!("ready");
    thread::sleep(Duration::from_secs(20));
    println!("survived");
}

/// Dropping every receiver unregisters too: the default action is back.
#[test]
fn dropped_receiver_unregisters() {
    let mut p = Proc::start("child_drop");
    p.expect_line("ready");
    p.send(libc::SIGUSR1);
    let (status, out, _) = p.finish();
    assert_eq!(status.signal(), Some(libc::SIGUSR1), "{status:?}\n{out}");
}

#[test]
#[ignore = "helper: run in a child process by dropped_receiver_unregisters"]
fn child_drop() {
    if !common::is_child("child_drop") {
        return;
    }
    let rx = signal::notify(&[Signal::User1]);
    drop(rx);
    println!("ready");
    thread::sleep(Duration::from_secs(20));
    println!("survived");
}

/// SIGTERM cancels the shutdown context (cause: the signal) without
/// killing the process; a second SIGTERM, with nothing registered any
/// more, does kill it.
#[test]
fn sigterm_cancels_the_shutdown_context() {
    let mut p = Proc::start("child_shutdown");
    p.expect_line("ready");
    p.send(libc::SIGTERM);
    p.expect_line("cancelled by terminated");
    p.send(libc::SIGTERM);
    let (status, out, _) = p.finish();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}\n{out}");
    assert!(!out.contains("survived"), "{out}");
}

#[test]
#[ignore = "helper: run in a child process by sigterm_cancels_the_shutdown_context"]
fn child_shutdown() {
    if !common::is_child("child_shutdown") {
        return;
    }
    let ctx = signal::shutdown_context();
    let (child, _c) = ctx.with_cancel();
    println!("ready");
    // The main goroutine of a runtime waits in select!, as a server would.
    let waited = goro::go(move || {
        goro::select! {
            recv(child.done()) -> _ => child.err(),
            recv(goro::time::after(Duration::from_secs(30))) -> _ => None,
        }
    })
    .join()
    .unwrap();
    assert_eq!(waited, Some(Error::Canceled));
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.downcast_ref::<Signal>(), Some(&Signal::Terminate));
    println!("cancelled by {cause}");
    thread::sleep(Duration::from_secs(20));
    println!("survived");
}

/// SIGINT cancels a notify_context, and the signal is the cause.
#[test]
fn sigint_cancels_a_notify_context() {
    let mut p = Proc::start("child_interrupt");
    p.expect_line("ready");
    p.send(libc::SIGINT);
    let (status, out, err) = p.finish();
    assert_passed("child_interrupt", status, &out, &err);
    assert!(out.contains("cause: interrupt"), "{out}");
}

#[test]
#[ignore = "helper: run in a child process by sigint_cancels_a_notify_context"]
fn child_interrupt() {
    if !common::is_child("child_interrupt") {
        return;
    }
    let (ctx, _cancel) =
        signal::notify_context(&Context::background(), &[Signal::Interrupt, Signal::Hangup]);
    println!("ready");
    assert_eq!(
        ctx.done().recv_timeout(Duration::from_secs(30)),
        Err(goro::chan::RecvTimeoutError::Closed)
    );
    println!("cause: {}", ctx.cause().unwrap());
}
