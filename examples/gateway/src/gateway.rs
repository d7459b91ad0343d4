//! The gateway: one goro-http server in front of the backends.
//!
//! | path | what the gateway does |
//! |---|---|
//! | `/` | a short index of the routes |
//! | `/dashboard` | **fan-out**: `GET {prefix}summary` (with the request's query) on every upstream at once (an [`errgroup`](goro::errgroup) bound to the request's deadline), answers one JSON object merging them; the first failure cancels the others and answers 502 (504 past the deadline) |
//! | `/debug/`, `/debug/goroutines`, `/debug/stats`, `/metrics` | goro-http's debug endpoints |
//! | an upstream's prefix (`/users/`, ...) | **proxied** to that upstream: method, path, query, headers (hop-by-hop ones dropped) and body; the upstream's answer comes back as it is |
//! | anything else | 404 |
//!
//! Every request gets a **deadline** ([`GatewayConfig::deadline`]): a
//! [`Context`] derived from the request's own (which goro-http cancels when
//! the client goes away); waiting for a backend slot and the backend call
//! both end at it, and the client gets `504 Gateway Timeout`.
//!
//! Each upstream has a **concurrency limit**: a [`Semaphore`] of
//! [`GatewayConfig::upstream_limit`] permits, one held per backend call, so
//! a slow backend queues the gateway's requests for it instead of drowning
//! in them (and its connection pool stays that size).
//!
//! **Retries**: a call that fails with a connection error — nothing could
//! be connected, or the connection closed before the response arrived — is
//! sent once more on a fresh connection if the method is idempotent (`GET`,
//! `HEAD`, `PUT`, `DELETE`, `OPTIONS`, `TRACE`); a non-idempotent one only
//! when nothing was sent (connect failures).
//!
//! **Shutdown**: [`Gateway::shutdown`] is goro-http's graceful shutdown:
//! stop accepting, close idle keep-alive connections, let the requests in
//! flight finish (their backend calls included), then return.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goro::context::{self, Context};
use goro::errgroup::Group;
use goro::sync::Semaphore;
use goro_http::http::header::{self, HeaderName, HeaderValue};
use goro_http::{
    debug, Body, Client, HeaderMap, Method, Request, RequestCtx, Response, Server, ServerHandle,
    StatusCode,
};

/// One backend service behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its name (a key of the fan-out's merged answer).
    pub name: String,
    /// The path prefix routed to it, with leading and trailing `/`
    /// (`/users/`). The path is forwarded unchanged.
    pub prefix: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The backends, by prefix.
    pub upstreams: Vec<Upstream>,
    /// Time allowed for one request through the gateway (504 beyond).
    pub deadline: Duration,
    /// Backend calls in flight per upstream, at most.
    pub upstream_limit: usize,
    /// Whether the gateway's server watches each connection while its
    /// request runs, so that a client that goes away cancels the request's
    /// backend calls at once (goro-http's `detect_disconnect`; costs one
    /// short-lived goroutine per request).
    pub detect_disconnect: bool,
}

impl GatewayConfig {
    /// The defaults for `upstreams`: 5 s deadline, 256 calls per upstream,
    /// disconnect detection on.
    pub fn new(upstreams: Vec<Upstream>) -> GatewayConfig {
        GatewayConfig {
            upstreams,
            deadline: Duration::from_secs(5),
            upstream_limit: 256,
            detect_disconnect: true,
        }
    }
}

/// The gateway's counters.
#[derive(Debug, Default)]
struct Counters {
    /// Requests that reached the handler.
    requests: AtomicU64,
    /// Responses the handler returned (any status).
    responses: AtomicU64,
    /// Requests in the handler now.
    in_flight: AtomicUsize,
    /// Backend calls sent a second time after a connection error.
    retries: AtomicU64,
    /// Requests answered 504.
    timeouts: AtomicU64,
    /// Requests answered 502.
    bad_gateway: AtomicU64,
    /// Fan-out requests.
    fanouts: AtomicU64,
}

/// A snapshot of the gateway's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayStats {
    /// Requests that reached the handler.
    pub requests: u64,
    /// Responses the handler returned (any status).
    pub responses: u64,
    /// Requests in the handler now.
    pub in_flight: usize,
    /// Backend calls sent a second time after a connection error.
    pub retries: u64,
    /// Requests answered `504 Gateway Timeout`.
    pub timeouts: u64,
    /// Requests answered `502 Bad Gateway`.
    pub bad_gateway: u64,
    /// Fan-out requests.
    pub fanouts: u64,
}

/// An upstream with its limit.
#[derive(Debug)]
struct Route {
    /// Name, prefix, address.
    upstream: Upstream,
    /// `http://addr`, the start of every URL sent to it.
    base: String,
    /// One permit per backend call in flight.
    slots: Semaphore,
}

/// What the handler and the handles share.
#[derive(Debug)]
struct Inner {
    /// The routes, in configuration order.
    routes: Vec<Arc<Route>>,
    /// Request deadline.
    deadline: Duration,
    /// The client for backend calls (pooled keep-alive connections).
    client: Client,
    /// Counters.
    counters: Counters,
}

