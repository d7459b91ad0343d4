//! Unix signals as channel values: Go's `os/signal`.
//!
//! [`notify`] returns a channel that receives the listed signals;
//! [`shutdown_context`] returns a [`Context`] that is cancelled by the first
//! SIGINT or SIGTERM — graceful shutdown in one line:
//!
//! ```no_run
//! use goro::signal;
//!
//! let ctx = signal::shutdown_context();
//! // … start workers that watch `ctx.done()` …
//! ctx.done().recv().unwrap_err(); // Ctrl-C or `kill <pid>`
//! println!("shutting down: {}", ctx.cause().unwrap()); // "interrupt" / "terminated"
//! ```
//!
//! ## Coming from Go
//!
//! | Go                                        | goro                                     |
//! |-------------------------------------------|------------------------------------------|
//! | `c := make(chan os.Signal, 1); signal.Notify(c, os.Interrupt)` | [`let c = notify(&[Signal::Interrupt])`](notify) |
//! | `signal.Stop(c)`                          | [`stop(&c)`](stop), or drop every clone of `c` |
//! | `signal.NotifyContext(ctx, sigs...)`      | [`notify_context(&ctx, &sigs)`](notify_context) |
//! | `os.Interrupt`, `syscall.SIGTERM`, …      | [`Signal::Interrupt`], [`Signal::Terminate`], … |
//!
//! ## How delivery works
//!
//! ```text
//!  kernel ──signal──▶ handler (signal-hook) ──byte──▶ self-pipe
//!                                                        │ read
//!                     one dispatcher thread ("goro-signal") per process
//!                                                        │ try_send / cancel
//!                              every registered receiver and signal context
//! ```
//!
//! * The signal handler is signal-hook's: it records the signal and writes
//!   a byte to a non-blocking pipe. It never blocks, allocates or locks.
//! * One plain OS thread, started by the first registration, reads the pipe
//!   and, under the registry lock, `try_send`s the signal to every channel
//!   registered for it. A **full channel drops the signal**, as Go does:
//!   the channel has capacity 1 (Go's recommended buffer), so one pending
//!   signal is kept and repeats are dropped until it is received. The
//!   kernel and the self-pipe also coalesce repeats of one signal that
//!   arrive before the thread runs.
//! * A channel whose receivers are all gone is unregistered when one of its
//!   signals is next delivered; [`stop`] unregisters at once.
//! * A signal context is cancelled (with the [`Signal`] as its
//!   [`cause`](Context::cause)) and unregistered by the first of its
//!   signals.
//!
//! ## Default actions
//!
//! Registering a signal installs a handler for it, so **while any receiver
//! or signal context is registered for a signal, its default action (for
//! SIGINT and SIGTERM: terminating the process) does not happen**; the
//! signal is only delivered. When a signal arrives and nothing is
//! registered for it any more (after [`stop`], after every receiver was
//! dropped, or after a signal context fired), the dispatcher performs the
//! default action itself: terminate (with the signal as the exit status),
//! stop, or ignore, as the signal's default says — so, as in Go, a second
//! Ctrl-C after a [`shutdown_context`] fired kills a program whose shutdown
//! hangs. Two limits: a signal that was ignored when the program started
//! (`nohup`) gets its default action, not "ignored", once its last
//! receiver is gone; and signals whose default signal-hook does not know
//! (real-time signals) are ignored.
//!
//! Signals that report faults or cannot be caught — SIGKILL, SIGSTOP,
//! SIGSEGV, SIGBUS, SIGILL, SIGFPE — cannot be registered (goro's own stack
//! overflow report uses SIGSEGV and SIGBUS).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::raw::c_int;
use std::sync::Arc;

use parking_lot::Mutex;
use signal_hook::iterator::{Handle, Signals};

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::context::{CancelFunc, CancelHandle, Context};

/// The capacity of a channel returned by [`notify`]: one pending signal, as
/// Go's documentation recommends.
pub const NOTIFY_CAPACITY: usize = 1;

