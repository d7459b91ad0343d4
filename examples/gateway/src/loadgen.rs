//! The load generator: N goroutines, each owning one keep-alive connection
//! and sending requests back to back (a closed loop: one request in flight
//! per connection).
//!
//! A run has two phases:
//!
//! 1. **connect**: every connection goroutine dials (at most
//!    [`LoadConfig::connect_concurrency`] at once, so the listener's
//!    backlog is not overrun) and waits at a start line. The server's
//!    resident memory before and after gives its cost per idle
//!    connection.
//! 2. **load**: the start line opens; for [`LoadConfig::duration`] every
//!    goroutine sends `GET path` (cycling through [`LoadConfig::paths`]),
//!    reads the whole response and records the latency in a shared
//!    [`Histogram`]. A connection that fails is counted by kind and dialled
//!    again.
//!
//! A sampler goroutine polls the server's `/debug/stats` (goroutines) and
//! `/proc/<pid>/status` (resident memory) twice a second; the caller's
//! goroutine prints the live progress line once a second.
//!
//! The requests are written and the responses parsed here, on raw
//! [`goro::net::TcpStream`]s, rather than with goro-http's pooled client: a
//! load generator must hold exactly one connection per goroutine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goro::chan;
use goro::net::TcpStream;
use goro::sync::{Semaphore, WaitGroup};

use crate::hist::{fmt_latency, Histogram, Snapshot};
use crate::sys::{fmt_bytes, fmt_count, rss_bytes};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server to load.
    pub target: SocketAddr,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// How long to send requests once every connection is open.
    pub duration: Duration,
    /// Paths requested, in turn (each connection starts at a different
    /// one).
    pub paths: Vec<String>,
    /// The server's process id, to sample its resident memory (`None`: not
    /// sampled).
    pub server_pid: Option<u32>,
    /// Whether to print the live progress line on stderr.
    pub progress: bool,
    /// Time allowed for one request (a `timeout` error beyond).
    pub request_timeout: Duration,
    /// Connections being dialled at once, at most.
    pub connect_concurrency: usize,
    /// Ends the run early when cancelled (the report covers what ran).
    pub stop: Option<goro::context::Context>,
}

impl LoadConfig {
    /// Defaults: 10,000 connections for 10 s over the gateway's routes,
    /// 10 s request timeout, 64 dials at once (well under the listen
    /// backlog of 128 that goro's listeners get: more would overflow it and
    /// cost a 1 s SYN retransmission each), no progress line.
    pub fn new(target: SocketAddr) -> LoadConfig {
        LoadConfig {
            target,
            connections: 10_000,
            duration: Duration::from_secs(10),
            paths: default_paths(),
            server_pid: None,
            progress: false,
            request_timeout: Duration::from_secs(10),
            connect_concurrency: 64,
            stop: None,
        }
    }
}

