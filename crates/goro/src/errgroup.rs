//! Error groups: goroutines working on subtasks of one task, with the first
//! error winning (Go's `golang.org/x/sync/errgroup`).
//!
//! ```
//! use goro::errgroup::Group;
//!
//! let g: Group<String> = Group::new();
//! for n in 0..8u32 {
//!     g.go(move || if n == 5 { Err(format!("task {n} failed")) } else { Ok(()) });
//! }
//! assert_eq!(g.wait(), Err("task 5 failed".to_string()));
//! ```
//!
//! ## Coming from Go
//!
//! | Go                                   | goro                                     |
//! |--------------------------------------|------------------------------------------|
//! | `var g errgroup.Group`               | [`Group::new()`] / `Group::default()`    |
//! | `g, ctx := errgroup.WithContext(ctx)`| [`Group::with_context(&ctx)`](Group::with_context) |
//! | `g.SetLimit(n)`, `g.SetLimit(-1)`    | [`set_limit(n)`](Group::set_limit), [`remove_limit()`](Group::remove_limit) |
//! | `g.Go(f)`, `g.TryGo(f)`              | [`go(f)`](Group::go), [`try_go(f)`](Group::try_go) |
//! | `err := g.Wait()`                    | [`wait()`](Group::wait) (consumes the group) |
//!
//! ## How it works
//!
//! * The count of running goroutines is a [`WaitGroup`]: `go` adds one
//!   before spawning, the goroutine's exit path subtracts it; `wait` waits
//!   for zero.
//! * The limit is a channel of capacity `n` used as a counting semaphore,
//!   as Go does: `go` sends a token before spawning (parking while the
//!   channel is full), `try_go` uses `try_send`, and a goroutine receives
//!   one token back as it exits (before it is subtracted from the count, so
//!   `wait` returning means every token is back).
//! * The first error is kept in a locked slot; whoever fills it also
//!   cancels the group's context. Later errors are dropped.
//! * A panic is caught in the goroutine (so the count and the token are
//!   still returned), the first payload is kept, the context is cancelled,
//!   and `wait` re-raises it once every goroutine has returned.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::context::{CancelCauseFunc, Context};
use crate::sync::WaitGroup;

/// A collection of goroutines working on subtasks of a common task; `wait`
/// returns the first error any of them returned (Go's `errgroup.Group`).
///
/// `E` is the error type of the subtasks; it needs no trait bound beyond
/// `Send + 'static` (not even `Debug` or `std::error::Error`).
///
/// ```
/// use std::time::Duration;
/// use goro::context::Context;
/// use goro::errgroup::Group;
///
/// let (g, ctx) = Group::<&str>::with_context(&Context::background());
/// // A subtask that would run for a long time, unless the group gives up.
/// let slow = ctx.clone();
/// g.go(move || {
///     goro::select! {
///         recv(goro::time::after(Duration::from_secs(30))) -> _ => Ok(()),
///         recv(slow.done()) -> _ => Err("cancelled"),
///     }
/// });
/// g.go(|| Err("bad input"));
/// assert_eq!(g.wait(), Err("bad input")); // the first error wins
/// assert!(ctx.is_done()); // and cancelled the group's context
/// ```
///
/// # Panics
///
/// A panic in a group goroutine does not tear anything down by itself: it
/// is caught, cancels the group's context (as an error would), and is
/// re-raised by [`wait`](Group::wait) after every goroutine of the group
/// has returned. It takes precedence over any error.
pub struct Group<E> {
    /// Counts goroutines started by the group and not yet finished.
    wg: WaitGroup,
    /// The limit semaphore: a channel of capacity `limit` holding one token
    /// per running goroutine; `None` without a limit.
    sem: Option<(Sender<()>, Receiver<()>)>,
    /// The limit (for `Debug` and [`Group::limit`]).
    limit: Option<usize>,
    /// State shared with the group's goroutines.
    shared: Arc<Shared<E>>,
}

