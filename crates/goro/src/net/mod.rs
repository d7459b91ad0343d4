//! Blocking-style sockets whose waits park the goroutine on the network
//! poller instead of blocking its worker: `TcpListener`, `TcpStream`,
//! `UdpSocket`, `UnixListener`, `UnixStream`, `UnixDatagram`.
//!
//! Names and signatures mirror `std::net` / `std::os::unix::net`, so code
//! written for std ports by changing the `use` line; `Read`/`Write` are std's
//! traits, so std-io libraries (buffered readers, codecs, TLS wrappers) work
//! on them unchanged. On a plain OS thread the same calls block the thread.
//!
//! ```
//! use std::io::{Read, Write};
//! use goro::net::{TcpListener, TcpStream};
//!
//! let l = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = l.local_addr().unwrap();
//! let server = goro::go(move || {
//!     let (mut s, _) = l.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     s.write_all(&buf).unwrap(); // echo
//! });
//! let mut c = TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! server.join().unwrap();
//! ```
//!
//! # Deadlines and timeouts
//!
//! Go-style deadlines (`set_deadline`, `set_read_deadline`,
//! `set_write_deadline`: an absolute `Option<Instant>` that applies to every
//! later operation, and to one already blocked — a deadline in the past
//! unblocks it) and std-style timeouts (`set_read_timeout`,
//! `set_write_timeout`: a limit per call) combine: an operation fails with
//! `io::ErrorKind::TimedOut` at whichever comes first. The socket stays
//! usable; set a new deadline and carry on.

#[macro_use]
mod impls;
mod io_source;
mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

pub(crate) use io_source::IoSource;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `host` (a `"name:port"` string) to socket addresses on the
/// blocking pool, so a slow DNS answer parks the goroutine rather than its
/// worker.
///
/// ```
/// let addrs = goro::net::lookup_host("localhost:80").unwrap();
/// assert!(addrs.iter().all(|a| a.port() == 80));
/// ```
///
/// # Errors
///
/// What `ToSocketAddrs` reports (unknown host, bad port, ...).
pub fn lookup_host(host: impl Into<String>) -> io::Result<Vec<SocketAddr>> {
    let host = host.into();
    crate::blocking(move || host.to_socket_addrs().map(|a| a.collect()))
}

/// Resolves an address argument the way std's constructors do.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}

/// Raises a listening socket's accept backlog to the system maximum
/// (`net.core.somaxconn`, 4096 on current kernels), as Go does; the socket
/// libraries listen with 128 or 1024, and a burst of connections beyond the
/// backlog is dropped and retried by clients after one second, then three.
/// Calling `listen` again on a listening socket only changes its backlog; a
/// backlog above the maximum is capped by the kernel.
pub(crate) fn widen_backlog(fd: std::os::fd::RawFd) {
    // SAFETY: `listen` on a descriptor we own; failure leaves the backlog
    // as it was, which is harmless.
    unsafe { libc::listen(fd, libc::c_int::MAX) };
}
