//! tcp_stream: one loopback TCP connection; the client writes 1 GiB in
//! 64 KiB chunks and then shuts down its write side, the server (a goroutine
//! of the same process) reads into a 64 KiB buffer and discards until end of
//! stream, then replies with the byte count as 8 bytes. Measures bulk
//! throughput through the poller: 1 GiB / time is the GB/s.
//! Counterpart of `bench/go/tcp_stream/main.go` (and of `tokio_tcp_stream.rs`).
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use goro::net::{TcpListener, TcpStream};

const TOTAL: u64 = 1 << 30;
const CHUNK: usize = 64 << 10;

#[goro::main]
fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("tcp_stream: bind");
    let addr = listener.local_addr().expect("tcp_stream: local_addr");

    let server = goro::go(move || {
        let (mut conn, _) = listener.accept().expect("tcp_stream: accept");
        conn.set_nodelay(true).expect("tcp_stream: server nodelay");
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        loop {
            let r = conn.read(&mut buf).expect("tcp_stream: server read");
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        conn.write_all(&n.to_le_bytes())
            .expect("tcp_stream: server write");
    });

    let mut conn = TcpStream::connect(addr).expect("tcp_stream: connect");
    conn.set_nodelay(true).expect("tcp_stream: client nodelay");
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();

    let mut reply = [0u8; 8];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < TOTAL {
        conn.write_all(&data).expect("tcp_stream: client write");
        sent += CHUNK as u64;
    }
    conn.shutdown(Shutdown::Write)
        .expect("tcp_stream: shutdown");
    conn.read_exact(&mut reply)
        .expect("tcp_stream: client read");
    let elapsed = start.elapsed();

    server
        .join()
        .expect("tcp_stream: server goroutine panicked");
    drop(conn);
    let got = u64::from_le_bytes(reply);
    assert_eq!(
        got, TOTAL,
        "tcp_stream: server counted the wrong number of bytes"
    );
    println!("RESULT tcp_stream {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
