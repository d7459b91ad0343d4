//! Channels: Go's `chan T`, multi-producer multi-consumer, usable from
//! goroutines and plain threads alike, with [`select!`](crate::select).
//!
//! ```
//! use goro::chan;
//!
//! let (tx, rx) = chan::bounded(0); // unbuffered, as Go's make(chan int)
//! goro::go(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last Sender closes the channel
//! });
//! assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
//! ```
//!
//! # Design (Go's `hchan`)
//!
//! A channel is one lock around a ring buffer and two FIFO queues of waiters
//! (`sendq`, `recvq`). A sender hands its value straight to a waiting
//! receiver; a receiver that empties a slot of a full buffer pulls the first
//! waiting sender's value in behind it, so per-sender FIFO holds for every
//! capacity.
//!
//! A waiter is a [`WaitCtx`] on the waiting goroutine's (or thread's) stack
//! plus one `Entry` per channel it waits on, pointing at the context and at
//! a value slot on the same stack. Whoever wants to complete a waiter must
//! first *claim* it: a CAS of `selected` from `NONE` to the entry's case
//! index. Only one claim can ever succeed (a timeout or an abandoned wait
//! claims with `ABORTED`), which is what makes `select!` exactly-once: an arm
//! that did not win consumed nothing and sent nothing.
//!
//! Field access rules:
//! * `Inner` (buffer, queues, flags) only with the channel lock held.
//! * A claimed waiter's slot belongs to the claimer until it stores `done`
//!   (Release); after that the waiter owns it again and may return, so the
//!   claimer clones the waiter's `Unparker` *before* storing `done`, drops the
//!   lock, then wakes it.
//! * A waiter removes all its entries (under each lock) before its frame
//!   goes away, including when it unwinds; so an entry in a queue always
//!   points to a live frame.
//!
//! `select!` send arms evaluate their value only once chosen. While waiting,
//! such an arm has a *valueless* send entry: a receiver that claims it
//! either hands the sender a pointer to its own slot (`HANDOFF`; the receiver
//! then waits for the value) or reserves a buffer slot for it (`RESERVED`).

mod select;
mod spinlock;

#[doc(hidden)]
pub use select::{
    __as_recv, __as_send, __deadline_after, __select_impl, Poll, RecvCase, SelectCase, SelectMode,
    SendCase, Wake,
};
pub use select::{SelectRecv, SelectSend};

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::runtime::atomic::{AtomicU8, AtomicUsize as LoomUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spinlock::SpinLock;

use crate::runtime::goroutine::Goroutine;
use crate::runtime::park::{self, WaitReason, Waiter, Wakeup};
use crate::runtime::timer::deadline_after;
use crate::runtime::worker::coop_tick;

/// `WaitCtx::selected` while nobody has claimed the waiter.
pub(crate) const NONE: usize = usize::MAX;
/// `WaitCtx::selected` after the waiter gave up (timeout, unwinding).
pub(crate) const ABORTED: usize = usize::MAX - 1;

/// `WaitCtx::done` values: how a claimed waiter was completed.
pub(crate) const PENDING: u8 = 0;
/// The value moved (into a receiver's slot, or out of a sender's).
pub(crate) const DONE_OK: u8 = 1;
/// The channel was closed (or every receiver dropped, for a sender).
pub(crate) const DONE_CLOSED: u8 = 2;
/// Valueless sender: a receiver waits for the value at `peer`.
pub(crate) const DONE_HANDOFF: u8 = 3;
/// Valueless sender: a buffer slot is reserved for the value.
pub(crate) const DONE_RESERVED: u8 = 4;
/// Receiver: the sender that chose it failed to produce a value; try again.
pub(crate) const DONE_RETRY: u8 = 5;

/// One waiting goroutine or thread (Go's `sudog`, shared by all the entries
/// of one `select!`). Lives on the waiter's stack. Implementation detail.
#[doc(hidden)]
pub struct WaitCtx {
    /// `NONE`, `ABORTED`, or the case index that claimed it.
    pub(crate) selected: LoomUsize,
    /// `PENDING` until the claimer finished, then one of `DONE_*`.
    pub(crate) done: AtomicU8,
    /// Wakes the waiter.
    pub(crate) waiter: Waiter,
    /// For `DONE_HANDOFF`: the receiver's context and value slot (type
    /// erased `*mut Option<T>`). Written by the claimer before `done`.
    pub(crate) peer: UnsafeCell<(*const WaitCtx, *mut ())>,
}

impl fmt::Debug for WaitCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCtx")
            .field("selected", &self.selected.load(Ordering::Relaxed))
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish()
    }
}

