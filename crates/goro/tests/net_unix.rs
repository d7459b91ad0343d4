//! `goro::net` Unix sockets: a stream echo server, a full backlog, stream
//! deadlines and half-close, datagram pairs and bound datagram sockets,
//! plain threads and conversions.

mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{within, SLACK};
use goro::net::{UnixDatagram, UnixListener, UnixStream};
use goro::Runtime;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// A socket path unique to this process and `name`, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let p = std::env::temp_dir().join(format!("goro-test-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempPath(p)
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn unix_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<UnixListener>();
    check::<UnixStream>();
    check::<UnixDatagram>();
    check::<goro::net::UnixIncoming<'_>>();
}

#[test]
fn stream_echo_server() {
    let path = TempPath::new("echo");
    let p = path.0.clone();
    within(30, move || {
        runtime(2).block_on(move || {
            let l = UnixListener::bind(&p).unwrap();
            assert_eq!(l.local_addr().unwrap().as_pathname(), Some(p.as_path()));
            const CLIENTS: usize = 50;
            let server = goro::go(move || {
                let mut handlers = Vec::new();
                for s in l.incoming().take(CLIENTS) {
                    let mut s = s.unwrap();
                    handlers.push(goro::go(move || {
                        let mut buf = [0u8; 256];
                        loop {
                            match s.read(&mut buf).unwrap() {
                                0 => break,
                                n => s.write_all(&buf[..n]).unwrap(),
                            }
                        }
                    }));
                }
                for h in handlers {
                    h.join().unwrap();
                }
            });
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let p = p.clone();
                    goro::go(move || {
                        let mut c = UnixStream::connect(&p).unwrap();
                        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
                        for j in 0..10 {
                            let msg = format!("{i}/{j}");
                            c.write_all(msg.as_bytes()).unwrap();
                            let mut back = vec![0u8; msg.len()];
                            c.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg.as_bytes());
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            server.join().unwrap();
        })
    });
    // Like std, the listener leaves its file behind; TempPath removes it.
    assert!(path.0.exists());
}

#[test]
fn connect_waits_out_a_full_backlog() {
    let path = TempPath::new("backlog");
    let p = path.0.clone();
    within(30, move || {
        runtime(2).block_on(move || {
            let l = UnixListener::bind(&p).unwrap();
            // Shrink the backlog to 1 (a second listen(2) on a listening Unix
            // socket only updates it), so most connects meet a full queue.
            // SAFETY: the fd is a valid listening socket owned by `l`.
            assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 1) }, 0);
            const CLIENTS: usize = 20;
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let p = p.clone();
                    goro::go(move || {
                        let mut c = UnixStream::connect(&p).unwrap();
                        c.write_all(&[i as u8]).unwrap();
                    })
                })
                .collect();
            // Nobody accepts for a while: the queue fills, the rest retry.
            goro::time::sleep(Duration::from_millis(100));
            let mut seen = [false; CLIENTS];
            for _ in 0..CLIENTS {
                let (mut s, _) = l.accept().unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                seen[b[0] as usize] = true;
            }
            for c in clients {
                c.join().unwrap();
            }
            assert!(seen.iter().all(|&s| s));
        })
    });
}

