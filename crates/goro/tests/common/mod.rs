//! Helpers shared by the integration tests (each `tests/*.rs` file does
//! `mod common;`): a timeout for code that might hang, panic payload text, a
//! drop counter, and re-running the test binary as a child process.

// Every test binary compiles this module but uses a different subset of it;
// without this, each binary would warn about the helpers it does not use.
#![allow(dead_code)]

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Wide upper bound for operations that should finish "at once" or right
/// after a deadline, added on top of an expected duration.
pub const SLACK: Duration = Duration::from_secs(5);

/// Runs `f` on a helper thread and fails the test if it takes longer than
/// `secs` (a hang is a failure, not a stuck test run).
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("did not finish within {secs} s (hang?)"),
    }
}

/// The text of a panic payload (`panic!("literal")` or `panic!("{}", x)`).
pub fn panic_text(payload: &(dyn Any + Send)) -> Option<String> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some((*s).to_string())
    } else {
        payload.downcast_ref::<String>().cloned()
    }
}

/// Adds one to a shared counter when dropped: proves a destructor ran (for
/// values that travel through channels, or live on an unwound goroutine).
#[derive(Debug)]
pub struct Tracked(pub Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// A crash or a process-wide setting cannot be tested in-process, so such a
// scenario is an `#[ignore]`d helper test that a normal test re-runs alone in a
// child process of the same test binary. The helper returns at once unless
// `is_child` says this process is that child.

/// Set in a child process's environment to the name of the helper test it should run.
const CHILD_ENV: &str = "GORO_TEST_CHILD";

/// How long a child process may run before it counts as hung and is killed.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// True when this process is the child spawned to run helper test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// The test-binary arguments that run only the `#[ignore]`d helper test `name`,
/// with its output shown.
fn child_args(name: &str) -> [&str; 5] {
    [
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
}

/// A command that runs helper test `name` of this test binary in a child
/// process; add environment variables to it before `run_child`.
pub fn child_command(name: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args(child_args(name)).env(CHILD_ENV, name);
    cmd
}

/// Like `child_command`, but through `sh -c "<prelude>; exec <binary> ..."`, so
/// that the shell `prelude` (e.g. a `ulimit`) sets up the child first.
pub fn child_command_in_shell(name: &str, prelude: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" \"$@\""))
        .arg(exe)
        .args(child_args(name))
        .env(CHILD_ENV, name);
    cmd
}

/// Runs `cmd` (from `child_command`) to the end and returns its output; kills
/// it and fails the test if it runs longer than 60 s.
pub fn run_child(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("child {cmd:?} hung for {CHILD_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Fails the test unless the child that ran helper test `name` exited
/// successfully after really running that one test (it was not filtered out).
pub fn assert_child_passed(name: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child `{name}` failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
