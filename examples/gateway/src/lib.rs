//! # gateway — an API gateway on goroutines, and a load generator for it
//!
//! goro's flagship demo: three backend services and a gateway in front of
//! them, all goro-http servers in one process, driven by 10,000 concurrent
//! keep-alive connections from a load generator in a child process. Every
//! connection and every request is a goroutine running plain blocking code.
//!
//! ```text
//!   load generator (child process, --loadgen)
//!        │ 10,000 keep-alive connections
//!        ▼
//!   gateway :port ── /users/*      ──▶ users backend      (latency, error rate)
//!        │         ── /orders/*     ──▶ orders backend
//!        │         ── /inventory/*  ──▶ inventory backend
//!        │         ── /dashboard    ──▶ all three at once (errgroup), merged
//!        └── /debug/, /debug/goroutines, /debug/stats, /metrics
//! ```
//!
//! - [`backend`]: the simulated services.
//! - [`gateway`]: routing, fan-out, deadline, per-backend limit, retry,
//!   graceful shutdown.
//! - [`loadgen`]: the load generator and its report.
//! - [`hist`]: the latency histogram.
//! - [`sys`]: memory and open-file limits, read from `/proc`.
//!
//! [`Stack`] starts the whole thing in-process, as the binary and the tests
//! do.

#![forbid(unsafe_code)]

pub mod backend;
pub mod gateway;
pub mod hist;
pub mod loadgen;
pub mod sys;

use std::time::Duration;

use backend::{Backend, BackendConfig};
use gateway::{Gateway, GatewayConfig, Upstream};

/// Counts goro's stuck-worker reports instead of printing each (they would
/// break the live progress line); returns the counter. A report means a
/// goroutine held its worker for 10 ms or more without parking: on a busy
/// machine, usually because the OS preempted the worker thread.
pub fn count_stall_reports() -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = n.clone();
    goro::debug::set_stall_hook(move |_| {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    n
}

/// The backend services the demo runs, by name; each gets the prefix
/// `/{name}/`.
pub const SERVICES: [&str; 3] = ["users", "orders", "inventory"];

/// Settings of a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The gateway's address (`127.0.0.1:0`: any free port).
    pub listen: String,
    /// Mean simulated backend latency.
    pub latency: Duration,
    /// Fraction of backend answers that are simulated failures.
    pub error_rate: f64,
    /// The gateway's per-request deadline.
    pub deadline: Duration,
    /// Backend calls in flight per backend, at most.
    pub upstream_limit: usize,
    /// The gateway's disconnect detection (see
    /// [`GatewayConfig::detect_disconnect`]).
    pub detect_disconnect: bool,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            listen: "127.0.0.1:0".into(),
            latency: Duration::from_millis(1),
            error_rate: 0.0,
            deadline: Duration::from_secs(5),
            upstream_limit: 256,
            detect_disconnect: true,
        }
    }
}

/// The backends and the gateway, running.
#[derive(Debug)]
pub struct Stack {
    /// The backends, in [`SERVICES`] order.
    pub backends: Vec<Backend>,
    /// The gateway in front of them.
    pub gateway: Gateway,
}

impl Stack {
    /// Starts the backends on free loopback ports, then the gateway.
    ///
    /// # Errors
    ///
    /// When an address cannot be bound.
    pub fn start(config: &StackConfig) -> std::io::Result<Stack> {
        let mut backends = Vec::new();
        for name in SERVICES {
            backends.push(Backend::start(
                "127.0.0.1:0",
                BackendConfig {
                    name: name.to_string(),
                    latency: config.latency,
                    error_rate: config.error_rate,
                },
            )?);
        }
        let upstreams = backends
            .iter()
            .map(|b| Upstream {
                name: b.name().to_string(),
                prefix: format!("/{}/", b.name()),
                addr: b.addr(),
            })
            .collect();
        let gateway = Gateway::start(
            &config.listen,
            GatewayConfig {
                deadline: config.deadline,
                upstream_limit: config.upstream_limit,
                detect_disconnect: config.detect_disconnect,
                ..GatewayConfig::new(upstreams)
            },
        )?;
        Ok(Stack { backends, gateway })
    }

    /// Graceful shutdown: the gateway first (draining its requests in
    /// flight, which need the backends), then the backends.
    ///
    /// # Errors
    ///
    /// The gateway's shutdown error, if it ran out of time.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), goro_http::ShutdownError> {
        let r = self.gateway.shutdown(timeout);
        for b in &self.backends {
            let _ = b.shutdown(timeout);
        }
        r
    }
}
