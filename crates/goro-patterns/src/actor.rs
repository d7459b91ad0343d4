//! Actors: state owned by one goroutine, reached only through messages.
//!
//! Vocabulary: an [`Actor`] is a value with a `handle` method; spawning it
//! starts one goroutine that owns it and a bounded *mailbox* (a channel of
//! [`Actor::Msg`]); an [`Addr`] is a cloneable sending end of the mailbox.
//! [`Addr::send`] is a *tell* (waits only for mailbox room: backpressure);
//! [`Addr::ask`] is a request/response: the message carries a [`Reply`],
//! the actor answers through it, the asker waits with a timeout.
//!
//! Lifecycle of one actor instance:
//!
//! ```text
//! factory() ─► started() ─► handle(msg)* ─► stopped()      normal stop
//!                 │             │
//!                 └── panic ────┴─► (instance dropped) ─► restart or exit
//! ```
//!
//! An actor stops normally when its mailbox is closed and drained (every
//! `Addr` dropped, or [`Addr::close`]), when it calls [`Ctx::stop`], or
//! when the context given to [`Builder::context`] is cancelled.
//!
//! Supervision: without a [`RestartPolicy`] a panic ends the actor with
//! [`Exit::Panicked`]. With one, the supervisor (the same goroutine) drops
//! the broken instance, makes a fresh one with the factory and carries on
//! with the same mailbox, so `Addr`s stay valid; the message being handled
//! when it panicked is lost. If more than `max_restarts` panics fall within
//! `window`, the supervisor gives up: the actor ends with
//! [`Exit::Escalated`], its mailbox closes and senders get their message
//! back, and whoever joins its [`ActorHandle`] decides what next (Erlang's
//! escalation to the parent supervisor).

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use goro::chan::{
    self, Receiver, RecvTimeoutError, SendError, SendTimeoutError, Sender, TrySendError,
};
use goro::context::{self, Context};
use goro::JoinHandle;

/// A value owned by one goroutine that reacts to messages.
///
/// ```
/// use goro_patterns::actor::{self, Actor, Ctx, Reply};
///
/// struct Counter(u64);
/// enum Msg { Add(u64), Get(Reply<u64>) }
///
/// impl Actor for Counter {
///     type Msg = Msg;
///     fn handle(&mut self, msg: Msg, _: &mut Ctx) {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => reply.send(self.0),
///         }
///     }
/// }
///
/// let (addr, handle) = actor::spawn(Counter(0));
/// for i in 1..=10 {
///     addr.send(Msg::Add(i)).unwrap();
/// }
/// let total = addr.ask(Msg::Get, std::time::Duration::from_secs(5)).unwrap();
/// assert_eq!(total, 55);
/// drop(addr); // the last Addr: the mailbox closes, the actor stops
/// assert_eq!(handle.join(), actor::Exit::Stopped);
/// ```
pub trait Actor: Send + 'static {
    /// What the mailbox carries.
    type Msg: Send + 'static;

    /// Handles one message.
    fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx);

    /// Runs before the first message of this instance (again after every
    /// restart, on the fresh instance).
    fn started(&mut self, _ctx: &mut Ctx) {}

    /// Runs when the instance stops normally (not after a panic: a broken
    /// instance is only dropped).
    fn stopped(&mut self) {}
}

/// What an actor can do to itself while handling a message.
#[derive(Debug)]
pub struct Ctx {
    /// Set by `stop`: the loop ends after this message.
    stop: bool,
    /// Restarts so far.
    restarts: usize,
    /// The actor's context.
    context: Context,
}

impl Ctx {
    /// Stops the actor after the current message (`stopped` runs; messages
    /// still in the mailbox are dropped, their senders see it closed).
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// How many times the supervisor has restarted this actor.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// The actor's context (cancelled when the actor is told to stop by
    /// the context it was spawned with).
    pub fn context(&self) -> &Context {
        &self.context
    }
}

/// The answer slot of an [`Addr::ask`] message.
#[must_use = "an ask waits for this reply until it times out"]
pub struct Reply<R> {
    /// Capacity 1: the answer never waits.
    tx: Sender<R>,
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

impl<R> Reply<R> {
    /// Answers the ask. If the asker has given up, the answer is dropped.
    pub fn send(self, v: R) {
        let _ = self.tx.send(v);
    }
}

/// Why an ask got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskError {
    /// No answer in time (the request may still be handled later).
    Timeout,
    /// The actor is gone, or dropped the [`Reply`] without answering.
    Stopped,
    /// The asker's context was cancelled.
    Canceled(context::Error),
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Timeout => f.write_str("ask timed out"),
            AskError::Stopped => f.write_str("actor stopped without answering"),
            AskError::Canceled(e) => write!(f, "ask: {e}"),
        }
    }
}

