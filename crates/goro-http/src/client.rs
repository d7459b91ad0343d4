//! The HTTP/1.1 client: pooled keep-alive connections per `host:port`,
//! timeouts and cancellation through [`Context`].
//!
//! # How a request runs
//!
//! 1. The deadline is the earlier of the client's [`timeout`] and the
//!    context's deadline; it becomes the socket's read and write deadline,
//!    so connect, write and read all stop at it.
//! 2. A connection comes from the pool (most recently used first; ones idle
//!    longer than [`idle_timeout`] are dropped) or is dialled.
//! 3. With a context, a [`context::after_func`] registration (no goroutine
//!    until the context ends; none at all for a context that cannot end)
//!    moves the socket's deadlines to now if the context ends first:
//!    whatever read or write the request is blocked in fails at once, a
//!    connection it touched is not pooled again, and the error says
//!    [`is_canceled`](Error::is_canceled) or
//!    [`is_timeout`](Error::is_timeout) after the context's error.
//! 4. The response is read whole (Content-Length, chunked, or until close),
//!    bounded by [`max_response_body_bytes`]. A connection whose response
//!    was framed and did not say `Connection: close` goes back to the pool.
//!
//! Retries are the caller's business, with one exception that only a
//! transport can handle: a *reused* keep-alive connection that the server
//! closed while it sat in the pool fails before any response byte arrives;
//! an idempotent request with an in-memory body is then sent once more on a
//! fresh connection, as Go's transport does.
//!
//! [`timeout`]: ClientBuilder::timeout
//! [`idle_timeout`]: ClientBuilder::idle_timeout
//! [`max_response_body_bytes`]: ClientBuilder::max_response_body_bytes

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use goro::context::{self, Context};
use goro::net::TcpStream;
use http::header::{HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};

use crate::body::{Body, StreamFn};
use crate::wire::{self, BodyError, ChunkedWriter, Framing, ReadBuf};

/// What went wrong, broadly: see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request cannot be sent: not an `http://` URL, no host, bad
    /// header.
    InvalidRequest,
    /// No connection could be made (refused, unreachable, name not
    /// resolved). Nothing was sent: always safe to retry.
    Connect,
    /// The connection was closed or reset before the whole response
    /// arrived. The server may or may not have acted on the request.
    Closed,
    /// The client's timeout or the context's deadline passed.
    Timeout,
    /// The context was cancelled.
    Canceled,
    /// The server's response is not valid HTTP/1.1.
    InvalidResponse,
    /// The response body is larger than allowed.
    BodyTooLarge,
    /// Another I/O error.
    Io,
}

/// A failed request.
///
/// ```
/// use std::time::Duration;
/// use goro_http::Client;
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// // Nothing listens on this port: a connection error, safe to retry.
/// let port = goro::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
/// let err = Client::new().get(&format!("http://127.0.0.1:{port}/")).unwrap_err();
/// assert!(err.is_connect());
/// # });
/// ```
#[derive(Debug)]
pub struct Error {
    /// The broad reason.
    kind: ErrorKind,
    /// What it is about.
    message: String,
    /// The underlying error, if any.
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    /// A new error.
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A new error with its cause.
    fn with(kind: ErrorKind, message: impl Into<String>, source: io::Error) -> Error {
        Error {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The broad reason.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// No connection could be made; nothing was sent.
    pub fn is_connect(&self) -> bool {
        self.kind == ErrorKind::Connect
    }

    /// The connection was closed or reset before the whole response arrived.
    pub fn is_closed(&self) -> bool {
        self.kind == ErrorKind::Closed
    }

    /// A connection-level failure: [`is_connect`](Self::is_connect) or
    /// [`is_closed`](Self::is_closed). What a gateway retries (the latter
    /// only for idempotent requests).
    pub fn is_connection(&self) -> bool {
        self.is_connect() || self.is_closed()
    }

    /// The client's timeout or the context's deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// The context was cancelled.
    pub fn is_canceled(&self) -> bool {
        self.kind == ErrorKind::Canceled
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Connect => "connect error",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::BodyTooLarge => "response body too large",
            ErrorKind::Io => "I/O error",
        };
        write!(f, "{what}: {}", self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_ref()
            .map(|s| &**s as &(dyn StdError + 'static))
    }
}

/// The client's settings.
#[derive(Debug, Clone)]
struct Config {
    /// Whole-request time limit.
    timeout: Option<Duration>,
    /// Connect time limit.
    connect_timeout: Option<Duration>,
    /// Idle connections kept per `host:port`.
    max_idle_per_host: usize,
    /// How long an idle connection stays in the pool.
    idle_timeout: Option<Duration>,
    /// Largest response body read.
    max_response_body_bytes: usize,
    /// The `User-Agent` sent when a request has none.
    user_agent: Option<HeaderValue>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            timeout: None,
            connect_timeout: Some(Duration::from_secs(30)),
            max_idle_per_host: 32,
            idle_timeout: Some(Duration::from_secs(90)),
            max_response_body_bytes: 64 * 1024 * 1024,
            user_agent: Some(HeaderValue::from_static("goro-http")),
        }
    }
}

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use goro_http::Client;
///
/// let client = Client::builder()
///     .timeout(Duration::from_secs(2))
///     .max_idle_per_host(64)
///     .build();
/// # drop(client);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    /// The settings being built.
    config: Config,
}

impl ClientBuilder {
    /// Time limit of a whole request: connect, send, receive the whole
    /// response. Default: none (a context's deadline still applies).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeout = Some(d);
        self
    }