#[test]
fn connect_errors() {
    within(30, || {
        let missing = TempPath::new("missing");
        assert_eq!(
            UnixStream::connect(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A socket file whose listener is gone.
        let stale = TempPath::new("stale");
        drop(UnixListener::bind(&stale).unwrap());
        let e = goro::go(move || UnixStream::connect(&stale).map(drop))
            .join()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        // Binding twice to one path fails, as std.
        let twice = TempPath::new("twice");
        let _l = UnixListener::bind(&twice).unwrap();
        assert_eq!(
            UnixListener::bind(&twice).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    });
}

#[test]
fn stream_read_deadline_then_works_and_half_close() {
    within(30, || {
        runtime(2).block_on(|| {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let limit = Duration::from_millis(100);
            let t0 = Instant::now();
            a.set_read_deadline(Some(t0 + limit)).unwrap();
            assert_eq!(
                a.read(&mut [0u8; 4]).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            assert!(t0.elapsed() >= limit);
            assert!(t0.elapsed() < limit + SLACK);
            a.set_read_deadline(None).unwrap();
            // Half-close: b stops writing, a reads EOF, then a answers.
            let peer = goro::go(move || {
                b.write_all(b"question").unwrap();
                b.shutdown(Shutdown::Write).unwrap();
                let mut answer = String::new();
                b.read_to_string(&mut answer).unwrap();
                answer
            });
            let mut q = String::new();
            a.read_to_string(&mut q).unwrap();
            assert_eq!(q, "question");
            a.write_all(b"answer").unwrap();
            drop(a);
            assert_eq!(peer.join().unwrap(), "answer");
        })
    });
}

#[test]
fn stream_deadline_from_another_goroutine_and_shared_halves() {
    within(30, || {
        runtime(2).block_on(|| {
            let (a, b) = UnixStream::pair().unwrap();
            let a = Arc::new(a);
            let a2 = a.clone();
            let reader = goro::go(move || (&*a2).read(&mut [0u8; 4]));
            goro::time::sleep(Duration::from_millis(50));
            assert!(!reader.is_finished());
            a.set_deadline(Some(Instant::now())).unwrap();
            assert_eq!(
                reader.join().unwrap().unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            a.set_deadline(None).unwrap();
            // One goroutine writes through &UnixStream while another reads.
            let a2 = a.clone();
            let writer = goro::go(move || {
                let mut w = &*a2;
                for i in 0..1000u32 {
                    w.write_all(&i.to_le_bytes()).unwrap();
                }
                a2.shutdown(Shutdown::Write).unwrap();
            });
            let echo = goro::go(move || {
                let mut b = b;
                let mut buf = [0u8; 4096];
                loop {
                    match b.read(&mut buf).unwrap() {
                        0 => break,
                        n => b.write_all(&buf[..n]).unwrap(),
                    }
                }
            });
            let mut got = Vec::new();
            (&*a).read_to_end(&mut got).unwrap();
            writer.join().unwrap();
            echo.join().unwrap();
            let want: Vec<u8> = (0..1000u32).flat_map(|i| i.to_le_bytes()).collect();
            assert!(got == want);
        })
    });
}

#[test]
fn datagram_pair_round_trip() {
    within(30, || {
        runtime(2).block_on(|| {
            let (a, b) = UnixDatagram::pair().unwrap();
            let pong = goro::go(move || {
                let mut buf = [0u8; 64];
                for _ in 0..100 {
                    let n = b.recv(&mut buf).unwrap();
                    b.send(&buf[..n]).unwrap();
                }
            });
            let mut buf = [0u8; 64];
            for i in 0..100 {
                let msg = format!("datagram {i}");
                a.send(msg.as_bytes()).unwrap();
                let n = a.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], msg.as_bytes());
            }
            pong.join().unwrap();
            // Datagram boundaries are kept.
            let (x, y) = UnixDatagram::pair().unwrap();
            x.send(b"one").unwrap();
            x.send(b"two").unwrap();
            assert_eq!(y.recv(&mut buf).unwrap(), 3);
            assert_eq!(y.recv(&mut buf).unwrap(), 3);
            assert_eq!(&buf[..3], b"two");
        })
    });
}

#[test]
fn bound_datagrams_send_to_recv_from_and_deadline() {
    let pa = TempPath::new("dgram-a");
    let pb = TempPath::new("dgram-b");
    let (pa2, pb2) = (pa.0.clone(), pb.0.clone());
    within(30, move || {
        runtime(2).block_on(move || {
            let a = UnixDatagram::bind(&pa2).unwrap();
            let b = UnixDatagram::bind(&pb2).unwrap();
            // recv_from with a deadline: TimedOut, then works once cleared.
            let t0 = Instant::now();
            b.set_read_deadline(Some(t0 + Duration::from_millis(60)))
                .unwrap();
            assert_eq!(
                b.recv_from(&mut [0u8; 8]).unwrap_err().kind(),
                io::ErrorKind::TimedOut
            );
            assert!(t0.elapsed() >= Duration::from_millis(60));
            b.set_read_deadline(None).unwrap();
            a.send_to(b"to b", &pb2).unwrap();
            let mut buf = [0u8; 8];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"to b");
            assert_eq!(from.as_pathname(), Some(pa2.as_path()));
            b.send_to_addr(b"to a", &from).unwrap();
            assert_eq!(a.recv(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"to a");
            // connect_addr sets the default peer.
            let c = UnixDatagram::unbound().unwrap();
            c.connect_addr(&b.local_addr().unwrap()).unwrap();
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(pb2.as_path()));
            c.send(b"conn").unwrap();
            assert_eq!(b.recv(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"conn");
        })
    });
}

#[test]
fn plain_threads_and_conversions() {
    let path = TempPath::new("plain");
    let p = path.0.clone();
    within(30, move || {
        let std_l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let l = UnixListener::try_from(std_l).unwrap();
        let l2 = l.try_clone().unwrap();
        l.set_deadline(Some(Instant::now())).unwrap();
        // The clone has its own (unset) deadline.
        assert_eq!(l.accept().unwrap_err().kind(), io::ErrorKind::TimedOut);
        let server = thread::spawn(move || {
            let (s, _) = l2.accept().unwrap();
            let mut s = s.try_clone().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let std_c = std::os::unix::net::UnixStream::connect(&p).unwrap();
        let mut c = UnixStream::try_from(std_c).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
        let mut std_c = c.into_std();
        std_c.set_nonblocking(false).unwrap();
        assert_eq!(std_c.read(&mut buf).unwrap(), 0);
        let (x, y) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let x = UnixDatagram::try_from(x).unwrap();
        y.send(b"d").unwrap();
        assert_eq!(x.try_clone().unwrap().recv(&mut buf).unwrap(), 1);
        let _: std::os::unix::net::UnixDatagram = x.into_std();
        let _: std::os::fd::OwnedFd = l.into();
    });
}