/// What the goroutines of a [`Group`] report back.
struct Shared<E> {
    /// The first error; later ones are dropped.
    err: Mutex<Option<E>>,
    /// The first panic payload, re-raised by `wait`.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Cancels the context of a group made by `with_context` (on the first
    /// error or panic, and when `wait` returns).
    cancel: Option<CancelCauseFunc>,
    /// Goroutines started and not yet finished (`set_limit` checks it; the
    /// WaitGroup does not expose its counter).
    active: AtomicUsize,
}

/// The cause recorded on the group's context when a goroutine fails.
#[derive(Debug)]
struct GroupFailed(&'static str);

impl fmt::Display for GroupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for GroupFailed {}

impl<E> Shared<E> {
    /// Cancels the group's context (if any) with `why` as the cause.
    fn cancel(&self, why: &'static str) {
        if let Some(c) = &self.cancel {
            c.cancel(GroupFailed(why));
        }
    }
}

impl<E: Send + 'static> Default for Group<E> {
    /// [`Group::new`].
    fn default() -> Self {
        Group::new()
    }
}

impl<E: Send + 'static> Group<E> {
    /// A group with no limit and no context (Go's zero `errgroup.Group`).
    pub fn new() -> Group<E> {
        Group::with_cancel(None)
    }

    /// A group bound to a new context derived from `ctx` (Go's
    /// `errgroup.WithContext`). The context is cancelled the first time a
    /// goroutine of the group returns an error (or panics), or when
    /// [`wait`](Group::wait) returns, whichever comes first. Pass it to the
    /// subtasks so the others stop early once one has failed.
    ///
    /// Its [`cause`](Context::cause) says which: "errgroup: a goroutine
    /// returned an error", "errgroup: a goroutine panicked" or
    /// "errgroup: wait returned".
    pub fn with_context(ctx: &Context) -> (Group<E>, Context) {
        let (ctx, cancel) = ctx.with_cancel_cause();
        (Group::with_cancel(Some(cancel)), ctx)
    }

    /// A group that cancels `cancel` as described in `with_context`.
    fn with_cancel(cancel: Option<CancelCauseFunc>) -> Group<E> {
        Group {
            wg: WaitGroup::new(),
            sem: None,
            limit: None,
            shared: Arc::new(Shared {
                err: Mutex::new(None),
                panic: Mutex::new(None),
                cancel,
                active: AtomicUsize::new(0),
            }),
        }
    }

    /// Limits the group to at most `n` goroutines running at once (Go's
    /// `SetLimit`). From then on [`go`](Group::go) waits for room and
    /// [`try_go`](Group::try_go) refuses when the group is full. A limit of
    /// 0 admits nothing: `try_go` always refuses and `go` panics (in Go it
    /// would block forever).
    ///
    /// ```
    /// use goro::errgroup::Group;
    /// let mut g: Group<()> = Group::new();
    /// g.set_limit(2);
    /// assert_eq!(g.limit(), Some(2));
    /// for _ in 0..10 {
    ///     g.go(|| Ok(())); // at most two run at a time
    /// }
    /// g.wait().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// If any goroutine of the group is still running, as Go does ("modify
    /// limit while goroutines in the group are still active"). goro checks
    /// this even when the group had no limit before (Go only checks when
    /// one was set): a limit that ignored running goroutines would not hold.
    #[track_caller]
    pub fn set_limit(&mut self, n: usize) {
        self.check_idle();
        self.sem = Some(chan::bounded(n));
        self.limit = Some(n);
    }

    /// Removes the limit (Go's `SetLimit(-1)`).
    ///
    /// # Panics
    ///
    /// As [`set_limit`](Group::set_limit), if goroutines are running.
    #[track_caller]
    pub fn remove_limit(&mut self) {
        self.check_idle();
        self.sem = None;
        self.limit = None;
    }

    /// The current limit, `None` for none.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Panics if a goroutine of the group is running.
    #[track_caller]
    fn check_idle(&self) {
        let active = self.shared.active.load(Ordering::Acquire);
        if active != 0 {
            panic!(
                "errgroup: modify limit while {active} goroutines in the group are still active"
            );
        }
    }

    /// Runs `f` in a new goroutine of the group (Go's `Go`). The first
    /// error returned by any goroutine of the group is what
    /// [`wait`](Group::wait) returns, and cancels the group's context.
    ///
    /// # Blocking
    ///
    /// With a limit, waits until fewer than the limit of the group's
    /// goroutines are running (parks a goroutine, blocks a plain thread).
    /// Without one, never blocks.
    ///
    /// # Panics
    ///
    /// If the limit is 0 (nothing could ever start), or if a goroutine
    /// cannot be spawned.
    #[track_caller]
    pub fn go<F: FnOnce() -> Result<(), E> + Send + 'static>(&self, f: F) {
        if let Some((tx, _)) = &self.sem {
            assert!(
                tx.capacity() != Some(0),
                "errgroup: Group::go with a limit of 0 would wait forever"
            );
            // The group holds a receiver, so the channel cannot close.
            tx.send(()).expect("errgroup: limit channel closed");
        }
        self.spawn(f);
    }

    /// Runs `f` in a new goroutine of the group if the limit allows it now
    /// (Go's `TryGo`); returns whether it started. Without a limit it
    /// always starts.
    ///
    /// ```
    /// use goro::errgroup::Group;
    /// let mut g: Group<()> = Group::new();
    /// g.set_limit(1);
    /// let (release, gate) = goro::chan::bounded::<()>(0);
    /// assert!(g.try_go(move || { let _ = gate.recv(); Ok(()) }));
    /// assert!(!g.try_go(|| Ok(()))); // full: refused, `f` dropped unrun
    /// drop(release);
    /// g.wait().unwrap();
    /// ```
    ///
    /// # Blocking
    ///
    /// Never blocks.
    #[track_caller]
    pub fn try_go<F: FnOnce() -> Result<(), E> + Send + 'static>(&self, f: F) -> bool {
        if let Some((tx, _)) = &self.sem {
            match tx.try_send(()) {
                Ok(()) => {}
                Err(TrySendError::Full(())) => return false,
                Err(TrySendError::Closed(())) => unreachable!("errgroup: limit channel closed"),
            }
        }
        self.spawn(f);
        true
    }

    /// Spawns `f` (a token, if limited, is already taken).
    #[track_caller]
    fn spawn<F: FnOnce() -> Result<(), E> + Send + 'static>(&self, f: F) {
        self.shared.active.fetch_add(1, Ordering::AcqRel);
        self.wg.add(1);
        let shared = self.shared.clone();
        let wg = self.wg.clone();
        let token = self.sem.as_ref().map(|(_, rx)| rx.clone());
        let h = crate::go(move || {
            match catch_unwind(AssertUnwindSafe(f)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let mut slot = shared.err.lock();
                    if slot.is_none() {
                        *slot = Some(e);
                        drop(slot);
                        shared.cancel("errgroup: a goroutine returned an error");
                    }
                }
                Err(p) => {
                    let mut slot = shared.panic.lock();
                    if slot.is_none() {
                        *slot = Some(p);
                    }
                    drop(slot);
                    shared.cancel("errgroup: a goroutine panicked");
                }
            }
            if let Some(rx) = token {
                // Our token is in the buffer: this never waits.
                let _ = rx.try_recv();
            }
            shared.active.fetch_sub(1, Ordering::AcqRel);
            wg.done();
        });
        drop(h);
    }

    /// Waits for every goroutine of the group to return, cancels the
    /// group's context, and returns the first error, if any (Go's `Wait`).
    ///
    /// # Panics
    ///
    /// If a goroutine of the group panicked, `wait` re-raises the first
    /// panic (with its original payload) after every goroutine has
    /// returned and the context is cancelled, so a failed assertion in a
    /// subtask is never silent.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn wait(self) -> Result<(), E> {
        self.wg.wait();
        self.shared.cancel("errgroup: wait returned");
        if let Some(p) = self.shared.panic.lock().take() {
            resume_unwind(p);
        }
        match self.shared.err.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .field("limit", &self.limit)
            .field("failed", &self.shared.err.lock().is_some())
            .field("has_context", &self.shared.cancel.is_some())
            .finish()
    }
}