    /// Time limit of connecting. Default 30 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = Some(d);
        self
    }

    /// Idle keep-alive connections kept per `host:port`; 0 disables
    /// pooling. Default 32.
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.config.max_idle_per_host = n;
        self
    }

    /// How long an idle connection stays in the pool. Default 90 s.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.config.idle_timeout = Some(d);
        self
    }

    /// Largest response body read, in bytes. Default 64 MiB.
    pub fn max_response_body_bytes(mut self, n: usize) -> Self {
        self.config.max_response_body_bytes = n;
        self
    }

    /// The `User-Agent` sent with requests that have none; `None` sends
    /// none. Default `goro-http`.
    ///
    /// # Panics
    ///
    /// When `ua` is not a valid header value.
    pub fn user_agent(mut self, ua: Option<&str>) -> Self {
        self.config.user_agent =
            ua.map(|u| HeaderValue::from_str(u).expect("user_agent: invalid header value"));
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            inner: Arc::new(Inner {
                config: self.config,
                pool: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// An idle pooled connection.
#[derive(Debug)]
struct Idle {
    /// The socket.
    stream: Arc<TcpStream>,
    /// When it went idle.
    since: Instant,
}

/// What the clones of a client share.
#[derive(Debug)]
struct Inner {
    /// Settings.
    config: Config,
    /// Idle connections per `host:port`, most recent last.
    pool: Mutex<HashMap<String, Vec<Idle>>>,
}

/// An HTTP/1.1 client with a pool of keep-alive connections. Cheap to
/// clone: clones share the pool. Plain `http://` only.
///
/// ```
/// use std::time::Duration;
/// use goro::context::Context;
/// use goro_http::{Body, Client, Request, RequestCtx, Response, Server};
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// let handle = Server::bind("127.0.0.1:0").unwrap().serve(|req: Request<Body>, _: &RequestCtx| {
///     Response::new(req.into_body()) // echo
/// });
/// let client = Client::builder().timeout(Duration::from_secs(5)).build();
///
/// let req = Request::post(format!("http://{}/echo", handle.local_addr()))
///     .body(Body::from("ping"))
///     .unwrap();
/// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(1));
/// let resp = client.request_ctx(&ctx, req).unwrap();
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.body().as_bytes(), b"ping");
///
/// drop(client);
/// handle.shutdown(Duration::from_secs(1)).unwrap();
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    /// Settings and pool.
    inner: Arc<Inner>,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

/// Locks a std mutex, ignoring poisoning (nothing panics while holding it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a request goes.
struct Target {
    /// Host, as written in the URL (IPv6 without brackets).
    host: String,
    /// Port.
    port: u16,
    /// The pool key, `host:port`.
    key: String,
    /// The `Host` header value.
    host_header: HeaderValue,
}

/// A failed exchange on one connection.
struct Failure {
    /// The error to report.
    error: Error,
    /// Whether it failed before any response byte (a retry candidate on a
    /// reused connection).
    before_response: bool,
}

impl Client {
    /// A client with the default settings.
    pub fn new() -> Client {
        ClientBuilder::default().build()
    }

    /// A builder for timeouts and pool size.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// `GET url`.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    ///
    /// # Blocking
    ///
    /// Parks the calling goroutine (blocks a plain thread) until the whole
    /// response is read.
    pub fn get(&self, url: &str) -> Result<Response<Body>, Error> {
        let req = Request::get(url)
            .body(Body::empty())
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, e.to_string()))?;
        self.request(req)
    }

    /// Sends `req` (its URI must be an absolute `http://` URL) and reads the
    /// whole response.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    ///
    /// # Blocking
    ///
    /// As [`get`](Self::get).
    pub fn request(&self, req: Request<Body>) -> Result<Response<Body>, Error> {
        self.send(None, req)
    }

    /// Like [`request`](Self::request), bounded by `ctx`: its deadline
    /// limits the request, and cancelling it aborts the request at once
    /// (the connection is closed).
    ///
    /// # Errors
    ///
    /// [`is_canceled`](Error::is_canceled) or
    /// [`is_timeout`](Error::is_timeout) when `ctx` ends first; otherwise
    /// see [`Error`].
    ///
    /// # Blocking
    ///
    /// As [`get`](Self::get).
    pub fn request_ctx(&self, ctx: &Context, req: Request<Body>) -> Result<Response<Body>, Error> {
        self.send(Some(ctx), req)
    }

    /// The idle connections in the pool, all hosts together.
    pub fn idle_connections(&self) -> usize {
        lock(&self.inner.pool).values().map(Vec::len).sum()
    }

    /// Closes every idle connection.
    pub fn close_idle_connections(&self) {
        lock(&self.inner.pool).clear();
    }

    /// The body of `send`.
    fn send(&self, ctx: Option<&Context>, req: Request<Body>) -> Result<Response<Body>, Error> {
        let cfg = &self.inner.config;
        let started = goro::time::now();
        let deadline = earliest(
            cfg.timeout.map(|d| started + d),
            ctx.and_then(Context::deadline),
        );
        if let Some(e) = ctx.and_then(Context::err) {
            return Err(ctx_error(e));
        }
        let (parts, body) = req.into_parts();
        let target = target(&parts.uri)?;
        let method = parts.method.clone();
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(
            parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .as_bytes(),
        );
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let mut headers = parts.headers;
        if !headers.contains_key(HOST) {
            headers.insert(HOST, target.host_header.clone());
        }
        if let Some(ua) = &cfg.user_agent {
            if !headers.contains_key(USER_AGENT) {
                headers.insert(USER_AGENT, ua.clone());
            }
        }
        let body = body.into_kind();
        match &body {
            Ok(b) => {
                headers.remove(TRANSFER_ENCODING);
                if !b.is_empty() || !matches!(method, Method::GET | Method::HEAD) {
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(b.len()));
                }
            }
            Err(_) => {
                headers.remove(CONTENT_LENGTH);
                headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
        }
        let wants_close = wire::connection_has(&headers, "close");
        wire::write_headers(&mut head, &headers);
        head.extend_from_slice(b"\r\n");
        let idempotent = matches!(
            method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        let mut body = Some(body);
        let mut fresh_only = false;
        loop {
            let (stream, reused) = match (!fresh_only).then(|| self.checkout(&target.key)).flatten()
            {
                Some(s) => (s, true),
                None => (
                    Arc::new(connect(&target, deadline, cfg.connect_timeout, ctx)?),
                    false,
                ),
            };
            let replayable = matches!(body, Some(Ok(_)));
            let this_body = match body.take() {
                Some(Ok(b)) => {
                    body = Some(Ok(b.clone()));
                    Ok(b)
                }
                Some(Err(f)) => Err(f),
                None => Ok(Bytes::new()),
            };
            let _ = stream.set_deadline(deadline);
            let canceled = Arc::new(AtomicBool::new(false));
            let watcher = ctx.map(|ctx| watch(ctx, stream.clone(), canceled.clone()));
            let res = exchange(
                &stream,
                &head,
                this_body,
                method == Method::HEAD,
                cfg.max_response_body_bytes,
            );
            if let Some(w) = watcher {
                if !w.stop() {
                    // The context ended: the function ran or is running, and
                    // may yet move this socket's deadlines. Treat it as
                    // canceled (never pooled), whatever the exchange did.
                    canceled.store(true, Ordering::SeqCst);
                }
            }
            match res {
                Ok((resp, reusable)) => {
                    if reusable && !wants_close && !canceled.load(Ordering::SeqCst) {
                        self.checkin(&target.key, stream);
                    }
                    return Ok(resp);
                }
                Err(f) => {
                    if canceled.load(Ordering::SeqCst) {
                        let e = ctx
                            .and_then(Context::err)
                            .unwrap_or(context::Error::Canceled);
                        return Err(ctx_error(e));
                    }
                    if reused
                        && f.before_response
                        && f.error.is_closed()
                        && idempotent
                        && replayable
                        && !fresh_only
                    {
                        fresh_only = true;
                        continue;
                    }
                    return Err(f.error);
                }
            }
        }
    }

    /// Takes the most recently used live idle connection to `key`.
    fn checkout(&self, key: &str) -> Option<Arc<TcpStream>> {
        let cfg = &self.inner.config;
        let mut pool = lock(&self.inner.pool);
        let list = pool.get_mut(key)?;
        while let Some(idle) = list.pop() {
            if cfg
                .idle_timeout
                .is_some_and(|t| goro::time::since(idle.since) >= t)
            {
                continue;
            }
            return Some(idle.stream);
        }
        None
    }

    /// Returns a connection to the pool, if there is room.
    fn checkin(&self, key: &str, stream: Arc<TcpStream>) {
        let cfg = &self.inner.config;
        if cfg.max_idle_per_host == 0 || Arc::strong_count(&stream) != 1 {
            return;
        }
        let _ = stream.set_deadline(None);
        let mut pool = lock(&self.inner.pool);
        let list = pool.entry(key.to_string()).or_default();
        if list.len() < cfg.max_idle_per_host {
            list.push(Idle {
                stream,
                since: goro::time::now(),
            });
        }
    }
}

/// The error for a context that ended.
fn ctx_error(e: context::Error) -> Error {
    match e {
        context::Error::DeadlineExceeded => Error::new(ErrorKind::Timeout, e.to_string()),
        _ => Error::new(ErrorKind::Canceled, e.to_string()),
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where `uri` points.
fn target(uri: &http::Uri) -> Result<Target, Error> {
    let invalid = |m: &str| Error::new(ErrorKind::InvalidRequest, format!("{m}: {uri}"));
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return Err(invalid("only http:// URLs are supported")),
        None => return Err(invalid("the URL must be absolute")),
    }
    let auth = uri.authority().ok_or_else(|| invalid("no host in URL"))?;
    let raw_host = auth.host();
    let host = raw_host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("no host in URL"));
    }
    let port = auth.port_u16().unwrap_or(80);
    let host_header = match auth.port_u16() {
        Some(p) => format!("{raw_host}:{p}"),
        None => raw_host.to_string(),
    };
    Ok(Target {
        host: host.to_string(),
        port,
        key: format!("{raw_host}:{port}"),
        host_header: HeaderValue::from_str(&host_header).map_err(|_| invalid("bad host"))?,
    })
}

