//! A TCP echo server on `goro::net`: one goroutine per connection, written
//! as plain blocking code — the goroutine parks in `read`, its worker runs
//! the others.
//!
//! ```text
//! cargo run -p echo --release                      # serve on 127.0.0.1:7878
//! cargo run -p echo --release -- 0.0.0.0:9000      # serve on another address
//! cargo run -p echo --release -- --self-test 2000  # 2000 clients, check, exit
//! ```
//!
//! Serving prints the bound address, then one line per closed connection;
//! try it with `nc 127.0.0.1 7878`.
//!
//! The self-test starts the server on a free loopback port and N client
//! goroutines. A dialer connects them one after another (so the listen
//! backlog never overflows) and hands each connection to its client; every
//! client waits at a [`Barrier`] until all N are connected, then sends a few
//! messages of different sizes and checks each echo. It prints a summary and
//! exits 0 if every echo matched and the server saw every byte:
//!
//! ```text
//! echo: listening on 127.0.0.1:40117
//! self-test: 2000 clients connected in 0.11 s
//! self-test: 2000 clients, 10000 messages, 20984000 bytes echoed, 0 errors, 0.43 s
//! ```

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goro::net::{TcpListener, TcpStream};
use goro::sync::{Barrier, WaitGroup};

/// Where the server listens unless told otherwise.
const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// Messages each self-test client sends.
const MESSAGES: usize = 5;
/// Connections the self-test dialer may have open that the server has not
/// accepted yet (well under the listen backlog of 128).
const UNACCEPTED_MAX: u64 = 32;
/// A self-test client gives up (and counts an error) after this long.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// What the server has done, for the self-test's final check.
#[derive(Debug, Default)]
struct ServerStats {
    /// Connections accepted.
    accepted: AtomicU64,
    /// Bytes echoed back.
    bytes: AtomicU64,
}

/// Echoes everything `conn` sends until it closes its side; returns the
/// number of bytes echoed.
///
/// Reading and writing go through `&TcpStream`, so `io::copy` can take the
/// same stream as its reader and its writer.
fn echo(conn: &TcpStream) -> io::Result<u64> {
    io::copy(&mut &*conn, &mut &*conn)
}

/// Accepts forever, one goroutine per connection. `verbose` prints a line
/// per closed connection. Connections still open are counted by `open`.
fn serve(listener: TcpListener, stats: Arc<ServerStats>, open: WaitGroup, verbose: bool) {
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: report, breathe, carry on.
                eprintln!("echo: accept: {e}");
                goro::time::sleep(Duration::from_millis(10));
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        open.add(1);
        let open = open.clone();
        // Detached: the goroutine ends when its client hangs up.
        let _ = goro::go(move || {
            let peer = conn.peer_addr().ok();
            let r = echo(&conn);
            if let Ok(n) = r {
                stats.bytes.fetch_add(n, Ordering::Relaxed);
            }
            if verbose {
                match (peer, r) {
                    (Some(p), Ok(n)) => println!("{p}: closed after {n} bytes"),
                    (Some(p), Err(e)) => println!("{p}: {e}"),
                    (None, _) => {}
                }
            }
            drop(conn);
            open.done();
        });
    }
}