/// The gateway's routes, as the load generator requests them by default:
/// three proxied paths and the fan-out.
pub fn default_paths() -> Vec<String> {
    ["/users/42", "/orders/7", "/inventory/3", "/dashboard"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Connections asked for.
    pub connections: usize,
    /// Connections open when the load phase started.
    pub connected: usize,
    /// Time to open them.
    pub connect_time: Duration,
    /// Length of the load phase.
    pub elapsed: Duration,
    /// Responses received (any status).
    pub responses: u64,
    /// Of which `2xx`.
    pub ok: u64,
    /// Latency of every response.
    pub latency: Snapshot,
    /// Failures by kind: `HTTP 502`, `timeout`, `closed`, `reset`,
    /// `connect: ...`, `malformed response`.
    pub errors: BTreeMap<String, u64>,
    /// Connections dialled again after a failure.
    pub reconnects: u64,
    /// Most goroutines seen in the server (from its `/debug/stats`).
    pub peak_server_goroutines: Option<usize>,
    /// The server's resident memory before connecting.
    pub server_rss_before: Option<u64>,
    /// ... with every connection open, before the load phase.
    pub server_rss_connected: Option<u64>,
    /// ... at its highest during the run.
    pub server_rss_peak: Option<u64>,
    /// This process's resident memory at its highest.
    pub client_rss_peak: Option<u64>,
}

impl Report {
    /// Failures of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Responses per second during the load phase.
    pub fn throughput(&self) -> f64 {
        self.responses as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The server's resident memory per open connection, idle (after
    /// connecting, before any request), in bytes.
    pub fn server_rss_per_idle_connection(&self) -> Option<u64> {
        let (a, b) = (self.server_rss_before?, self.server_rss_connected?);
        Some(b.saturating_sub(a) / self.connected.max(1) as u64)
    }

    /// The server's peak resident memory per connection, under load.
    pub fn server_rss_per_connection(&self) -> Option<u64> {
        let (a, b) = (self.server_rss_before?, self.server_rss_peak?);
        Some(b.saturating_sub(a) / self.connected.max(1) as u64)
    }

    /// The final report, as printed.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let l = &self.latency;
        let _ = writeln!(s, "==== load test report ====");
        let _ = writeln!(
            s,
            "connections     {} open of {} asked (opened in {:.2} s), {} re-dialled",
            fmt_count(self.connected as u64),
            fmt_count(self.connections as u64),
            self.connect_time.as_secs_f64(),
            fmt_count(self.reconnects)
        );
        let _ = writeln!(
            s,
            "throughput      {} req/s ({} responses in {:.2} s, {} 2xx)",
            fmt_count(self.throughput().round() as u64),
            fmt_count(self.responses),
            self.elapsed.as_secs_f64(),
            fmt_count(self.ok)
        );
        let _ = writeln!(
            s,
            "latency         p50 {}  p99 {}  p999 {}  max {}",
            fmt_latency(l.quantile(0.50)),
            fmt_latency(l.quantile(0.99)),
            fmt_latency(l.quantile(0.999)),
            fmt_latency(l.max())
        );
        if self.errors.is_empty() {
            let _ = writeln!(s, "errors          none");
        } else {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {}", fmt_count(*n)))
                .collect();
            let _ = writeln!(
                s,
                "errors          {} ({})",
                fmt_count(self.error_count()),
                kinds.join(", ")
            );
        }
        if let Some(g) = self.peak_server_goroutines {
            let _ = writeln!(s, "server          peak goroutines {}", fmt_count(g as u64));
        }
        if let (Some(before), Some(conn), Some(peak)) = (
            self.server_rss_before,
            self.server_rss_connected,
            self.server_rss_peak,
        ) {
            let _ = writeln!(
                s,
                "server RSS      {} before, {} with the connections idle, {} peak",
                fmt_bytes(before),
                fmt_bytes(conn),
                fmt_bytes(peak)
            );
            let _ = writeln!(
                s,
                "RSS/connection  {:.1} KiB idle, {:.1} KiB under load (server, increase over the start)",
                self.server_rss_per_idle_connection().unwrap_or(0) as f64 / 1024.0,
                self.server_rss_per_connection().unwrap_or(0) as f64 / 1024.0
            );
        }
        if let Some(c) = self.client_rss_peak {
            let _ = writeln!(s, "load generator  RSS peak {}", fmt_bytes(c));
        }
        s
    }
}

/// What the connection goroutines, the sampler and the caller share.
struct Shared {
    /// The run's settings.
    config: LoadConfig,
    /// One prepared request per path.
    requests: Vec<Vec<u8>>,
    /// Latencies.
    hist: Histogram,
    /// Responses received.
    responses: AtomicU64,
    /// 2xx responses.
    ok: AtomicU64,
    /// Re-dials.
    reconnects: AtomicU64,
    /// Failures by kind.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Failures, all kinds.
    error_total: AtomicU64,
    /// Connection goroutines done with the connect phase (open or failed).
    settled: AtomicUsize,
    /// Connections open now.
    open: AtomicUsize,
    /// Set when the load phase ends.
    stop: AtomicBool,
    /// When the load phase ends: responses that complete later (the
    /// requests in flight at the end) are not counted.
    end: OnceLock<Instant>,
    /// Bounds concurrent dials.
    dials: Semaphore,
    /// Most goroutines seen in the server.
    peak_goroutines: AtomicUsize,
    /// Last goroutine count seen in the server.
    goroutines: AtomicUsize,
    /// Whether the server answers `/debug/stats`.
    has_stats: AtomicBool,
    /// Server RSS now and at its peak.
    server_rss: AtomicU64,
    /// Server RSS at its peak.
    server_rss_peak: AtomicU64,
    /// Own RSS at its peak.
    client_rss_peak: AtomicU64,
}

impl Shared {
    /// Counts one failure of `kind`.
    fn error(&self, kind: String) {
        self.error_total.fetch_add(1, Ordering::Relaxed);
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    /// Dials the target, at most three tries; counts failures.
    fn dial(&self) -> Option<TcpStream> {
        for attempt in 0..3 {
            if attempt > 0 {
                goro::time::sleep(Duration::from_millis(50 * attempt));
            }
            self.dials.acquire(1);
            let r = TcpStream::connect_timeout(&self.config.target, Duration::from_secs(5));
            self.dials.release(1);
            match r {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.open.fetch_add(1, Ordering::Relaxed);
                    return Some(s);
                }
                Err(e) => self.error(format!("connect: {}", io_kind(&e))),
            }
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        None
    }
}

/// A short name for an I/O failure.
fn io_kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "reset".into(),
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::UnexpectedEof => "closed".into(),
        k => format!("{k:?}").to_lowercase(),
    }
}

