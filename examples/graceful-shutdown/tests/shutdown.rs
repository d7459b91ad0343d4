//! End to end: run the example, signal it, and check that it shuts down
//! cleanly — exit status 0, a summary in which every produced job is
//! accounted for, and no more than the grace period (plus slack) between
//! the signal and the exit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The example's binary, built by cargo for this test.
const EXE: &str = env!("CARGO_BIN_EXE_graceful-shutdown");

/// A running example process and its stdout lines.
struct Example {
    /// The process.
    child: Child,
    /// Its stdout, line by line.
    lines: mpsc::Receiver<String>,
}

impl Example {
    /// Starts the example, with `max_ms` as its run-time bound if given.
    fn start(max_ms: Option<u64>) -> Example {
        let mut cmd = Command::new(EXE);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(ms) = max_ms {
            cmd.env("GRACEFUL_SHUTDOWN_MAX_MS", ms.to_string());
        }
        let mut child = cmd.spawn().expect("start the example");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Example { child, lines }
    }

    /// The next stdout line starting with `prefix` (at most 30 s).
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?} ({e:?})"),
            }
        }
    }

    /// Sends `sig` to the example.
    fn send(&self, sig: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; the child has not been waited for, so `pid` is still ours.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill({pid}, {sig})");
    }

    /// Waits (at most 30 s) for the process to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the example did not exit");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The numbers of a summary line, by key.
fn field(summary: &str, key: &str) -> u64 {
    let tag = format!("{key}=");
    let start = summary
        .find(&tag)
        .unwrap_or_else(|| panic!("no {key} in {summary:?}"))
        + tag.len();
    summary[start..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("bad {key} in {summary:?}"))
}

/// Checks that every produced job was completed, cancelled or drained.
fn assert_accounted(summary: &str) {
    let produced = field(summary, "produced");
    let completed = field(summary, "completed");
    let cancelled = field(summary, "cancelled");
    let drained = field(summary, "drained");
    let in_grace = field(summary, "finished_in_grace");
    assert_eq!(
        produced,
        completed + cancelled + drained,
        "jobs lost or counted twice: {summary}"
    );
    assert!(in_grace <= completed, "{summary}");
    // At most one job per worker can be in flight at the signal.
    assert!(cancelled + in_grace <= 4, "{summary}");
}

/// SIGTERM: in-flight jobs finish or are cancelled, the queue is drained,
/// the summary is printed and the exit status is 0.
#[test]
fn sigterm_shuts_down_cleanly() {
    let mut ex = Example::start(None);
    ex.line("ready");
    // Jobs take at most 300 ms: after 700 ms every worker has completed one.
    thread::sleep(Duration::from_millis(700));
    let signalled = Instant::now();
    ex.send(libc::SIGTERM);
    let shutdown = ex.line("shutdown:");
    assert!(shutdown.starts_with("shutdown: terminated"), "{shutdown}");
    let summary = ex.line("summary:");
    let status = ex.wait();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(status.code(), Some(0));
    assert!(summary.ends_with("reason=terminated"), "{summary}");
    assert!(field(&summary, "completed") >= 1, "{summary}");
    assert_accounted(&summary);
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
}

/// SIGINT (Ctrl-C) does the same.
#[test]
fn sigint_shuts_down_cleanly() {
    let mut ex = Example::start(None);
    ex.line("ready");
    thread::sleep(Duration::from_millis(200));
    ex.send(libc::SIGINT);
    let summary = ex.line("summary:");
    let status = ex.wait();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(summary.ends_with("reason=interrupt"), "{summary}");
    assert_accounted(&summary);
}

/// Without a signal the example stops itself at its time bound, also
/// cleanly, and not before it.
#[test]
fn time_bound_shuts_down_cleanly() {
    let start = Instant::now();
    let mut ex = Example::start(Some(400));
    ex.line("ready");
    let summary = ex.line("summary:");
    let status = ex.wait();
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        summary.ends_with("reason=context deadline exceeded"),
        "{summary}"
    );
    assert_accounted(&summary);
}
