//! Actors: tell and ask, mailbox backpressure, lifecycle hooks, stop by
//! closing or by context, and supervision (restart within the policy,
//! escalate beyond it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::chan::TrySendError;
use goro::context::Context;
use goro_patterns::actor::{self, Actor, AskError, Builder, Ctx, Exit, Reply, RestartPolicy};

/// A counter that logs its lifecycle and panics on request.
struct Counter {
    /// Current value (reset by a restart).
    n: u64,
    /// Lifecycle events, shared with the test.
    log: Arc<Mutex<Vec<String>>>,
}

enum Msg {
    Add(u64),
    Get(Reply<u64>),
    Restarts(Reply<usize>),
    Crash,
    Stop,
    Slow(Duration),
    Ignore(Reply<u64>),
}

impl Actor for Counter {
    type Msg = Msg;
    fn started(&mut self, ctx: &mut Ctx) {
        self.log
            .lock()
            .unwrap()
            .push(format!("started#{}", ctx.restarts()));
    }
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx) {
        match msg {
            Msg::Add(k) => self.n += k,
            Msg::Get(r) => r.send(self.n),
            Msg::Restarts(r) => r.send(ctx.restarts()),
            Msg::Crash => panic!("crash at {}", self.n),
            Msg::Stop => ctx.stop(),
            Msg::Slow(d) => goro::time::sleep(d),
            Msg::Ignore(r) => drop(r),
        }
    }
    fn stopped(&mut self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("stopped at {}", self.n));
    }
}

fn counter(log: &Arc<Mutex<Vec<String>>>) -> Counter {
    Counter {
        n: 0,
        log: log.clone(),
    }
}

const T: Duration = Duration::from_secs(10);

#[goro::test]
fn tell_ask_and_lifecycle() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr, handle) = Builder::new().name("counter").spawn(counter(&log));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            goro::go(move || (0..250).for_each(|_| addr.send(Msg::Add(1)).unwrap()))
        })
        .collect();
    senders.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(addr.ask(Msg::Get, T), Ok(1000));
    addr.send(Msg::Stop).unwrap();
    assert_eq!(handle.join(), Exit::Stopped);
    assert_eq!(*log.lock().unwrap(), ["started#0", "stopped at 1000"]);
    // The actor is gone: sends fail with the message back, asks say so.
    assert!(addr.send(Msg::Add(1)).is_err());
    assert_eq!(addr.ask(Msg::Get, T), Err(AskError::Stopped));
}

/// Closing the mailbox: queued messages are still handled, then stop.
#[goro::test]
fn close_drains_the_mailbox() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr, handle) = Builder::new().mailbox(100).spawn(counter(&log));
    for _ in 0..100 {
        addr.send(Msg::Add(2)).unwrap();
    }
    assert!(addr.close());
    assert!(addr.is_closed());
    assert_eq!(handle.join(), Exit::Stopped);
    assert_eq!(log.lock().unwrap().last().unwrap(), "stopped at 200");
}

/// A full mailbox refuses try_send and makes send wait (backpressure).
#[goro::test]
fn bounded_mailbox() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr, handle) = Builder::new().mailbox(1).spawn(counter(&log));
    addr.send(Msg::Slow(Duration::from_millis(100))).unwrap();
    // The actor may not have taken the slow message yet; fill up.
    let _ = addr.send(Msg::Add(1));
    let mut full = false;
    for _ in 0..3 {
        match addr.try_send(Msg::Add(1)) {
            Err(TrySendError::Full(_)) => {
                full = true;
                break;
            }
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => panic!("closed"),
        }
    }
    assert!(full, "a mailbox of 1 behind a slow message must fill");
    drop(addr);
    assert_eq!(handle.join(), Exit::Stopped);
}

/// ask: timeouts (lower bound), dropped replies, asks under a context.
#[goro::test]
fn ask_timeouts_and_dropped_replies() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr, handle) = actor::spawn(counter(&log));
    addr.send(Msg::Slow(Duration::from_millis(200))).unwrap();
    let t = Instant::now();
    assert_eq!(
        addr.ask(Msg::Get, Duration::from_millis(50)),
        Err(AskError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(addr.ask(Msg::Ignore, T), Err(AskError::Stopped));
    let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(30));
    addr.send(Msg::Slow(Duration::from_millis(200))).unwrap();
    let r = addr.ask_ctx(&ctx, Msg::Get);
    assert_eq!(
        r,
        Err(AskError::Canceled(goro::context::Error::DeadlineExceeded))
    );
    drop(cancel);
    assert_eq!(addr.ask_ctx(&Context::background(), Msg::Get), Ok(0));
    drop(addr);
    assert_eq!(handle.join(), Exit::Stopped);
}

