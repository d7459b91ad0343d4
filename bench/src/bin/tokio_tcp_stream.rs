//! tcp_stream on tokio: one loopback TCP connection; the client writes 1 GiB
//! in 64 KiB chunks and then shuts down its write side, the server task reads
//! into a 64 KiB buffer and discards until end of stream, then replies with
//! the byte count as 8 bytes. Multi-thread runtime with its default worker
//! count; the client runs as a spawned task too (on a worker, as goro's and
//! Go's main goroutine do). Counterpart of `tcp_stream.rs` and
//! `bench/go/tcp_stream/main.go`.
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOTAL: u64 = 1 << 30;
const CHUNK: usize = 64 << 10;

async fn run() -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("tcp_stream: bind");
    let addr = listener.local_addr().expect("tcp_stream: local_addr");

    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("tcp_stream: accept");
        conn.set_nodelay(true).expect("tcp_stream: server nodelay");
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        loop {
            let r = conn.read(&mut buf).await.expect("tcp_stream: server read");
            if r == 0 {
                break;
            }
            n += r as u64;
        }
        conn.write_all(&n.to_le_bytes())
            .await
            .expect("tcp_stream: server write");
    });

    let mut conn = TcpStream::connect(addr).await.expect("tcp_stream: connect");
    conn.set_nodelay(true).expect("tcp_stream: client nodelay");
    let data: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();

    let mut reply = [0u8; 8];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < TOTAL {
        conn.write_all(&data)
            .await
            .expect("tcp_stream: client write");
        sent += CHUNK as u64;
    }
    // For a TcpStream, AsyncWriteExt::shutdown is shutdown(Write).
    conn.shutdown().await.expect("tcp_stream: shutdown");
    conn.read_exact(&mut reply)
        .await
        .expect("tcp_stream: client read");
    let elapsed = start.elapsed();

    server.await.expect("tcp_stream: server task panicked");
    drop(conn);
    let got = u64::from_le_bytes(reply);
    assert_eq!(
        got, TOTAL,
        "tcp_stream: server counted the wrong number of bytes"
    );
    elapsed
}

#[tokio::main]
async fn main() {
    let elapsed = tokio::spawn(run())
        .await
        .expect("tcp_stream: client task panicked");
    println!("RESULT tcp_stream {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
