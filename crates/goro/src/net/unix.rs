//! Unix domain sockets: `UnixListener`, `UnixStream`, `UnixDatagram`,
//! mirroring `std::os::unix::net`.
//!
//! Addresses are std's [`SocketAddr`](std::os::unix::net::SocketAddr), so
//! path names, unnamed sockets and (through
//! `std::os::linux::net::SocketAddrExt`) the abstract namespace all work as
//! with std. As with std, dropping a listener or a bound datagram socket
//! does not remove its file; unlink the path yourself.
//!
//! One difference from TCP shapes `connect`: on Linux a non-blocking connect
//! to a Unix stream socket whose backlog is full fails with `WouldBlock`
//! instead of completing later, so there is no readiness to wait for.
//! `UnixStream::connect` then retries with a short, growing pause (up to
//! 50 ms), which is what std's blocking connect amounts to; Go surfaces the
//! `EAGAIN` instead.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::SocketAddr;
use std::panic::Location;
use std::path::Path;
use std::time::{Duration, Instant};

use super::IoSource;

/// First pause of `UnixStream::connect` after a full backlog.
const CONNECT_BACKOFF_MIN: Duration = Duration::from_micros(100);
/// Longest pause between two connect attempts.
const CONNECT_BACKOFF_MAX: Duration = Duration::from_millis(50);

/// A Unix stream socket server (as `std::os::unix::net::UnixListener`).
///
/// `accept` parks the goroutine until a connection arrives.
///
/// ```
/// use std::io::{Read, Write};
/// use goro::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("goro-doc-unix-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let server = goro::go(move || {
///     let (mut s, _) = l.accept().unwrap();
///     s.write_all(b"hi").unwrap();
/// });
/// let mut c = UnixStream::connect(&path).unwrap();
/// let mut buf = String::new();
/// c.read_to_string(&mut buf).unwrap();
/// assert_eq!(buf, "hi");
/// server.join().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    /// The registered non-blocking listener and its accept deadline.
    io: IoSource<mio::net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixListener {
    /// Binds to the socket file `path` and listens.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixListener::bind`; `AddrInUse` if the file
    /// exists.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let l = mio::net::UnixListener::bind(path)?;
        super::widen_backlog(std::os::fd::AsRawFd::as_raw_fd(&l));
        UnixListener::from_mio(l)
    }

    /// Binds to `addr` (a path name, or an abstract name on Linux) and
    /// listens.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixListener::bind_addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let l = mio::net::UnixListener::bind_addr(addr)?;
        super::widen_backlog(std::os::fd::AsRawFd::as_raw_fd(&l));
        UnixListener::from_mio(l)
    }

    fn from_mio(l: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: IoSource::new(l)?,
        })
    }

    /// Accepts a connection, waiting for one.
    ///
    /// # Errors
    ///
    /// The accept error, or `TimedOut` after the deadline set with
    /// [`set_deadline`](UnixListener::set_deadline).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine; blocks a plain thread.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.io.read_io(Location::caller(), |l| l.accept())?;
        Ok((UnixStream::from_mio(s)?, a))
    }

    /// An iterator over incoming connections (never ends; each item is an
    /// `accept` result).
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { l: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Sets a deadline for `accept` (Go's `SetDeadline`); `None` clears it.
    /// A waiting `accept` sees the new deadline at once.
    pub fn set_deadline(&self, d: Option<Instant>) -> io::Result<()> {
        self.io.set_read_deadline(d);
        Ok(())
    }

    /// A second handle to the same listener, with its own registration and
    /// deadline (the fd is duplicated close-on-exec, as std does).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let fd = self.as_fd().try_clone_to_owned()?;
        UnixListener::from_mio(mio::net::UnixListener::from(fd))
    }

    /// A std listener for the same socket (non-blocking mode is left on).
    pub fn into_std(self) -> std::os::unix::net::UnixListener {
        std::os::unix::net::UnixListener::from(OwnedFd::from(self.io.into_inner()))
    }
}

impl TryFrom<std::os::unix::net::UnixListener> for UnixListener {
    type Error = io::Error;
    /// Adopts a std listener (switching it to non-blocking mode).
    fn try_from(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        UnixListener::from_mio(mio::net::UnixListener::from_std(l))
    }
}

impl From<UnixListener> for OwnedFd {
    fn from(l: UnixListener) -> OwnedFd {
        OwnedFd::from(l.io.into_inner())
    }
}

