//! tcp_echo_10k: 10,000 concurrent loopback TCP connections to one echo
//! server in the same process (TCP_NODELAY on both ends). The main goroutine
//! dials them one after another, never more than 128 ahead of the server's
//! accepts (so the listen backlog never overflows and no SYN is dropped), and
//! starts one client goroutine per connection; the server runs one goroutine
//! per accepted connection. When every connection is dialled and accepted, a
//! closed channel releases all clients at once; each does 10 round trips of a
//! 64-byte message, checks every echo and closes. Timed from the first dial
//! until every server goroutine has seen its client hang up; peak RSS over
//! 10,000 connections gives the memory per connection.
//! Counterpart of `bench/go/tcp_echo_10k/main.go` (and of
//! `tokio_tcp_echo_10k.rs`).
#![allow(missing_docs)]
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use goro::chan;
use goro::net::{TcpListener, TcpStream};
use goro::sync::WaitGroup;

const CONNS: usize = 10_000;
const ROUNDS: usize = 10;
const MSG: usize = 64;
/// Dialled connections the server may not have accepted yet.
const MAX_UNACCEPTED: usize = 128;
/// Two sockets per connection live in this process, plus a few others.
const FDS_NEEDED: u64 = 2 * CONNS as u64 + 16;

/// Bytes the server echoed, over all connections.
static ECHOED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Clients that checked all their echoes.
static VERIFIED: AtomicU64 = AtomicU64::new(0);

/// The runtime has already raised the soft open-file limit to the hard one
/// (as Go does); check that it is enough, from /proc (no unsafe needed).
fn check_nofile() {
    let limits =
        std::fs::read_to_string("/proc/self/limits").expect("tcp_echo_10k: /proc/self/limits");
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("tcp_echo_10k: no 'Max open files' in /proc/self/limits");
    if soft != "unlimited" {
        let soft: u64 = soft.parse().expect("tcp_echo_10k: odd open-file limit");
        assert!(
            soft >= FDS_NEEDED,
            "tcp_echo_10k: the open-file limit is {soft}, this needs {FDS_NEEDED} \
             (two sockets per connection); raise the hard limit (ulimit -Hn)"
        );
    }
}

/// Echoes everything `conn` sends until it closes.
fn serve(mut conn: TcpStream) {
    conn.set_nodelay(true)
        .expect("tcp_echo_10k: server nodelay");
    let mut buf = [0u8; MSG];
    let mut n = 0u64;
    loop {
        let r = conn.read(&mut buf).expect("tcp_echo_10k: server read");
        if r == 0 {
            break;
        }
        conn.write_all(&buf[..r])
            .expect("tcp_echo_10k: server write");
        n += r as u64;
    }
    drop(conn);
    ECHOED_BYTES.fetch_add(n, Ordering::Relaxed);
}

/// Client `id`'s message for round `r`.
fn fill(msg: &mut [u8; MSG], id: usize, r: usize) {
    for (j, b) in msg.iter_mut().enumerate() {
        *b = (id * 7 + r * 13 + j) as u8;
    }
}

/// Waits for the start, then does the round trips and checks each echo.
fn client(id: usize, mut conn: TcpStream, start: &chan::Receiver<()>) {
    let mut msg = [0u8; MSG];
    let mut back = [0u8; MSG];
    let _ = start.recv(); // Err once closed: that is the start signal
    for r in 0..ROUNDS {
        fill(&mut msg, id, r);
        conn.write_all(&msg)
            .unwrap_or_else(|e| panic!("tcp_echo_10k: client {id} write: {e}"));
        conn.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("tcp_echo_10k: client {id} read: {e}"));
        assert!(
            back == msg,
            "tcp_echo_10k: client {id} round {r}: echo differs"
        );
    }
    drop(conn);
    VERIFIED.fetch_add(1, Ordering::Relaxed);
}

#[goro::main]
fn main() {
    check_nofile();
    let listener = TcpListener::bind("127.0.0.1:0").expect("tcp_echo_10k: bind");
    let addr = listener.local_addr().expect("tcp_echo_10k: local_addr");

    // One token per dialled connection the server has not accepted yet.
    let (unaccepted_tx, unaccepted_rx) = chan::bounded::<()>(MAX_UNACCEPTED);
    let serving = WaitGroup::new();
    let clients = WaitGroup::new();
    // Joined where Go waits on its `accepted` WaitGroup.
    let acceptor = {
        let serving = serving.clone();
        goro::go(move || {
            for i in 0..CONNS {
                let (conn, _) = listener
                    .accept()
                    .unwrap_or_else(|e| panic!("tcp_echo_10k: accept {i}: {e}"));
                unaccepted_rx.recv().expect("tcp_echo_10k: dialer vanished");
                serving.go(move || serve(conn));
            }
        })
    };

    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let t0 = Instant::now();
    for id in 0..CONNS {
        unaccepted_tx
            .send(())
            .expect("tcp_echo_10k: acceptor vanished");
        let conn =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("tcp_echo_10k: connect {id}: {e}"));
        conn.set_nodelay(true)
            .expect("tcp_echo_10k: client nodelay");
        let start = start_rx.clone();
        clients.go(move || client(id, conn, &start));
    }
    acceptor
        .join()
        .expect("tcp_echo_10k: acceptor goroutine panicked");
    // Every connection is dialled and accepted: release all clients together.
    start_tx.close();
    let connected = t0.elapsed();
    clients.wait();
    serving.wait();
    let elapsed = t0.elapsed();

    assert_eq!(
        VERIFIED.load(Ordering::Relaxed),
        CONNS as u64,
        "tcp_echo_10k: wrong number of clients verified their echoes"
    );
    assert_eq!(
        ECHOED_BYTES.load(Ordering::Relaxed),
        (CONNS * ROUNDS * MSG) as u64,
        "tcp_echo_10k: server echoed the wrong number of bytes"
    );
    eprintln!(
        "tcp_echo_10k: connect phase {:.3} ms, talk phase {:.3} ms",
        connected.as_secs_f64() * 1e3,
        (elapsed - connected).as_secs_f64() * 1e3
    );
    println!("RESULT tcp_echo_10k {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
