//! # goro — Go's concurrency model, in Rust
//!
//! Goroutines cheap enough to start one per request, channels and
//! [`select!`], timers and [`WaitGroup`](sync::WaitGroup). Code inside a
//! goroutine is plain blocking-style Rust: no `async`, no `.await`.
//!
//! ```
//! use goro::chan;
//!
//! // A pipeline: generate -> square -> sum, one goroutine per stage.
//! let (nums_tx, nums) = chan::bounded(0);
//! let (sq_tx, squares) = chan::bounded(0);
//! goro::go(move || for i in 1..=100u64 { nums_tx.send(i).unwrap() });
//! goro::go(move || for n in &nums { sq_tx.send(n * n).unwrap() });
//! let total: u64 = squares.iter().sum();
//! assert_eq!(total, 338_350);
//! ```
//!
//! ## Coming from Go
//!
//! | Go                                   | goro                                              |
//! |--------------------------------------|---------------------------------------------------|
//! | `go f()`                             | [`go(f)`](go) (returns a [`JoinHandle`])          |
//! | `make(chan T)` / `make(chan T, n)`   | [`chan::bounded(0)`](chan::bounded) / `chan::bounded(n)` |
//! | `ch <- v` / `v, ok := <-ch`          | `tx.send(v)` / `rx.recv()` (`Err` when closed)    |
//! | `close(ch)`                          | `tx.close()` or drop every `Sender`               |
//! | `for v := range ch`                  | `for v in &rx`                                    |
//! | `select { case ...: default: }`      | [`select!`] `{ recv(rx) -> v => .., default => .. }` |
//! | `var ch chan T` (nil) in select      | [`chan::never()`](chan::never)                    |
//! | `time.Sleep`, `time.After`, `time.NewTimer` | [`time::sleep`], [`time::after`], [`time::Timer`] |
//! | `sync.WaitGroup`                     | [`sync::WaitGroup`]                               |
//! | `runtime.Gosched()`                  | [`yield_now()`]                                   |
//! | `runtime.NumGoroutine()`             | [`num_goroutine()`]                               |
//! | `GOMAXPROCS`                         | `GORO_MAXPROCS`, or [`RuntimeBuilder::workers`]   |
//! | `func main()`                        | `#[goro::main] fn main()`                         |
//!
//! Where Go would panic or leak, goro returns an error instead: a send on a
//! closed channel returns the value in `Err(SendError(v))`; when every
//! receiver is gone, senders fail rather than block forever.
//!
//! ## Sound by construction
//!
//! A goroutine never changes OS thread once it has started running, so
//! thread-locals, `Rc`s and other `!Send` values held across a blocking call
//! are as safe as on a single thread, and [`go`] is a safe function.
//! Unstarted goroutines are what idle workers steal.
//!
//! ## Everywhere
//!
//! Every blocking call works from a goroutine (it parks, the worker runs
//! others) and from a plain OS thread (it blocks the thread), so channels can
//! connect the two. `go` outside a runtime uses a default runtime started on
//! first use.
//!
//! ## Platforms
//!
//! Linux on x86_64 and aarch64 (stacks use `mmap`, guard pages use
//! `MADV_GUARD_INSTALL` on Linux ≥ 6.13 and `mprotect` before).

#![cfg(target_os = "linux")]

mod blocking;
pub mod chan;
pub mod context;
pub mod debug;
pub mod errgroup;
pub mod fs;
pub mod net;
mod runtime;
mod select_macro;
pub mod signal;
mod spawn;
pub mod sync;
pub mod testing;
pub mod time;

pub use blocking::blocking;
pub use goro_macros::{main, test};
pub use runtime::{Runtime, RuntimeBuilder, WaitReason};
pub use spawn::{
    current_id, current_name, go, num_goroutine, scope, yield_now, Builder, GoId, JoinError,
    JoinHandle, Scope, ScopedJoinHandle,
};

#[doc(hidden)]
pub mod __private {
    /// Runs `main`'s body as the main goroutine of the default runtime, then
    /// exits the process with its status (Go: when main returns, the program
    /// ends, whatever other goroutines are doing). SIGQUIT prints a dump of
    /// every goroutine to stderr and exits with status 2, as Go does.
    pub fn run_main<F, T>(f: F) -> !
    where
        F: FnOnce() -> T + Send,
        T: std::process::Termination + Send,
    {
        let rt = crate::runtime::default_runtime();
        // A deadlock now prints Go's message and exits 2 (see the monitor).
        rt.shared_for_tests()
            .main_mode
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(quit) = crate::signal::try_notify(&[crate::signal::Signal::Quit]) {
            crate::signal::INTERNAL_REGISTRATIONS
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = std::thread::Builder::new()
                .name("goro-sigquit".into())
                .spawn(move || {
                    crate::runtime::park::mark_internal_thread();
                    if quit.recv().is_ok() {
                        let dump = crate::debug::dump();
                        eprintln!("SIGQUIT: quit\n\n{dump}");
                        std::process::exit(2);
                    }
                });
        }
        let r = rt.block_on(f);
        let code = r.report();
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        std::process::exit(exit_code(code))
    }

    fn exit_code(c: std::process::ExitCode) -> i32 {
        if c == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        }
    }

    /// Runs a test body as the main goroutine of a fresh runtime, then
    /// checks (goleak-style) that it left no goroutine behind.
    pub fn run_test<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_test_with(true, f)
    }

    /// `run_test` without the leak check (`#[goro::test(allow_leaks)]`).
    pub fn run_test_allow_leaks<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        run_test_with(false, f)
    }

    /// `#[goro::test(virtual_time)]`: `testing::synctest`.
    pub fn run_test_virtual<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::testing::synctest(f)
    }

    /// `#[goro::test(virtual_time, allow_leaks)]`.
    pub fn run_test_virtual_allow_leaks<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let rt = crate::Runtime::builder()
            .virtual_time(true)
            .build()
            .unwrap_or_else(|e| panic!("goro::test: cannot start a runtime: {e}"));
        rt.block_on(f)
    }

    /// `#[goro::test(explore = N)]`: `testing::explore`.
    pub fn run_test_explore<F>(seeds: u64, f: F)
    where
        F: Fn() + Send + Sync + 'static,
    {
        crate::testing::explore(seeds, f)
    }

    fn run_test_with<F, T>(check_leaks: bool, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let rt = crate::Runtime::builder()
            .build()
            .unwrap_or_else(|e| panic!("goro::test: cannot start a runtime: {e}"));
        let v = rt.block_on(f);
        if check_leaks {
            let shared = rt.shared_for_tests().clone();
            let r = rt.block_on(move || crate::testing::check(&shared, 1));
            if let Err(report) = r {
                panic!("goro::test: {report}(opt out with #[goro::test(allow_leaks)])");
            }
        }
        v
    }
}
