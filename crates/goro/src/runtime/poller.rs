//! The network poller: readiness of goro's sockets, from epoll (via mio).
//!
//! # Design
//!
//! One process-wide poller thread (`goro-netpoll`) blocks in `epoll_wait`
//! and turns readiness events into wake-ups. Every socket of `goro::net`
//! is non-blocking and registered once, edge-triggered, for both directions;
//! its [`ScheduledIo`] keeps a readiness bit per direction and the goroutines
//! (or threads) waiting for it.
//!
//! Readiness is one atomic word: a bit per direction plus a tick that every
//! event increments. An I/O operation ([`Registration::io`]) snapshots the
//! word, then just tries the syscall. Only on `WouldBlock` does it clear the
//! direction's bit — with a CAS against the snapshot, so an event that
//! arrived during the syscall (a newer tick) is never cleared — and wait:
//!
//! 1. under the waiters lock: if the bit is set, retry the syscall; else
//!    register as a waiter;
//! 2. park (with the socket's deadline, if any) and go to 1.
//!
//! The poller sets the bit (and bumps the tick), then takes the waiters under
//! the same lock and unparks them ("register, then re-check": whichever comes
//! first, the other sees it). A bit is cleared only by an operation that saw
//! `WouldBlock` since the last event, so with edge-triggered epoll no edge is
//! lost, and several goroutines waiting on one socket all retry: the ones
//! that find nothing clear the bit and wait again.
//!
//! Deadlines are re-read on every wait, and setting one wakes the current
//! waiters, so a deadline set while a goroutine is blocked applies at once
//! (Go's semantics): a deadline in the past unblocks it with `TimedOut`.
//!
//! **Deviation from DESIGN §3** (an idle worker blocks in the poller): a
//! dedicated thread keeps the poller independent of any runtime, so sockets
//! work from every runtime and from plain threads alike. A readiness wake
//! costs one cross-thread unpark (the inbox of the waiter's home worker, and
//! a futex wake only if that worker sleeps).

use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use mio::event::Source;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;

use super::park::{self, Unparker, WaitReason};

/// Readiness bit: readable (or read-closed, or error).
pub(crate) const READ: u8 = 1;
/// Readiness bit: writable (or write-closed, or error).
pub(crate) const WRITE: u8 = 2;
/// One event's increment of the tick kept above the readiness bits.
const TICK: u32 = 4;

/// Waiters of one socket.
#[derive(Default)]
struct Waiters {
    /// Blocked in a read-side operation.
    readers: Vec<Unparker>,
    /// Blocked in a write-side operation.
    writers: Vec<Unparker>,
}

/// Readiness and waiters of one registered socket.
pub(crate) struct ScheduledIo {
    /// `READ | WRITE` bits, plus an event counter in the bits above them.
    ready: AtomicU32,
    /// Who waits for which direction.
    waiters: Mutex<Waiters>,
}

