//! `goro::net` TCP: many parked connections on few workers, Go-style
//! deadlines (also applied to an already blocked call), std-style timeouts,
//! refused connects, half-close, one reader and one writer on `&TcpStream`,
//! the same calls from plain threads, conversions, and no fd leak.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_child_passed, child_command, is_child, run_child, within, SLACK};
use goro::chan;
use goro::net::{TcpListener, TcpStream};
use goro::sync::{Semaphore, WaitGroup};
use goro::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// A loopback listener and its address.
fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A connected pair: (client, server side).
fn pair() -> (TcpStream, TcpStream) {
    let (l, a) = listener();
    let c = TcpStream::connect(a).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TcpListener>();
    check::<TcpStream>();
    check::<goro::net::Incoming<'_>>();
}

/// `n` clients on a 2-worker runtime: every connection is open and every
/// client parked in a read before anyone sends; then each sends a message
/// and checks its echo.
fn echo_many(n: usize) {
    within(120, move || {
        runtime(2).block_on(move || {
            let (l, addr) = listener();
            // Server: one goroutine per connection; each waits for `start`
            // (a channel closed by main), greets, then echoes until EOF.
            let (start_tx, start_rx) = chan::bounded::<()>(0);
            let accepted = WaitGroup::new();
            accepted.add(n);
            let acc = accepted.clone();
            // Connections not yet accepted: at most 64, well under the listen
            // backlog of 128, so no SYN is dropped (a dropped SYN costs the
            // client a 1 s retransmission).
            let unaccepted = Arc::new(Semaphore::new(64));
            let una = unaccepted.clone();
            let server = goro::go(move || {
                let mut handlers = Vec::with_capacity(n);
                for _ in 0..n {
                    let (mut s, _) = l.accept().unwrap();
                    una.release(1);
                    let start = start_rx.clone();
                    let acc = acc.clone();
                    handlers.push(goro::go(move || {
                        acc.done();
                        assert!(start.recv().is_err(), "start is only ever closed");
                        s.write_all(b"go").unwrap();
                        let mut buf = [0u8; 64];
                        loop {
                            match s.read(&mut buf).unwrap() {
                                0 => break,
                                k => s.write_all(&buf[..k]).unwrap(),
                            }
                        }
                    }));
                }
                for h in handlers {
                    h.join().unwrap();
                }
            });
            // Clients: connect, report, park in a read for the greeting,
            // then talk.
            let parked = WaitGroup::new();
            let ok = Arc::new(AtomicUsize::new(0));
            let mut clients = Vec::with_capacity(n);
            for i in 0..n {
                let (unaccepted, parked, ok) = (unaccepted.clone(), parked.clone(), ok.clone());
                parked.add(1);
                clients.push(goro::go(move || {
                    unaccepted.acquire(1);
                    let mut c = TcpStream::connect(addr).unwrap();
                    parked.done();
                    let mut hello = [0u8; 2];
                    c.read_exact(&mut hello).unwrap();
                    assert_eq!(&hello, b"go");
                    let msg = format!("client {i} says hi");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                    ok.fetch_add(1, Ordering::Relaxed);
                }));
            }
            parked.wait();
            accepted.wait();
            // Give the last clients a moment to reach their read.
            goro::time::sleep(Duration::from_millis(50));
            assert_eq!(
                ok.load(Ordering::Relaxed),
                0,
                "nobody talked before the start"
            );
            // Dropping the only sender closes `start`: every handler wakes.
            drop(start_tx);
            for c in clients {
                c.join().unwrap();
            }
            assert_eq!(ok.load(Ordering::Relaxed), n);
            server.join().unwrap();
        })
    });
}

#[test]
fn echo_3000_clients_on_two_workers() {
    echo_many(3000);
}

#[test]
#[ignore = "heavy: 9,000 concurrent connections (18,000 fds; needs an open-file limit above that)"]
fn echo_9000_clients_on_two_workers() {
    echo_many(9_000);
}

