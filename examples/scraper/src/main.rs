//! A crawler: bounded concurrency, per-request timeouts, retries with
//! backoff, a rate limit and a summary — against a small site served in
//! the same process (goro-http does not exist yet, so both the server and
//! the client here speak a tiny subset of HTTP/1.0 over `goro::net`).
//!
//! ```text
//! cargo run -p scraper --release                 # crawl the built-in site, print a summary
//! cargo run -p scraper --release -- --self-test  # the same, checked; exit 0 if all is right
//! ```
//!
//! The site has `PAGES` pages linking to each other, plus:
//! * *slow* pages that answer after 2 s (the client gives up after 100 ms,
//!   retries twice, then reports them as timed out);
//! * *flaky* pages that answer `503` twice before `200` (retries win);
//! * links to pages that do not exist (`404`, not retried).
//!
//! Tools used: [`Limiter`] bounds requests in flight (the server observes
//! the peak), [`RateLimiter`] paces them, a [`Context`] bounds the whole
//! crawl, and one goroutine per request parks in socket reads.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goro::chan;
use goro::context::Context;
use goro::net::{TcpListener, TcpStream};
use goro_patterns::{Limiter, RateLimiter};

/// Pages on the site.
const PAGES: usize = 120;
/// Requests in flight at most.
const CONCURRENCY: usize = 8;
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_millis(100);
/// Attempts per page (1 + retries).
const ATTEMPTS: usize = 3;
/// How long a slow page takes.
const SLOW: Duration = Duration::from_secs(2);

/// What kind of page `n` is.
fn kind(n: usize) -> &'static str {
    match n {
        _ if n % 29 == 7 => "slow",
        _ if n % 17 == 3 => "flaky",
        _ => "ok",
    }
}

/// The links on page `n`: a few other pages, and a missing one now and then.
fn links(n: usize) -> Vec<String> {
    let mut v: Vec<String> = [1, 7, 31]
        .iter()
        .map(|k| format!("/page/{}", (n * 3 + k) % PAGES))
        .collect();
    if n % 10 == 0 {
        v.push(format!("/missing/{n}"));
    }
    v
}

/// What the server saw.
#[derive(Debug, Default)]
struct ServerStats {
    /// Requests per path.
    hits: Mutex<BTreeMap<String, usize>>,
    /// Requests being served now.
    now: AtomicUsize,
    /// The most at once.
    peak: AtomicUsize,
}

/// Reads a request head (up to the blank line); returns the path.
fn read_request(conn: &TcpStream) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if (&*conn).read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
        if buf.len() > 8192 {
            return Err(io::Error::other("request head too large"));
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Ok(path.to_string()),
        _ => Err(io::Error::other("not a GET")),
    }
}

/// Serves one request.
fn handle(conn: TcpStream, stats: &ServerStats) -> io::Result<()> {
    let path = read_request(&conn)?;
    let hit = {
        let mut hits = stats.hits.lock().unwrap_or_else(|e| e.into_inner());
        let h = hits.entry(path.clone()).or_insert(0);
        *h += 1;
        *h
    };
    let page = path
        .strip_prefix("/page/")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < PAGES);
    let (status, body) = match page {
        None => ("404 Not Found", String::new()),
        Some(n) => match kind(n) {
            "slow" => {
                goro::time::sleep(SLOW);
                ("200 OK", String::new())
            }
            "flaky" if hit <= 2 => ("503 Service Unavailable", String::new()),
            _ => {
                let mut b = format!("<h1>page {n}</h1>\n");
                for l in links(n) {
                    b.push_str(&format!("<a href=\"{l}\">{l}</a>\n"));
                }
                ("200 OK", b)
            }
        },
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Length: {}\r\nContent-Type: text/html\r\n\r\n{body}",
        body.len()
    );
    // The client may have given up on a slow page: ignore write errors.
    let _ = (&conn).write_all(resp.as_bytes());
    Ok(())
}

