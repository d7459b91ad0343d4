//! tcp_echo_10k on tokio: 10,000 concurrent loopback TCP connections to one
//! echo server in the same process (TCP_NODELAY on both ends), one task per
//! connection on each side. The main task dials them one after another,
//! never more than 128 ahead of the server's accepts (a bounded channel of
//! tokens, as on the goro and Go sides), and spawns one client task per
//! connection; the server spawns one task per accepted connection. When every
//! connection is dialled and accepted, dropping a `watch` sender releases all
//! clients at once; each does 10 round trips of a 64-byte message, checks
//! every echo and closes. Timed from the first dial until every server task
//! has seen its client hang up. Multi-thread runtime with its default worker
//! count; the main body runs as a spawned task (on a worker, as goro's and
//! Go's main goroutine do). `JoinSet`s stand where Go has WaitGroups.
//! Counterpart of `tcp_echo_10k.rs` and `bench/go/tcp_echo_10k/main.go`.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

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

/// Raises the soft open-file limit to the hard one, as Go and goro do at
/// start (tokio does not), and checks that it is enough.
fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l),
            0,
            "tcp_echo_10k: getrlimit failed"
        );
        if l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &l),
                0,
                "tcp_echo_10k: setrlimit failed"
            );
        }
    }
    let soft: u64 = l.rlim_cur; // rlim_t is u64 on Linux
    assert!(
        soft >= FDS_NEEDED,
        "tcp_echo_10k: the open-file limit is {soft}, this needs {FDS_NEEDED} \
         (two sockets per connection); raise the hard limit (ulimit -Hn)"
    );
}

/// Echoes everything `conn` sends until it closes.
async fn serve(mut conn: TcpStream) {
    conn.set_nodelay(true)
        .expect("tcp_echo_10k: server nodelay");
    let mut buf = [0u8; MSG];
    let mut n = 0u64;
    loop {
        let r = conn
            .read(&mut buf)
            .await
            .expect("tcp_echo_10k: server read");
        if r == 0 {
            break;
        }
        conn.write_all(&buf[..r])
            .await
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
async fn client(id: usize, mut conn: TcpStream, mut start: watch::Receiver<()>) {
    let mut msg = [0u8; MSG];
    let mut back = [0u8; MSG];
    let _ = start.changed().await; // Err once the sender is dropped: the start signal
    for r in 0..ROUNDS {
        fill(&mut msg, id, r);
        conn.write_all(&msg)
            .await
            .unwrap_or_else(|e| panic!("tcp_echo_10k: client {id} write: {e}"));
        conn.read_exact(&mut back)
            .await
            .unwrap_or_else(|e| panic!("tcp_echo_10k: client {id} read: {e}"));
        assert!(
            back == msg,
            "tcp_echo_10k: client {id} round {r}: echo differs"
        );
    }
    drop(conn);
    VERIFIED.fetch_add(1, Ordering::Relaxed);
}

async fn run() -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("tcp_echo_10k: bind");
    let addr = listener.local_addr().expect("tcp_echo_10k: local_addr");

    // One token per dialled connection the server has not accepted yet.
    let (unaccepted_tx, mut unaccepted_rx) = mpsc::channel::<()>(MAX_UNACCEPTED);
    let acceptor = tokio::spawn(async move {
        let mut serving = JoinSet::new();
        for i in 0..CONNS {
            let (conn, _) = listener
                .accept()
                .await
                .unwrap_or_else(|e| panic!("tcp_echo_10k: accept {i}: {e}"));
            unaccepted_rx
                .recv()
                .await
                .expect("tcp_echo_10k: dialer vanished");
            serving.spawn(serve(conn));
        }
        serving
    });

    let (start_tx, start_rx) = watch::channel(());
    let mut clients = JoinSet::new();
    let t0 = Instant::now();
    for id in 0..CONNS {
        unaccepted_tx
            .send(())
            .await
            .expect("tcp_echo_10k: acceptor vanished");
        let conn = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("tcp_echo_10k: connect {id}: {e}"));
        conn.set_nodelay(true)
            .expect("tcp_echo_10k: client nodelay");
        clients.spawn(client(id, conn, start_rx.clone()));
    }
    let mut serving = acceptor
        .await
        .expect("tcp_echo_10k: acceptor task panicked");
    // Every connection is dialled and accepted: release all clients together.
    drop(start_tx);
    let connected = t0.elapsed();
    while let Some(r) = clients.join_next().await {
        r.expect("tcp_echo_10k: client task panicked");
    }
    while let Some(r) = serving.join_next().await {
        r.expect("tcp_echo_10k: server task panicked");
    }
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
    elapsed
}

#[tokio::main]
async fn main() {
    raise_nofile();
    let elapsed = tokio::spawn(run())
        .await
        .expect("tcp_echo_10k: main task panicked");
    println!("RESULT tcp_echo_10k {:.3} ms", elapsed.as_secs_f64() * 1e3);
}