/// Dials `target` before `deadline`.
fn connect(
    target: &Target,
    deadline: Option<Instant>,
    connect_timeout: Option<Duration>,
    ctx: Option<&Context>,
) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => goro::net::lookup_host(format!("{}:{}", target.host, target.port))
            .map_err(|e| Error::with(ErrorKind::Connect, format!("resolve {}", target.key), e))?,
    };
    let limit = earliest(deadline, connect_timeout.map(|d| goro::time::now() + d));
    let mut last = None;
    for addr in addrs {
        if let Some(e) = ctx.and_then(Context::err) {
            return Err(ctx_error(e));
        }
        let r = match limit {
            Some(at) => {
                let left = at.saturating_duration_since(goro::time::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, format!("connect {addr}")));
                }
                TcpStream::connect_timeout(&addr, left)
            }
            None => TcpStream::connect(addr),
        };
        match r {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if deadline.is_some_and(|d| goro::time::now() >= d) {
                    return Err(Error::with(
                        ErrorKind::Timeout,
                        format!("connect {addr}"),
                        e,
                    ));
                }
                last = Some(Error::with(
                    ErrorKind::Connect,
                    format!("connect {addr}"),
                    e,
                ));
            }
            Err(e) => {
                last = Some(Error::with(
                    ErrorKind::Connect,
                    format!("connect {addr}"),
                    e,
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(ErrorKind::Connect, format!("no address for {}", target.key))
    }))
}