#[test]
fn read_deadline_times_out_then_socket_works_again() {
    within(30, || {
        runtime(2).block_on(|| {
            let (mut c, mut s) = pair();
            let limit = Duration::from_millis(100);
            let t0 = Instant::now();
            c.set_read_deadline(Some(t0 + limit)).unwrap();
            let mut buf = [0u8; 8];
            let e = c.read(&mut buf).unwrap_err();
            let took = t0.elapsed();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(took >= limit, "timed out early: {took:?}");
            assert!(took < limit + SLACK, "timed out late: {took:?}");
            // A passed deadline keeps failing at once, even with data queued.
            s.write_all(b"abc").unwrap();
            assert_eq!(
                c.read(&mut buf).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            // Cleared: the queued data is there.
            c.set_read_deadline(None).unwrap();
            assert_eq!(c.read(&mut buf).unwrap(), 3);
            assert_eq!(&buf[..3], b"abc");
            // And a new read waits for new data.
            let w = goro::go(move || {
                goro::time::sleep(Duration::from_millis(20));
                s.write_all(b"later").unwrap();
                s
            });
            c.read_exact(&mut buf[..5]).unwrap();
            assert_eq!(&buf[..5], b"later");
            drop(w.join().unwrap());
        })
    });
}

#[test]
fn deadline_set_from_another_goroutine_unblocks_a_blocked_read() {
    within(30, || {
        runtime(2).block_on(|| {
            let (c, _s) = pair();
            let c = Arc::new(c);
            let c2 = c.clone();
            let t0 = Instant::now();
            let reader = goro::go(move || {
                let mut buf = [0u8; 8];
                (&*c2).read(&mut buf)
            });
            goro::time::sleep(Duration::from_millis(100));
            assert!(!reader.is_finished(), "the read returned with no data");
            c.set_read_deadline(Some(Instant::now())).unwrap();
            let e = reader.join().unwrap().unwrap_err();
            let took = t0.elapsed();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(took >= Duration::from_millis(100));
            assert!(
                took < SLACK,
                "the deadline did not unblock the read promptly: {took:?}"
            );
            // set_deadline (both directions) clears it again.
            c.set_deadline(None).unwrap();
            (&*c).write_all(b"x").unwrap();
        })
    });
}

#[test]
fn later_deadline_extends_a_blocked_read() {
    within(30, || {
        runtime(2).block_on(|| {
            let (c, _s) = pair();
            let c = Arc::new(c);
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)))
                .unwrap();
            let c2 = c.clone();
            let t0 = Instant::now();
            let reader = goro::go(move || (&*c2).read(&mut [0u8; 8]));
            goro::time::sleep(Duration::from_millis(10));
            // Moved out before it fires: the blocked read follows the new one.
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(300)))
                .unwrap();
            let e = reader.join().unwrap().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(300),
                "the old deadline fired: {took:?}"
            );
        })
    });
}

#[test]
fn write_deadline_times_out_when_the_peer_does_not_read() {
    within(30, || {
        runtime(2).block_on(|| {
            let (mut c, s) = pair();
            let limit = Duration::from_millis(100);
            // The clock starts before the deadline is computed from it.
            let t0 = Instant::now();
            c.set_write_deadline(Some(t0 + limit)).unwrap();
            let chunk = vec![7u8; 64 * 1024];
            let mut sent = 0usize;
            let e = loop {
                match c.write(&chunk) {
                    Ok(k) => sent += k,
                    Err(e) => break e,
                }
            };
            let took = t0.elapsed();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(sent > 0);
            assert!(took >= limit);
            assert!(took < limit + SLACK);
            // The peer drains a little; with the deadline cleared writing resumes.
            c.set_write_deadline(None).unwrap();
            let drain = goro::go(move || {
                let mut s = s;
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0usize;
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => return total,
                        k => total += k,
                    }
                }
            });
            c.write_all(&chunk).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(drain.join().unwrap(), sent + chunk.len());
        })
    });
}