/// A Unix signal (Go's `os.Signal` / `syscall.Signal`).
///
/// The named variants cover the signals programs usually handle;
/// [`Signal::Other`] names any other by number. Equality and hashing go by
/// the number, so `Signal::Other(libc::SIGINT) == Signal::Interrupt`, and
/// [`Signal::from_raw`] always returns the named variant when there is one.
/// `Display` prints Go's descriptions ("interrupt", "terminated", …).
///
/// ```
/// use goro::signal::Signal;
/// assert_eq!(Signal::Interrupt.as_raw(), 2);
/// assert_eq!(Signal::Terminate.to_string(), "terminated");
/// assert_eq!(Signal::from_raw(15), Signal::Terminate);
/// assert_eq!(Signal::Other(10), Signal::User1);
/// ```
///
/// `Signal` is also a `std::error::Error`, so it can be the
/// [`cause`](Context::cause) of a context cancelled by a signal.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    /// SIGHUP: the controlling terminal hung up; daemons: reload.
    Hangup,
    /// SIGINT: Ctrl-C (Go's `os.Interrupt`).
    Interrupt,
    /// SIGQUIT: Ctrl-\.
    Quit,
    /// SIGUSR1: user-defined.
    User1,
    /// SIGUSR2: user-defined.
    User2,
    /// SIGPIPE: write to a pipe with no reader.
    Pipe,
    /// SIGALRM: an `alarm` timer expired.
    Alarm,
    /// SIGTERM: polite termination request (`kill`, service managers).
    Terminate,
    /// SIGCHLD: a child process stopped or exited.
    Child,
    /// SIGWINCH: the terminal window changed size.
    WindowChange,
    /// Any signal by number.
    Other(c_int),
}

impl Signal {
    /// Every named variant, with its number.
    const NAMED: [(Signal, c_int); 10] = [
        (Signal::Hangup, libc::SIGHUP),
        (Signal::Interrupt, libc::SIGINT),
        (Signal::Quit, libc::SIGQUIT),
        (Signal::User1, libc::SIGUSR1),
        (Signal::User2, libc::SIGUSR2),
        (Signal::Pipe, libc::SIGPIPE),
        (Signal::Alarm, libc::SIGALRM),
        (Signal::Terminate, libc::SIGTERM),
        (Signal::Child, libc::SIGCHLD),
        (Signal::WindowChange, libc::SIGWINCH),
    ];

    /// The signal's number (`SIGINT` is 2).
    pub fn as_raw(self) -> c_int {
        match self {
            Signal::Hangup => libc::SIGHUP,
            Signal::Interrupt => libc::SIGINT,
            Signal::Quit => libc::SIGQUIT,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
            Signal::Pipe => libc::SIGPIPE,
            Signal::Alarm => libc::SIGALRM,
            Signal::Terminate => libc::SIGTERM,
            Signal::Child => libc::SIGCHLD,
            Signal::WindowChange => libc::SIGWINCH,
            Signal::Other(n) => n,
        }
    }

    /// The signal numbered `n`: a named variant if there is one, else
    /// [`Signal::Other`].
    pub fn from_raw(n: c_int) -> Signal {
        Signal::NAMED
            .iter()
            .find(|(_, raw)| *raw == n)
            .map_or(Signal::Other(n), |(s, _)| *s)
    }

    /// Why `self` cannot be registered, if it cannot.
    fn check(self) -> io::Result<()> {
        let n = self.as_raw();
        // signal-hook keeps per-signal slots for numbers below 128.
        if !(1..128).contains(&n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("goro::signal: {n} is not a signal number"),
            ));
        }
        if signal_hook::consts::FORBIDDEN.contains(&n) || n == libc::SIGBUS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("goro::signal: {self} (signal {n}) cannot be registered"),
            ));
        }
        Ok(())
    }
}

impl PartialEq for Signal {
    fn eq(&self, other: &Signal) -> bool {
        self.as_raw() == other.as_raw()
    }
}

impl Eq for Signal {}

impl Hash for Signal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_raw().hash(state);
    }
}

impl fmt::Display for Signal {
    /// Go's descriptions (those of `syscall.Signal.String` on Linux).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match Signal::from_raw(self.as_raw()) {
            Signal::Hangup => "hangup",
            Signal::Interrupt => "interrupt",
            Signal::Quit => "quit",
            Signal::User1 => "user defined signal 1",
            Signal::User2 => "user defined signal 2",
            Signal::Pipe => "broken pipe",
            Signal::Alarm => "alarm clock",
            Signal::Terminate => "terminated",
            Signal::Child => "child exited",
            Signal::WindowChange => "window changed",
            Signal::Other(n) => return write!(f, "signal {n}"),
        };
        f.write_str(s)
    }
}

