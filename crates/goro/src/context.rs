//! Cancellation, deadlines and request-scoped values: Go's `context` package.
//!
//! A [`Context`] travels down a call tree (into every goroutine that works on
//! one request) and tells that work when to stop: when someone cancels it,
//! when its deadline passes, or when its parent stops. Work checks it by
//! receiving from [`Context::done`] in a [`select!`](crate::select) next to
//! its own channels, or by polling [`Context::err`] /
//! [`Context::is_done`].
//!
//! ```
//! use std::time::Duration;
//! use goro::context::{Context, Error};
//!
//! let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
//! let work = goro::go(move || {
//!     goro::select! {
//!         recv(goro::time::after(Duration::from_secs(10))) -> _ => Ok("finished"),
//!         recv(ctx.done()) -> _ => Err(ctx.err().unwrap()),
//!     }
//! });
//! assert_eq!(work.join().unwrap(), Err(Error::DeadlineExceeded));
//! ```
//!
//! ## Coming from Go
//!
//! | Go                                   | goro                                          |
//! |--------------------------------------|-----------------------------------------------|
//! | `context.Background()`, `TODO()`     | [`Context::background()`]                     |
//! | `context.WithCancel(ctx)`            | [`ctx.with_cancel()`](Context::with_cancel)   |
//! | `context.WithTimeout(ctx, d)`        | [`ctx.with_timeout(d)`](Context::with_timeout)|
//! | `context.WithDeadline(ctx, t)`       | [`ctx.with_deadline(t)`](Context::with_deadline) |
//! | `context.WithValue(ctx, key, v)`     | [`ctx.with_value(v)`](Context::with_value) (the key is `v`'s type) |
//! | `ctx.Value(key).(T)`                 | [`ctx.value::<T>()`](Context::value)          |
//! | `ctx.Done()`, `ctx.Err()`            | [`ctx.done()`](Context::done), [`ctx.err()`](Context::err) |
//! | `context.WithCancelCause`, `Cause`   | [`ctx.with_cancel_cause()`](Context::with_cancel_cause), [`ctx.cause()`](Context::cause) |
//! | `context.WithoutCancel(ctx)`         | [`ctx.without_cancel()`](Context::without_cancel) |
//! | `context.AfterFunc(ctx, f)`          | [`after_func(&ctx, f)`](after_func)           |
//! | `defer cancel()`                     | keep the [`CancelFunc`]; dropping it cancels  |
//!
//! Two differences from Go: a [`CancelFunc`] cancels when dropped (so a
//! forgotten `cancel()` cannot leak a timer or a child link, and
//! `let (ctx, _) = parent.with_cancel()` hands back an already cancelled
//! context), and values are keyed by their Rust type instead of by a key
//! value (wrap a value in a newtype to give it its own key).
//!
//! ## Vocabulary
//!
//! * **context**: a cheap handle (`Arc`) to an immutable link of a chain
//!   that ends at [`Context::background`]. A link is a *cancel link* (made by
//!   `with_cancel`, `with_timeout`, …), a *value link* (`with_value`) or a
//!   *detached link* (`without_cancel`).
//! * **node**: the cancellation state behind a cancel link. Every link
//!   points at the nearest node at or above it, so `done`, `err` and
//!   `deadline` of a value link cost the same as of its cancel link.
//!   Background and detached links have no node: they are never done.
//! * **child**: a node (or an [`after_func`] registration) entered in the
//!   child table of the nearest node above it. Cancelling a node cancels
//!   every child, transitively; a child never reaches up.
//!
//! ## States
//!
//! A node's `state` goes from `LIVE` to `CANCELED` or `DEADLINE` exactly
//! once, under the node's lock; it is read without the lock (`Acquire`,
//! pairing with the `Release` store), which makes `err` and `is_done` one
//! atomic load. At that one transition the canceller also records the
//! cause, closes the `done` channel (if anybody asked for it), takes the
//! child table and the deadline timer; then, with the lock released, it
//! cancels the children with the same error and cause, stops the timer,
//! starts the after-functions, and finally removes the node from its
//! parent's table (so a long-lived parent does not accumulate dead
//! children).
//!
//! ## Locking
//!
//! Each node has one short lock (`Node::inner`) protecting its cause, the
//! `done` sender, its child table and its timer. **No code holds two node
//! locks at once**: registration locks only the parent, cancellation locks
//! one node at a time while walking the subtree with an explicit work list
//! (no recursion, so a ten-thousand-deep chain cannot overflow a goroutine
//! stack), and removal from the parent locks only the parent after the
//! child's lock is released. So there is no lock order to get wrong. The
//! `done` channel is closed after the lock is dropped ("drop the lock before
//! waking").
//!
//! A registration racing with the parent's cancellation is decided under
//! the parent's lock: either the child lands in the table before the
//! parent takes it (and is cancelled with it), or the parent is already
//! done and the child is cancelled at once with the parent's error.
//!
//! ## Rejected alternatives
//!
//! * A `done` channel made eagerly for every node: one more allocation per
//!   `with_cancel` even though most contexts are never waited on. As in Go
//!   it is made on the first `done()` call (closed at birth if the node is
//!   already done).
//! * Weak child links: cancellation must reach a child whose handles the
//!   user dropped but whose goroutines still hold clones, and the link is
//!   removed on cancel anyway, so strong links cost nothing extra.

