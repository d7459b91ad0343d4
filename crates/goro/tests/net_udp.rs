//! `goro::net::UdpSocket`: round trips between goroutines, connected
//! sockets, peeking, receive deadlines (also applied to a blocked call),
//! timeouts, plain threads and conversions.

mod common;

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{within, SLACK};
use goro::net::UdpSocket;
use goro::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn udp_socket_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<UdpSocket>();
}

#[test]
fn round_trip_between_goroutines() {
    within(30, || {
        runtime(2).block_on(|| {
            let server = bind();
            let server_addr = server.local_addr().unwrap();
            // Echo server: replies to whoever sent, upper-cased, until "quit".
            let echo = goro::go(move || {
                let mut buf = [0u8; 1500];
                let mut served = 0;
                loop {
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    if &buf[..n] == b"quit" {
                        return served;
                    }
                    buf[..n].make_ascii_uppercase();
                    server.send_to(&buf[..n], from).unwrap();
                    served += 1;
                }
            });
            let clients: Vec<_> = (0..8)
                .map(|i| {
                    goro::go(move || {
                        let c = bind();
                        let mut buf = [0u8; 64];
                        for j in 0..20 {
                            let msg = format!("client {i} msg {j}");
                            c.send_to(msg.as_bytes(), server_addr).unwrap();
                            let (n, from) = c.recv_from(&mut buf).unwrap();
                            assert_eq!(from, server_addr);
                            assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            bind().send_to(b"quit", server_addr).unwrap();
            assert_eq!(echo.join().unwrap(), 8 * 20);
        })
    });
}

#[test]
fn connected_send_recv_and_peek() {
    within(30, || {
        runtime(2).block_on(|| {
            let a = bind();
            let b = bind();
            a.connect(b.local_addr().unwrap()).unwrap();
            b.connect(a.local_addr().unwrap()).unwrap();
            assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
            // A receive parks until the datagram arrives.
            let b = Arc::new(b);
            let b2 = b.clone();
            let t0 = Instant::now();
            let rx = goro::go(move || {
                let mut buf = [0u8; 16];
                let n = b2.peek(&mut buf).unwrap();
                let peeked = buf[..n].to_vec();
                let (m, _) = b2.peek_from(&mut buf).unwrap();
                assert_eq!(m, n);
                let k = b2.recv(&mut buf).unwrap();
                (peeked, buf[..k].to_vec())
            });
            goro::time::sleep(Duration::from_millis(50));
            a.send(b"hello").unwrap();
            let (peeked, got) = rx.join().unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(50));
            assert_eq!(peeked, b"hello");
            assert_eq!(got, b"hello");
            // A datagram longer than the buffer is truncated.
            a.send(b"0123456789").unwrap();
            let mut small = [0u8; 4];
            assert_eq!(b.recv(&mut small).unwrap(), 4);
            assert_eq!(&small, b"0123");
        })
    });
}

#[test]
fn recv_from_deadline_times_out_then_socket_works_again() {
    within(30, || {
        runtime(2).block_on(|| {
            let s = bind();
            let limit = Duration::from_millis(100);
            let t0 = Instant::now();
            s.set_read_deadline(Some(t0 + limit)).unwrap();
            let mut buf = [0u8; 16];
            let e = s.recv_from(&mut buf).unwrap_err();
            let took = t0.elapsed();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(took >= limit, "timed out early: {took:?}");
            assert!(took < limit + SLACK, "timed out late: {took:?}");
            // The deadline does not limit sending.
            let peer = bind();
            peer.send_to(b"ping", s.local_addr().unwrap()).unwrap();
            assert_eq!(
                s.recv_from(&mut buf).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            s.set_deadline(None).unwrap();
            let (n, from) = s.recv_from(&mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from),
                (&b"ping"[..], peer.local_addr().unwrap())
            );
        })
    });
}

#[test]
fn deadline_from_another_goroutine_unblocks_recv() {
    within(30, || {
        runtime(2).block_on(|| {
            let s = Arc::new(bind());
            let s2 = s.clone();
            let t0 = Instant::now();
            let r = goro::go(move || s2.recv(&mut [0u8; 8]));
            goro::time::sleep(Duration::from_millis(80));
            assert!(!r.is_finished());
            s.set_read_deadline(Some(Instant::now() - Duration::from_millis(1)))
                .unwrap();
            assert_eq!(
                r.join().unwrap().unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            assert!(t0.elapsed() >= Duration::from_millis(80));
            assert!(t0.elapsed() < SLACK);
        })
    });
}

#[test]
fn read_timeout_per_call() {
    within(30, || {
        runtime(1).block_on(|| {
            let s = bind();
            assert_eq!(
                s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            let t = Duration::from_millis(60);
            s.set_read_timeout(Some(t)).unwrap();
            assert_eq!(s.read_timeout().unwrap(), Some(t));
            let t0 = Instant::now();
            assert_eq!(
                s.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            assert!(t0.elapsed() >= t);
            s.set_write_timeout(Some(t)).unwrap();
            assert_eq!(s.write_timeout().unwrap(), Some(t));
        })
    });
}

#[test]
fn plain_threads_and_goroutines_mix() {
    within(30, || {
        let s = bind();
        let addr = s.local_addr().unwrap();
        // Plain thread: blocks in recv_from like std.
        let t = thread::spawn(move || {
            let mut buf = [0u8; 8];
            let (n, from) = s.recv_from(&mut buf).unwrap();
            s.send_to(&buf[..n], from).unwrap();
        });
        let got = goro::go(move || {
            let c = bind();
            c.connect(addr).unwrap();
            c.send(b"thread").unwrap();
            let mut buf = [0u8; 8];
            let n = c.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        })
        .join()
        .unwrap();
        assert_eq!(got, b"thread");
        t.join().unwrap();
    });
}

#[test]
fn options_clone_and_std_conversions() {
    within(30, || {
        runtime(1).block_on(|| {
            let std_s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = std_s.local_addr().unwrap();
            let s = UdpSocket::try_from(std_s).unwrap();
            s.set_broadcast(true).unwrap();
            assert!(s.broadcast().unwrap());
            s.set_ttl(42).unwrap();
            assert_eq!(s.ttl().unwrap(), 42);
            assert!(s.take_error().unwrap().is_none());
            let clone = s.try_clone().unwrap();
            assert_eq!(clone.local_addr().unwrap(), addr);
            // A deadline on the clone leaves the original alone.
            clone.set_read_deadline(Some(Instant::now())).unwrap();
            let peer = bind();
            peer.send_to(b"x", addr).unwrap();
            assert_eq!(
                clone.recv(&mut [0u8; 1]).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            let mut one = [0u8; 1];
            assert_eq!(
                s.recv_from(&mut one).unwrap(),
                (1, peer.local_addr().unwrap())
            );
            let back = s.into_std();
            assert_eq!(back.local_addr().unwrap(), addr);
            let fd: std::os::fd::OwnedFd = clone.into();
            drop(fd);
        })
    });
}

#[test]
fn send_to_an_unresolvable_address_is_invalid_input() {
    let s = bind();
    let none: &[std::net::SocketAddr] = &[];
    assert_eq!(
        s.send_to(b"x", none).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}
