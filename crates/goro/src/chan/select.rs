//! `select!`: wait on several channel operations, run exactly one.
//!
//! The macro turns each arm into a *case* object on the caller's stack
//! ([`RecvCase`], [`SendCase`]) and calls [`__select_impl`], which follows
//! Go's `selectgo`:
//!
//! 1. lock every channel involved, in address order (each once);
//! 2. poll the cases in a random order and complete the first ready one
//!    (fairness: each ready arm is equally likely);
//! 3. otherwise (unless there is a `default`) enqueue one entry per case,
//!    all sharing one [`WaitCtx`], unlock, and park;
//! 4. when woken, the winning case is the one whose claim succeeded on the
//!    shared context; remove the other entries (under each lock).
//!
//! A send arm's value is evaluated only after its arm has won: polling a send
//! case *reserves* the send (claims a waiting receiver, or a buffer slot) and
//! the arm then commits the value. If evaluating the value panics, the
//! reservation is released (a claimed receiver is told to retry), so nothing
//! is lost or duplicated.

use std::cell::{Cell, UnsafeCell};
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{
    complete, Chan, Entry, Receiver, RecvError, RecvPoll, SendError, Sender, WaitCtx, DONE_CLOSED,
    DONE_HANDOFF, DONE_OK, DONE_RESERVED, DONE_RETRY, PENDING,
};
use crate::runtime::park::{self, WaitReason, Wakeup};
use crate::runtime::worker::{coop_tick, fastrand};

/// Index `__select_impl` returns when the `default` arm runs.
#[doc(hidden)]
pub const DEFAULT: usize = usize::MAX;

/// Most arms one `select!` may have.
const MAX_CASES: usize = 32;

/// How a `select!` waits.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum SelectMode {
    /// No `default`: wait as long as it takes.
    Block,
    /// `default`: do not wait.
    Try,
    /// `default(d)`: wait until this instant.
    Until(Instant),
}

/// A wake to deliver after the channel locks are released.
#[doc(hidden)]
#[derive(Default)]
pub struct Wake(Option<Wakeup>);

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wake")
    }
}

/// Result of polling one case under the locks.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Completed (or reserved, for a send).
    Ready,
    /// Our context was claimed for a hand-off: wait for it to complete.
    Wait,
    /// Not ready.
    NotReady,
}

/// One arm of a `select!`, type-erased. Implementation detail of the macro.
///
/// # Safety
///
/// Implementations must uphold the channel module's protocol: entries
/// registered by `register` are removed by `unregister` or by a claimer.
#[doc(hidden)]
pub unsafe trait SelectCase {
    /// Address of the channel, for the lock order.
    fn chan_addr(&self) -> usize;
    /// Locks the channel.
    fn lock(&self);
    /// Unlocks the channel.
    ///
    /// # Safety
    ///
    /// * Locked by the caller.
    unsafe fn unlock(&self);
    /// Tries to complete the case now.
    ///
    /// # Safety
    ///
    /// * The channel is locked; `me` is the select's live, unregistered context.
    unsafe fn poll(&self, me: &WaitCtx, case: usize, wake: &mut Wake) -> Poll;
    /// Enqueues an entry for `me`.
    ///
    /// # Safety
    ///
    /// * The channel is locked; `me` and `self` stay alive until `unregister`
    ///   ran or the entry was claimed.
    unsafe fn register(&self, me: &WaitCtx, case: usize);
    /// Removes `me`'s entries.
    ///
    /// # Safety
    ///
    /// * The channel is locked.
    unsafe fn unregister(&self, me: &WaitCtx);
    /// Records the outcome after `me` was completed with `kind` on this
    /// case; false if the select must start over.
    ///
    /// # Safety
    ///
    /// * `me` was claimed for this case and completed.
    unsafe fn finish(&self, me: &WaitCtx, kind: u8) -> bool;
}

/// What may appear in a `recv(..)` arm: a `Receiver` or a reference to one.
pub trait SelectRecv {
    /// Item type of the channel.
    type Item;
    /// The receiver.
    fn as_receiver(&self) -> &Receiver<Self::Item>;
}