use std::any::Any;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender};
use crate::time::Timer;

/// Why a context was cancelled, as returned by [`Context::cause`]: an
/// arbitrary error shared between every context that it cancelled.
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a context is done (Go's `context.Canceled` and
/// `context.DeadlineExceeded`).
///
/// ```
/// use goro::context::Error;
/// assert_eq!(Error::Canceled.to_string(), "context canceled");
/// assert_eq!(Error::DeadlineExceeded.to_string(), "context deadline exceeded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The context (or an ancestor) was cancelled by a [`CancelFunc`].
    Canceled,
    /// The context's deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl StdError for Error {}

/// `Node::state`: not done yet.
const LIVE: u8 = 0;
/// `Node::state`: done with [`Error::Canceled`].
const CANCELED: u8 = 1;
/// `Node::state`: done with [`Error::DeadlineExceeded`].
const DEADLINE: u8 = 2;

impl Error {
    /// The `Node::state` value that records this error.
    fn to_state(self) -> u8 {
        match self {
            Error::Canceled => CANCELED,
            Error::DeadlineExceeded => DEADLINE,
        }
    }

    /// The error a `Node::state` value records (`None` for `LIVE`).
    fn from_state(s: u8) -> Option<Error> {
        match s {
            LIVE => None,
            CANCELED => Some(Error::Canceled),
            _ => Some(Error::DeadlineExceeded),
        }
    }
}

/// Carries a deadline, a cancellation signal and request-scoped values
/// across API boundaries and goroutines (Go's `context.Context`).
///
/// Cloning is one reference-count increment; every clone is the same
/// context. `Context` is `Send + Sync`.
///
/// ```
/// use goro::context::Context;
///
/// let root = Context::background();
/// let (parent, cancel_parent) = root.with_cancel();
/// let (child, _cancel_child) = parent.with_cancel();
/// cancel_parent.cancel();
/// assert!(child.is_done()); // cancellation flows down…
/// assert!(!root.is_done()); // …never up
/// ```
#[derive(Clone)]
pub struct Context {
    /// The link this handle stands for.
    inner: Arc<Link>,
}

/// One immutable link of a context chain.
struct Link {
    /// The context this one was derived from (`None` only for background).
    parent: Option<Context>,
    /// The nearest cancellation node at or above this link; `None` if
    /// nothing above (up to background or a `without_cancel`) can cancel.
    node: Option<Arc<Node>>,
    /// The value of a `with_value` link.
    value: Option<Box<dyn Any + Send + Sync>>,
    /// What made this link, for `Debug`.
    kind: Kind,
}

/// Which constructor made a [`Link`] (for `Debug` only).
#[derive(Clone, Copy)]
enum Kind {
    /// `Context::background`.
    Background,
    /// `with_cancel` / `with_cancel_cause` (or a deadline no earlier than
    /// the parent's, which adds no timer).
    Cancel,
    /// `with_deadline` / `with_timeout` with its own timer.
    Deadline,
    /// `with_value`, with the value's type name.
    Value(&'static str),
    /// `without_cancel`.
    WithoutCancel,
}

impl Drop for Link {
    fn drop(&mut self) {
        // Unlink the chain iteratively: dropping the last handle to a very
        // deep chain must not recurse once per link.
        let mut next = self.parent.take();
        while let Some(ctx) = next {
            match Arc::try_unwrap(ctx.inner) {
                Ok(mut link) => next = link.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// The cancellation state shared by a cancel link, the value links below
/// it and its [`CancelFunc`].
struct Node {
    /// The nearest node above, whose child table holds this one while both
    /// are live (`None` when nothing above can cancel).
    parent: Option<Arc<Node>>,
    /// The effective deadline: the earliest of this node's own and its
    /// ancestors'. Fixed at creation.
    deadline: Option<Instant>,
    /// `LIVE`, `CANCELED` or `DEADLINE`. Written once, under `inner`, with
    /// `Release`; read anywhere with `Acquire` (pairs with that store, so a
    /// reader that sees "done" also sees everything the canceller did
    /// before cancelling).
    state: AtomicU8,
    /// The receiving end of the `done` channel, made on the first
    /// [`Context::done`] call (under `inner`, so it cannot race with
    /// cancellation); after that every call clones it without locking.
    done_rx: OnceLock<Receiver<()>>,
    /// Everything that changes at cancellation.
    inner: Mutex<NodeInner>,
}

/// The part of a [`Node`] behind its lock. Never held while taking another
/// node's lock, nor while closing a channel or stopping a timer.
#[derive(Default)]
struct NodeInner {
    /// The cause recorded at cancellation (`None` while live).
    cause: Option<Cause>,
    /// The sending end of the `done` channel while it is open: present only
    /// if `done_rx` was made while the node was live. Taken (and so closed)
    /// at cancellation.
    done_tx: Option<Sender<()>>,
    /// Live children, keyed by the address of their shared state (unique
    /// while the entry holds it). Taken whole at cancellation; a child that
    /// is cancelled on its own removes its entry.
    children: ChildTable,
    /// The deadline timer of a `with_deadline` node; stopped at
    /// cancellation so a cancelled context does not keep a timer armed.
    timer: Option<Timer>,
    /// The cause to record when the deadline timer fires (from
    /// [`Context::with_deadline_cause`]).
    deadline_cause: Option<Cause>,
}

/// A node's child table, keyed by address.
type ChildTable = HashMap<usize, Child, BuildHasherDefault<AddrHasher>>;

/// Hashes the addresses that key a [`ChildTable`]: one multiply, instead
/// of SipHash (the keys are not attacker-chosen).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        // Addresses are aligned: fold the low zero bits away first.
        let n = n as u64;
        self.0 = (n ^ (n >> 7)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        // The product's best bits are the high ones; the table indexes by
        // the low ones.
        self.0 ^ (self.0 >> 32)
    }
}

/// An entry of a node's child table.
enum Child {
    /// A node derived from this one.
    Node(Arc<Node>),
    /// An [`after_func`] registration.
    Func(Arc<FuncState>),
}

/// The table key of a child: the address of its shared state.
fn key<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as usize
}

impl Node {
    /// A new live node below `parent` with the effective deadline `own`
    /// limited by the parent's, entered in the parent's child table (or
    /// cancelled at once if the parent is already done).
    fn new_child(parent: Option<&Arc<Node>>, own: Option<Instant>) -> Arc<Node> {
        let inherited = parent.and_then(|p| p.deadline);
        let deadline = match (inherited, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let node = Arc::new(Node {
            parent: parent.cloned(),
            deadline,
            state: AtomicU8::new(LIVE),
            done_rx: OnceLock::new(),
            inner: Mutex::new(NodeInner::default()),
        });
        if let Some(p) = parent {
            p.adopt(Child::Node(node.clone()), key(&node));
        }
        node
    }

    /// The error this node is done with, if it is done.
    fn err(&self) -> Option<Error> {
        Error::from_state(self.state.load(Ordering::Acquire))
    }

    /// Enters `child` in the table, or — if this node is already done —
    /// hands it this node's error and cause at once.
    fn adopt(&self, child: Child, k: usize) {
        let mut g = self.inner.lock();
        match self.err() {
            None => {
                g.children.insert(k, child);
            }
            Some(err) => {
                let cause = g.cause.clone();
                drop(g);
                match child {
                    Child::Node(n) => n.cancel(err, cause, false),
                    Child::Func(f) => f.start(),
                }
            }
        }
    }

    /// Removes the child entry `k`, if still present.
    fn remove_child(&self, k: usize) {
        let removed = self.inner.lock().children.remove(&k);
        drop(removed);
    }

    /// The `done` channel's receiving end, made on first use.
    fn done(&self) -> Receiver<()> {
        if let Some(rx) = self.done_rx.get() {
            return rx.clone();
        }
        let mut g = self.inner.lock();
        self.done_rx
            .get_or_init(|| {
                let (tx, rx) = chan::bounded(0);
                if self.err().is_none() {
                    g.done_tx = Some(tx);
                }
                // else: `tx` drops here, which closes the channel at birth.
                rx
            })
            .clone()
    }

    /// Cancels this node and its subtree with `err` and `cause` (the cause
    /// defaults to `err`). `detach` removes this node from its parent's
    /// table (false when the parent itself is cancelling us: it has taken
    /// its table already). A node that is already done is left as it is.
    fn cancel(self: &Arc<Self>, err: Error, cause: Option<Cause>, detach: bool) {
        // A done node is no longer in its parent's table: the canceller
        // that made it done removed it (below), or the parent took its
        // whole table when cancelling it, or it was never entered (born
        // under a done parent). So an already done node needs nothing —
        // the common case of a `CancelFunc` dropped after its parent was
        // cancelled.
        if self.state.load(Ordering::Acquire) != LIVE {
            return;
        }
        let cause: Cause = cause.unwrap_or_else(|| Arc::new(err));
        let mut work = Vec::new();
        let mut funcs = Vec::new();
        if !self.finish(err, &cause, &mut work, &mut funcs) {
            // Another canceller won the race; it does the rest.
            return;
        }
        while let Some(n) = work.pop() {
            n.finish(err, &cause, &mut work, &mut funcs);
        }
        if detach {
            if let Some(p) = &self.parent {
                p.remove_child(key(self));
            }
        }
        for f in funcs {
            f.start();
        }
    }

    /// The one `LIVE` → done transition of this node: records `err` and
    /// `cause`, closes `done`, stops the timer, and hands the child table
    /// to the caller (`work` for nodes, `funcs` for after-functions).
    /// Returns false, doing nothing, if the node was already done.
    fn finish(
        &self,
        err: Error,
        cause: &Cause,
        work: &mut Vec<Arc<Node>>,
        funcs: &mut Vec<Arc<FuncState>>,
    ) -> bool {
        let mut g = self.inner.lock();
        if self.state.load(Ordering::Relaxed) != LIVE {
            // Already done (we hold its lock, so this read is exact).
            return false;
        }
        g.cause = Some(cause.clone());
        self.state.store(err.to_state(), Ordering::Release);
        let tx = g.done_tx.take();
        let children = std::mem::take(&mut g.children);
        let timer = g.timer.take();
        g.deadline_cause = None;
        drop(g);
        // Closing wakes every waiter: done with the lock released.
        if let Some(tx) = tx {
            tx.close();
        }
        if let Some(t) = timer {
            t.stop();
        }
        for (_, c) in children {
            match c {
                Child::Node(c) => work.push(c),
                Child::Func(f) => funcs.push(f),
            }
        }
        true
    }

    /// Called by the deadline timer.
    fn expire(self: &Arc<Self>) {
        let cause = self.inner.lock().deadline_cause.take();
        self.cancel(Error::DeadlineExceeded, cause, true);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // As for links: drop a deep chain of parents without recursion.
        let mut next = self.parent.take();
        while let Some(n) = next {
            match Arc::try_unwrap(n) {
                Ok(mut node) => next = node.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// The shared background context (made once).
static BACKGROUND: OnceLock<Context> = OnceLock::new();
/// The `done` channel of contexts that are never done.
static NEVER: OnceLock<Receiver<()>> = OnceLock::new();

impl Context {
    /// The root of every context tree: never cancelled, no deadline, no
    /// values (Go's `context.Background()`, and `TODO()`).
    ///
    /// ```
    /// let bg = goro::context::Context::background();
    /// assert!(!bg.is_done());
    /// assert_eq!(bg.err(), None);
    /// assert_eq!(bg.deadline(), None);
    /// ```
    pub fn background() -> Context {
        BACKGROUND
            .get_or_init(|| Context {
                inner: Arc::new(Link {
                    parent: None,
                    node: None,
                    value: None,
                    kind: Kind::Background,
                }),
            })
            .clone()
    }

    /// A link below `self` with cancellation node `node`.
    fn derive(
        &self,
        node: Option<Arc<Node>>,
        value: Option<Box<dyn Any + Send + Sync>>,
        kind: Kind,
    ) -> Context {
        Context {
            inner: Arc::new(Link {
                parent: Some(self.clone()),
                node,
                value,
                kind,
            }),
        }
    }

    /// A child context that is done when `cancel` is called (or the
    /// [`CancelFunc`] dropped) or when `self` is done, whichever happens
    /// first.
    ///
    /// If `self` is already done, so is the child, with the same error.
    ///
    /// ```
    /// use goro::context::{Context, Error};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// ```
    pub fn with_cancel(&self) -> (Context, CancelFunc) {
        let node = Node::new_child(self.inner.node.as_ref(), None);
        let ctx = self.derive(Some(node.clone()), None, Kind::Cancel);
        (ctx, CancelFunc { node })
    }

    /// Like [`with_cancel`](Context::with_cancel), but the returned
    /// function records why: [`cause`](Context::cause) of the context and of
    /// every descendant returns it (Go's `context.WithCancelCause`).
    ///
    /// ```
    /// use goro::context::{Context, Error};
    /// let (ctx, cancel) = Context::background().with_cancel_cause();
    /// cancel.cancel("client went away");
    /// assert_eq!(ctx.err(), Some(Error::Canceled));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "client went away");
    /// ```
    pub fn with_cancel_cause(&self) -> (Context, CancelCauseFunc) {
        let node = Node::new_child(self.inner.node.as_ref(), None);
        let ctx = self.derive(Some(node.clone()), None, Kind::Cancel);
        (ctx, CancelCauseFunc { node })
    }

    /// A child context that is done `d` from now at the latest
    /// (`with_deadline(now + d)`; Go's `context.WithTimeout`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use goro::context::{Context, Error};
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    /// ctx.done().recv().unwrap_err(); // closed when the timeout fires
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// ```
    #[track_caller]
    pub fn with_timeout(&self, d: Duration) -> (Context, CancelFunc) {
        self.with_deadline(far_deadline(d))
    }

    /// A child context that is done at `at` at the latest, with
    /// [`Error::DeadlineExceeded`] (Go's `context.WithDeadline`).
    ///
    /// If `self`'s deadline is already no later than `at`, this is
    /// [`with_cancel`](Context::with_cancel): the parent's deadline wins and
    /// no timer is armed. A deadline that has passed cancels the child at
    /// once. The deadline timer runs on goro's timer heaps and is stopped
    /// when the context is cancelled first.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use goro::context::{Context, Error};
    /// let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded)); // past: done at once
    ///
    /// let later = Instant::now() + Duration::from_secs(60);
    /// let (parent, _c1) = Context::background().with_timeout(Duration::from_secs(1));
    /// let (child, _c2) = parent.with_deadline(later);
    /// assert_eq!(child.deadline(), parent.deadline()); // the earlier one wins
    /// ```
    #[track_caller]
    pub fn with_deadline(&self, at: Instant) -> (Context, CancelFunc) {
        let node = self.deadline_node(at, None);
        let kind = if node.deadline == Some(at) {
            Kind::Deadline
        } else {
            Kind::Cancel
        };
        let ctx = self.derive(Some(node.clone()), None, kind);
        (ctx, CancelFunc { node })
    }

    /// Like [`with_deadline`](Context::with_deadline), but when the
    /// deadline passes, [`cause`](Context::cause) returns `cause` instead of
    /// [`Error::DeadlineExceeded`] (Go's `context.WithDeadlineCause`). A
    /// cancellation by the returned function or the parent keeps its own
    /// cause.
    ///
    /// ```
    /// use std::time::Instant;
    /// use goro::context::{Context, Error};
    /// let (ctx, _c) = Context::background().with_deadline_cause(Instant::now(), "too slow");
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// assert_eq!(ctx.cause().unwrap().to_string(), "too slow");
    /// ```
    #[track_caller]
    pub fn with_deadline_cause(
        &self,
        at: Instant,
        cause: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> (Context, CancelFunc) {
        let node = self.deadline_node(at, Some(Arc::from(cause.into())));
        let ctx = self.derive(Some(node.clone()), None, Kind::Deadline);
        (ctx, CancelFunc { node })
    }

    /// [`with_timeout`](Context::with_timeout) with a cause for the
    /// timeout, as [`with_deadline_cause`](Context::with_deadline_cause)
    /// (Go's `context.WithTimeoutCause`).
    #[track_caller]
    pub fn with_timeout_cause(
        &self,
        d: Duration,
        cause: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> (Context, CancelFunc) {
        self.with_deadline_cause(far_deadline(d), cause)
    }

    /// The node of a `with_deadline` child: a plain cancel node when the
    /// parent's deadline comes first, cancelled at once when `at` has
    /// passed, otherwise armed with a timer.
    #[track_caller]
    fn deadline_node(&self, at: Instant, cause: Option<Cause>) -> Arc<Node> {
        let parent = self.inner.node.as_ref();
        if let Some(pd) = parent.and_then(|p| p.deadline) {
            if pd <= at {
                // The parent's deadline is earlier: it will cancel us.
                return Node::new_child(parent, None);
            }
        }
        let node = Node::new_child(parent, Some(at));
        let now = crate::time::now();
        if at <= now {
            node.cancel(Error::DeadlineExceeded, cause, true);
            return node;
        }
        node.inner.lock().deadline_cause = cause;
        let weak: Weak<Node> = Arc::downgrade(&node);
        // The timer fires no earlier than `now + (at - now) = at`.
        let timer = crate::time::after_func(at - now, move || {
            if let Some(n) = weak.upgrade() {
                n.expire();
            }
        });
        let mut g = node.inner.lock();
        if node.err().is_none() {
            g.timer = Some(timer);
            drop(g);
        } else {
            // Cancelled (by the parent, racing with us) before the timer
            // could be stored: nobody else will stop it.
            drop(g);
            timer.stop();
        }
        node
    }

    /// A child context carrying `v`, found by [`value::<V>()`](Context::value)
    /// on it and on every context derived from it (Go's
    /// `context.WithValue`, keyed by the type `V`). A nearer value of the
    /// same type shadows this one. Cancellation and deadline are the
    /// parent's.
    ///
    /// Use request-scoped data only (a request id, a user, a trace span),
    /// not optional parameters; a newtype gives a value its own key.
    ///
    /// ```
    /// use goro::context::Context;
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    ///
    /// let ctx = Context::background().with_value(RequestId(7)).with_value("user");
    /// assert_eq!(ctx.value::<RequestId>(), Some(&RequestId(7)));
    /// assert_eq!(ctx.value::<&str>(), Some(&"user"));
    /// assert_eq!(ctx.value::<u32>(), None);
    /// let shadowed = ctx.with_value(RequestId(8));
    /// assert_eq!(shadowed.value::<RequestId>(), Some(&RequestId(8)));
    /// ```
    pub fn with_value<V: Send + Sync + 'static>(&self, v: V) -> Context {
        self.derive(
            self.inner.node.clone(),
            Some(Box::new(v)),
            Kind::Value(std::any::type_name::<V>()),
        )
    }

    /// The nearest value of type `V` on the chain from this context up to
    /// background, if any.
    ///
    /// The search walks up the chain, one step per link (as Go's).
    pub fn value<V: Send + Sync + 'static>(&self) -> Option<&V> {
        let mut cur = self;
        loop {
            if let Some(v) = &cur.inner.value {
                if let Some(v) = v.downcast_ref::<V>() {
                    return Some(v);
                }
            }
            cur = cur.inner.parent.as_ref()?;
        }
    }

    /// A child context with this context's values but none of its
    /// cancellation: never done, no deadline (Go's `context.WithoutCancel`,
    /// for work that must outlive the request that started it).
    ///
    /// ```
    /// use goro::context::Context;
    /// let (ctx, cancel) = Context::background().with_value(5u8).with_cancel();
    /// let detached = ctx.without_cancel();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// assert!(!detached.is_done());
    /// assert_eq!(detached.value::<u8>(), Some(&5));
    /// ```
    pub fn without_cancel(&self) -> Context {
        self.derive(None, None, Kind::WithoutCancel)
    }

    /// A channel that is closed when this context is done (Go's
    /// `ctx.Done()`): receiving from it returns `Err(RecvError)` from then
    /// on, so it works as a `select!` arm and from plain threads. Nothing
    /// is ever sent on it.
    ///
    /// Every call returns a clone of the same receiver (made on the first
    /// call). For a context that can never be done (background,
    /// `without_cancel`), the receiver is never ready, like Go's nil
    /// channel.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goro::context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let (tx, jobs) = goro::chan::bounded::<u32>(0);
    /// let worker = goro::go(move || {
    ///     let mut done = 0;
    ///     loop {
    ///         goro::select! {
    ///             recv(jobs) -> job => { job.unwrap(); done += 1; },
    ///             recv(ctx.done()) -> _ => return done,
    ///         }
    ///     }
    /// });
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// cancel.cancel();
    /// assert_eq!(worker.join().unwrap(), 2);
    /// ```
    ///
    /// # Select safety
    ///
    /// The channel carries no values, so an arm on it that loses consumes
    /// nothing.
    pub fn done(&self) -> Receiver<()> {
        match &self.inner.node {
            Some(n) => n.done(),
            None => NEVER.get_or_init(chan::never).clone(),
        }
    }

    /// `None` while the context is live; after it is done, why
    /// ([`Error::Canceled`] or [`Error::DeadlineExceeded`]). Once `Some`,
    /// it never changes. One atomic load.
    pub fn err(&self) -> Option<Error> {
        self.inner.node.as_ref().and_then(|n| n.err())
    }

    /// Whether the context is done (`err().is_some()`).
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// When the context will be done by itself at the latest: the earliest
    /// deadline on its chain, or `None` if it has none.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.node.as_ref().and_then(|n| n.deadline)
    }

    /// Why the context was cancelled (Go's `context.Cause`): the cause
    /// given to [`CancelCauseFunc::cancel`] or to
    /// [`with_deadline_cause`](Context::with_deadline_cause) on this
    /// context or the ancestor whose cancellation reached it; otherwise the
    /// [`Error`] itself. `None` while the context is live.
    ///
    /// ```
    /// use goro::context::{Context, Error};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert!(ctx.cause().is_none());
    /// drop(cancel);
    /// let cause = ctx.cause().unwrap();
    /// assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::Canceled));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        let n = self.inner.node.as_ref()?;
        n.err()?; // live: no cause yet
        n.inner.lock().cause.clone()
    }

    /// The number of live children (contexts and [`after_func`]
    /// registrations) entered in the child table of this context's node.
    /// For tests of the "no leak" property; not part of the API.
    #[doc(hidden)]
    pub fn __child_count(&self) -> usize {
        self.inner
            .node
            .as_ref()
            .map_or(0, |n| n.inner.lock().children.len())
    }

    /// Like [`with_cancel`](Context::with_cancel), but the canceller does
    /// nothing when dropped. For crate code (signal contexts) whose
    /// canceller lives in a registry rather than in a scope.
    pub(crate) fn with_cancel_handle(&self) -> (Context, CancelHandle) {
        let node = Node::new_child(self.inner.node.as_ref(), None);
        let ctx = self.derive(Some(node.clone()), None, Kind::Cancel);
        (ctx, CancelHandle { node })
    }
}

/// `now + d`, saturating a century ahead instead of overflowing.
fn far_deadline(d: Duration) -> Instant {
    let now = crate::time::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl Default for Context {
    /// [`Context::background`].
    fn default() -> Context {
        Context::background()
    }
}

impl fmt::Debug for Context {
    /// Shows the chain from background down, as Go's `String` does
    /// (`background.with_cancel.with_value(u32)`), and the state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        let mut cur = Some(self);
        while let Some(c) = cur {
            names.push(match c.inner.kind {
                Kind::Background => "background".to_string(),
                Kind::Cancel => "with_cancel".to_string(),
                Kind::Deadline => "with_deadline".to_string(),
                Kind::Value(t) => format!("with_value({t})"),
                Kind::WithoutCancel => "without_cancel".to_string(),
            });
            cur = c.inner.parent.as_ref();
        }
        names.reverse();
        f.debug_struct("Context")
            .field("chain", &names.join("."))
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// Cancels the context returned with it (Go's `context.CancelFunc`).
///
/// [`cancel`](CancelFunc::cancel) cancels the context and every context
/// derived from it, stops its deadline timer and removes it from its
/// parent; later calls do nothing. **Dropping a `CancelFunc` cancels too**,
/// so keep it for as long as the context should live (Go's `defer
/// cancel()` is the end of its scope). `let (ctx, _) = parent.with_cancel()`
/// drops it at once and hands back a context that is already done.
///
/// ```
/// use goro::context::Context;
/// let (ctx, cancel) = Context::background().with_cancel();
/// {
///     let _guard = cancel; // cancels at the end of this scope
///     assert!(!ctx.is_done());
/// }
/// assert!(ctx.is_done());
/// ```
#[must_use = "dropping a CancelFunc cancels its context at once"]
pub struct CancelFunc {
    /// The node it cancels.
    node: Arc<Node>,
}

impl CancelFunc {
    /// Cancels the context with [`Error::Canceled`] (no effect if it is
    /// already done). Does not block: the `done` channel is closed and
    /// waiters are woken before it returns.
    pub fn cancel(&self) {
        self.node.cancel(Error::Canceled, None, true);
    }
}

impl Drop for CancelFunc {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFunc")
            .field("err", &self.node.err())
            .finish()
    }
}

/// Cancels the context returned with it, recording a cause (Go's
/// `context.CancelCauseFunc`). Dropping it cancels with no cause (the cause
/// is then [`Error::Canceled`]).
///
/// ```
/// use goro::context::Context;
/// let (ctx, cancel) = Context::background().with_cancel_cause();
/// let (child, _c) = ctx.with_cancel();
/// cancel.cancel(std::io::Error::other("upstream reset"));
/// assert_eq!(child.cause().unwrap().to_string(), "upstream reset");
/// ```
#[must_use = "dropping a CancelCauseFunc cancels its context at once"]
pub struct CancelCauseFunc {
    /// The node it cancels.
    node: Arc<Node>,
}

impl CancelCauseFunc {
    /// Cancels the context with [`Error::Canceled`], recording `cause` as
    /// its [`cause`](Context::cause) (and of every context it cancels). No
    /// effect if the context is already done: the first cause stays.
    pub fn cancel(&self, cause: impl Into<Box<dyn StdError + Send + Sync>>) {
        self.node
            .cancel(Error::Canceled, Some(Arc::from(cause.into())), true);
    }
}

impl Drop for CancelCauseFunc {
    fn drop(&mut self) {
        self.node.cancel(Error::Canceled, None, true);
    }
}

impl fmt::Debug for CancelCauseFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelCauseFunc")
            .field("err", &self.node.err())
            .finish()
    }
}

/// A crate-internal canceller that does nothing on drop (see
/// [`Context::with_cancel_handle`]).
pub(crate) struct CancelHandle {
    /// The node it cancels.
    node: Arc<Node>,
}

impl CancelHandle {
    /// Cancels with [`Error::Canceled`] and `cause`.
    pub(crate) fn cancel_with_cause(&self, cause: Cause) {
        self.node.cancel(Error::Canceled, Some(cause), true);
    }

    /// A [`CancelFunc`] for the same context (it cancels when dropped).
    pub(crate) fn to_cancel_func(&self) -> CancelFunc {
        CancelFunc {
            node: self.node.clone(),
        }
    }

    /// Whether the context is already done.
    pub(crate) fn is_done(&self) -> bool {
        self.node.err().is_some()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("err", &self.node.err())
            .finish()
    }
}

/// The state shared by an [`after_func`] registration and its handle.
struct FuncState {
    /// The function, until it is started or stopped (whoever takes it
    /// decides: exactly one of `start` and `stop` wins).
    f: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FuncState {
    /// Starts the function in its own goroutine unless it was stopped.
    fn start(&self) {
        let f = self.f.lock().take();
        if let Some(f) = f {
            drop(crate::go(f));
        }
    }
}

/// Arranges for `f` to run in its own goroutine once `ctx` is done (Go's
/// `context.AfterFunc`). If `ctx` is already done, `f` starts at once. If
/// `ctx` can never be done, `f` never runs.
///
/// The returned [`AfterFunc`] can [`stop`](AfterFunc::stop) it; dropping
/// the handle leaves the registration in place.
///
/// ```
/// use goro::context::{self, Context};
/// let (ctx, cancel) = Context::background().with_cancel();
/// let (tx, rx) = goro::chan::bounded(1);
/// let _after = context::after_func(&ctx, move || tx.send("cleaned up").unwrap());
/// cancel.cancel();
/// assert_eq!(rx.recv().unwrap(), "cleaned up");
/// ```
pub fn after_func<F: FnOnce() + Send + 'static>(ctx: &Context, f: F) -> AfterFunc {
    let state = Arc::new(FuncState {
        f: Mutex::new(Some(Box::new(f))),
    });
    if let Some(node) = &ctx.inner.node {
        node.adopt(Child::Func(state.clone()), key(&state));
    }
    AfterFunc {
        state,
        node: ctx.inner.node.clone(),
    }
}

/// The handle returned by [`after_func`].
pub struct AfterFunc {
    /// The registration.
    state: Arc<FuncState>,
    /// The node whose child table holds the registration (`None` for a
    /// context that is never done).
    node: Option<Arc<Node>>,
}

impl AfterFunc {
    /// Unregisters the function (Go's `stop()`). Returns true if this call
    /// prevented it from running; false if it has already been started
    /// (the context is done) or stopped. Does not wait for a started
    /// function to finish.
    ///
    /// ```
    /// use goro::context::{self, Context};
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let after = context::after_func(&ctx, || unreachable!());
    /// assert!(after.stop());
    /// assert!(!after.stop()); // already stopped
    /// cancel.cancel();
    /// ```
    pub fn stop(&self) -> bool {
        let stopped = self.state.f.lock().take().is_some();
        if stopped {
            if let Some(n) = &self.node {
                n.remove_child(key(&self.state));
            }
        }
        stopped
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterFunc")
            .field("pending", &self.state.f.lock().is_some())
            .finish()
    }
}