#[test]
fn read_timeout_is_per_call_and_zero_is_invalid() {
    within(30, || {
        runtime(2).block_on(|| {
            let (mut c, mut s) = pair();
            assert_eq!(
                c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
            let t = Duration::from_millis(80);
            c.set_read_timeout(Some(t)).unwrap();
            assert_eq!(c.read_timeout().unwrap(), Some(t));
            for _ in 0..2 {
                // Each call gets the full timeout again.
                let t0 = Instant::now();
                let e = c.read(&mut [0u8; 4]).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                assert!(t0.elapsed() >= t);
                assert!(t0.elapsed() < t + SLACK);
            }
            s.write_all(b"ok").unwrap();
            let mut buf = [0u8; 2];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ok");
            c.set_read_timeout(None).unwrap();
            assert_eq!(c.read_timeout().unwrap(), None);
            c.set_write_timeout(Some(t)).unwrap();
            assert_eq!(c.write_timeout().unwrap(), Some(t));
        })
    });
}

#[test]
fn accept_deadline_times_out() {
    within(30, || {
        runtime(1).block_on(|| {
            let (l, addr) = listener();
            let t0 = Instant::now();
            l.set_deadline(Some(t0 + Duration::from_millis(60)))
                .unwrap();
            let e = l.accept().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(t0.elapsed() >= Duration::from_millis(60));
            l.set_deadline(None).unwrap();
            let c = TcpStream::connect(addr).unwrap();
            let (s, peer) = l.accept().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        })
    });
}

#[test]
fn connect_to_a_closed_port_is_refused_quickly() {
    within(30, || {
        runtime(2).block_on(|| {
            let addr = {
                let (l, a) = listener();
                drop(l);
                a
            };
            let t0 = Instant::now();
            let e = TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
            assert!(t0.elapsed() < SLACK, "refusal took {:?}", t0.elapsed());
            let e = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        })
    });
}

#[test]
fn connect_timeout_on_loopback_and_zero_timeout() {
    within(30, || {
        runtime(2).block_on(|| {
            let (l, addr) = listener();
            let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
            let (s, _) = l.accept().unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
            let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        })
    });
}

#[test]
fn half_close_peer_reads_eof_and_can_still_write_back() {
    within(30, || {
        runtime(2).block_on(|| {
            let (mut c, mut s) = pair();
            let server = goro::go(move || {
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap(); // ends at the client's FIN
                s.write_all(&got).unwrap();
                s.write_all(b" (done)").unwrap();
            });
            c.write_all(b"request").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            assert!(
                c.write(b"more").is_err(),
                "writing after shutdown(Write) must fail"
            );
            let mut reply = String::new();
            c.read_to_string(&mut reply).unwrap();
            assert_eq!(reply, "request (done)");
            server.join().unwrap();
        })
    });
}

#[test]
fn one_goroutine_reads_while_another_writes_the_same_stream() {
    within(60, || {
        runtime(2).block_on(|| {
            let (c, mut s) = pair();
            // Echo peer.
            let echo = goro::go(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        k => s.write_all(&buf[..k]).unwrap(),
                    }
                }
            });
            const TOTAL: usize = 4 << 20;
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            let c = &c;
            let received = goro::scope(|sc| {
                // Writer and reader share the stream through `&TcpStream`;
                // 4 MiB is more than the socket buffers, so a writer that
                // blocked the reader would deadlock.
                let w = sc.go(|| {
                    let mut w = c;
                    for chunk in data.chunks(7919) {
                        w.write_all(chunk).unwrap();
                    }
                    c.shutdown(Shutdown::Write).unwrap();
                });
                let r = sc.go(|| {
                    let mut r = c;
                    let mut got = Vec::with_capacity(TOTAL);
                    r.read_to_end(&mut got).unwrap();
                    got
                });
                w.join().unwrap();
                r.join().unwrap()
            });
            assert_eq!(received.len(), TOTAL);
            assert!(received == data, "echoed bytes differ");
            echo.join().unwrap();
        })
    });
}

#[test]
fn plain_threads_block_like_std() {
    within(30, || {
        let (l, addr) = listener();
        let server = thread::spawn(move || {
            assert!(goro::current_id().is_none());
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            // Deadlines work on a plain thread too.
            let t0 = Instant::now();
            s.set_read_deadline(Some(t0 + Duration::from_millis(50)))
                .unwrap();
            assert_eq!(
                s.read(&mut buf).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            assert!(t0.elapsed() >= Duration::from_millis(50));
            s.set_read_deadline(None).unwrap();
            assert_eq!(s.read(&mut buf).unwrap(), 0, "EOF after the client closes");
        });
        let client = thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"plain").unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"plain");
            thread::sleep(Duration::from_millis(150));
        });
        client.join().unwrap();
        server.join().unwrap();
    });
}