/// Without a policy a panic ends the actor.
#[goro::test]
fn a_panic_without_policy_ends_the_actor() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr, handle) = actor::spawn(counter(&log));
    addr.send(Msg::Add(3)).unwrap();
    addr.send(Msg::Crash).unwrap();
    assert_eq!(handle.join(), Exit::Panicked("crash at 3".into()));
    assert!(
        addr.send(Msg::Add(1)).is_err(),
        "the mailbox closes with the actor"
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["started#0"],
        "stopped does not run after a panic"
    );
}

/// Restarts: a fresh instance (state reset), same address, the hooks run
/// again; one panic more than the policy allows escalates.
#[goro::test]
fn supervision_restarts_then_escalates() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let made = Arc::new(AtomicUsize::new(0));
    let (l, m) = (log.clone(), made.clone());
    let (addr, handle) = Builder::new()
        .restart(RestartPolicy::new(3, Duration::from_secs(60)))
        .spawn_with(move || {
            m.fetch_add(1, Ordering::SeqCst);
            counter(&l)
        });
    for round in 1..=3 {
        addr.send(Msg::Add(5)).unwrap();
        assert_eq!(addr.ask(Msg::Get, T), Ok(5));
        addr.send(Msg::Crash).unwrap();
        assert_eq!(
            addr.ask(Msg::Get, T),
            Ok(0),
            "a restart starts from a fresh instance"
        );
        assert_eq!(addr.ask(Msg::Restarts, T), Ok(round));
    }
    assert_eq!(made.load(Ordering::SeqCst), 4);
    addr.send(Msg::Add(9)).unwrap();
    addr.send(Msg::Crash).unwrap(); // the fourth panic within the window
    assert_eq!(
        handle.join(),
        Exit::Escalated {
            restarts: 3,
            last_panic: "crash at 9".into()
        }
    );
    assert_eq!(
        made.load(Ordering::SeqCst),
        4,
        "no restart after escalation"
    );
    assert!(addr.send(Msg::Add(1)).is_err());
    assert_eq!(
        *log.lock().unwrap(),
        ["started#0", "started#1", "started#2", "started#3"]
    );
}

/// Panics spread wider than the window never escalate; a burst does.
#[goro::test]
fn supervision_window_slides() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let (addr, handle) = Builder::new()
        .restart(RestartPolicy::new(1, Duration::from_millis(40)))
        .spawn_with(move || counter(&l));
    for _ in 0..3 {
        addr.send(Msg::Crash).unwrap();
        assert_eq!(addr.ask(Msg::Get, T), Ok(0));
        goro::time::sleep(Duration::from_millis(80));
    }
    assert_eq!(addr.ask(Msg::Restarts, T), Ok(3));
    addr.send(Msg::Crash).unwrap();
    addr.send(Msg::Crash).unwrap();
    assert!(matches!(handle.join(), Exit::Escalated { restarts: 4, .. }));
}

/// A backoff delays the restart (lower bound).
#[goro::test]
fn supervision_backoff() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let (addr, handle) = Builder::new()
        .restart(RestartPolicy::new(5, Duration::from_secs(60)).backoff(Duration::from_millis(50)))
        .spawn_with(move || counter(&l));
    let t = Instant::now();
    addr.send(Msg::Crash).unwrap();
    assert_eq!(addr.ask(Msg::Restarts, T), Ok(1));
    assert!(t.elapsed() >= Duration::from_millis(50));
    drop(addr);
    assert_eq!(handle.join(), Exit::Stopped);
}

/// Cancelling the actor's context stops it normally.
#[goro::test]
fn context_stops_the_actor() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (ctx, cancel) = Context::background().with_cancel();
    let (addr, handle) = Builder::new().context(&ctx).spawn(counter(&log));
    addr.send(Msg::Add(4)).unwrap();
    assert_eq!(addr.ask(Msg::Get, T), Ok(4));
    cancel.cancel();
    assert_eq!(handle.join(), Exit::Stopped);
    assert_eq!(log.lock().unwrap().last().unwrap(), "stopped at 4");
    drop(addr);
}