impl ScheduledIo {
    /// Marks `bits` ready and wakes their waiters (poller side).
    fn set_ready(&self, bits: u8) {
        // Release: a waiter that sees the bit sees the event's effects.
        let mut cur = self.ready.load(Ordering::Relaxed);
        loop {
            let new = (cur & !(TICK - 1)).wrapping_add(TICK) | (cur & (TICK - 1)) | bits as u32;
            match self
                .ready
                .compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.wake(bits);
    }

    /// Wakes the waiters of `bits` (after an event, or without readiness
    /// when a deadline changed).
    pub(crate) fn wake(&self, bits: u8) {
        let (r, w) = {
            let mut ws = self.waiters.lock();
            let r = if bits & READ != 0 {
                std::mem::take(&mut ws.readers)
            } else {
                Vec::new()
            };
            let w = if bits & WRITE != 0 {
                std::mem::take(&mut ws.writers)
            } else {
                Vec::new()
            };
            (r, w)
        };
        for u in r.into_iter().chain(w) {
            u.unpark();
        }
    }
}

/// The process-wide poller.
struct Poller {
    /// Registers sockets with epoll.
    registry: mio::Registry,
    /// Registered sockets, by token.
    sources: Mutex<Slab>,
    /// Goroutines and threads blocked on socket readiness right now.
    waiting: AtomicUsize,
    /// The epoll instance's fd, for workers' non-blocking polls.
    epfd: std::os::fd::RawFd,
}

/// Token-indexed sockets with a free list.
#[derive(Default)]
struct Slab {
    /// `None` for free slots.
    slots: Vec<Option<Arc<ScheduledIo>>>,
    /// Free slot indices.
    free: Vec<usize>,
}

fn poller() -> &'static Poller {
    static POLLER: OnceLock<Poller> = OnceLock::new();
    let p = POLLER.get_or_init(|| {
        let poll = Poll::new()
            .unwrap_or_else(|e| panic!("goro: cannot create the network poller (epoll): {e}"));
        let registry = poll
            .registry()
            .try_clone()
            .unwrap_or_else(|e| panic!("goro: cannot clone the poller's registry: {e}"));
        let epfd = std::os::fd::AsRawFd::as_raw_fd(&poll);
        std::thread::Builder::new()
            .name("goro-netpoll".into())
            .spawn(move || run(poll))
            .unwrap_or_else(|e| panic!("goro: cannot start the network poller thread: {e}"));
        Poller {
            registry,
            sources: Mutex::new(Slab::default()),
            waiting: AtomicUsize::new(0),
            epfd,
        }
    });
    let _ = POLLER_READY.set(p);
    p
}

/// Polls epoll without blocking, from a spinning worker, and delivers what it
/// finds: readiness caught here wakes a goroutine pinned to this worker with
/// no futex wake at all (the poller thread would have to wake the worker).
/// Several threads may wait on one epoll instance; each event goes to one.
pub(crate) fn poll_now() {
    let Some(p) = POLLER_READY.get() else { return };
    if p.waiting.load(Ordering::Relaxed) == 0 {
        return;
    }
    const N: usize = 64;
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; N];
    // SAFETY: `epfd` is the poller's epoll fd, open for the life of the
    // process (the poller is never dropped); `evs` has room for N events.
    let n = unsafe { libc::epoll_wait(p.epfd, evs.as_mut_ptr(), N as libc::c_int, 0) };
    for ev in evs.iter().take(n.max(0) as usize) {
        let sio = {
            let slab = p.sources.lock();
            slab.slots.get(ev.u64 as usize).and_then(|s| s.clone())
        };
        let Some(sio) = sio else { continue };
        let e = ev.events as libc::c_int;
        let mut bits = 0;
        if e & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI)
            != 0
        {
            bits |= READ;
        }
        if e & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
            bits |= WRITE;
        }
        sio.set_ready(bits);
    }
}

/// Set once the poller exists (workers never create it just to poll).
static POLLER_READY: OnceLock<&'static Poller> = OnceLock::new();

/// The poller thread: turns epoll events into wake-ups, forever.
fn run(mut poll: Poll) {
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("goro: network poller error: {e}");
            }
            continue;
        }
        let p = poller();
        for ev in events.iter() {
            let sio = {
                let slab = p.sources.lock();
                slab.slots.get(ev.token().0).and_then(|s| s.clone())
            };
            let Some(sio) = sio else { continue };
            let mut bits = 0;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() || ev.is_priority() {
                bits |= READ;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                bits |= WRITE;
            }
            sio.set_ready(bits);
        }
    }
}

/// The poller's epoll fd, once the poller exists.
pub(crate) fn epoll_fd() -> Option<std::os::fd::RawFd> {
    POLLER_READY.get().map(|p| p.epfd)
}

/// Whether anyone waits on socket readiness (without creating the poller).
pub(crate) fn waiting_any() -> bool {
    POLLER_READY
        .get()
        .is_some_and(|p| p.waiting.load(Ordering::Relaxed) > 0)
}

/// Goroutines and threads currently blocked on socket readiness.
#[allow(dead_code)]
pub(crate) fn waiting() -> usize {
    poller().waiting.load(Ordering::Relaxed)
}

/// A socket's registration with the poller; deregister before closing.
pub(crate) struct Registration {
    /// Readiness and waiters.
    sio: Arc<ScheduledIo>,
    /// Slab index, the epoll token.
    token: usize,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token)
            .finish()
    }
}

