//! TCP: `TcpListener` and `TcpStream`, mirroring `std::net`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::panic::Location;
use std::time::{Duration, Instant};

use super::{resolve, IoSource};
use crate::runtime::poller::timed_out;

/// A TCP socket server, listening for connections (as `std::net::TcpListener`).
///
/// `accept` parks the goroutine until a connection arrives.
///
/// ```
/// let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// assert!(l.local_addr().unwrap().port() > 0);
/// ```
pub struct TcpListener {
    io: IoSource<mio::net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, and listens.
    ///
    /// # Errors
    ///
    /// As `std::net::TcpListener::bind`.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => {
                    super::widen_backlog(std::os::fd::AsRawFd::as_raw_fd(&l));
                    return Ok(TcpListener {
                        io: IoSource::new(l)?,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Accepts a connection, waiting for one.
    ///
    /// # Errors
    ///
    /// The accept error, or `TimedOut` after the deadline set with
    /// [`set_deadline`](TcpListener::set_deadline).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.io.read_io(Location::caller(), |l| l.accept())?;
        Ok((TcpStream::from_mio(s)?, a))
    }

    /// An iterator over incoming connections (never ends; each item is an
    /// `accept` result).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { l: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets a deadline for `accept` (Go's `SetDeadline`); `None` clears it.
    /// A waiting `accept` sees the new deadline at once.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.io.set_read_deadline(d);
        Ok(())
    }

    /// The IP time-to-live of accepted sockets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// A std listener for the same socket (non-blocking mode is left on).
    pub fn into_std(self) -> std::net::TcpListener {
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is an owned, open TCP listener socket we just released.
        unsafe { std::net::TcpListener::from_raw_fd(fd) }
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;
    /// Adopts a std listener (switching it to non-blocking mode).
    fn try_from(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener {
            io: IoSource::new(mio::net::TcpListener::from_std(l))?,
        })
    }
}

impl From<TcpListener> for OwnedFd {
    fn from(l: TcpListener) -> OwnedFd {
        // SAFETY: `into_raw_fd` hands over sole ownership of an open fd.
        unsafe { OwnedFd::from_raw_fd(l.io.into_inner().into_raw_fd()) }
    }
}

/// Iterator from [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    l: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

/// A TCP connection (as `std::net::TcpStream`); reads and writes park the
/// goroutine until the socket is ready.
///
/// `Read` and `Write` are implemented for `TcpStream` and `&TcpStream`, so one
/// goroutine may read while another writes the same stream.
pub struct TcpStream {
    io: IoSource<mio::net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: IoSource::new(s)?,
        })
    }

    /// Connects to the first address of `addr` that accepts.
    ///
    /// # Errors
    ///
    /// The last connection error, as std.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine while the connection is set up; blocks a plain
    /// thread. Name resolution (for a host name rather than an IP address)
    /// runs inline, as `ToSocketAddrs` does; use [`lookup_host`](super::lookup_host)
    /// to resolve on the blocking pool first.
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let site = Location::caller();
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_one(a, None, site) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// Connects to `addr`, giving up after `timeout` (`TimedOut`).
    ///
    /// # Errors
    ///
    /// `TimedOut`, `InvalidInput` for a zero timeout (as std), or the
    /// connection error.
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        Self::connect_one(
            *addr,
            Some(crate::runtime::timer::deadline_after(timeout)),
            Location::caller(),
        )
    }

    fn connect_one(
        addr: SocketAddr,
        deadline: Option<Instant>,
        site: &'static Location<'static>,
    ) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        s.io.set_write_deadline(deadline);
        // A non-blocking connect completes when the socket turns writable;
        // then SO_ERROR says whether it worked.
        let r = s.io.write_io(site, |sock| {
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
            match sock.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        });
        s.io.set_write_deadline(None);
        match r {
            Ok(()) => Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(timed_out()),
            Err(e) => Err(e),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Receives data without removing it from the queue.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_io(Location::caller(), |s| s.peek(buf))
    }

    /// A second handle to the same connection (its own registration and
    /// deadlines).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        // `F_DUPFD_CLOEXEC`, as std: the copy is not inherited by children.
        let fd: OwnedFd = self.as_fd().try_clone_to_owned()?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(std::net::TcpStream::from(fd)))
    }

    deadline_methods!();

    /// A std stream for the same socket (non-blocking mode is left on).
    pub fn into_std(self) -> std::net::TcpStream {
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is an owned, open TCP socket we just released.
        unsafe { std::net::TcpStream::from_raw_fd(fd) }
    }

    #[track_caller]
    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_io(Location::caller(), |mut s| s.read(buf))
    }

    #[track_caller]
    fn read_vectored_impl(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.io
            .read_io(Location::caller(), |mut s| s.read_vectored(bufs))
    }

    #[track_caller]
    fn write_impl(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_io(Location::caller(), |mut s| s.write(buf))
    }

    #[track_caller]
    fn write_vectored_impl(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io
            .write_io(Location::caller(), |mut s| s.write_vectored(bufs))
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;
    /// Adopts a std stream (switching it to non-blocking mode).
    fn try_from(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(s))
    }
}

impl From<TcpStream> for OwnedFd {
    fn from(s: TcpStream) -> OwnedFd {
        // SAFETY: `into_raw_fd` hands over sole ownership of an open fd.
        unsafe { OwnedFd::from_raw_fd(s.io.into_inner().into_raw_fd()) }
    }
}

fd_impls!(TcpListener);

fd_impls!(TcpStream);
stream_io_impls!(TcpStream);