/// Arranges for the connection to be cut (its deadlines moved to now) when
/// `ctx` ends; `stop` on the result undoes it if that has not happened.
fn watch(ctx: &Context, stream: Arc<TcpStream>, canceled: Arc<AtomicBool>) -> context::AfterFunc {
    context::after_func(ctx, move || {
        canceled.store(true, Ordering::SeqCst);
        let _ = stream.set_deadline(Some(goro::time::now()));
    })
}

/// Maps an I/O error of an exchange.
fn io_failure(e: io::Error, what: &str, before_response: bool) -> Failure {
    let kind = match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::NotConnected => ErrorKind::Closed,
        _ => ErrorKind::Io,
    };
    Failure {
        error: Error::with(kind, what, e),
        before_response,
    }
}

/// Writes the request and reads the response on one connection. Returns the
/// response and whether the connection may be reused.
fn exchange(
    stream: &TcpStream,
    head: &[u8],
    body: Result<Bytes, StreamFn>,
    is_head: bool,
    max_body: usize,
) -> Result<(Response<Body>, bool), Failure> {
    let mut w: &TcpStream = stream;
    let sent = match body {
        Ok(b) if b.len() <= 16 * 1024 => {
            let mut buf = Vec::with_capacity(head.len() + b.len());
            buf.extend_from_slice(head);
            buf.extend_from_slice(&b);
            w.write_all(&buf)
        }
        Ok(b) => w.write_all(head).and_then(|()| w.write_all(&b)),
        Err(f) => {
            let mut bw = BufWriter::with_capacity(8 * 1024, w);
            bw.write_all(head)
                .and_then(|()| {
                    let mut cw = ChunkedWriter::new(&mut bw);
                    f(&mut cw)?;
                    cw.finish()
                })
                .and_then(|()| bw.flush())
        }
    };
    sent.map_err(|e| io_failure(e, "sending the request", true))?;

    let mut rb = ReadBuf::new();
    let mut r: &TcpStream = stream;
    let bad = |m: &str| Failure {
        error: Error::new(ErrorKind::InvalidResponse, m),
        before_response: false,
    };
    loop {
        // Read one response head (skipping 1xx interim responses).
        let (status, version, headers, n) = loop {
            let mut hs = [httparse::EMPTY_HEADER; wire::MAX_HEADERS];
            let mut pr = httparse::Response::new(&mut hs);
            match pr.parse(rb.data()) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = StatusCode::from_u16(pr.code.unwrap_or(0))
                        .map_err(|_| bad("bad status code"))?;
                    let version = if pr.version == Some(0) {
                        Version::HTTP_10
                    } else {
                        Version::HTTP_11
                    };
                    let mut map = HeaderMap::with_capacity(pr.headers.len());
                    for h in pr.headers.iter() {
                        let name = http::header::HeaderName::from_bytes(h.name.as_bytes())
                            .map_err(|_| bad("bad header name"))?;
                        let value = HeaderValue::from_bytes(h.value)
                            .map_err(|_| bad("bad header value"))?;
                        map.append(name, value);
                    }
                    break (status, version, map, n);
                }
                Ok(httparse::Status::Partial) => {
                    if rb.data().len() > 1024 * 1024 {
                        return Err(bad("response head too large"));
                    }
                }
                Err(e) => return Err(bad(&format!("malformed response head: {e}"))),
            }
            let before = rb.is_empty();
            match rb.fill(&mut r) {
                Ok(0) => {
                    return Err(Failure {
                        error: Error::new(
                            ErrorKind::Closed,
                            "connection closed before the response was complete",
                        ),
                        before_response: before,
                    })
                }
                Ok(_) => {}
                Err(e) => return Err(io_failure(e, "reading the response", before)),
            }
        };
        rb.consume(n);
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        let framing = if is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else {
            match wire::framing(&headers) {
                Ok(Some(f)) => f,
                Ok(None) => Framing::Close,
                Err(_) => return Err(bad("bad body framing headers")),
            }
        };
        let body = match wire::read_body(&mut rb, &mut r, framing, max_body) {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Err(Failure {
                    error: Error::new(ErrorKind::BodyTooLarge, format!("over {max_body} bytes")),
                    before_response: false,
                })
            }
            Err(BodyError::Malformed(m)) => return Err(bad(m)),
            Err(BodyError::Io(e)) => return Err(io_failure(e, "reading the response body", false)),
        };
        let reusable = framing != Framing::Close
            && rb.is_empty()
            && match version {
                Version::HTTP_11 => !wire::connection_has(&headers, "close"),
                _ => wire::connection_has(&headers, "keep-alive"),
            };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        return Ok((resp, reusable));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = target(&"http://example.com/x".parse().unwrap()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.key.as_str()),
            ("example.com", 80, "example.com:80")
        );
        assert_eq!(t.host_header, "example.com");
        let t = target(&"http://[::1]:8080/".parse().unwrap()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.host_header, "[::1]:8080");
        assert!(target(&"https://example.com/".parse().unwrap()).is_err());
        assert!(target(&"/relative".parse().unwrap()).is_err());
    }
}