impl std::error::Error for Signal {}

/// Where a registration delivers.
enum Target {
    /// A channel from [`notify`]; stays registered until [`stop`] or until
    /// its receivers are gone.
    Channel(Sender<Signal>),
    /// A signal context: cancelled by the first of its signals, then
    /// unregistered.
    Cancel(CancelHandle),
}

/// One registration.
struct Entry {
    /// The signal numbers it wants.
    signals: Vec<c_int>,
    /// Where they go.
    target: Target,
}

/// Every registration in the process, and the dispatcher.
struct Registry {
    /// Adds signals to the dispatcher's set; `None` until the first
    /// registration starts the dispatcher.
    handle: Option<Handle>,
    /// Live registrations, in registration order.
    entries: Vec<Entry>,
}

/// The process's registry. Held only for short, non-blocking work (`try_send`,
/// list edits); never across a context cancellation or a default action.
static REGISTRY: Mutex<Registry> = parking_lot::const_mutex(Registry {
    handle: None,
    entries: Vec::new(),
});

/// Registrations made by the runtime itself (the SIGQUIT dump of
/// `#[goro::main]`), which wake no goroutine.
pub(crate) static INTERNAL_REGISTRATIONS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether a user registration exists (a signal could still wake someone).
pub(crate) fn has_registrations() -> bool {
    REGISTRY.lock().entries.len()
        > INTERNAL_REGISTRATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Registers `target` for `signals`, starting the dispatcher on first use.
fn register(signals: &[Signal], target: Target) -> io::Result<()> {
    if signals.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "goro::signal: no signals given",
        ));
    }
    for s in signals {
        s.check()?;
    }
    let mut reg = REGISTRY.lock();
    if reg.handle.is_none() {
        let sigs = Signals::new(std::iter::empty::<c_int>())?;
        let handle = sigs.handle();
        std::thread::Builder::new()
            .name("goro-signal".into())
            .spawn(move || dispatch_loop(sigs))?;
        reg.handle = Some(handle);
    }
    let handle = reg.handle.as_ref().expect("dispatcher started above");
    // Registration first, handler second: a signal that arrives in between
    // finds its receiver (the registry lock is ours, so it waits for it).
    for s in signals {
        handle.add_signal(s.as_raw())?;
    }
    reg.entries.retain(|e| match &e.target {
        Target::Cancel(h) => !h.is_done(),
        Target::Channel(_) => true,
    });
    reg.entries.push(Entry {
        signals: signals.iter().map(|s| s.as_raw()).collect(),
        target,
    });
    Ok(())
}

/// The dispatcher thread: forever reads signals from the self-pipe and
/// delivers them.
fn dispatch_loop(mut sigs: Signals) {
    for raw in sigs.forever() {
        dispatch(raw);
    }
}

/// Delivers one signal to every registration that wants it; performs the
/// default action if none does.
fn dispatch(raw: c_int) {
    let sig = Signal::from_raw(raw);
    let mut delivered = false;
    let mut fired = Vec::new();
    {
        let mut reg = REGISTRY.lock();
        let entries = std::mem::take(&mut reg.entries);
        for e in entries {
            if !e.signals.contains(&raw) {
                reg.entries.push(e);
                continue;
            }
            match e.target {
                Target::Channel(ref tx) => match tx.try_send(sig) {
                    // A full channel still has a listener: dropped, as Go.
                    Ok(()) | Err(TrySendError::Full(_)) => {
                        delivered = true;
                        reg.entries.push(e);
                    }
                    // Every receiver is gone: unregister.
                    Err(TrySendError::Closed(_)) => {}
                },
                // One-shot: unregistered either way; cancelled below,
                // outside the lock, unless it is done already.
                Target::Cancel(h) => {
                    if !h.is_done() {
                        delivered = true;
                        fired.push(h);
                    }
                }
            }
        }
    }
    for h in fired {
        h.cancel_with_cause(Arc::new(sig));
    }
    if !delivered {
        // Nothing listens any more: what the kernel would have done.
        let _ = signal_hook::low_level::emulate_default_handler(raw);
    }
}