impl WaitCtx {
    pub(crate) fn new() -> WaitCtx {
        WaitCtx {
            selected: LoomUsize::new(NONE),
            done: AtomicU8::new(PENDING),
            waiter: Waiter::current(),
            peer: UnsafeCell::new((std::ptr::null(), std::ptr::null_mut())),
        }
    }

    /// Claims this context for `case`.
    pub(crate) fn claim(&self, case: usize) -> bool {
        // AcqRel: Acquire sees the waiter's registration; Release orders our
        // claim before the writes that follow it.
        self.selected
            .compare_exchange(NONE, case, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up waiting; false if someone claimed it first.
    pub(crate) fn abort(&self) -> bool {
        self.selected
            .compare_exchange(NONE, ABORTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Blocks until completed, or until `deadline` (then aborts and returns
    /// `None`). A claimed waiter always waits for completion, deadline or not.
    pub(crate) fn wait(
        &self,
        mut deadline: Option<Instant>,
        reason: WaitReason,
        site: &'static Location<'static>,
    ) -> Option<(usize, u8)> {
        loop {
            let d = self.done.load(Ordering::Acquire);
            if d != PENDING {
                return Some((self.selected.load(Ordering::Relaxed), d));
            }
            if let Some(dl) = deadline {
                if crate::time::now() >= dl {
                    if self.abort() {
                        return None;
                    }
                    deadline = None;
                    continue;
                }
            }
            park::park_until(reason, site, deadline);
        }
    }

    /// Before the waiter's frame goes away (normal return or unwinding):
    /// aborts the wait if nobody claimed it, else waits until the claimer has
    /// completed it, so nobody writes to the frame afterwards.
    pub(crate) fn abandon(&self, site: &'static Location<'static>) {
        match self.selected.load(Ordering::Acquire) {
            ABORTED => return,
            NONE if self.abort() => return,
            _ => {}
        }
        // Claimed: the claimer finishes promptly (it holds a channel lock, or
        // is evaluating a select value); wait for it.
        while self.done.load(Ordering::Acquire) == PENDING {
            park::park(WaitReason::ChanHandoff, site);
        }
    }
}

/// Completes a claimed waiter with `kind` and returns who to wake (call
/// `unpark` after dropping any lock).
///
/// # Safety
///
/// * `ctx` points to a live `WaitCtx` that the caller has claimed and not
///   completed yet (so the waiter is still waiting and its frame is alive).
pub(crate) unsafe fn complete(ctx: *const WaitCtx, kind: u8) -> Wakeup {
    // SAFETY: live and claimed by us, per the contract.
    let c = unsafe { &*ctx };
    // SAFETY: not completed yet, so the waiter is still waiting.
    let u = unsafe { c.waiter.wakeup() };
    // Release: publishes the slot write (and `peer`) to the waiter.
    c.done.store(kind, Ordering::Release);
    u
}

/// A waiter's place in one channel queue.
pub(crate) struct Entry<T> {
    /// The waiter; live while the entry is queued.
    pub(crate) ctx: *const WaitCtx,
    /// Case index to claim with.
    pub(crate) case: usize,
    /// Receiver: where to put the value. Sender: its value (`Some`), unless
    /// `has_value` is false (a `select!` send arm, value not evaluated yet).
    pub(crate) slot: *mut Option<T>,
    /// Whether a sender entry carries its value.
    pub(crate) has_value: bool,
    /// The waiting goroutine (null for a thread): its record outlives the
    /// entry (the context lives on its stack). Lets a claimer see that the
    /// stack is compacted without touching it.
    g: *const Goroutine,
}

impl<T> Entry<T> {
    /// An entry for the waiter `ctx` (the caller's own, running context).
    pub(crate) fn new(
        ctx: &WaitCtx,
        case: usize,
        slot: *mut Option<T>,
        has_value: bool,
    ) -> Entry<T> {
        let g = match ctx.waiter {
            Waiter::Goroutine(g) => g,
            Waiter::Thread(_) => std::ptr::null(),
        };
        Entry {
            ctx,
            case,
            slot,
            has_value,
            g,
        }
    }

    /// Claims the waiter for this entry's case (see [`WaitCtx::claim`]).
    ///
    /// # Safety
    ///
    /// * The entry is (or was just popped from) a channel queue whose lock
    ///   the caller holds, so its context is alive.
    pub(crate) unsafe fn claim(&self) -> bool {
        // A claimer goes on to write the context and the value slot, both
        // on the waiter's stack: if that stack is compacted, restore it
        // here (~2 µs) rather than fault into the handler thread.
        if !self.g.is_null() {
            // SAFETY: the context is alive (contract), so is its goroutine.
            crate::runtime::compact::restore_before_touch(unsafe { &*self.g }, self.ctx as usize);
        }
        // SAFETY: alive, per the contract.
        unsafe { (*self.ctx).claim(self.case) }
    }
}

/// Channel state guarded by the lock.
pub(crate) struct Inner<T> {
    /// Buffered values.
    pub(crate) buf: VecDeque<T>,
    /// Buffer slots promised to `select!` senders still evaluating a value.
    pub(crate) reserved: usize,
    /// Waiting senders, FIFO.
    pub(crate) sendq: VecDeque<Entry<T>>,
    /// Waiting receivers, FIFO.
    pub(crate) recvq: VecDeque<Entry<T>>,
    /// Closed by `close` or the last `Sender` drop.
    pub(crate) closed: bool,
    /// Every `Receiver` is gone: sends fail.
    pub(crate) rx_gone: bool,
}

/// The shared channel (Go's `hchan`).
pub(crate) struct Chan<T> {
    /// Guards `inner`. Never held across a park or while running user code.
    lock: SpinLock,
    /// See `Inner`.
    inner: UnsafeCell<Inner<T>>,
    /// Capacity; `usize::MAX` for unbounded.
    pub(crate) cap: usize,
    /// Live `Sender`s (plus one for `never()` and timer channels that must not close).
    senders: AtomicUsize,
    /// Live `Receiver`s.
    receivers: AtomicUsize,
    /// Mirror of `inner.buf.len()` for `len()` without the lock.
    len: AtomicUsize,
    /// Mirror of `inner.closed`.
    closed: AtomicBool,
}

// SAFETY: `inner` is only accessed with `lock` held; the raw pointers in
// entries point to waiters' frames that stay alive while queued (module
// docs) and values of `T` only move between threads, so `T: Send` suffices.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Chan<T> {}

/// Outcome of a receive attempt under the lock.
pub(crate) enum RecvPoll<T> {
    /// Got a value; maybe wake a sender.
    Value(T, Option<Wakeup>),
    /// Closed and drained.
    Closed,
    /// Nothing now.
    Empty,
    /// Claimed a valueless `select!` sender: wake it, then wait on our own
    /// context for the value.
    Handoff(Wakeup),
}

/// Outcome of a send attempt with a value under the lock.
pub(crate) enum SendPoll<T> {
    /// Delivered; maybe wake a receiver.
    Sent(Option<Wakeup>),
    /// Would block; the value comes back.
    Full(T),
    /// Closed or receivers gone; the value comes back.
    Closed(T),
}

impl<T> Chan<T> {
    fn new(cap: usize, senders: usize) -> Chan<T> {
        Chan {
            lock: SpinLock::new(),
            inner: UnsafeCell::new(Inner {
                buf: VecDeque::new(),
                reserved: 0,
                sendq: VecDeque::new(),
                recvq: VecDeque::new(),
                closed: false,
                rx_gone: false,
            }),
            cap,
            senders: AtomicUsize::new(senders),
            receivers: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Locks the channel.
    pub(crate) fn lock(&self) {
        self.lock.lock();
    }

    /// Unlocks the channel.
    ///
    /// # Safety
    ///
    /// * The caller locked it and holds no reference from `inner_mut`.
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: locked by the caller, per the contract.
        unsafe { self.lock.unlock() };
    }

    /// The guarded state.
    ///
    /// # Safety
    ///
    /// * The caller holds the lock, and drops the reference before unlocking.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn inner_mut(&self) -> &mut Inner<T> {
        // SAFETY: exclusive by the lock, per the contract.
        unsafe { &mut *self.inner.get() }
    }

    /// Runs `f` with the lock held.
    fn with_lock<R>(&self, f: impl FnOnce(&mut Inner<T>) -> R) -> R {
        self.lock();
        struct Unlock<'a, T>(&'a Chan<T>);
        impl<T> Drop for Unlock<'_, T> {
            fn drop(&mut self) {
                // SAFETY: locked just above; the `&mut Inner` given to `f`
                // is dead by the time this guard drops.
                unsafe { self.0.unlock() };
            }
        }
        let _g = Unlock(self);
        // SAFETY: we hold the lock for the duration of `f`.
        f(unsafe { self.inner_mut() })
    }

    fn sync_len(&self, inner: &Inner<T>) {
        self.len.store(inner.buf.len(), Ordering::Relaxed);
    }

    /// Moves the first claimable waiting sender into freed buffer space.
    ///
    /// # Safety
    ///
    /// * `inner` is this channel's state, locked.
    pub(crate) unsafe fn refill(&self, inner: &mut Inner<T>) -> Option<Wakeup> {
        while inner.buf.len() + inner.reserved < self.cap {
            let e = inner.sendq.pop_front()?;
            // SAFETY: queued entries point at live waiters (module docs).
            if unsafe { !e.claim() } {
                continue;
            }
            if e.has_value {
                // SAFETY: claimed: the sender's slot is ours until `done`.
                let v = unsafe { (*e.slot).take() }.expect("waiting sender has a value");
                inner.buf.push_back(v);
                self.sync_len(inner);
                // SAFETY: claimed above, not completed.
                return Some(unsafe { complete(e.ctx, DONE_OK) });
            }
            inner.reserved += 1;
            // SAFETY: claimed above, not completed.
            return Some(unsafe { complete(e.ctx, DONE_RESERVED) });
        }
        None
    }

    /// Receive attempt under the lock. `me` is the caller's context and slot,
    /// needed only if a valueless sender must be claimed (then `me.0` is
    /// claimed for case `me_case` first, so nobody else can complete it).
    ///
    /// # Safety
    ///
    /// * The lock is held and `inner` is this channel's state.
    /// * `me`, if given, points to a live, unregistered context and slot that
    ///   stay alive until that context is completed.
    pub(crate) unsafe fn poll_recv(
        &self,
        inner: &mut Inner<T>,
        me: Option<(&WaitCtx, usize, *mut Option<T>)>,
    ) -> RecvPoll<T> {
        if let Some(v) = inner.buf.pop_front() {
            // SAFETY: locked, per our contract.
            let wake = unsafe { self.refill(inner) };
            self.sync_len(inner);
            return RecvPoll::Value(v, wake);
        }
        while let Some(e) = inner.sendq.front() {
            if !e.has_value && me.is_none() {
                // Needs a context to hand off to; the caller retries with one.
                return RecvPoll::Empty;
            }
            let e = inner.sendq.pop_front().expect("front exists");
            // SAFETY: queued entries point at live waiters.
            if unsafe { !e.claim() } {
                continue;
            }
            if e.has_value {
                // SAFETY: claimed; the slot is ours until `done`.
                let v = unsafe { (*e.slot).take() }.expect("waiting sender has a value");
                // SAFETY: claimed above.
                return RecvPoll::Value(v, Some(unsafe { complete(e.ctx, DONE_OK) }));
            }
            let (ctx, case, slot) = me.expect("checked above");
            let ok = ctx.claim(case);
            debug_assert!(ok, "an unregistered context cannot be claimed by others");
            // SAFETY: claimed sender; `peer` is written before `done`.
            unsafe { *(*e.ctx).peer.get() = (ctx as *const WaitCtx, slot as *mut ()) };
            // SAFETY: claimed above.
            return RecvPoll::Handoff(unsafe { complete(e.ctx, DONE_HANDOFF) });
        }
        if inner.closed {
            RecvPoll::Closed
        } else {
            RecvPoll::Empty
        }
    }

    /// Send attempt with a value under the lock.
    ///
    /// # Safety
    ///
    /// * The lock is held and `inner` is this channel's state.
    pub(crate) unsafe fn poll_send(&self, inner: &mut Inner<T>, v: T) -> SendPoll<T> {
        if inner.closed || inner.rx_gone {
            return SendPoll::Closed(v);
        }
        while let Some(e) = inner.recvq.pop_front() {
            // SAFETY: queued entries point at live waiters.
            if unsafe { e.claim() } {
                // SAFETY: claimed: the receiver's slot is ours until `done`.
                unsafe { *e.slot = Some(v) };
                // SAFETY: claimed above.
                return SendPoll::Sent(Some(unsafe { complete(e.ctx, DONE_OK) }));
            }
        }
        if inner.buf.len() + inner.reserved < self.cap {
            inner.buf.push_back(v);
            self.sync_len(inner);
            return SendPoll::Sent(None);
        }
        SendPoll::Full(v)
    }

    /// Removes every entry of `ctx` from both queues.
    ///
    /// # Safety
    ///
    /// * The lock is held and `inner` is this channel's state.
    pub(crate) unsafe fn unregister(inner: &mut Inner<T>, ctx: &WaitCtx) {
        let p = ctx as *const WaitCtx;
        inner.sendq.retain(|e| e.ctx != p);
        inner.recvq.retain(|e| e.ctx != p);
    }

    /// Closes the channel; true if this call closed it.
    fn close(&self) -> bool {
        let mut wakes = Vec::new();
        let first = self.with_lock(|inner| {
            if inner.closed {
                return false;
            }
            inner.closed = true;
            self.closed.store(true, Ordering::Release);
            for e in inner.recvq.drain(..).chain(inner.sendq.drain(..)) {
                // SAFETY: queued entries point at live waiters; completed
                // only if our claim wins.
                unsafe {
                    if e.claim() {
                        wakes.push(complete(e.ctx, DONE_CLOSED));
                    }
                }
            }
            true
        });
        for w in wakes {
            w.unpark();
        }
        first
    }

    /// The last receiver is gone: fail every waiting and future sender and
    /// drop the buffered values.
    fn receivers_gone(&self) {
        let mut wakes = Vec::new();
        let dropped = self.with_lock(|inner| {
            inner.rx_gone = true;
            for e in inner.sendq.drain(..) {
                // SAFETY: as in `close`.
                unsafe {
                    if e.claim() {
                        wakes.push(complete(e.ctx, DONE_CLOSED));
                    }
                }
            }
            let b = std::mem::take(&mut inner.buf);
            self.sync_len(inner);
            b
        });
        drop(dropped);
        for w in wakes {
            w.unpark();
        }
    }

    /// Registers a waiter entry.
    ///
    /// # Safety
    ///
    /// * The lock is held; the entry's pointers stay valid until it is
    ///   removed (by a claimer, `close`, or `unregister`).
    pub(crate) unsafe fn push_waiter(inner: &mut Inner<T>, send: bool, e: Entry<T>) {
        if send {
            inner.sendq.push_back(e);
        } else {
            inner.recvq.push_back(e);
        }
    }
}

/// Removes a waiter's entries from one channel when dropped (also on unwind),
/// after making sure no claimer still writes to the waiter's frame.
struct Registered<'a, T> {
    chan: &'a Chan<T>,
    ctx: &'a WaitCtx,
    site: &'static Location<'static>,
    /// Set when the claimer already removed our only entry.
    popped: bool,
}

impl<T> Drop for Registered<'_, T> {
    fn drop(&mut self) {
        if self.popped {
            return;
        }
        self.ctx.abandon(self.site);
        if self.ctx.selected.load(Ordering::Acquire) == ABORTED {
            // Our entry is still queued: take it out.
            // SAFETY: we hold the lock inside `with_lock`.
            self.chan
                .with_lock(|inner| unsafe { Chan::unregister(inner, self.ctx) });
        }
    }
}

/// The sending half of a channel. Cloning adds a sender; the channel closes
/// when the last one is dropped (or on [`Sender::close`]).
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a channel. Cloning adds a receiver (MPMC: each value
/// goes to exactly one of them).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}
impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// A channel with a buffer of `cap` values; `cap == 0` is an unbuffered
/// rendezvous channel, as Go's `make(chan T)`.
///
/// ```
/// let (tx, rx) = goro::chan::bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert!(tx.try_send(3).is_err()); // full
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(cap, 1));
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// A channel whose sends never block (the buffer grows as needed).
///
/// ```
/// let (tx, rx) = goro::chan::unbounded();
/// for i in 0..1000 { tx.send(i).unwrap(); }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(usize::MAX, 1));
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// A receiver that is never ready and never closed: Go's nil channel, for
/// disabling a `select!` arm.
///
/// ```
/// use std::time::Duration;
/// let r = goro::select! {
///     recv(goro::chan::never::<u8>()) -> _ => "never",
///     default(Duration::from_millis(5)) => "timeout",
/// };
/// assert_eq!(r, "timeout");
/// ```
pub fn never<T>() -> Receiver<T> {
    // One phantom sender that is never dropped: the channel never closes.
    Receiver {
        chan: Arc::new(Chan::new(0, 1)),
    }
}

/// The channel is closed, or every receiver is gone; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why `try_send` failed; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The buffer is full (or, unbuffered, no receiver is waiting).
    Full(T),
    /// The channel is closed, or every receiver is gone.
    Closed(T),
}