/// How one exchange ended.
enum Exchange {
    /// A whole response: its status, and whether the server closes the
    /// connection after it.
    Response(u16, bool),
    /// A failure of that kind; the connection is unusable.
    Failed(String),
}

/// Sends `req` and reads one whole response into `buf`.
fn exchange(stream: &TcpStream, req: &[u8], buf: &mut Vec<u8>, timeout: Duration) -> Exchange {
    let _ = stream.set_deadline(Some(Instant::now() + timeout));
    let mut s: &TcpStream = stream;
    if let Err(e) = s.write_all(req) {
        return Exchange::Failed(io_kind(&e));
    }
    let mut len = 0;
    // (status, close, total length) once the head is parsed.
    let mut head: Option<(u16, bool, usize)> = None;
    loop {
        if len == buf.len() {
            if buf.len() >= 1 << 20 {
                return Exchange::Failed("malformed response".into());
            }
            buf.resize(buf.len() * 2, 0);
        }
        match s.read(&mut buf[len..]) {
            Ok(0) => return Exchange::Failed("closed".into()),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Exchange::Failed(io_kind(&e)),
        }
        if head.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf[..len]) {
                Ok(httparse::Status::Partial) => continue,
                Ok(httparse::Status::Complete(n)) => {
                    let mut body = None;
                    let mut close = false;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            body = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok());
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    let Some(body) = body else {
                        // Every answer of goro-http (and of most servers to
                        // a small GET) carries a Content-Length.
                        return Exchange::Failed("malformed response".into());
                    };
                    head = Some((resp.code.unwrap_or(0), close, n + body));
                }
                Err(_) => return Exchange::Failed("malformed response".into()),
            }
        }
        if let Some((status, close, total)) = head {
            if len >= total {
                return Exchange::Response(status, close);
            }
        }
    }
}