impl std::error::Error for AskError {}

/// The address of an actor: a sending end of its mailbox. Clone it freely;
/// when the last one is dropped the actor drains its mailbox and stops.
pub struct Addr<M> {
    /// The mailbox.
    tx: Sender<M>,
}

impl<M> Clone for Addr<M> {
    fn clone(&self) -> Self {
        Addr {
            tx: self.tx.clone(),
        }
    }
}

impl<M> fmt::Debug for Addr<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addr")
            .field("queued", &self.tx.len())
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl<M: Send + 'static> Addr<M> {
    /// Tells the actor `msg`, waiting while the mailbox is full.
    ///
    /// # Errors
    ///
    /// The message back if the actor has stopped.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (blocks a plain thread) while the mailbox is full.
    pub fn send(&self, msg: M) -> Result<(), SendError<M>> {
        self.tx.send(msg)
    }

    /// Tells the actor `msg` if the mailbox has room now.
    ///
    /// # Errors
    ///
    /// `Full(msg)` or `Closed(msg)`.
    pub fn try_send(&self, msg: M) -> Result<(), TrySendError<M>> {
        self.tx.try_send(msg)
    }

    /// Tells the actor `msg`, waiting at most `d` for mailbox room.
    ///
    /// # Errors
    ///
    /// `Timeout(msg)` or `Closed(msg)`.
    pub fn send_timeout(&self, msg: M, d: Duration) -> Result<(), SendTimeoutError<M>> {
        self.tx.send_timeout(msg, d)
    }

    /// Asks the actor: `make` builds the message around a [`Reply`]; waits
    /// at most `timeout` in all (mailbox room plus answer).
    ///
    /// # Errors
    ///
    /// [`AskError::Timeout`], or [`AskError::Stopped`] if the actor is gone
    /// or dropped the reply.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn ask<R, F>(&self, make: F, timeout: Duration) -> Result<R, AskError>
    where
        F: FnOnce(Reply<R>) -> M,
    {
        let start = Instant::now();
        let (tx, rx) = chan::bounded(1);
        match self.tx.send_timeout(make(Reply { tx }), timeout) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(AskError::Timeout),
            Err(SendTimeoutError::Closed(_)) => return Err(AskError::Stopped),
        }
        match rx.recv_timeout(timeout.saturating_sub(start.elapsed())) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => Err(AskError::Timeout),
            Err(RecvTimeoutError::Closed) => Err(AskError::Stopped),
        }
    }

    /// Asks the actor, waiting until `ctx` is done.
    ///
    /// # Errors
    ///
    /// [`AskError::Canceled`] with the context's error, or
    /// [`AskError::Stopped`].
    pub fn ask_ctx<R, F>(&self, ctx: &Context, make: F) -> Result<R, AskError>
    where
        F: FnOnce(Reply<R>) -> M,
    {
        let cancelled = || AskError::Canceled(ctx.err().unwrap_or(context::Error::Canceled));
        if ctx.is_done() {
            return Err(cancelled());
        }
        let (tx, rx) = chan::bounded(1);
        let msg = make(Reply { tx });
        let done = ctx.done();
        goro::select! {
            send(self.tx, msg) -> r => if r.is_err() { return Err(AskError::Stopped) },
            recv(done) -> _ => return Err(cancelled()),
        }
        goro::select! {
            recv(rx) -> r => r.map_err(|_| AskError::Stopped),
            recv(done) -> _ => Err(cancelled()),
        }
    }

    /// Closes the mailbox: the actor handles what is queued, then stops.
    /// Later sends fail. Returns true if this call closed it.
    pub fn close(&self) -> bool {
        self.tx.close()
    }

    /// True once the actor no longer takes messages.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Messages queued in the mailbox.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}

/// How an actor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// Normally: mailbox closed and drained, [`Ctx::stop`], or its context
    /// cancelled.
    Stopped,
    /// It panicked and had no restart policy.
    Panicked(String),
    /// It panicked more than the policy allows within its window.
    Escalated {
        /// Restarts done before giving up.
        restarts: usize,
        /// The last panic's message.
        last_panic: String,
    },
}

/// Restart on panic, at most `max_restarts` times within any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more panic escalates.
    pub max_restarts: usize,
    /// The sliding window.
    pub window: Duration,
    /// Pause before each restart.
    pub backoff: Duration,
}

impl RestartPolicy {
    /// `max_restarts` within `window`, no backoff.
    pub fn new(max_restarts: usize, window: Duration) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            window,
            backoff: Duration::ZERO,
        }
    }

    /// With a pause before each restart.
    pub fn backoff(mut self, d: Duration) -> RestartPolicy {
        self.backoff = d;
        self
    }
}

/// The running actor's goroutine.
#[must_use = "join the handle to learn how the actor ended"]
#[derive(Debug)]
pub struct ActorHandle {
    /// The supervisor goroutine.
    join: JoinHandle<Exit>,
}