impl<T> SelectRecv for Receiver<T> {
    type Item = T;
    fn as_receiver(&self) -> &Receiver<T> {
        self
    }
}

impl<R: SelectRecv + ?Sized> SelectRecv for &R {
    type Item = R::Item;
    fn as_receiver(&self) -> &Receiver<R::Item> {
        (**self).as_receiver()
    }
}

/// What may appear in a `send(..)` arm: a `Sender` or a reference to one.
pub trait SelectSend {
    /// Item type of the channel.
    type Item;
    /// The sender.
    fn as_sender(&self) -> &Sender<Self::Item>;
}

impl<T> SelectSend for Sender<T> {
    type Item = T;
    fn as_sender(&self) -> &Sender<T> {
        self
    }
}

impl<S: SelectSend + ?Sized> SelectSend for &S {
    type Item = S::Item;
    fn as_sender(&self) -> &Sender<S::Item> {
        (**self).as_sender()
    }
}

#[doc(hidden)]
pub fn __as_recv<R: SelectRecv + ?Sized>(r: &R) -> &Receiver<R::Item> {
    r.as_receiver()
}

#[doc(hidden)]
pub fn __as_send<S: SelectSend + ?Sized>(s: &S) -> &Sender<S::Item> {
    s.as_sender()
}

/// A `recv` arm.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    /// The channel.
    chan: &'a Chan<T>,
    /// Where the received value lands.
    slot: UnsafeCell<Option<T>>,
}

impl<T> std::fmt::Debug for RecvCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecvCase")
    }
}

impl<T> std::fmt::Debug for SendCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendCase")
    }
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            chan: rx.chan(),
            slot: UnsafeCell::new(None),
        }
    }

    /// The arm's result, once it has won.
    pub fn finish_recv(self) -> Result<T, RecvError> {
        self.slot.into_inner().ok_or(RecvError)
    }
}

// SAFETY: entries point at `self.slot` and the select's context, both alive
// until `__select_impl` has unregistered them (its guard runs on unwind too).
unsafe impl<T> SelectCase for RecvCase<'_, T> {
    fn chan_addr(&self) -> usize {
        self.chan as *const Chan<T> as usize
    }
    fn lock(&self) {
        self.chan.lock();
    }
    unsafe fn unlock(&self) {
        // SAFETY: locked by the caller.
        unsafe { self.chan.unlock() }
    }
    unsafe fn poll(&self, me: &WaitCtx, case: usize, wake: &mut Wake) -> Poll {
        // SAFETY: locked by the caller; the reference dies in this call.
        let inner = unsafe { self.chan.inner_mut() };
        // SAFETY: locked; `me` and our slot outlive the hand-off (the select
        // waits for `me` to complete before returning).
        match unsafe {
            self.chan
                .poll_recv(inner, Some((me, case, self.slot.get())))
        } {
            RecvPoll::Value(v, w) => {
                // SAFETY: the slot is only touched by its case and claimers;
                // nobody else holds our unregistered context.
                unsafe { *self.slot.get() = Some(v) };
                wake.0 = w;
                Poll::Ready
            }
            RecvPoll::Closed => Poll::Ready,
            RecvPoll::Empty => Poll::NotReady,
            RecvPoll::Handoff(w) => {
                wake.0 = Some(w);
                Poll::Wait
            }
        }
    }
    unsafe fn register(&self, me: &WaitCtx, case: usize) {
        // SAFETY: locked by the caller; lifetimes per the trait contract.
        unsafe {
            Chan::push_waiter(
                self.chan.inner_mut(),
                false,
                Entry::new(me, case, self.slot.get(), false),
            )
        }
    }
    unsafe fn unregister(&self, me: &WaitCtx) {
        // SAFETY: locked by the caller.
        unsafe { Chan::unregister(self.chan.inner_mut(), me) }
    }
    unsafe fn finish(&self, _me: &WaitCtx, kind: u8) -> bool {
        // DONE_OK: the value is in the slot; DONE_CLOSED: it stays empty.
        kind != DONE_RETRY
    }
}

