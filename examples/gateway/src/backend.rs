//! The simulated backend services: goro-http servers that answer after a
//! simulated latency, fail at a configurable rate, and count how many
//! requests they serve at once (so a test can see the gateway's
//! per-backend limit at work).
//!
//! A backend answers every `GET` with a small JSON object naming itself
//! and the path. Two query parameters let tests steer one request:
//! `delay_ms=N` replaces the simulated latency, `status=N` forces the
//! status.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro_http::{Body, Request, RequestCtx, Response, Server, ServerHandle, StatusCode};

/// How a backend behaves.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Its name, echoed in its answers (`users`, `orders`, ...).
    pub name: String,
    /// Mean simulated latency; each request waits a uniformly random time
    /// between half and one and a half times this.
    pub latency: Duration,
    /// Fraction of requests (0.0 ..= 1.0) answered `500 Internal Server
    /// Error`.
    pub error_rate: f64,
}

/// Counters of one backend.
#[derive(Debug, Default)]
struct Counters {
    /// Requests received.
    requests: AtomicU64,
    /// Simulated failures answered.
    errors: AtomicU64,
    /// Requests being served now.
    in_flight: AtomicUsize,
    /// Most requests served at once since start (or the last reset).
    peak_in_flight: AtomicUsize,
}

/// A snapshot of a backend's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendStats {
    /// Requests received.
    pub requests: u64,
    /// Simulated failures answered.
    pub errors: u64,
    /// Requests being served now.
    pub in_flight: usize,
    /// Most requests served at once since start (or the last reset).
    pub peak_in_flight: usize,
}

/// A running backend service.
#[derive(Debug)]
pub struct Backend {
    /// Its settings.
    config: BackendConfig,
    /// The server.
    handle: ServerHandle,
    /// Its counters, shared with its handler.
    counters: Arc<Counters>,
}

/// Decrements `in_flight` when a request ends, however it ends.
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A fast, good-enough random number in `[0, 1)`: splitmix64 over a
/// process-wide counter.
pub(crate) fn random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The value of query parameter `key` in `req`'s URI.
fn query_param<'a>(req: &'a Request<Body>, key: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

impl Backend {
    /// Starts a backend on `addr` (`127.0.0.1:0` picks a free port).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub fn start(addr: &str, config: BackendConfig) -> io::Result<Backend> {
        let counters = Arc::new(Counters::default());
        let (c, cfg) = (counters.clone(), config.clone());
        let handle = Server::builder()
            .idle_timeout(Duration::from_secs(120))
            .server_name(None)
            // The gateway watches its own clients; a backend needs no
            // per-request disconnect watcher.
            .detect_disconnect(false)
            .bind(addr)?
            .serve(move |req: Request<Body>, _ctx: &RequestCtx| handle(&cfg, &c, &req));
        Ok(Backend {
            config,
            handle,
            counters,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.handle.local_addr()
    }

    /// A snapshot of its counters.
    pub fn stats(&self) -> BackendStats {
        let c = &self.counters;
        BackendStats {
            requests: c.requests.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            peak_in_flight: c.peak_in_flight.load(Ordering::Relaxed),
        }
    }

    /// Resets the peak of concurrent requests to the current number.
    pub fn reset_peak(&self) {
        let c = &self.counters;
        c.peak_in_flight
            .store(c.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The server's handle (counters, shutdown).
    pub fn server(&self) -> &ServerHandle {
        &self.handle
    }

    /// Shuts it down gracefully, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// When connections were still open after `timeout`.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), goro_http::ShutdownError> {
        self.handle.shutdown(timeout)
    }
}

/// Answers one request.
fn handle(cfg: &BackendConfig, c: &Counters, req: &Request<Body>) -> Response<Body> {
    c.requests.fetch_add(1, Ordering::Relaxed);
    let now = c.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    c.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    let _guard = InFlight(c);

    let delay = match query_param(req, "delay_ms").and_then(|v| v.parse::<u64>().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => cfg.latency.mul_f64(0.5 + random()),
    };
    if !delay.is_zero() {
        goro::time::sleep(delay);
    }
    let forced = query_param(req, "status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let status = match forced {
        Some(s) => s,
        None if cfg.error_rate > 0.0 && random() < cfg.error_rate => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        None => StatusCode::OK,
    };
    let body = if status.is_success() {
        format!(
            "{{\"service\":\"{}\",\"path\":\"{}\"}}",
            cfg.name,
            req.uri().path()
        )
    } else {
        c.errors.fetch_add(1, Ordering::Relaxed);
        format!(
            "{{\"service\":\"{}\",\"error\":\"simulated failure\"}}",
            cfg.name
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("valid response")
}
