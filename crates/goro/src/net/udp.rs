//! UDP: `UdpSocket`, mirroring `std::net::UdpSocket`.
//!
//! A datagram socket has no stream to half-close and no connection to wait
//! for: only the receiving calls (`recv`, `recv_from`, `peek`, `peek_from`)
//! usually park, and the sending ones park only while the kernel's send
//! buffer is full. Both directions carry their own Go-style deadline and
//! std-style timeout (see the [module docs](super#deadlines-and-timeouts)).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::Location;

use super::{resolve, IoSource};

/// A UDP socket (as `std::net::UdpSocket`); receiving parks the goroutine
/// until a datagram arrives.
///
/// Every method takes `&self`, so one goroutine may receive while another
/// sends on the same socket (share it with an `Arc`, or borrow it in a
/// [`scope`](crate::scope)).
///
/// ```
/// use goro::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// assert_eq!(from, a.local_addr().unwrap());
/// ```
pub struct UdpSocket {
    /// The registered non-blocking socket and its deadlines.
    io: IoSource<mio::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UdpSocket {
    fn from_mio(s: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: IoSource::new(s)?,
        })
    }

    /// Binds to the first address of `addr` that works.
    ///
    /// # Errors
    ///
    /// As `std::net::UdpSocket::bind`: the last bind error, or
    /// `InvalidInput` if `addr` resolves to nothing.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::UdpSocket::bind(a) {
                Ok(s) => return UdpSocket::from_mio(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Sets the default peer: `send`/`recv` talk to it, and datagrams from
    /// other addresses are dropped. Like std, tries each address of `addr`
    /// until one works.
    ///
    /// # Errors
    ///
    /// The last `connect` error, or `InvalidInput` if `addr` resolves to
    /// nothing.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let mut last = None;
        for a in resolve(addr)? {
            match self.io.get_ref().connect(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// `TimedOut` after the write deadline or timeout; the send error (for
    /// example `NotConnected`, or `ConnectionRefused` reported for an earlier
    /// datagram).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (only while the send buffer is full); blocks a plain
    /// thread.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_io(Location::caller(), |s| s.send(buf))
    }

    /// Sends `buf` to `addr` (its first resolved address, as std).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` resolves to nothing; otherwise as
    /// [`send`](UdpSocket::send).
    ///
    /// # Blocking
    ///
    /// Parks a goroutine (only while the send buffer is full); blocks a plain
    /// thread. Name resolution runs inline, as `ToSocketAddrs` does.
    #[track_caller]
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let site = Location::caller();
        let target = resolve(addr)?[0];
        self.io.write_io(site, |s| s.send_to(buf, target))
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

    /// Like [`recv`](UdpSocket::recv), but leaves the datagram queued.
    ///
    /// # Errors
    ///
    /// As `recv`.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine until a datagram arrives; blocks a plain thread.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_io(Location::caller(), |s| s.peek(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), but leaves the datagram
    /// queued.
    ///
    /// # Errors
    ///
    /// As `recv_from`.
    ///
    /// # Blocking
    ///
    /// Parks a goroutine until a datagram arrives; blocks a plain thread.
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_io(Location::caller(), |s| s.peek_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` if there is none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// A second handle to the same socket, with its own registration and
    /// deadlines (the fd is duplicated close-on-exec, as std does).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let fd = self.as_fd().try_clone_to_owned()?;
        UdpSocket::from_mio(mio::net::UdpSocket::from(fd))
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v4(on)
    }

    /// Whether `IP_MULTICAST_LOOP` is set.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get_ref().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_multicast_ttl_v4(ttl)
    }

    /// The `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get_ref().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v6(on)
    }

    /// Whether `IPV6_MULTICAST_LOOP` is set.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.io.get_ref().multicast_loop_v6()
    }

    /// Joins an IPv4 multicast group on `interface`.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(multiaddr, interface)
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Whether an IPv6 socket is restricted to IPv6 (`IPV6_V6ONLY`).
    pub fn only_v6(&self) -> io::Result<bool> {
        self.io.get_ref().only_v6()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    deadline_methods!();

    /// A std socket for the same fd (non-blocking mode is left on).
    pub fn into_std(self) -> std::net::UdpSocket {
        std::net::UdpSocket::from(self.io.into_inner())
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;
    /// Adopts a std socket (switching it to non-blocking mode).
    fn try_from(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        UdpSocket::from_mio(mio::net::UdpSocket::from_std(s))
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(s: UdpSocket) -> OwnedFd {
        OwnedFd::from(s.io.into_inner())
    }
}

fd_impls!(UdpSocket);