/// What a won send arm still has to do.
#[derive(Clone, Copy)]
enum Token {
    /// Nothing reserved (not won, or already committed).
    Empty,
    /// The channel is closed: the value goes back to the caller.
    Closed,
    /// A claimed receiver waits at this context and slot.
    Handoff(*const WaitCtx, *mut ()),
    /// A buffer slot is reserved.
    Reserved,
}

/// A `send` arm.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    /// The channel.
    chan: &'a Chan<T>,
    /// The reservation made when the arm won.
    token: Cell<Token>,
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending on `tx`.
    pub fn new(tx: &'a Sender<T>) -> Self {
        SendCase {
            chan: tx.chan(),
            token: Cell::new(Token::Empty),
        }
    }

    /// Delivers the arm's value, once it has won.
    pub fn commit(self, v: T) -> Result<(), SendError<T>> {
        let tok = self.token.replace(Token::Empty);
        match tok {
            Token::Empty => unreachable!("select send arm committed without winning"),
            Token::Closed => Err(SendError(v)),
            Token::Handoff(ctx, slot) => {
                // SAFETY: we claimed this receiver (it waits for `done`), so
                // its slot is ours to fill; then we complete it exactly once.
                let u = unsafe {
                    *(slot as *mut Option<T>) = Some(v);
                    complete(ctx, DONE_OK)
                };
                u.unpark();
                coop_tick();
                Ok(())
            }
            Token::Reserved => {
                let chan = self.chan;
                chan.lock();
                // SAFETY: locked just above.
                let inner = unsafe { chan.inner_mut() };
                inner.reserved -= 1;
                if inner.rx_gone {
                    // SAFETY: `refill` needs the lock, which we hold.
                    let w = unsafe { chan.refill(inner) };
                    // SAFETY: locked by us; `inner` unused from here.
                    unsafe { chan.unlock() };
                    if let Some(w) = w {
                        w.unpark();
                    }
                    return Err(SendError(v));
                }
                let mut wake = None;
                let mut v = Some(v);
                while let Some(e) = inner.recvq.pop_front() {
                    // SAFETY: queued entries point at live waiters.
                    if unsafe { e.claim() } {
                        // SAFETY: claimed; its slot is ours until `done`.
                        unsafe {
                            *e.slot = v.take();
                            wake = Some(complete(e.ctx, DONE_OK));
                        }
                        break;
                    }
                }
                if let Some(v) = v {
                    inner.buf.push_back(v);
                    chan.sync_len(inner);
                }
                // SAFETY: locked by us.
                unsafe { chan.unlock() };
                if let Some(w) = wake {
                    w.unpark();
                }
                coop_tick();
                Ok(())
            }
        }
    }
}

impl<T> Drop for SendCase<'_, T> {
    fn drop(&mut self) {
        // Won but never committed: the value expression panicked (or the arm
        // was otherwise abandoned). Release the reservation.
        match self.token.replace(Token::Empty) {
            Token::Handoff(ctx, _) => {
                // SAFETY: claimed receiver, not completed yet.
                unsafe { complete(ctx, DONE_RETRY) }.unpark();
            }
            Token::Reserved => {
                self.chan.lock();
                // SAFETY: locked just above.
                let inner = unsafe { self.chan.inner_mut() };
                inner.reserved -= 1;
                // SAFETY: locked.
                let w = unsafe { self.chan.refill(inner) };
                // SAFETY: locked by us.
                unsafe { self.chan.unlock() };
                if let Some(w) = w {
                    w.unpark();
                }
            }
            Token::Empty | Token::Closed => {}
        }
    }
}

