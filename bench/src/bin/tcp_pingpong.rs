//! tcp_pingpong: one loopback TCP connection (TCP_NODELAY on both ends), an
//! echo server in a goroutine of the same process, 1,000,000 round trips of
//! an 8-byte message: the client writes 8 bytes, the server echoes them, the
//! client reads 8 bytes back. Measures the latency of one poller wake-up per
//! direction: read would block, park, readiness, wake, switch.
//! Counterpart of `bench/go/tcp_pingpong/main.go` (and of
//! `tokio_tcp_pingpong.rs`).
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::time::Instant;

use goro::net::{TcpListener, TcpStream};

const ROUNDS: u64 = 1_000_000;

#[goro::main]
fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("tcp_pingpong: bind");
    let addr = listener.local_addr().expect("tcp_pingpong: local_addr");

    let echo = goro::go(move || {
        let (mut conn, _) = listener.accept().expect("tcp_pingpong: accept");
        conn.set_nodelay(true)
            .expect("tcp_pingpong: server nodelay");
        let mut buf = [0u8; 8];
        let mut count = 0u64;
        loop {
            match conn.read_exact(&mut buf) {
                Ok(()) => {}
                // The client closed after its last round trip.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("tcp_pingpong: server read: {e}"),
            }
            conn.write_all(&buf).expect("tcp_pingpong: server write");
            count += 1;
        }
        count
    });

    let mut conn = TcpStream::connect(addr).expect("tcp_pingpong: connect");
    conn.set_nodelay(true)
        .expect("tcp_pingpong: client nodelay");

    let mut back = [0u8; 8];
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..ROUNDS {
        conn.write_all(&i.to_le_bytes())
            .expect("tcp_pingpong: client write");
        conn.read_exact(&mut back)
            .expect("tcp_pingpong: client read");
        let got = u64::from_le_bytes(back);
        assert_eq!(got, i, "tcp_pingpong: sent {i}, got back {got}");
        sum += got;
    }
    drop(conn);
    let count = echo
        .join()
        .expect("tcp_pingpong: server goroutine panicked");
    let elapsed = start.elapsed();

    assert_eq!(
        count, ROUNDS,
        "tcp_pingpong: server echoed the wrong number of messages"
    );
    assert_eq!(sum, ROUNDS * (ROUNDS - 1) / 2, "tcp_pingpong: wrong sum");
    println!("RESULT tcp_pingpong {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
