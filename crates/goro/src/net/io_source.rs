//! A non-blocking socket registered with the poller, plus its deadlines.

use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mio::event::Source;

use crate::runtime::poller::{Registration, READ, WRITE};

/// Origin of the deadline encoding.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `None` as 0, else nanoseconds after `base()` plus one (so a past instant
/// is never 0).
fn encode(d: Option<Instant>) -> u64 {
    match d {
        None => 0,
        Some(t) => {
            t.saturating_duration_since(base())
                .as_nanos()
                .min(u64::MAX as u128 - 1) as u64
                + 1
        }
    }
}

fn decode(v: u64) -> Option<Instant> {
    match v {
        0 => None,
        n => Some(base() + Duration::from_nanos(n - 1)),
    }
}

/// A registered socket of type `S` with Go-style deadlines and std-style
/// timeouts per direction.
pub(crate) struct IoSource<S: Source> {
    /// The mio socket (non-blocking).
    source: S,
    /// Its registration; deregistered on drop.
    reg: Registration,
    /// Absolute read deadline (encoded), applying to every read.
    read_deadline: AtomicU64,
    /// Absolute write deadline (encoded).
    write_deadline: AtomicU64,
    /// Per-call read timeout in ns, 0 for none.
    read_timeout: AtomicU64,
    /// Per-call write timeout in ns, 0 for none.
    write_timeout: AtomicU64,
}

impl<S: Source + std::fmt::Debug> std::fmt::Debug for IoSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl<S: Source> IoSource<S> {
    /// Registers `source` with the poller.
    pub(crate) fn new(mut source: S) -> io::Result<IoSource<S>> {
        let reg = Registration::new(&mut source)?;
        Ok(IoSource {
            source,
            reg,
            read_deadline: AtomicU64::new(0),
            write_deadline: AtomicU64::new(0),
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        })
    }

    /// The socket.
    pub(crate) fn get_ref(&self) -> &S {
        &self.source
    }

    /// Runs a read-side operation, waiting for readability as needed.
    pub(crate) fn read_io<R>(
        &self,
        site: &'static Location<'static>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let per_call = per_call_deadline(&self.read_timeout);
        self.reg.io(
            READ,
            || earliest(decode(self.read_deadline.load(Ordering::Acquire)), per_call),
            site,
            || op(&self.source),
        )
    }

    /// Runs a write-side operation, waiting for writability as needed.
    pub(crate) fn write_io<R>(
        &self,
        site: &'static Location<'static>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let per_call = per_call_deadline(&self.write_timeout);
        self.reg.io(
            WRITE,
            || {
                earliest(
                    decode(self.write_deadline.load(Ordering::Acquire)),
                    per_call,
                )
            },
            site,
            || op(&self.source),
        )
    }

    /// Sets the read deadline; wakes blocked readers so it applies to them.
    pub(crate) fn set_read_deadline(&self, d: Option<Instant>) {
        self.read_deadline.store(encode(d), Ordering::Release);
        self.reg.wake(READ);
    }

    /// Sets the write deadline; wakes blocked writers so it applies to them.
    pub(crate) fn set_write_deadline(&self, d: Option<Instant>) {
        self.write_deadline.store(encode(d), Ordering::Release);
        self.reg.wake(WRITE);
    }

    /// Sets the per-call read timeout.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.read_timeout
            .store(encode_timeout(t)?, Ordering::Release);
        Ok(())
    }

    /// Sets the per-call write timeout.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.write_timeout
            .store(encode_timeout(t)?, Ordering::Release);
        Ok(())
    }

    /// The per-call read timeout.
    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        decode_timeout(self.read_timeout.load(Ordering::Acquire))
    }

    /// The per-call write timeout.
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        decode_timeout(self.write_timeout.load(Ordering::Acquire))
    }

    /// Deregisters and returns the socket (for `into_std`-style conversions).
    pub(crate) fn into_inner(self) -> S {
        let mut me = std::mem::ManuallyDrop::new(self);
        let IoSource { source, reg, .. } = &mut *me;
        reg.deregister(source);
        // SAFETY: `me` is never used or dropped again; each field is read
        // exactly once (the others hold no resources needing drop except
        // `reg`, whose slab entry was released just above).
        unsafe {
            let source = std::ptr::read(&me.source);
            std::ptr::drop_in_place(&mut me.reg);
            source
        }
    }
}

impl<S: Source> Drop for IoSource<S> {
    fn drop(&mut self) {
        let IoSource { source, reg, .. } = self;
        reg.deregister(source);
    }
}

/// `now + timeout` if a per-call timeout is set.
fn per_call_deadline(t: &AtomicU64) -> Option<Instant> {
    decode_timeout(t.load(Ordering::Acquire)).map(crate::runtime::timer::deadline_after)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// std rejects a zero timeout with `InvalidInput`; so do we.
fn encode_timeout(t: Option<Duration>) -> io::Result<u64> {
    match t {
        None => Ok(0),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        )),
        Some(d) => Ok(d.as_nanos().clamp(1, u64::MAX as u128) as u64),
    }
}

fn decode_timeout(v: u64) -> Option<Duration> {
    if v == 0 {
        None
    } else {
        Some(Duration::from_nanos(v))
    }
}