// SAFETY: a send case registers valueless entries whose only pointer is the
// select's context, alive until unregistered (see `__select_impl`).
unsafe impl<T> SelectCase for SendCase<'_, T> {
    fn chan_addr(&self) -> usize {
        self.chan as *const Chan<T> as usize
    }
    fn lock(&self) {
        self.chan.lock();
    }
    unsafe fn unlock(&self) {
        // SAFETY: locked by the caller.
        unsafe { self.chan.unlock() }
    }
    unsafe fn poll(&self, _me: &WaitCtx, _case: usize, _wake: &mut Wake) -> Poll {
        // SAFETY: locked by the caller.
        let inner = unsafe { self.chan.inner_mut() };
        if inner.closed || inner.rx_gone {
            self.token.set(Token::Closed);
            return Poll::Ready;
        }
        while let Some(e) = inner.recvq.pop_front() {
            // SAFETY: queued entries point at live waiters.
            if unsafe { e.claim() } {
                self.token.set(Token::Handoff(e.ctx, e.slot as *mut ()));
                return Poll::Ready;
            }
        }
        if inner.buf.len() + inner.reserved < self.chan.cap {
            inner.reserved += 1;
            self.token.set(Token::Reserved);
            return Poll::Ready;
        }
        Poll::NotReady
    }
    unsafe fn register(&self, me: &WaitCtx, case: usize) {
        // SAFETY: locked by the caller; lifetimes per the trait contract.
        unsafe {
            Chan::push_waiter(
                self.chan.inner_mut(),
                true,
                Entry::new(me, case, std::ptr::null_mut(), false),
            )
        }
    }
    unsafe fn unregister(&self, me: &WaitCtx) {
        // SAFETY: locked by the caller.
        unsafe { Chan::unregister(self.chan.inner_mut(), me) }
    }
    unsafe fn finish(&self, me: &WaitCtx, kind: u8) -> bool {
        let tok = match kind {
            DONE_HANDOFF => {
                // SAFETY: the claimer wrote `peer` before completing us.
                let (c, s) = unsafe { *me.peer.get() };
                Token::Handoff(c, s)
            }
            DONE_RESERVED => Token::Reserved,
            DONE_CLOSED => Token::Closed,
            _ => {
                debug_assert!(kind != DONE_OK, "valueless sender completed with a value");
                return false;
            }
        };
        self.token.set(tok);
        true
    }
}

/// Cases sorted by channel address, each channel once.
struct LockOrder {
    idx: [u8; MAX_CASES],
    n: usize,
}

impl LockOrder {
    fn new(cases: &[&dyn SelectCase]) -> LockOrder {
        let mut idx = [0u8; MAX_CASES];
        for (i, slot) in idx.iter_mut().enumerate().take(cases.len()) {
            *slot = i as u8;
        }
        let ord = &mut idx[..cases.len()];
        ord.sort_unstable_by_key(|&i| cases[i as usize].chan_addr());
        // Drop duplicates (the same channel in several arms).
        let mut n = 0;
        for k in 0..cases.len() {
            let i = idx[k];
            if n == 0 || cases[idx[n - 1] as usize].chan_addr() != cases[i as usize].chan_addr() {
                idx[n] = i;
                n += 1;
            }
        }
        LockOrder { idx, n }
    }
    fn lock(&self, cases: &[&dyn SelectCase]) {
        for &i in &self.idx[..self.n] {
            cases[i as usize].lock();
        }
    }
    /// # Safety
    ///
    /// * All locked by `lock`.
    unsafe fn unlock(&self, cases: &[&dyn SelectCase]) {
        for &i in self.idx[..self.n].iter().rev() {
            // SAFETY: locked by `lock`, per the contract.
            unsafe { cases[i as usize].unlock() };
        }
    }
}

/// Removes the select's entries from every channel when dropped (normal
/// return and unwinding alike), after making sure no claimer still writes.
struct Unregister<'a, 'c> {
    cases: &'a [&'c dyn SelectCase],
    order: &'a LockOrder,
    ctx: &'a WaitCtx,
    site: &'static Location<'static>,
}

impl Drop for Unregister<'_, '_> {
    fn drop(&mut self) {
        self.ctx.abandon(self.site);
        for &i in &self.order.idx[..self.order.n] {
            let c = self.cases[i as usize];
            c.lock();
            // SAFETY: locked just above; every case on this channel shares
            // the same queues, so one `unregister` removes all our entries.
            unsafe {
                c.unregister(self.ctx);
                c.unlock();
            }
        }
    }
}

/// Waits on a hand-off context even when unwinding.
struct HandoffGuard<'a> {
    ctx: &'a WaitCtx,
    site: &'static Location<'static>,
}