/// One connection goroutine: dial, wait for the start, then requests until
/// the stop.
fn connection(shared: &Shared, index: usize, start: chan::Receiver<()>, ready: chan::Sender<()>) {
    let mut conn = shared.dial();
    if shared.settled.fetch_add(1, Ordering::AcqRel) + 1 == shared.config.connections {
        let _ = ready.try_send(());
    }
    drop(ready);
    // Closed (every sender dropped) when the load phase starts.
    let _ = start.recv();
    let mut buf = vec![0u8; 2048];
    let mut i = index;
    while !shared.stop.load(Ordering::Relaxed) {
        let stream = match &conn {
            Some(s) => s,
            None => {
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                conn = shared.dial();
                if conn.is_none() {
                    goro::time::sleep(Duration::from_millis(100));
                }
                continue;
            }
        };
        let req = &shared.requests[i % shared.requests.len()];
        i += 1;
        let t0 = Instant::now();
        let outcome = exchange(stream, req, &mut buf, shared.config.request_timeout);
        let done = Instant::now();
        let late = matches!(shared.end.get(), Some(&end) if done > end);
        let counted = !late && !shared.stop.load(Ordering::Relaxed);
        match outcome {
            Exchange::Response(status, close) => {
                if counted {
                    shared.hist.record(done - t0);
                    shared.responses.fetch_add(1, Ordering::Relaxed);
                    if (200..300).contains(&status) {
                        shared.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.error(format!("HTTP {status}"));
                    }
                }
                if close {
                    conn = None;
                    shared.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Exchange::Failed(kind) => {
                if counted {
                    shared.error(kind);
                }
                conn = None;
                shared.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    if conn.is_some() {
        shared.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Polls the server's goroutine count and both processes' memory until
/// `stop` closes.
fn sampler(shared: &Shared, stop: &chan::Receiver<()>) {
    let client = goro_http::Client::builder()
        .timeout(Duration::from_secs(2))
        .max_idle_per_host(1)
        .build();
    let url = format!("http://{}/debug/stats", shared.config.target);
    let mut stats_ok = true;
    loop {
        if stats_ok {
            match client.get(&url) {
                Ok(r) if r.status().is_success() => {
                    if let Some(n) = json_number(r.body().to_str().unwrap_or(""), "goroutines") {
                        shared.has_stats.store(true, Ordering::Relaxed);
                        shared.goroutines.store(n, Ordering::Relaxed);
                        shared.peak_goroutines.fetch_max(n, Ordering::Relaxed);
                    }
                }
                // Not a goro server: stop asking.
                Ok(_) => stats_ok = false,
                Err(_) => {}
            }
        }
        if let Some(rss) = rss_bytes(shared.config.server_pid) {
            if shared.config.server_pid.is_some() {
                shared.server_rss.store(rss, Ordering::Relaxed);
                shared.server_rss_peak.fetch_max(rss, Ordering::Relaxed);
            }
        }
        if let Some(rss) = rss_bytes(None) {
            shared.client_rss_peak.fetch_max(rss, Ordering::Relaxed);
        }
        goro::select! {
            recv(stop) -> _ => return,
            default(Duration::from_millis(500)) => {},
        }
    }
}

/// The number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<usize> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = json[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Writes the progress line (with `\r` on a terminal, one line per tick
/// otherwise).
fn progress_line(text: &str) {
    let mut err = io::stderr().lock();
    if io::stderr().is_terminal() {
        let _ = write!(err, "\r{text:<118}");
    } else {
        let _ = writeln!(err, "{text}");
    }
    let _ = err.flush();
}

/// Runs the load described by `config` and returns the report.
///
/// # Blocking
///
/// Parks the calling goroutine for the connect phase plus
/// `config.duration`, plus the time the last responses take.
pub fn run(config: LoadConfig) -> Report {
    let host = config.target.to_string();
    let requests = config
        .paths
        .iter()
        .map(|p| {
            format!("GET {p} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: goro-loadgen\r\n\r\n")
                .into_bytes()
        })
        .collect();
    let n = config.connections;
    let progress = config.progress;
    let stop_rx = config.stop.as_ref().map_or_else(chan::never, |c| c.done());
    let duration = config.duration;
    let shared = Arc::new(Shared {
        dials: Semaphore::new(config.connect_concurrency.max(1)),
        config,
        requests,
        hist: Histogram::new(),
        responses: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
        error_total: AtomicU64::new(0),
        settled: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        end: OnceLock::new(),
        peak_goroutines: AtomicUsize::new(0),
        goroutines: AtomicUsize::new(0),
        has_stats: AtomicBool::new(false),
        server_rss: AtomicU64::new(0),
        server_rss_peak: AtomicU64::new(0),
        client_rss_peak: AtomicU64::new(0),
    });

    // The sampler, first, for the "before" numbers.
    let (stop_sampler, sampler_stop) = chan::bounded::<()>(0);
    let sampler_handle = {
        let s = shared.clone();
        goro::go(move || sampler(&s, &sampler_stop))
    };
    let rss_before = shared
        .config
        .server_pid
        .and(rss_bytes(shared.config.server_pid));

    // Phase 1: connect.
    let t_connect = Instant::now();
    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let wg = WaitGroup::new();
    for i in 0..n {
        let (s, start, ready) = (shared.clone(), start_rx.clone(), ready_tx.clone());
        wg.go(move || connection(&s, i, start, ready));
    }
    drop((start_rx, ready_tx));
    let tick = goro::time::tick(Duration::from_secs(1));
    if n > 0 {
        loop {
            goro::select! {
                recv(ready_rx) -> _ => break,
                recv(stop_rx) -> _ => {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                },
                recv(tick) -> _ => {
                    if progress {
                        progress_line(&format!(
                            "connecting: {}/{} open",
                            fmt_count(shared.open.load(Ordering::Relaxed) as u64),
                            fmt_count(n as u64)
                        ));
                    }
                },
            }
        }
    }
    let connect_time = t_connect.elapsed();
    let connected = shared.open.load(Ordering::Relaxed);
    // Let the server's connection goroutines settle into their first read.
    if !shared.stop.load(Ordering::Relaxed) {
        goro::time::sleep(Duration::from_millis(300));
    }
    let rss_connected = shared
        .config
        .server_pid
        .and(rss_bytes(shared.config.server_pid));
    if progress {
        progress_line(&format!(
            "{} connections open in {:.2} s; sending requests for {} s",
            fmt_count(connected as u64),
            connect_time.as_secs_f64(),
            duration.as_secs_f64()
        ));
        if io::stderr().is_terminal() {
            eprintln!();
        }
    }

    // Phase 2: load.
    let t0 = Instant::now();
    let end = t0 + duration;
    let _ = shared.end.set(end);
    drop(start_tx);
    let mut last = (t0, shared.hist.snapshot(), 0u64);
    loop {
        let now = Instant::now();
        if now >= end || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        goro::select! {
            recv(tick) -> _ => {},
            recv(stop_rx) -> _ => break,
            default(end - now) => {},
        }
        if !progress {
            continue;
        }
        let now = Instant::now();
        let snap = shared.hist.snapshot();
        let delta = snap.since(&last.1);
        let count = snap.count();
        let rate = (count - last.2) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        let mut line = format!(
            "[{:>4.1}s] {:>9} req/s  p50 {:>8}  p99 {:>8}  conns {}  errors {}",
            now.duration_since(t0).as_secs_f64(),
            fmt_count(rate.round() as u64),
            fmt_latency(delta.quantile(0.5)),
            fmt_latency(delta.quantile(0.99)),
            fmt_count(shared.open.load(Ordering::Relaxed) as u64),
            fmt_count(shared.error_total.load(Ordering::Relaxed))
        );
        if shared.has_stats.load(Ordering::Relaxed) {
            let _ = write!(
                line,
                "  server goroutines {}",
                fmt_count(shared.goroutines.load(Ordering::Relaxed) as u64)
            );
        }
        let rss = shared.server_rss.load(Ordering::Relaxed);
        if rss > 0 {
            let _ = write!(line, "  server RSS {}", fmt_bytes(rss));
        }
        progress_line(&line);
        last = (now, snap, count);
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().min(duration);
    wg.wait();
    drop(stop_sampler);
    let _ = sampler_handle.join();
    if progress && io::stderr().is_terminal() {
        eprintln!();
    }

    let server_rss_peak = shared.server_rss_peak.load(Ordering::Relaxed);
    let client_rss_peak = shared.client_rss_peak.load(Ordering::Relaxed);
    let errors = shared
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Report {
        connections: n,
        connected,
        connect_time,
        elapsed,
        responses: shared.responses.load(Ordering::Relaxed),
        ok: shared.ok.load(Ordering::Relaxed),
        latency: shared.hist.snapshot(),
        errors,
        reconnects: shared.reconnects.load(Ordering::Relaxed),
        peak_server_goroutines: shared
            .has_stats
            .load(Ordering::Relaxed)
            .then(|| shared.peak_goroutines.load(Ordering::Relaxed)),
        server_rss_before: rss_before,
        server_rss_connected: rss_connected,
        server_rss_peak: (server_rss_peak > 0)
            .then_some(server_rss_peak.max(rss_connected.unwrap_or(0))),
        client_rss_peak: (client_rss_peak > 0).then_some(client_rss_peak),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers() {
        let j = "{\"goroutines\":12,\"running\":1,\"by_reason\":{}}";
        assert_eq!(json_number(j, "goroutines"), Some(12));
        assert_eq!(json_number(j, "running"), Some(1));
        assert_eq!(json_number(j, "missing"), None);
    }
}