/// The bytes of message `m` of client `c`: 1 to ~8 KiB of a pattern that
/// differs per client and message.
fn message(c: usize, m: usize) -> Vec<u8> {
    let len = 1 + (c * 131 + m * 977) % 8192;
    let mut x = (c as u64) << 32 | m as u64 | 1;
    (0..len)
        .map(|_| {
            // xorshift64: cheap, deterministic, not all one value.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One self-test client: waits for everyone, then sends its messages and
/// checks each echo. Returns the bytes checked.
fn client(id: usize, mut conn: TcpStream, everyone: &Barrier) -> io::Result<u64> {
    conn.set_nodelay(true)?;
    everyone.wait();
    conn.set_deadline(Some(Instant::now() + CLIENT_DEADLINE))?;
    let mut total = 0;
    let mut back = Vec::new();
    for m in 0..MESSAGES {
        let msg = message(id, m);
        conn.write_all(&msg)?;
        back.resize(msg.len(), 0);
        conn.read_exact(&mut back)?;
        if back != msg {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("client {id}: echo {m} differs"),
            ));
        }
        total += msg.len() as u64;
    }
    Ok(total)
}

/// Runs the self-test with `n` clients; true if everything matched.
fn self_test(n: usize) -> io::Result<bool> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("echo: listening on {addr}");
    let stats = Arc::new(ServerStats::default());
    let open = WaitGroup::new();
    {
        let (stats, open) = (stats.clone(), open.clone());
        // Detached: serves until the process exits.
        let _ = goro::go(move || serve(listener, stats, open, false));
    }

    let t0 = Instant::now();
    let everyone = Arc::new(Barrier::new(n + 1));
    let errors = Arc::new(AtomicU64::new(0));
    let echoed = Arc::new(AtomicU64::new(0));
    let clients = WaitGroup::new();
    for id in 0..n {
        // Keep the accept loop close behind: connections the server has not
        // accepted yet sit in the listen backlog (128), and a SYN that finds
        // it full is dropped and retried by the kernel only after a second.
        while id as u64 >= stats.accepted.load(Ordering::Relaxed) + UNACCEPTED_MAX {
            goro::time::sleep(Duration::from_millis(1));
        }
        let conn = match dial(addr) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("self-test: client {id}: connect: {e}");
                return Ok(false);
            }
        };
        // On loopback a connect usually completes without parking; yield so
        // the accept loop keeps up and this loop does not hog its worker.
        goro::yield_now();
        let (everyone, errors, echoed) = (everyone.clone(), errors.clone(), echoed.clone());
        clients.go(move || match client(id, conn, &everyone) {
            Ok(b) => {
                echoed.fetch_add(b, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("self-test: client {id}: {e}");
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // All n are connected; release them together.
    everyone.wait();
    println!(
        "self-test: {n} clients connected in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    clients.wait();
    // Every client has hung up; wait for the server side to see it.
    open.wait();

    let errors = errors.load(Ordering::Relaxed);
    let echoed = echoed.load(Ordering::Relaxed);
    println!(
        "self-test: {n} clients, {} messages, {echoed} bytes echoed, {errors} errors, {:.2} s",
        n * MESSAGES,
        t0.elapsed().as_secs_f64()
    );
    let server_bytes = stats.bytes.load(Ordering::Relaxed);
    let accepted = stats.accepted.load(Ordering::Relaxed);
    if accepted != n as u64 || server_bytes != echoed {
        eprintln!("self-test: server accepted {accepted} connections and echoed {server_bytes} bytes; expected {n} and {echoed}");
        return Ok(false);
    }
    Ok(errors == 0)
}

/// Connects, retrying briefly if the system is short of something
/// transient (ephemeral ports in `TIME_WAIT`, a full backlog).
fn dial(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut last = None;
    for _ in 0..5 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(c) => return Ok(c),
            Err(e) => {
                last = Some(e);
                goro::time::sleep(Duration::from_millis(50));
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Command line.
#[derive(Debug)]
enum Mode {
    /// Serve on this address.
    Serve(String),
    /// Run the self-test with this many clients.
    SelfTest(usize),
}

fn parse_args() -> Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(Mode::Serve(DEFAULT_ADDR.into())),
        [flag] if flag == "-h" || flag == "--help" => Err(String::new()),
        [flag, n] if flag == "--self-test" => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(Mode::SelfTest)
            .ok_or_else(|| format!("--self-test needs a positive number of clients, not {n:?}")),
        [flag] if flag == "--self-test" => Ok(Mode::SelfTest(1000)),
        [addr] if !addr.starts_with('-') => Ok(Mode::Serve(addr.clone())),
        _ => Err(format!("unexpected arguments: {args:?}")),
    }
}

#[goro::main]
fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(m) => m,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("echo: {e}");
            }
            eprintln!("usage: echo [ADDR]            serve (default {DEFAULT_ADDR})");
            eprintln!(
                "       echo --self-test [N]   N concurrent clients (default 1000), check, exit"
            );
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match mode {
        Mode::Serve(addr) => {
            let listener = match TcpListener::bind(addr.as_str()) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("echo: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match listener.local_addr() {
                Ok(a) => println!("echo: listening on {a}"),
                Err(_) => println!("echo: listening on {addr}"),
            }
            serve(listener, Arc::default(), WaitGroup::new(), true);
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