/// A running gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Routes, client, counters.
    inner: Arc<Inner>,
    /// The server.
    handle: ServerHandle,
}

/// Why a backend call failed.
#[derive(Debug)]
enum CallError {
    /// The request's deadline passed.
    Timeout,
    /// The request was cancelled (its client went away).
    Canceled,
    /// The backend could not be reached or broke the connection, or its
    /// answer was not valid HTTP.
    Upstream(String),
    /// The backend answered with a status that is not a success
    /// (fan-out only: a proxied request passes it on).
    Status(String, StatusCode),
}

impl CallError {
    /// The gateway's answer for this failure.
    fn response(&self, counters: &Counters) -> Response<Body> {
        let (status, text) = match self {
            CallError::Timeout => {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
                (StatusCode::GATEWAY_TIMEOUT, "deadline exceeded".to_string())
            }
            CallError::Canceled => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request canceled".to_string(),
            ),
            CallError::Upstream(e) => {
                counters.bad_gateway.fetch_add(1, Ordering::Relaxed);
                (StatusCode::BAD_GATEWAY, e.clone())
            }
            CallError::Status(name, s) => {
                counters.bad_gateway.fetch_add(1, Ordering::Relaxed);
                (StatusCode::BAD_GATEWAY, format!("{name} answered {s}"))
            }
        };
        text_response(status, &text)
    }
}

/// The error for a context that ended.
fn ctx_error(e: context::Error) -> CallError {
    match e {
        context::Error::DeadlineExceeded => CallError::Timeout,
        _ => CallError::Canceled,
    }
}

/// A plain-text response.
fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{text}\n")))
        .expect("valid response")
}

/// Headers that describe one connection, not the message: never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Copies the end-to-end headers of `from`, minus those goro-http sets
/// itself on the way out.
fn forward_headers(from: &HeaderMap, skip_host: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if hop_by_hop(name)
            || name == header::CONTENT_LENGTH
            || (skip_host && name == header::HOST)
            || name == header::DATE
            || name == header::SERVER
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Whether a request with `method` may be sent twice.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

impl Inner {
    /// Calls `route` with `method path` (path and query), `headers` and
    /// `body`, bounded by `ctx`: waits for one of the route's slots, sends,
    /// retries once on a connection error when allowed.
    fn call(
        &self,
        ctx: &Context,
        route: &Route,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &Body,
    ) -> Result<Response<Body>, CallError> {
        route.slots.acquire_ctx(ctx, 1).map_err(ctx_error)?;
        let _slot = Slot(&route.slots);
        let url = format!("{}{}", route.base, path);
        for attempt in 0..2 {
            let mut req = Request::new(body_copy(body));
            *req.method_mut() = method.clone();
            *req.uri_mut() = url
                .parse()
                .map_err(|_| CallError::Upstream(format!("bad path {path}")))?;
            *req.headers_mut() = headers.clone();
            match self.client.request_ctx(ctx, req) {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_timeout() || e.is_canceled() => {
                    return Err(ctx_error(
                        ctx.err().unwrap_or(context::Error::DeadlineExceeded),
                    ))
                }
                Err(e)
                    if attempt == 0
                        && (e.is_connect() || (e.is_closed() && idempotent(method))) =>
                {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(CallError::Upstream(format!("{}: {e}", route.upstream.name))),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Proxies `req` to `route`.
    fn proxy(
        &self,
        ctx: &Context,
        route: &Route,
        req: Request<Body>,
        client: SocketAddr,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut headers = forward_headers(&parts.headers, true);
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) => format!("{prev}, {}", client.ip()),
            None => client.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", v);
        }
        match self.call(ctx, route, &parts.method, &path, &headers, &body) {
            Ok(resp) => {
                let (rparts, rbody) = resp.into_parts();
                let mut out = Response::new(rbody);
                *out.status_mut() = rparts.status;
                *out.headers_mut() = forward_headers(&rparts.headers, false);
                out
            }
            Err(e) => e.response(&self.counters),
        }
    }

    /// The fan-out: every upstream's summary at once, merged.
    fn fanout(self: &Arc<Self>, ctx: &Context, query: Option<&str>) -> Response<Body> {
        self.counters.fanouts.fetch_add(1, Ordering::Relaxed);
        let (group, gctx) = Group::<CallError>::with_context(ctx);
        let parts: Arc<Mutex<Vec<Option<String>>>> =
            Arc::new(Mutex::new(vec![None; self.routes.len()]));
        let query = query.map(str::to_string);
        for (i, route) in self.routes.iter().enumerate() {
            let (me, route, gctx, parts, query) = (
                self.clone(),
                route.clone(),
                gctx.clone(),
                parts.clone(),
                query.clone(),
            );
            group.go(move || {
                let path = match &query {
                    Some(q) => format!("{}summary?{q}", route.upstream.prefix),
                    None => format!("{}summary", route.upstream.prefix),
                };
                let resp = me.call(
                    &gctx,
                    &route,
                    &Method::GET,
                    &path,
                    &HeaderMap::new(),
                    &Body::empty(),
                )?;
                if !resp.status().is_success() {
                    return Err(CallError::Status(
                        route.upstream.name.clone(),
                        resp.status(),
                    ));
                }
                let text = resp.body().to_str().unwrap_or("null").to_string();
                parts.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(text);
                Ok(())
            });
        }
        if let Err(e) = group.wait() {
            // A sibling's failure cancels the group's context: report the
            // first error, or the deadline if that is what ended it.
            let e = match (e, ctx.err()) {
                (CallError::Canceled, Some(c)) => ctx_error(c),
                (e, _) => e,
            };
            return e.response(&self.counters);
        }
        let parts = parts.lock().unwrap_or_else(|e| e.into_inner());
        let mut json = String::from("{");
        for (i, (route, part)) in self.routes.iter().zip(parts.iter()).enumerate() {
            if i > 0 {
                json.push(',');
            }
            let _ = write!(
                json,
                "\"{}\":{}",
                route.upstream.name,
                part.as_deref().unwrap_or("null")
            );
        }
        json.push('}');
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json))
            .expect("valid response")
    }

    /// The index page.
    fn index(&self) -> Response<Body> {
        let mut s =
            String::from("goro gateway\n\nroutes:\n  /dashboard  fan-out to every backend\n");
        for r in &self.routes {
            let _ = writeln!(
                s,
                "  {:<11} -> {} ({})",
                format!("{}*", r.upstream.prefix),
                r.upstream.name,
                r.upstream.addr
            );
        }
        s.push_str("  /debug/     live runtime page (/debug/goroutines, /debug/stats, /metrics)\n");
        Response::new(Body::from(s))
    }
}

/// Returns a permit to its semaphore when dropped.
struct Slot<'a>(&'a Semaphore);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release(1);
    }
}