/// Iterator from [`UnixListener::incoming`].
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    /// The listener to accept on.
    l: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

/// A Unix stream socket (as `std::os::unix::net::UnixStream`); reads and
/// writes park the goroutine until the socket is ready.
///
/// `Read` and `Write` are implemented for `UnixStream` and `&UnixStream`, so
/// one goroutine may read while another writes the same stream.
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = goro::net::UnixStream::pair().unwrap();
/// let echo = goro::go(move || {
///     let mut buf = [0u8; 4];
///     b.read_exact(&mut buf).unwrap();
///     b.write_all(&buf).unwrap();
/// });
/// a.write_all(b"ping").unwrap();
/// let mut back = [0u8; 4];
/// a.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ping");
/// echo.join().unwrap();
/// ```
pub struct UnixStream {
    /// The registered non-blocking socket and its deadlines.
    io: IoSource<mio::net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixStream {
    fn from_mio(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: IoSource::new(s)?,
        })
    }

    /// Connects to the socket file `path`.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixStream::connect`: `NotFound` if there is
    /// no such file, `ConnectionRefused` if nobody listens on it,
    /// `InvalidInput` for a path too long for a socket address.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine while the listener's backlog is full; blocks a
    /// plain thread. (On Linux a non-blocking connect to a full backlog fails
    /// with `EAGAIN` rather than completing later, so there is no readiness
    /// to wait for: the goroutine retries after a short pause that grows to
    /// 50 ms, which is what std's blocking connect amounts to. Go returns
    /// the `EAGAIN` instead.)
    #[track_caller]
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = SocketAddr::from_pathname(path)?;
        UnixStream::connect_at(&addr, Location::caller())
    }

    /// Connects to `addr` (a path name, or an abstract name on Linux).
    ///
    /// # Errors
    ///
    /// As [`connect`](UnixStream::connect).
    ///
    /// # Blocking
    ///
    /// As `connect`.
    #[track_caller]
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_at(addr, Location::caller())
    }

    fn connect_at(addr: &SocketAddr, site: &'static Location<'static>) -> io::Result<UnixStream> {
        let mut pause = CONNECT_BACKOFF_MIN;
        let s = loop {
            match mio::net::UnixStream::connect_addr(addr) {
                Ok(s) => break UnixStream::from_mio(s)?,
                // The backlog is full: nothing to wait on but time.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::time::sleep(pause);
                    pause = (pause * 2).min(CONNECT_BACKOFF_MAX);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        // Linux completes a Unix connect at once, but `connect(2)` may also
        // report `EINPROGRESS` (mio accepts it): then the socket turns
        // writable when done, and SO_ERROR says whether it worked.
        s.io.write_io(site, |sock| {
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
        })?;
        Ok(s)
    }

    /// An unnamed pair of connected sockets.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixStream::pair` (for example `EMFILE`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    /// The local address (unnamed for a connecting socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// A second handle to the same connection, with its own registration and
    /// deadlines (the fd is duplicated close-on-exec, as std does).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let fd = self.as_fd().try_clone_to_owned()?;
        UnixStream::from_mio(mio::net::UnixStream::from(fd))
    }

    deadline_methods!();

    /// A std stream for the same socket (non-blocking mode is left on).
    pub fn into_std(self) -> std::os::unix::net::UnixStream {
        std::os::unix::net::UnixStream::from(self.io.into_inner())
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

impl TryFrom<std::os::unix::net::UnixStream> for UnixStream {
    type Error = io::Error;
    /// Adopts a std stream (switching it to non-blocking mode).
    fn try_from(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(s))
    }
}

impl From<UnixStream> for OwnedFd {
    fn from(s: UnixStream) -> OwnedFd {
        OwnedFd::from(s.io.into_inner())
    }
}

/// A Unix datagram socket (as `std::os::unix::net::UnixDatagram`);
/// receiving parks the goroutine until a datagram arrives.
///
/// Every method takes `&self`, so one goroutine may receive while another
/// sends on the same socket.
///
/// ```
/// let (a, b) = goro::net::UnixDatagram::pair().unwrap();
/// a.send(b"one").unwrap();
/// let mut buf = [0u8; 8];
/// let n = b.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"one");
/// ```
pub struct UnixDatagram {
    /// The registered non-blocking socket and its deadlines.
    io: IoSource<mio::net::UnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixDatagram {
    fn from_mio(s: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: IoSource::new(s)?,
        })
    }

    /// A socket bound to the file `path`.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::bind`; `AddrInUse` if the file
    /// exists.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to `addr` (a path name, or an abstract name on Linux).
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::bind_addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address (it can send, and receive replies only
    /// once connected).
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::unbound`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::unbound()?)
    }

    /// An unnamed pair of connected sockets.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::pair`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_mio(a)?, UnixDatagram::from_mio(b)?))
    }

    /// Sets the default peer to the socket file `path`: `send` goes there,
    /// and only its datagrams are received.
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::connect`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sets the default peer to `addr` (a path name or an abstract name).
    ///
    /// # Errors
    ///
    /// As `std::os::unix::net::UnixDatagram::connect_addr`.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.with_std(|s| s.connect_addr(addr))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the write deadline or timeout; the send error (for
    /// example `NotConnected`).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine while the peer's receive queue is full; blocks a
    /// plain thread.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_io(Location::caller(), |s| s.send(buf))
    }

    /// Sends `buf` to the socket file `path`.
    ///
    /// # Errors
    ///
    /// As [`send`](UnixDatagram::send); `InvalidInput` for a path too long
    /// for a socket address.
    ///
    /// # Blocking
    ///
    /// As `send`.
    #[track_caller]
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let addr = SocketAddr::from_pathname(path)?;
        self.send_to_addr_at(buf, &addr, Location::caller())
    }

    /// Sends `buf` to `addr` (a path name or an abstract name).
    ///
    /// # Errors
    ///
    /// As [`send`](UnixDatagram::send).
    ///
    /// # Blocking
    ///
    /// As `send`.
    #[track_caller]
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_to_addr_at(buf, addr, Location::caller())
    }

    fn send_to_addr_at(
        &self,
        buf: &[u8],
        addr: &SocketAddr,
        site: &'static Location<'static>,
    ) -> io::Result<usize> {
        self.io
            .write_io(site, |_| self.with_std(|s| s.send_to_addr(buf, addr)))
    }

    /// Receives one datagram from the connected peer; a datagram longer than
    /// `buf` is truncated.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the read deadline or timeout; the receive error.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine until a datagram arrives; blocks a plain thread.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_io(Location::caller(), |s| s.recv(buf))
    }

    /// Receives one datagram and the address it came from.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the read deadline or timeout; the receive error.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine until a datagram arrives; blocks a plain thread.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_io(Location::caller(), |s| s.recv_from(buf))
    }

    /// The local address (unnamed for an unbound socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` if there is none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shuts down the receiving half, the sending half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// A second handle to the same socket, with its own registration and
    /// deadlines (the fd is duplicated close-on-exec, as std does).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let fd = self.as_fd().try_clone_to_owned()?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::from(fd))
    }

    deadline_methods!();

    /// A std socket for the same fd (non-blocking mode is left on).
    pub fn into_std(self) -> std::os::unix::net::UnixDatagram {
        std::os::unix::net::UnixDatagram::from(self.io.into_inner())
    }

    /// Runs `f` on a std view of the socket, for the std calls that mio does
    /// not wrap (`connect_addr`, `send_to_addr`). The view never closes the
    /// fd.
    fn with_std<R>(&self, f: impl FnOnce(&std::os::unix::net::UnixDatagram) -> R) -> R {
        // SAFETY: `from_raw_fd` needs an open datagram socket fd, and nothing
        // else may close it while the view lives. The fd is `self`'s, open for
        // as long as `self` is borrowed, which outlives the view; the view is
        // `ManuallyDrop`, so it never closes the fd (not even when `f`
        // unwinds), and `f` only gets `&`, through which no std method
        // closes or replaces it.
        let view = ManuallyDrop::new(unsafe {
            std::os::unix::net::UnixDatagram::from_raw_fd(self.as_raw_fd())
        });
        f(&view)
    }
}

impl TryFrom<std::os::unix::net::UnixDatagram> for UnixDatagram {
    type Error = io::Error;
    /// Adopts a std socket (switching it to non-blocking mode).
    fn try_from(s: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        s.set_nonblocking(true)?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::from_std(s))
    }
}

impl From<UnixDatagram> for OwnedFd {
    fn from(s: UnixDatagram) -> OwnedFd {
        OwnedFd::from(s.io.into_inner())
    }
}

fd_impls!(UnixListener);

fd_impls!(UnixStream);

fd_impls!(UnixDatagram);
stream_io_impls!(UnixStream);