/// How long one `accept` waits before it is re-armed.
const ACCEPT_REARM: Duration = Duration::from_millis(20);

/// Accepts forever, one goroutine per connection.
///
/// Each `accept` waits at most `ACCEPT_REARM`, then tries again: a
/// workaround for a lost wake-up in goro's poller, where an `accept` parked
/// just as a connection arrives can miss it (seen in about 2 % of runs of a
/// minimal program, and 15 % of this example's self-tests). A fresh
/// `accept` call tries the syscall first, so it finds the connection.
fn serve(listener: TcpListener, stats: Arc<ServerStats>) {
    loop {
        let _ = listener.set_deadline(Some(Instant::now() + ACCEPT_REARM));
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            Err(_) => {
                goro::time::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let stats = stats.clone();
        let _ = goro::go(move || {
            let n = stats.now.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak.fetch_max(n, Ordering::SeqCst);
            let _ = handle(conn, &stats);
            stats.now.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// How one fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 200, with the page's links.
    Ok(Vec<String>),
    /// A status other than 200 or 5xx.
    Status(u16),
    /// Every attempt failed; the last error.
    Failed(String),
}

/// One HTTP/1.0 GET with a deadline; returns status and body.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let deadline = Instant::now() + timeout;
    let conn = TcpStream::connect_timeout(&addr, timeout)?;
    conn.set_deadline(Some(deadline))?;
    (&conn).write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut resp = String::new();
    (&conn).read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad status line"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// Fetches `path` with retries (on timeouts, connection errors and 5xx),
/// backing off 10 ms, 20 ms, ...; counts retries.
fn fetch(addr: SocketAddr, path: &str, ctx: &Context, retries: &AtomicUsize) -> Outcome {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            retries.fetch_add(1, Ordering::Relaxed);
            let backoff = Duration::from_millis(10 << (attempt - 1));
            goro::select! {
                recv(goro::time::after(backoff)) -> _ => {},
                recv(ctx.done()) -> _ => return Outcome::Failed("crawl cancelled".into()),
            }
        }
        match get(addr, path, TIMEOUT) {
            Ok((200, body)) => {
                let links = body
                    .split("href=\"")
                    .skip(1)
                    .filter_map(|s| s.split('"').next())
                    .map(str::to_string)
                    .collect();
                return Outcome::Ok(links);
            }
            Ok((s, _)) if s >= 500 => last = format!("status {s}"),
            Ok((s, _)) => return Outcome::Status(s),
            Err(e) => last = e.to_string(),
        }
    }
    Outcome::Failed(last)
}

/// The crawl's result.
#[derive(Debug, Default)]
struct Summary {
    /// Outcome per path.
    pages: BTreeMap<String, Outcome>,
    /// Retries made.
    retries: usize,
    /// Wall time.
    took: Duration,
}

/// Crawls from `/page/0`: every link once, at most `CONCURRENCY` at a
/// time, at most 2000 requests a second, within `ctx`.
fn crawl(addr: SocketAddr, ctx: &Context) -> Summary {
    let start = Instant::now();
    let limiter = Limiter::new(CONCURRENCY);
    let rate = Arc::new(RateLimiter::new(2000.0, CONCURRENCY));
    let retries = Arc::new(AtomicUsize::new(0));
    let (tx, results) = chan::unbounded::<(String, Outcome)>();
    let mut seen = HashSet::new();
    let mut todo = VecDeque::from(["/page/0".to_string()]);
    let mut summary = Summary::default();
    let mut in_flight = 0;
    loop {
        while let Some(path) = todo.pop_front() {
            if !seen.insert(path.clone()) || ctx.is_done() {
                continue;
            }
            in_flight += 1;
            let (tx, ctx, rate, retries) = (tx.clone(), ctx.clone(), rate.clone(), retries.clone());
            // Waits for a free slot: bounded concurrency.
            let _ = limiter.go(move || {
                let outcome = match rate.wait_ctx(&ctx) {
                    Ok(()) => fetch(addr, &path, &ctx, &retries),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                let _ = tx.send((path, outcome));
            });
        }
        if in_flight == 0 {
            break;
        }
        let Ok((path, outcome)) = results.recv() else {
            break;
        };
        in_flight -= 1;
        if let Outcome::Ok(links) = &outcome {
            todo.extend(links.iter().cloned());
        }
        summary.pages.insert(path, outcome);
    }
    limiter.wait();
    summary.retries = retries.load(Ordering::Relaxed);
    summary.took = start.elapsed();
    summary
}

/// Prints the summary; returns (ok, not found, failed).
fn report(s: &Summary) -> (usize, usize, usize) {
    let ok = s
        .pages
        .values()
        .filter(|o| matches!(o, Outcome::Ok(_)))
        .count();
    let nf = s
        .pages
        .values()
        .filter(|o| matches!(o, Outcome::Status(404)))
        .count();
    let failed: Vec<(&String, &Outcome)> = s
        .pages
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .collect();
    println!(
        "crawled {} urls in {:.2?}: {ok} ok, {nf} not found, {} failed, {} retries",
        s.pages.len(),
        s.took,
        failed.len(),
        s.retries
    );
    for (p, o) in &failed {
        println!("  failed {p}: {o:?}");
    }
    (ok, nf, failed.len())
}

/// Starts the site, crawls it, and (when `check`) verifies the summary
/// against what the site is known to contain.
fn run(check: bool) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stats = Arc::new(ServerStats::default());
    let server_stats = stats.clone();
    let _server = goro::go(move || serve(listener, server_stats));
    println!("site: {PAGES} pages on http://{addr}/page/0");

    let (ctx, cancel) = Context::background().with_timeout(Duration::from_secs(60));
    let s = crawl(addr, &ctx);
    drop(cancel);
    let (ok, nf, failed) = report(&s);
    let peak = stats.peak.load(Ordering::SeqCst);
    println!("server: peak {peak} requests at once (limit {CONCURRENCY})");
    if !check {
        return Ok(());
    }

    // What a correct crawl finds: every page reachable from 0 by links.
    let mut reach = HashSet::new();
    let mut q = VecDeque::from([0usize]);
    let mut missing = HashSet::new();
    while let Some(n) = q.pop_front() {
        if !reach.insert(n) || kind(n) == "slow" {
            continue; // a slow page never answers in time: its links stay unknown
        }
        for l in links(n) {
            match l.strip_prefix("/page/") {
                Some(m) => q.push_back(m.parse().expect("generated links are numbers")),
                None => {
                    missing.insert(l);
                }
            }
        }
    }
    let slow = reach.iter().filter(|n| kind(**n) == "slow").count();
    let want = (reach.len() - slow, missing.len(), slow);
    if (ok, nf, failed) != want {
        return Err(format!(
            "expected {} ok, {} not found, {} failed; got {ok}, {nf}, {failed}",
            want.0, want.1, want.2
        ));
    }
    if peak > CONCURRENCY {
        return Err(format!(
            "{peak} requests at once exceeds the limit of {CONCURRENCY}"
        ));
    }
    let hits = stats.hits.lock().unwrap_or_else(|e| e.into_inner());
    for n in &reach {
        let path = format!("/page/{n}");
        let want = match kind(*n) {
            "ok" => 1,
            "flaky" => 3,
            _ => ATTEMPTS,
        };
        let got = hits.get(&path).copied().unwrap_or(0);
        if got != want {
            return Err(format!(
                "{path} ({}) was requested {got} times, expected {want}",
                kind(*n)
            ));
        }
    }
    println!("self-test: ok");
    Ok(())
}

#[goro::main]
fn main() -> ExitCode {
    let check = std::env::args().nth(1).as_deref() == Some("--self-test");
    match run(check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scraper: {e}");
            ExitCode::FAILURE
        }
    }
}
