//! A TCP proxy on `goro::net`: forwards every connection made to a listening
//! address to a target address.
//!
//! ```text
//! cargo run -p tcp-proxy --release -- 127.0.0.1:8080 example.org:80
//! cargo run -p tcp-proxy --release -- --self-test [N]
//! ```
//!
//! Each connection gets two goroutines, one per direction:
//!
//! ```text
//!            ┌──────────── goroutine "up" ───────────┐
//!  client ──▶│ read &client ─────────▶ write &target │──▶ target
//!  client ◀──│ write &client ◀──────── read &target  │◀── target
//!            └─────────── goroutine "down" ──────────┘
//! ```
//!
//! Both share the two streams through `&TcpStream` (one reads a stream while
//! the other writes it). When a direction reads end-of-file it half-closes
//! its write side (`shutdown(Write)`), so the far end sees EOF too while the
//! other direction keeps flowing — a client can send its whole request,
//! close its sending half, and still read the reply. On an error both
//! streams are shut down, which also ends the other direction.
//!
//! `--self-test` starts an echo backend and the proxy in-process, then N
//! clients (default 50) that each stream 1 MiB through the proxy while
//! reading the echo back concurrently, half-close, and check that exactly
//! their bytes came back before EOF. It prints a summary and exits 0 when
//! every byte matched:
//!
//! ```text
//! tcp-proxy: 127.0.0.1:41235 -> 127.0.0.1:39111
//! self-test: 50 connections, 52428800 bytes each way, all echoes match, 0.61 s
//! ```

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::{TcpListener, TcpStream};

/// Bytes each self-test client sends through the proxy.
const SELF_TEST_BYTES: usize = 1 << 20;
/// A self-test connection gives up after this long.
const SELF_TEST_DEADLINE: Duration = Duration::from_secs(60);

/// Copies `from` to `to` until EOF, then half-closes `to`; returns the
/// bytes copied. On an error, shuts both streams down so the goroutine
/// serving the other direction stops too.
fn pipe(from: &TcpStream, to: &TcpStream) -> io::Result<u64> {
    match io::copy(&mut &*from, &mut &*to) {
        Ok(n) => {
            // The reader hung up its sending side: pass that on. The peer
            // may be gone already (NotConnected); that is not an error here.
            match to.shutdown(Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                _ => Ok(n),
            }
        }
        Err(e) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            Err(e)
        }
    }
}

/// Byte counts of one proxied connection.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    /// Client to target.
    up: u64,
    /// Target to client.
    down: u64,
}

/// Proxies one client connection to `target`, one goroutine per
/// direction; returns when both directions are done.
fn proxy(client: TcpStream, target: SocketAddr) -> io::Result<Transfer> {
    let upstream = TcpStream::connect(target)?;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let up = {
        let (c, u) = (client.clone(), upstream.clone());
        goro::Builder::new()
            .name("up")
            .spawn(move || pipe(&c, &u))?
    };
    let down = {
        let (c, u) = (client, upstream);
        goro::Builder::new()
            .name("down")
            .spawn(move || pipe(&u, &c))?
    };
    // A panic in a direction is a bug: re-raise it here.
    let up = up
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let down = down
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Ok(Transfer {
        up: up?,
        down: down?,
    })
}

/// Accepts forever, proxying each connection to `target`. `verbose` prints
/// a line per finished connection.
fn serve(listener: TcpListener, target: SocketAddr, verbose: bool) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tcp-proxy: accept: {e}");
                goro::time::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Detached: ends with its connection.
        let _ = goro::go(move || {
            let peer = conn.peer_addr().ok();
            let r = proxy(conn, target);
            if verbose {
                match (peer, r) {
                    (Some(p), Ok(t)) => println!("{p}: {} bytes up, {} bytes down", t.up, t.down),
                    (Some(p), Err(e)) => println!("{p}: {e}"),
                    (None, _) => {}
                }
            }
        });
    }
}

/// An echo server for the self-test: copies every connection back to
/// itself, then closes.
fn echo_backend(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let _ = goro::go(move || {
            let _ = io::copy(&mut &conn, &mut &conn);
        });
    }
}