/// Why `send_timeout` failed; the value comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The timeout passed first.
    Timeout(T),
    /// The channel is closed, or every receiver is gone.
    Closed(T),
}

/// The channel is closed and drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why `try_recv` returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing buffered and no sender waiting.
    Empty,
    /// Closed and drained.
    Closed,
}

/// Why `recv_timeout` returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// The timeout passed first.
    Timeout,
    /// Closed and drained.
    Closed,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}
impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
    /// Whether the channel was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}
impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}
impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}
impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}
impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}
impl<T> std::error::Error for SendTimeoutError<T> {}
impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Closed(e.0)
    }
}
impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Closed
    }
}
impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Closed
    }
}

/// How long a blocking operation may wait.
#[derive(Clone, Copy)]
enum Wait {
    /// Do not wait.
    No,
    /// Wait until the deadline (`None`: forever).
    Until(Option<Instant>),
}

/// Shared by `Sender` and `Receiver`.
macro_rules! common_methods {
    () => {
        /// Values buffered now.
        pub fn len(&self) -> usize {
            self.chan.len.load(Ordering::Relaxed)
        }
        /// Whether no value is buffered now.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
        /// Buffer capacity; `None` for an unbounded channel.
        pub fn capacity(&self) -> Option<usize> {
            if self.chan.cap == usize::MAX {
                None
            } else {
                Some(self.chan.cap)
            }
        }
        /// Whether the channel has been closed (by `close` or the last
        /// `Sender` drop). Buffered values may still be received.
        pub fn is_closed(&self) -> bool {
            self.chan.closed.load(Ordering::Acquire)
        }
        /// Whether two handles refer to the same channel.
        pub fn same_channel(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.chan, &other.chan)
        }
    };
}