impl ActorHandle {
    /// Waits for the actor to end.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub fn join(self) -> Exit {
        match self.join.join() {
            Ok(e) => e,
            // The supervisor catches every actor panic; this is a runtime
            // going away under it.
            Err(e) => Exit::Panicked(e.to_string()),
        }
    }

    /// True once the actor has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

/// Spawns `actor` with the default [`Builder`] (mailbox of 64, no restart).
///
/// # Panics
///
/// If the goroutine cannot be started.
pub fn spawn<A: Actor>(actor: A) -> (Addr<A::Msg>, ActorHandle) {
    Builder::new().spawn(actor)
}

/// Configures and spawns actors.
#[derive(Debug, Clone)]
pub struct Builder {
    /// Mailbox capacity.
    mailbox: usize,
    /// Goroutine name.
    name: Option<String>,
    /// Supervision, if any.
    restart: Option<RestartPolicy>,
    /// Stops the actor when done.
    ctx: Context,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Mailbox of 64, no name, no restart, background context.
    pub fn new() -> Builder {
        Builder {
            mailbox: 64,
            name: None,
            restart: None,
            ctx: Context::background(),
        }
    }

    /// Mailbox capacity (0: every send is a hand-off).
    pub fn mailbox(mut self, cap: usize) -> Builder {
        self.mailbox = cap;
        self
    }

    /// Names the actor's goroutine (shown in dumps).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Restarts on panic as `policy` allows (needs [`spawn_with`](Builder::spawn_with)
    /// to make fresh instances; with [`spawn`](Builder::spawn) there is only
    /// one instance, so a panic ends the actor).
    pub fn restart(mut self, policy: RestartPolicy) -> Builder {
        self.restart = Some(policy);
        self
    }

    /// Stops the actor (normally) when `ctx` is done.
    pub fn context(mut self, ctx: &Context) -> Builder {
        self.ctx = ctx.clone();
        self
    }

    /// Spawns one instance; a panic ends it.
    ///
    /// # Panics
    ///
    /// If the goroutine cannot be started.
    pub fn spawn<A: Actor>(self, actor: A) -> (Addr<A::Msg>, ActorHandle) {
        let mut once = Some(actor);
        let b = Builder {
            restart: None,
            ..self
        };
        b.spawn_with(move || {
            once.take()
                .expect("spawned once: no restart without a factory")
        })
    }

    /// Spawns an actor made by `factory`, called again for every restart.
    ///
    /// # Panics
    ///
    /// If the goroutine cannot be started.
    pub fn spawn_with<A, F>(self, factory: F) -> (Addr<A::Msg>, ActorHandle)
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let (tx, rx) = chan::bounded(self.mailbox);
        let mut b = goro::Builder::new();
        if let Some(n) = &self.name {
            b = b.name(n.clone());
        }
        let (restart, ctx) = (self.restart, self.ctx);
        let join = b
            .spawn(move || supervise(factory, rx, restart, ctx))
            .unwrap_or_else(|e| panic!("goro_patterns::actor: cannot start a goroutine: {e}"));
        (Addr { tx }, ActorHandle { join })
    }
}

/// The actor's goroutine: runs instances, restarting them as `policy` says.
fn supervise<A, F>(
    mut factory: F,
    rx: Receiver<A::Msg>,
    policy: Option<RestartPolicy>,
    ctx: Context,
) -> Exit
where
    A: Actor,
    F: FnMut() -> A,
{
    let done = ctx.done();
    // When the recent restarts happened, oldest first.
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let mut restarts = 0;
    loop {
        let mut cx = Ctx {
            stop: false,
            restarts,
            context: ctx.clone(),
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut actor = factory();
            actor.started(&mut cx);
            while !cx.stop {
                if ctx.is_done() {
                    break;
                }
                let msg = goro::select! {
                    recv(rx) -> m => match m {
                        Ok(m) => m,
                        Err(_) => break, // closed and drained
                    },
                    recv(done) -> _ => break,
                };
                actor.handle(msg, &mut cx);
            }
            actor.stopped();
        }));
        let Err(p) = r else {
            return Exit::Stopped;
        };
        let msg = crate::pool::panic_message(&*p);
        let Some(policy) = policy else {
            return Exit::Panicked(msg);
        };
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            recent.pop_front();
        }
        if recent.len() >= policy.max_restarts {
            return Exit::Escalated {
                restarts,
                last_panic: msg,
            };
        }
        recent.push_back(now);
        restarts += 1;
        if !policy.backoff.is_zero() {
            goro::select! {
                recv(goro::time::after(policy.backoff)) -> _ => {},
                recv(done) -> _ => return Exit::Stopped,
            }
        }
    }
}