/// Test data for connection `id`: a pattern that differs per connection.
fn pattern(id: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + id * 7 + i / 251) % 256) as u8)
        .collect()
}

/// One self-test connection: streams its data through the proxy while a
/// second goroutine reads the echo, half-closes, and checks what came back.
fn self_test_client(id: usize, proxy_addr: SocketAddr) -> io::Result<()> {
    let conn = TcpStream::connect(proxy_addr)?;
    conn.set_deadline(Some(Instant::now() + SELF_TEST_DEADLINE))?;
    let data = pattern(id, SELF_TEST_BYTES);
    let back = goro::scope(|s| {
        let writer = s.go(|| -> io::Result<()> {
            let mut w = &conn;
            for chunk in data.chunks(16 * 1024 + id) {
                w.write_all(chunk)?;
            }
            // Half-close: the proxy passes the EOF to the backend, whose
            // echo then ends, which the proxy passes back to us.
            conn.shutdown(Shutdown::Write)
        });
        let mut back = Vec::with_capacity(SELF_TEST_BYTES);
        let r = (&conn).read_to_end(&mut back);
        let w = writer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        w.and(r).map(|_| back)
    })?;
    if back != data {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "connection {id}: got {} bytes back, not the {} sent",
                back.len(),
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Runs the self-test with `n` connections; true if every byte matched.
fn self_test(n: usize) -> io::Result<bool> {
    let backend = TcpListener::bind("127.0.0.1:0")?;
    let backend_addr = backend.local_addr()?;
    let _ = goro::go(move || echo_backend(backend));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let proxy_addr = listener.local_addr()?;
    let _ = goro::go(move || serve(listener, backend_addr, false));
    println!("tcp-proxy: {proxy_addr} -> {backend_addr}");

    let t0 = Instant::now();
    let failures = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..n)
        .map(|id| {
            let failures = failures.clone();
            goro::go(move || {
                if let Err(e) = self_test_client(id, proxy_addr) {
                    eprintln!("self-test: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in clients {
        c.join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    let failures = failures.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    if failures == 0 {
        println!(
            "self-test: {n} connections, {} bytes each way, all echoes match, {secs:.2} s",
            n * SELF_TEST_BYTES
        );
    } else {
        println!("self-test: {failures} of {n} connections failed, {secs:.2} s");
    }
    Ok(failures == 0)
}

/// Command line.
#[derive(Debug)]
enum Mode {
    /// Listen on the first address, forward to the second.
    Proxy(String, String),
    /// Run the self-test with this many connections.
    SelfTest(usize),
}

fn parse_args() -> Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => Err(String::new()),
        [flag] if flag == "--self-test" => Ok(Mode::SelfTest(50)),
        [flag, n] if flag == "--self-test" => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(Mode::SelfTest)
            .ok_or_else(|| {
                format!("--self-test takes a positive number of connections, not {n:?}")
            }),
        [listen, target] if !listen.starts_with('-') => {
            Ok(Mode::Proxy(listen.clone(), target.clone()))
        }
        _ => Err(format!("unexpected arguments: {args:?}")),
    }
}

#[goro::main]
fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(m) => m,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tcp-proxy: {e}");
            }
            eprintln!("usage: tcp-proxy LISTEN_ADDR TARGET_ADDR");
            eprintln!("       tcp-proxy --self-test [N]   N connections through an in-process echo backend");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match mode {
        Mode::Proxy(listen, target) => {
            // Resolve the target once, on the blocking pool (it may be a
            // host name).
            let target = match goro::net::lookup_host(target.as_str()) {
                Ok(addrs) if !addrs.is_empty() => addrs[0],
                Ok(_) => {
                    eprintln!("tcp-proxy: {target} resolves to no address");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("tcp-proxy: cannot resolve {target}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let listener = match TcpListener::bind(listen.as_str()) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("tcp-proxy: cannot listen on {listen}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let shown = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or(listen);
            println!("tcp-proxy: {shown} -> {target}");
            serve(listener, target, true);
            ExitCode::SUCCESS
        }
        Mode::SelfTest(n) => match self_test(n) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("self-test: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