impl<T> Sender<T> {
    common_methods!();

    /// Sends `value`, waiting until a receiver takes it or buffer space frees.
    ///
    /// # Errors
    ///
    /// `SendError(value)` if the channel is closed or every receiver is
    /// gone: the value comes back and nothing panics (unlike Go).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    ///
    /// ```
    /// let (tx, rx) = goro::chan::bounded(1);
    /// tx.send("a").unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send("b").unwrap_err().0, "b");
    /// ```
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.send_impl(value, Wait::Until(None), Location::caller()) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(v)) | Err(SendTimeoutError::Timeout(v)) => {
                Err(SendError(v))
            }
        }
    }

    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// `Full(value)` if it would wait; `Closed(value)` if closed or every
    /// receiver is gone.
    #[track_caller]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.send_impl(value, Wait::No, Location::caller()) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(v)) => Err(TrySendError::Closed(v)),
            Err(SendTimeoutError::Timeout(v)) => Err(TrySendError::Full(v)),
        }
    }

    /// Sends, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// `Timeout(value)` or `Closed(value)`.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_impl(
            value,
            Wait::Until(Some(deadline_after(timeout))),
            Location::caller(),
        )
    }

    /// Sends, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// `Timeout(value)` or `Closed(value)`.
    #[track_caller]
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_impl(value, Wait::Until(Some(deadline)), Location::caller())
    }

    /// Closes the channel: receivers drain what is buffered, then get
    /// `RecvError`; waiting and later sends fail with their value back.
    /// Returns true if this call closed it (false if it already was).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    fn send_impl(
        &self,
        value: T,
        wait: Wait,
        site: &'static Location<'static>,
    ) -> Result<(), SendTimeoutError<T>> {
        let chan = &*self.chan;
        chan.lock();
        // SAFETY: locked just above.
        let inner = unsafe { chan.inner_mut() };
        // SAFETY: locked.
        let v = match unsafe { chan.poll_send(inner, value) } {
            SendPoll::Sent(wake) => {
                // SAFETY: locked by us; `inner` is not used after this.
                unsafe { chan.unlock() };
                if let Some(w) = wake {
                    w.unpark();
                }
                coop_tick();
                return Ok(());
            }
            SendPoll::Closed(v) => {
                // SAFETY: as above.
                unsafe { chan.unlock() };
                return Err(SendTimeoutError::Closed(v));
            }
            SendPoll::Full(v) => v,
        };
        let deadline = match wait {
            Wait::No => {
                // SAFETY: as above.
                unsafe { chan.unlock() };
                return Err(SendTimeoutError::Timeout(v));
            }
            Wait::Until(d) => d,
        };
        let ctx = WaitCtx::new();
        let mut slot = Some(v);
        // SAFETY: locked; `ctx` and `slot` outlive the entry because the
        // `Registered` guard below removes it (or waits for its claimer)
        // before they go out of scope, even when unwinding.
        unsafe { Chan::push_waiter(inner, true, Entry::new(&ctx, 0, &mut slot, true)) };
        // SAFETY: locked by us.
        unsafe { chan.unlock() };
        let mut reg = Registered {
            chan,
            ctx: &ctx,
            site,
            popped: false,
        };
        let r = ctx.wait(deadline, WaitReason::ChanSend, site);
        reg.popped = r.is_some(); // claimed: the claimer dequeued us
        drop(reg);
        match r {
            Some((_, DONE_OK)) => Ok(()),
            Some((_, _)) => Err(SendTimeoutError::Closed(
                slot.take().expect("value still ours"),
            )),
            None => Err(SendTimeoutError::Timeout(
                slot.take().expect("value still ours"),
            )),
        }
    }
}