#[test]
fn goroutine_and_plain_thread_talk() {
    within(30, || {
        let (l, addr) = listener();
        let rt = runtime(1);
        let server = rt.spawn(move || {
            for c in l.incoming().take(2) {
                let mut c = c.unwrap();
                let mut line = [0u8; 4];
                c.read_exact(&mut line).unwrap();
                c.write_all(&line).unwrap();
            }
        });
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"ping");
        }
        server.join().unwrap();
    });
}

#[test]
fn try_clone_and_std_conversions() {
    within(30, || {
        runtime(2).block_on(|| {
            // std listener in, goro streams out.
            let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = std_l.local_addr().unwrap();
            let l = TcpListener::try_from(std_l).unwrap();
            let std_c = std::net::TcpStream::connect(addr).unwrap();
            let mut c = TcpStream::try_from(std_c).unwrap();
            let (s, _) = l.accept().unwrap();
            let mut s2 = s.try_clone().unwrap();
            assert_eq!(s2.peer_addr().unwrap(), c.local_addr().unwrap());
            // A deadline on the clone does not touch the original.
            s2.set_read_deadline(Some(Instant::now())).unwrap();
            assert_eq!(
                s2.read(&mut [0u8; 1]).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            c.write_all(b"z").unwrap();
            let mut one = [0u8; 1];
            (&s).read_exact(&mut one).unwrap();
            assert_eq!(&one, b"z");
            s.set_nodelay(true).unwrap();
            assert!(s.nodelay().unwrap());
            // Back to std: still the same connection.
            let std_s = s.into_std();
            std_s.set_nonblocking(false).unwrap();
            (&std_s).write_all(b"y").unwrap();
            c.read_exact(&mut one).unwrap();
            assert_eq!(&one, b"y");
            let fd: std::os::fd::OwnedFd = l.into();
            drop(fd);
        })
    });
}

/// Entries of /proc/self/fd.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Child: 10,000 connect/accept/close cycles leave no fd behind.
#[test]
#[ignore = "helper: runs only as the child of no_fd_leak_after_10k_connect_close_cycles"]
fn child_fd_leak() {
    if !is_child("child_fd_leak") {
        return;
    }
    const CYCLES: usize = 10_000;
    within(120, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let (l, addr) = listener();
            // Warm up: poller, blocking pool and workers exist before we count.
            drop(TcpStream::connect(addr).unwrap());
            drop(l.accept().unwrap());
            let before = open_fds();
            let server = goro::go(move || {
                for _ in 0..CYCLES {
                    let (mut s, _) = l.accept().unwrap();
                    // Read to EOF, so the client closes first.
                    let mut sink = Vec::new();
                    s.read_to_end(&mut sink).unwrap();
                }
            });
            for i in 0..CYCLES {
                let mut c = TcpStream::connect(addr).unwrap();
                if i % 2 == 0 {
                    c.write_all(b"bye").unwrap();
                }
            }
            server.join().unwrap();
            let after = open_fds();
            println!("fds before {before}, after {after}");
            assert!(
                after <= before + 4,
                "fd leak: {before} open before, {after} after {CYCLES} cycles"
            );
        });
    });
}

#[test]
fn no_fd_leak_after_10k_connect_close_cycles() {
    let name = "child_fd_leak";
    let out = run_child(&mut child_command(name));
    assert_child_passed(name, &out);
}

/// The listener's accept backlog is the system maximum, not the socket
/// library's 128: a burst of connections nobody accepts yet all complete
/// their handshake (the kernel queues them), none is dropped and retried.
#[goro::test]
fn listener_backlog_takes_a_burst_of_connections() {
    let max: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let burst = 600.min(max);
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t0 = std::time::Instant::now();
    let mut conns = Vec::new();
    for _ in 0..burst {
        conns.push(goro::net::TcpStream::connect(addr).unwrap());
    }
    // With a 128 backlog the connects beyond it wait for SYN retries (1 s,
    // 3 s, ...) and the later ones time out.
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{burst} connects took {:?}",
        t0.elapsed()
    );
    for _ in 0..burst {
        l.accept().unwrap();
    }
}