/// A channel that receives `signals` as they arrive (Go's `signal.Notify`
/// with a channel of capacity 1).
///
/// Each call makes its own channel; a signal goes to every channel that is
/// registered for it. While registered, the signals no longer have their
/// default action (see the [module docs](self)).
///
/// ```no_run
/// use goro::signal::{self, Signal};
///
/// let hup = signal::notify(&[Signal::Hangup]);
/// goro::go(move || {
///     for _ in &hup {
///         println!("reloading configuration");
///     }
/// });
/// ```
///
/// # Panics
///
/// If `signals` is empty, or names a signal that cannot be registered
/// (SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, or not a signal
/// number); [`try_notify`] returns these as errors.
///
/// # Blocking
///
/// Never blocks (the first call starts the dispatcher thread).
#[track_caller]
pub fn notify(signals: &[Signal]) -> Receiver<Signal> {
    try_notify(signals).unwrap_or_else(|e| panic!("{e}"))
}

/// [`notify`], returning an error instead of panicking.
///
/// # Errors
///
/// `InvalidInput` if `signals` is empty or names a signal that cannot be
/// registered; any error from creating the self-pipe or starting the
/// dispatcher thread.
///
/// ```
/// use goro::signal::{self, Signal};
/// let err = signal::try_notify(&[Signal::Other(9)]).unwrap_err(); // SIGKILL
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub fn try_notify(signals: &[Signal]) -> io::Result<Receiver<Signal>> {
    let (tx, rx) = chan::bounded(NOTIFY_CAPACITY);
    register(signals, Target::Channel(tx))?;
    Ok(rx)
}

/// Unregisters the channel `rx` (and its clones) from every signal (Go's
/// `signal.Stop`). When this was the last registration for a signal, its
/// default action comes back. A signal already buffered in the channel
/// stays there. Returns whether `rx` was registered.
///
/// Dropping every clone of the receiver also unregisters it, lazily: at
/// the next delivery of one of its signals.
pub fn stop(rx: &Receiver<Signal>) -> bool {
    let mut reg = REGISTRY.lock();
    let before = reg.entries.len();
    reg.entries.retain(|e| match &e.target {
        Target::Channel(tx) => !Arc::ptr_eq(tx.chan(), rx.chan()),
        Target::Cancel(_) => true,
    });
    reg.entries.len() != before
}

/// A child of `parent` that is cancelled by the first of `signals` (Go's
/// `signal.NotifyContext`); the [`Signal`] is its
/// [`cause`](Context::cause). It is also done when `parent` is, or when
/// the returned [`CancelFunc`] is called or dropped.
///
/// The registration ends when the context is done, and the signals get
/// their default action back if nothing else is registered for them — so
/// a second Ctrl-C kills a program whose shutdown is stuck.
///
/// # Panics
///
/// As [`notify`].
#[track_caller]
pub fn notify_context(parent: &Context, signals: &[Signal]) -> (Context, CancelFunc) {
    let (ctx, handle) = parent.with_cancel_handle();
    let cancel = handle.to_cancel_func();
    register(signals, Target::Cancel(handle)).unwrap_or_else(|e| panic!("{e}"));
    (ctx, cancel)
}

/// A context cancelled by the first SIGINT or SIGTERM, with the signal as
/// its [`cause`](Context::cause): the graceful-shutdown root context
/// (`signal.NotifyContext(context.Background(), os.Interrupt,
/// syscall.SIGTERM)` with a `stop` that is never called).
///
/// Each call registers a new context. After one has fired, a further
/// SIGINT or SIGTERM has its default action (terminates the process)
/// unless something else is registered for it.
///
/// ```no_run
/// use goro::signal;
/// let ctx = signal::shutdown_context();
/// let server = goro::go({
///     let ctx = ctx.clone();
///     move || { /* serve until ctx.done() */ let _ = ctx.done().recv(); }
/// });
/// server.join().unwrap();
/// println!("stopped by {}", ctx.cause().unwrap());
/// ```
///
/// # Panics
///
/// If the dispatcher thread cannot be started.
pub fn shutdown_context() -> Context {
    let (ctx, handle) = Context::background().with_cancel_handle();
    register(
        &[Signal::Interrupt, Signal::Terminate],
        Target::Cancel(handle),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    ctx
}
