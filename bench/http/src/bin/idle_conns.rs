//! Measures a server's resident memory per idle keep-alive connection:
//! `idle-conns ADDR N SERVER_PID [SETTLE_SECS]`.
//!
//! Opens `N` connections to `ADDR`, sends one `GET /` on each and reads the
//! answer (so the server has set the connection up for keep-alive), leaves
//! them idle for `SETTLE_SECS` (default 2), and prints the server's resident memory before
//! and after, and the increase per connection:
//!
//! ```text
//! connections=10000 rss_before_kib=2100 rss_after_kib=95000 kib_per_conn=9.29
//! ```

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::net::TcpStream;
use goro::sync::{Semaphore, WaitGroup};

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the server's status");
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Opens one connection, does one request, returns the open stream.
fn open(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    (&s).write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"Hello, World!\n") {
        let n = (&s).read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(s)
}

#[goro::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 5 {
        eprintln!("usage: idle-conns ADDR N SERVER_PID [SETTLE_SECS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    let n: usize = args[2].parse().expect("N");
    let pid: u32 = args[3].parse().expect("SERVER_PID");
    let settle: f64 = args.get(4).map_or(2.0, |s| s.parse().expect("SETTLE_SECS"));

    // Dialling 10,000 sockets keeps the workers busy: no stall reports.
    goro::debug::set_stall_hook(|_| {});
    let before = rss_kib(pid);
    let (hold_tx, hold_rx) = goro::chan::bounded::<()>(0);
    let dials = Arc::new(Semaphore::new(64));
    let opened = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = goro::chan::bounded::<()>(n.max(1));
    let wg = WaitGroup::new();
    for _ in 0..n {
        let (hold, dials, opened, ready) = (
            hold_rx.clone(),
            dials.clone(),
            opened.clone(),
            ready_tx.clone(),
        );
        wg.go(move || {
            dials.acquire(1);
            let s = open(addr);
            dials.release(1);
            if s.is_ok() {
                opened.fetch_add(1, Ordering::Relaxed);
            }
            let _ = ready.send(());
            // Hold the connection until told to go.
            let _ = hold.recv();
            drop(s);
        });
    }
    drop((hold_rx, ready_tx));
    for _ in 0..n {
        let _ = ready_rx.recv();
    }
    goro::time::sleep(Duration::from_secs_f64(settle));
    let after = rss_kib(pid);
    let ok = opened.load(Ordering::Relaxed);
    drop(hold_tx);
    wg.wait();
    println!(
        "connections={ok} rss_before_kib={before} rss_after_kib={after} kib_per_conn={:.2}",
        after.saturating_sub(before) as f64 / ok.max(1) as f64
    );
}