/// Decrements the in-flight count when the handler returns.
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.responses.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A copy of an in-memory body (request bodies read by goro-http always
/// are) for one attempt of a backend call.
fn body_copy(body: &Body) -> Body {
    if body.is_empty() {
        Body::empty()
    } else {
        Body::from(body.as_bytes().to_vec())
    }
}

/// The gateway's request handler.
struct Handler(Arc<Inner>);

impl goro_http::Handler for Handler {
    fn handle(&self, req: Request<Body>, rctx: &RequestCtx) -> Response<Body> {
        let inner = &self.0;
        let c = &inner.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(c);
        if let Some(resp) = debug::route(&req) {
            return resp;
        }
        let (ctx, _cancel) = rctx.context().with_timeout(inner.deadline);
        let path = req.uri().path();
        if path == "/" {
            return inner.index();
        }
        if path == "/dashboard" {
            return inner.fanout(&ctx, req.uri().query());
        }
        match inner
            .routes
            .iter()
            .find(|r| path.starts_with(&r.upstream.prefix))
        {
            Some(route) => inner.proxy(&ctx, route, req, rctx.remote_addr()),
            None => text_response(StatusCode::NOT_FOUND, "no route"),
        }
    }
}

impl Gateway {
    /// Starts the gateway on `addr` (`127.0.0.1:0` picks a free port).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub fn start(addr: &str, config: GatewayConfig) -> std::io::Result<Gateway> {
        let limit = config.upstream_limit.max(1);
        let routes = config
            .upstreams
            .into_iter()
            .map(|u| {
                Arc::new(Route {
                    base: format!("http://{}", u.addr),
                    upstream: u,
                    slots: Semaphore::new(limit),
                })
            })
            .collect();
        let inner = Arc::new(Inner {
            routes,
            deadline: config.deadline,
            // One pooled connection per slot: the limit bounds the pool.
            client: Client::builder().max_idle_per_host(limit).build(),
            counters: Counters::default(),
        });
        let handle = Server::builder()
            .read_header_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(120))
            .server_name(Some("goro-gateway"))
            .detect_disconnect(config.detect_disconnect)
            .bind(addr)?
            .serve(Handler(inner.clone()));
        Ok(Gateway { inner, handle })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The server's handle (connection counters, shutdown).
    pub fn server(&self) -> &ServerHandle {
        &self.handle
    }

    /// A snapshot of the gateway's counters.
    pub fn stats(&self) -> GatewayStats {
        let c = &self.inner.counters;
        GatewayStats {
            requests: c.requests.load(Ordering::Relaxed),
            responses: c.responses.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            bad_gateway: c.bad_gateway.load(Ordering::Relaxed),
            fanouts: c.fanouts.load(Ordering::Relaxed),
        }
    }

    /// Graceful shutdown: stops accepting, closes idle connections, waits
    /// for the requests in flight (at most `timeout`), then closes the
    /// pooled backend connections.
    ///
    /// # Errors
    ///
    /// When connections were still open after `timeout` (they were then
    /// force-closed).
    ///
    /// # Blocking
    ///
    /// Parks the calling goroutine until done.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), goro_http::ShutdownError> {
        let r = self.handle.shutdown(timeout);
        self.inner.client.close_idle_connections();
        r
    }
}