impl Drop for HandoffGuard<'_> {
    fn drop(&mut self) {
        while self.ctx.done.load(Ordering::Acquire) == PENDING {
            park::park(WaitReason::ChanHandoff, self.site);
        }
    }
}

/// Runs a select over `cases`; returns the winning index or [`DEFAULT`].
/// Implementation detail of `select!`.
#[doc(hidden)]
#[track_caller]
pub fn __select_impl(cases: &[&dyn SelectCase], mode: SelectMode) -> usize {
    let site = Location::caller();
    let n = cases.len();
    assert!(n <= MAX_CASES, "select! supports at most {MAX_CASES} arms");
    if n == 0 {
        return select_no_cases(mode, site);
    }
    let mut order = [0u8; MAX_CASES];
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i as u8;
    }
    for i in (1..n).rev() {
        let j = (fastrand() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let locks = LockOrder::new(cases);
    let (deadline, reason) = match mode {
        SelectMode::Block => (None, WaitReason::Select),
        SelectMode::Until(d) => (Some(d), WaitReason::Select),
        SelectMode::Try => (None, WaitReason::Select),
    };
    'retry: loop {
        let ctx = WaitCtx::new();
        locks.lock(cases);
        let mut wake = Wake::default();
        for &i in &order[..n] {
            let i = i as usize;
            // SAFETY: all channels locked; `ctx` is unregistered and lives
            // until we return (hand-offs are awaited below).
            let p = unsafe { cases[i].poll(&ctx, i, &mut wake) };
            match p {
                Poll::NotReady => continue,
                Poll::Ready => {
                    // SAFETY: locked above.
                    unsafe { locks.unlock(cases) };
                    if let Some(w) = wake.0 {
                        w.unpark();
                    }
                    coop_tick();
                    return i;
                }
                Poll::Wait => {
                    // SAFETY: locked above.
                    unsafe { locks.unlock(cases) };
                    if let Some(w) = wake.0.take() {
                        w.unpark();
                    }
                    let guard = HandoffGuard { ctx: &ctx, site };
                    let r = ctx.wait(None, WaitReason::ChanHandoff, site);
                    drop(guard);
                    let (_, kind) = r.expect("a claimed context is never aborted");
                    // SAFETY: claimed for case `i` and completed.
                    if unsafe { cases[i].finish(&ctx, kind) } {
                        return i;
                    }
                    continue 'retry;
                }
            }
        }
        if let SelectMode::Try = mode {
            // SAFETY: locked above.
            unsafe { locks.unlock(cases) };
            return DEFAULT;
        }
        for (i, c) in cases.iter().enumerate() {
            // SAFETY: locked; the `Unregister` guard below removes the entries
            // before `ctx` and the cases go away.
            unsafe { c.register(&ctx, i) };
        }
        // SAFETY: locked above.
        unsafe { locks.unlock(cases) };
        let guard = Unregister {
            cases,
            order: &locks,
            ctx: &ctx,
            site,
        };
        let r = ctx.wait(deadline, reason, site);
        drop(guard);
        match r {
            None => return DEFAULT,
            Some((i, kind)) => {
                debug_assert!(kind != PENDING);
                // SAFETY: claimed for case `i` and completed.
                if unsafe { cases[i].finish(&ctx, kind) } {
                    return i;
                }
                continue 'retry;
            }
        }
    }
}

#[cold]
fn select_no_cases(mode: SelectMode, site: &'static Location<'static>) -> usize {
    match mode {
        SelectMode::Try => DEFAULT,
        SelectMode::Until(d) => {
            while crate::time::now() < d {
                park::park_until(WaitReason::SelectNoCases, site, Some(d));
            }
            DEFAULT
        }
        SelectMode::Block => loop {
            // Go's `select {}`: blocks forever.
            park::park(WaitReason::SelectNoCases, site);
        },
    }
}

/// `select!`'s `default(d)` deadline. Implementation detail.
#[doc(hidden)]
pub fn __deadline_after(d: std::time::Duration) -> Instant {
    crate::runtime::timer::deadline_after(d)
}