impl<T> Receiver<T> {
    common_methods!();

    /// Receives a value, waiting until one is sent.
    ///
    /// # Errors
    ///
    /// `RecvError` once the channel is closed and every buffered value has
    /// been received.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    ///
    /// ```
    /// let (tx, rx) = goro::chan::bounded(4);
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert_eq!(rx.recv(), Ok(1)); // buffered values drain first
    /// assert!(rx.recv().is_err());
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.recv_impl(Wait::Until(None), Location::caller()) {
            Ok(v) => Ok(v),
            Err(_) => Err(RecvError),
        }
    }

    /// Receives without waiting.
    ///
    /// # Errors
    ///
    /// `Empty` if nothing is ready; `Closed` once closed and drained.
    #[track_caller]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.recv_impl(Wait::No, Location::caller()) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Closed) => Err(TryRecvError::Closed),
            Err(RecvTimeoutError::Timeout) => Err(TryRecvError::Empty),
        }
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// `Timeout` or `Closed`.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_impl(
            Wait::Until(Some(deadline_after(timeout))),
            Location::caller(),
        )
    }

    /// Receives, waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// `Timeout` or `Closed`.
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_impl(Wait::Until(Some(deadline)), Location::caller())
    }

    /// A blocking iterator that ends when the channel is closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }

    fn recv_impl(
        &self,
        wait: Wait,
        site: &'static Location<'static>,
    ) -> Result<T, RecvTimeoutError> {
        let chan = &*self.chan;
        loop {
            chan.lock();
            // SAFETY: locked just above.
            let inner = unsafe { chan.inner_mut() };
            // Fast path: no context needed unless a valueless sender waits.
            // SAFETY: locked.
            match unsafe { chan.poll_recv(inner, None) } {
                RecvPoll::Value(v, wake) => {
                    // SAFETY: locked by us; `inner` unused from here.
                    unsafe { chan.unlock() };
                    if let Some(w) = wake {
                        w.unpark();
                    }
                    coop_tick();
                    return Ok(v);
                }
                RecvPoll::Closed => {
                    // SAFETY: as above.
                    unsafe { chan.unlock() };
                    return Err(RecvTimeoutError::Closed);
                }
                RecvPoll::Empty | RecvPoll::Handoff(_) => {}
            }
            let ctx = WaitCtx::new();
            let mut slot: Option<T> = None;
            let has_valueless = inner.sendq.front().is_some_and(|e| !e.has_value);
            if has_valueless {
                // SAFETY: locked; `ctx`/`slot` are unregistered and live
                // until `ctx` completes (we wait for that below).
                match unsafe { chan.poll_recv(inner, Some((&ctx, 0, &mut slot))) } {
                    RecvPoll::Value(v, wake) => {
                        // SAFETY: as above.
                        unsafe { chan.unlock() };
                        if let Some(w) = wake {
                            w.unpark();
                        }
                        return Ok(v);
                    }
                    RecvPoll::Handoff(wake) => {
                        // SAFETY: as above.
                        unsafe { chan.unlock() };
                        wake.unpark();
                        // Our context is claimed: wait for the value, no deadline.
                        match ctx.wait(None, WaitReason::ChanHandoff, site) {
                            Some((_, DONE_OK)) => {
                                return Ok(slot.take().expect("sender delivered"))
                            }
                            _ => continue, // DONE_RETRY: the sender failed
                        }
                    }
                    RecvPoll::Closed => {
                        // SAFETY: as above.
                        unsafe { chan.unlock() };
                        return Err(RecvTimeoutError::Closed);
                    }
                    RecvPoll::Empty => {}
                }
            }
            let deadline = match wait {
                Wait::No => {
                    // SAFETY: as above.
                    unsafe { chan.unlock() };
                    return Err(RecvTimeoutError::Timeout);
                }
                Wait::Until(d) => d,
            };
            // SAFETY: locked; the `Registered` guard keeps `ctx`/`slot`
            // alive (or unregistered) as in `send_impl`.
            unsafe { Chan::push_waiter(inner, false, Entry::new(&ctx, 0, &mut slot, false)) };
            // SAFETY: locked by us.
            unsafe { chan.unlock() };
            let mut reg = Registered {
                chan,
                ctx: &ctx,
                site,
                popped: false,
            };
            let r = ctx.wait(deadline, WaitReason::ChanReceive, site);
            reg.popped = r.is_some();
            drop(reg);
            return match r {
                Some((_, DONE_OK)) => Ok(slot.take().expect("sender delivered")),
                Some((_, DONE_RETRY)) => continue,
                Some((_, _)) => Err(RecvTimeoutError::Closed),
                None => Err(RecvTimeoutError::Timeout),
            };
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.receivers_gone();
        }
    }
}

/// Blocking iterator from [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator from [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator from `Receiver::into_iter`.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> Sender<T> {
    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }
}