impl Registration {
    /// Registers `source` for both directions, edge-triggered.
    pub(crate) fn new(source: &mut impl Source) -> io::Result<Registration> {
        let p = poller();
        let sio = Arc::new(ScheduledIo {
            ready: AtomicU32::new(0),
            waiters: Mutex::new(Waiters::default()),
        });
        let token = {
            let mut slab = p.sources.lock();
            match slab.free.pop() {
                Some(i) => {
                    slab.slots[i] = Some(sio.clone());
                    i
                }
                None => {
                    slab.slots.push(Some(sio.clone()));
                    slab.slots.len() - 1
                }
            }
        };
        if let Err(e) = p.registry.register(
            source,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            let mut slab = p.sources.lock();
            slab.slots[token] = None;
            slab.free.push(token);
            return Err(e);
        }
        Ok(Registration { sio, token })
    }

    /// Removes `source` from the poller (call before it is closed).
    pub(crate) fn deregister(&self, source: &mut impl Source) {
        let p = poller();
        let _ = p.registry.deregister(source);
        let mut slab = p.sources.lock();
        if let Some(s) = slab.slots.get_mut(self.token) {
            *s = None;
            slab.free.push(self.token);
        }
    }

    /// Wakes the waiters of `bits` so they re-read their deadline.
    pub(crate) fn wake(&self, bits: u8) {
        self.sio.wake(bits);
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting for `dir`
    /// readiness in between; fails with `TimedOut` once `deadline()` (re-read
    /// on every wait) has passed.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    pub(crate) fn io<R>(
        &self,
        dir: u8,
        deadline: impl Fn() -> Option<Instant>,
        site: &'static Location<'static>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        // An expired deadline fails the operation even if it could proceed
        // (Go's semantics).
        if let Some(d) = deadline() {
            if crate::time::now() >= d {
                return Err(timed_out());
            }
        }
        loop {
            // Acquire pairs with the poller's Release.
            let seen = self.sio.ready.load(Ordering::Acquire);
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            // Not ready after all: clear the bit, unless an event came in
            // while we tried (then just try again).
            if seen & dir as u32 != 0
                && self
                    .sio
                    .ready
                    .compare_exchange(
                        seen,
                        seen & !(dir as u32),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            self.wait(dir, &deadline, site)?;
        }
    }

    /// Waits until `dir` is (or may be) ready; the caller then retries.
    fn wait(
        &self,
        dir: u8,
        deadline: &impl Fn() -> Option<Instant>,
        site: &'static Location<'static>,
    ) -> io::Result<()> {
        let me = Unparker::current();
        let p = poller();
        loop {
            {
                let mut ws = self.sio.waiters.lock();
                // Acquire pairs with the poller's Release.
                if self.sio.ready.load(Ordering::Acquire) & dir as u32 != 0 {
                    return Ok(());
                }
                let list = if dir == READ {
                    &mut ws.readers
                } else {
                    &mut ws.writers
                };
                if !list.iter().any(|u| u.same(&me)) {
                    list.push(me.clone());
                }
            }
            let d = deadline();
            if let Some(d) = d {
                if crate::time::now() >= d {
                    self.forget(dir, &me);
                    return Err(timed_out());
                }
            }
            p.waiting.fetch_add(1, Ordering::Relaxed);
            let guard = Forget {
                reg: self,
                dir,
                me: &me,
                p,
            };
            park::park_until(WaitReason::IoWait, site, d);
            drop(guard);
        }
    }

    /// Removes `me` from the waiters of `dir`.
    fn forget(&self, dir: u8, me: &Unparker) {
        let mut ws = self.sio.waiters.lock();
        let list = if dir == READ {
            &mut ws.readers
        } else {
            &mut ws.writers
        };
        list.retain(|u| !u.same(me));
    }
}

/// Leaves the waiter list after a park (also when unwinding).
struct Forget<'a> {
    reg: &'a Registration,
    dir: u8,
    me: &'a Unparker,
    p: &'static Poller,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.p.waiting.fetch_sub(1, Ordering::Relaxed);
        self.reg.forget(self.dir, self.me);
    }
}

/// The error of an operation whose deadline passed.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o deadline exceeded")
}
