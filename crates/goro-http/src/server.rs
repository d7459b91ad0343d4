//! The HTTP/1.1 server: one goroutine per connection, plain blocking
//! handlers, Go-style deadlines, graceful shutdown.
//!
//! # Vocabulary
//!
//! - The **accept loop** is one goroutine that accepts connections and
//!   starts a **connection goroutine** for each.
//! - A connection goroutine reads a request head, reads the body into
//!   memory, calls the [`Handler`], writes the response, and starts over
//!   (keep-alive). Pipelined requests wait in its read buffer, so responses
//!   go out in request order by construction.
//! - While the handler runs, an optional **watcher** goroutine reads the
//!   socket: end of stream means the client went away, and the request's
//!   [`Context`] is cancelled; bytes are the next pipelined request, kept
//!   for later. The watcher starts only once the handler has run for
//!   `WATCH_AFTER` (1 ms, a `time::after_func`), so a quick handler costs one
//!   timer armed and stopped rather than a goroutine started, woken and
//!   joined (which, on a busy server, made tail latency 5x worse). The
//!   connection goroutine stops a started watcher by moving the read
//!   deadline to now, and waits for its verdict.
//!
//! # Connection states and shutdown
//!
//! Each connection has a [`ConnState`] behind a small mutex:
//!
//! | state | meaning | set by |
//! |---|---|---|
//! | `Idle` | waiting for the first byte of a request | connection goroutine, after checking the shutdown flag under the lock |
//! | `Active` | reading a request, running its handler or writing its response | connection goroutine, when bytes arrive |
//! | `Closing` | shutdown asked an idle connection to close | [`ServerHandle::shutdown`] |
//!
//! `shutdown` sets the server's flag first, then marks every `Idle`
//! connection `Closing` and moves its read deadline to now — *while holding
//! that connection's lock*. A connection going idle checks the flag under
//! the same lock, so either it sees the flag or shutdown sees it idle: none
//! is missed. A connection woken by shutdown that finds bytes after all
//! serves that request (with `Connection: close`): the bytes arrived, so the
//! request was accepted and is not dropped. An active connection finishes
//! its request, answers with `Connection: close`, and exits.
//!
//! Every connection goroutine (and the accept loop) holds a clone of one
//! `Sender<()>`; the channel closes when the last of them returns, which is
//! what `shutdown` waits for, bounded by its timeout. Past the timeout every
//! connection is force-closed and every request context cancelled.
//!
//! # Contexts
//!
//! A server-wide root context (cancelled by a shutdown that runs out of
//! time) has one child per connection, which has one child per request
//! (with the handler timeout as its deadline). A request's context is
//! cancelled by the watcher when the client goes away, and always once its
//! response is written.
//!
//! # Which deadline applies when
//!
//! | phase | read side | write side |
//! |---|---|---|
//! | waiting for a connection's first request | `read_header_timeout` from accept | — |
//! | waiting for a later request | `idle_timeout` | — |
//! | reading a head | `read_header_timeout` from its first byte (and `read_timeout`) | — |
//! | reading a body | `read_timeout` from the head's first byte; each read also within `idle_timeout` | — |
//! | handler running | none (the watcher blocks until stopped) | — |
//! | writing a response or `100 Continue` | — | `write_timeout`; each write also within `idle_timeout` |
//!
//! # Rejected alternatives
//!
//! - A `WaitGroup` for shutdown: it cannot be waited on with a timeout,
//!   and shutdown is bounded; the closing channel can.
//! - Waiting for readability instead of reading, for the watcher and for
//!   idle connections: goro's sockets offer no readiness wait, so the
//!   watcher reads into a small buffer and hands what it read back.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use goro::chan::{self, Receiver, RecvTimeoutError, Sender};
use goro::context::{CancelFunc, Context};
use goro::net::{TcpListener, TcpStream};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, EXPECT, HOST, SERVER,
    TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use crate::body::Body;
use crate::wire::{self, BodyError, ChunkedWriter, Framing, FramingError, ReadBuf};

/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that closing does not reset the connection
/// before the client has read the response.
const LINGER: Duration = Duration::from_millis(500);
/// The read buffer of a connection waiting for its next request: most
/// requests fit, and idle connections are what there are 10,000 of.
const IDLE_BUF: usize = 1024;
/// The most bytes discarded while lingering.
const LINGER_BYTES: usize = 256 * 1024;

/// Answers requests: implemented for every
/// `Fn(Request<Body>, &RequestCtx) -> Response<Body> + Send + Sync + 'static`.
///
/// A handler runs in its connection's goroutine and may block freely
/// (channels, sockets, `goro::time::sleep`, client calls). A panic is
/// caught: the client gets `500 Internal Server Error` and the connection
/// is closed; the server carries on.
///
/// ```
/// use goro_http::{Body, Handler, Request, RequestCtx, Response};
///
/// struct Hello;
/// impl Handler for Hello {
///     fn handle(&self, req: Request<Body>, _ctx: &RequestCtx) -> Response<Body> {
///         Response::new(Body::from(format!("hello, {}", req.uri().path())))
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. `ctx` carries the request's [`Context`],
    /// cancelled when the client goes away, when the server's handler
    /// timeout passes, or when a shutdown gives up waiting.
    fn handle(&self, req: Request<Body>, ctx: &RequestCtx) -> Response<Body>;
}

impl<F> Handler for F
where
    F: Fn(Request<Body>, &RequestCtx) -> Response<Body> + Send + Sync + 'static,
{
    fn handle(&self, req: Request<Body>, ctx: &RequestCtx) -> Response<Body> {
        self(req, ctx)
    }
}

/// Returns `f` as a [`Handler`]: lets a closure's argument types be
/// inferred, so `|req, ctx| ..` needs no annotations.
///
/// ```
/// use goro_http::{handler_fn, Body, Response, Server};
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// let handle = Server::bind("127.0.0.1:0").unwrap().serve(handler_fn(|req, ctx| {
///     Response::new(Body::from(format!("{} from {}", req.uri(), ctx.remote_addr())))
/// }));
/// handle.shutdown(std::time::Duration::from_secs(1)).unwrap();
/// # });
/// ```
pub fn handler_fn<F>(f: F) -> F
where
    F: Fn(Request<Body>, &RequestCtx) -> Response<Body> + Send + Sync + 'static,
{
    f
}

/// What a handler knows about its request besides the request itself.
#[derive(Debug)]
pub struct RequestCtx {
    /// The request's context.
    ctx: Context,
    /// The client's address.
    remote: SocketAddr,
    /// The server's address on this connection.
    local: SocketAddr,
    /// The connection's number, unique within the server.
    conn_id: u64,
    /// How many requests this connection carried before this one.
    seq: u64,
}

impl RequestCtx {
    /// The request's context: cancelled when the client closes the
    /// connection, when the server's [`handler_timeout`] passes, or when a
    /// shutdown runs out of time. Pass it to client calls and `select!` on
    /// [`done()`](Context::done) in long work.
    ///
    /// [`handler_timeout`]: ServerBuilder::handler_timeout
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The server's address on this connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connection's number, unique within this server (starting at 1).
    pub fn connection_id(&self) -> u64 {
        self.conn_id
    }

    /// How many requests this connection carried before this one (0 for
    /// the first): greater than 0 means keep-alive reused the connection.
    pub fn request_index(&self) -> u64 {
        self.seq
    }
}

/// The server's settings.
#[derive(Debug, Clone)]
struct Config {
    /// Time allowed to read a request head, from its first byte (or from
    /// accept, for a connection's first request).
    read_header_timeout: Option<Duration>,
    /// Time allowed to read a whole request, head and body.
    read_timeout: Option<Duration>,
    /// Time allowed to write a response.
    write_timeout: Option<Duration>,
    /// Time a keep-alive connection may wait for its next request.
    idle_timeout: Option<Duration>,
    /// Deadline of each request's context.
    handler_timeout: Option<Duration>,
    /// Largest request head accepted (431 beyond).
    max_header_bytes: usize,
    /// Largest request body accepted (413 beyond).
    max_body_bytes: usize,
    /// The `Server` header sent, if any.
    server_name: Option<HeaderValue>,
    /// Whether a watcher goroutine detects clients going away mid-request.
    detect_disconnect: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            read_header_timeout: Some(Duration::from_secs(10)),
            read_timeout: None,
            write_timeout: None,
            idle_timeout: Some(Duration::from_secs(120)),
            handler_timeout: None,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            server_name: Some(HeaderValue::from_static("goro-http")),
            detect_disconnect: true,
        }
    }
}

/// Configures a [`Server`]: timeouts and limits.
///
/// ```
/// use std::time::Duration;
/// use goro_http::{Body, Response, Server};
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// let server = Server::builder()
///     .read_header_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(60))
///     .max_body_bytes(1 << 20)
///     .bind("127.0.0.1:0")
///     .unwrap();
/// let handle = server.serve(|_req, _ctx: &goro_http::RequestCtx| Response::new(Body::from("ok")));
/// handle.shutdown(Duration::from_secs(1)).unwrap();
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    /// The settings being built.
    config: Config,
}

impl ServerBuilder {
    /// Time allowed to read a request's head, counted from its first byte
    /// (from accept for a connection's first request). Past it the client
    /// gets `408 Request Timeout` if it sent part of a head, and the
    /// connection is closed: the defence against slowloris. Default 10 s.
    pub fn read_header_timeout(mut self, d: Duration) -> Self {
        self.config.read_header_timeout = Some(d);
        self
    }

    /// Time allowed to read a whole request, head and body, from its first
    /// byte (Go's `ReadTimeout`). Default: none.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.config.read_timeout = Some(d);
        self
    }

    /// Time allowed to write a response (Go's `WriteTimeout`, counted from
    /// the moment the handler returns). Default: none.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.config.write_timeout = Some(d);
        self
    }

    /// Time a keep-alive connection may wait for its next request before it
    /// is closed; also the longest a request body or a response write may
    /// go without progress when no read or write timeout is set. Default
    /// 120 s.
    ///
    /// # Panics
    ///
    /// When `d` is zero.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        assert!(!d.is_zero(), "idle_timeout must not be zero");
        self.config.idle_timeout = Some(d);
        self
    }

    /// Deadline of each request's [`Context`], counted from the end of its
    /// head. The handler decides what to do when it passes (a gateway
    /// answers 504). Default: none.
    pub fn handler_timeout(mut self, d: Duration) -> Self {
        self.config.handler_timeout = Some(d);
        self
    }

    /// Largest request head, request line and headers, in bytes; beyond it
    /// (or beyond 100 headers) the client gets `431 Request Header Fields
    /// Too Large`. Default 64 KiB.
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.config.max_header_bytes = n;
        self
    }

    /// Largest request body, in bytes; beyond it the client gets `413
    /// Content Too Large` (before `100 Continue`, when it asked). Default
    /// 10 MiB.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.config.max_body_bytes = n;
        self
    }

    /// The `Server` header added to responses that have none; `None` sends
    /// none. Default `goro-http`.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header value.
    pub fn server_name(mut self, name: Option<&str>) -> Self {
        self.config.server_name =
            name.map(|n| HeaderValue::from_str(n).expect("server_name: invalid header value"));
        self
    }

    /// Whether to watch each connection while its handler runs, so that the
    /// request's [`Context`] is cancelled as soon as the client goes away
    /// (Go's behaviour). Costs one short-lived goroutine per request. A
    /// client that half-closes its side after sending a request looks gone
    /// too; turn this off for such clients. Default `true`.
    pub fn detect_disconnect(mut self, on: bool) -> Self {
        self.config.detect_disconnect = on;
        self
    }

    /// Binds a listener on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// What binding the socket reports.
    pub fn bind<A: ToSocketAddrs>(self, addr: A) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(self.listener(listener))
    }

    /// A server on an existing listener.
    pub fn listener(self, listener: TcpListener) -> Server {
        Server {
            listener,
            config: self.config,
        }
    }

    /// Shorthand for `self.listener(listener).serve(handler)`.
    pub fn serve<H: Handler>(self, listener: TcpListener, handler: H) -> ServerHandle {
        self.listener(listener).serve(handler)
    }
}

/// An HTTP/1.1 server bound to a socket, not serving yet.
///
/// ```
/// use std::time::Duration;
/// use goro_http::{Body, Client, Request, RequestCtx, Response, Server};
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// let server = Server::bind("127.0.0.1:0").unwrap();
/// let addr = server.local_addr().unwrap();
/// let handle = server.serve(|req: Request<Body>, _ctx: &RequestCtx| {
///     Response::new(Body::from(format!("you asked for {}", req.uri().path())))
/// });
///
/// let client = Client::new();
/// let resp = client.get(&format!("http://{addr}/hello")).unwrap();
/// assert_eq!(resp.body().to_str().unwrap(), "you asked for /hello");
///
/// drop(client);
/// handle.shutdown(Duration::from_secs(1)).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct Server {
    /// The listening socket.
    listener: TcpListener,
    /// Timeouts and limits.
    config: Config,
}

impl Server {
    /// A builder for timeouts and limits.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Binds `addr` with the default settings.
    ///
    /// # Errors
    ///
    /// What binding the socket reports.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<Server> {
        ServerBuilder::default().bind(addr)
    }

    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// What the socket reports.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts serving: the accept loop runs in its own goroutine and this
    /// returns at once. The server runs until [`ServerHandle::shutdown`]
    /// (dropping the handle does not stop it).
    ///
    /// # Panics
    ///
    /// When the listener's address cannot be read.
    pub fn serve<H: Handler>(self, handler: H) -> ServerHandle {
        let local_addr = self.listener.local_addr().expect("listener address");
        let (root_ctx, root_cancel) = Context::background().with_cancel();
        let (done_tx, done_rx) = chan::bounded::<()>(1);
        let listener = Arc::new(self.listener);
        let shared = Arc::new(Shared {
            config: self.config,
            handler: Box::new(handler),
            listener: Mutex::new(Some(listener.clone())),
            local_addr,
            shutting_down: AtomicBool::new(false),
            root_ctx,
            root_cancel: Mutex::new(Some(root_cancel)),
            conns: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            done_rx,
        });
        let s = shared.clone();
        drop(
            goro::Builder::new()
                .name("goro-http accept")
                .spawn(move || {
                    accept_loop(&s, &listener, &done_tx);
                    // Close the socket before reporting the loop done, so a
                    // finished shutdown means new connections are refused.
                    drop(listener);
                    drop(done_tx);
                })
                .expect("spawn the accept loop"),
        );
        ServerHandle { shared }
    }
}

/// What the accept loop, the connections and the handles share.
struct Shared {
    /// Timeouts and limits.
    config: Config,
    /// The user's handler.
    handler: Box<dyn Handler>,
    /// The listening socket, shared with the accept loop until shutdown
    /// takes it: shutdown moves its deadline to now and drops its
    /// reference, so the socket closes when the accept loop returns and
    /// new connections are refused rather than left in the backlog.
    listener: Mutex<Option<Arc<TcpListener>>>,
    /// Its address.
    local_addr: SocketAddr,
    /// Set once by `shutdown`, before any connection is told to close.
    shutting_down: AtomicBool,
    /// Parent of every request context; cancelled when shutdown gives up.
    root_ctx: Context,
    /// Cancels `root_ctx`.
    root_cancel: Mutex<Option<CancelFunc>>,
    /// Open connections by id. Lock order: this map, then a connection's
    /// state; never the other way round.
    conns: Mutex<HashMap<u64, Arc<ConnShared>>>,
    /// The next connection id.
    next_conn_id: AtomicU64,
    /// Connections accepted since start.
    accepted: AtomicU64,
    /// Connections open now.
    open: AtomicUsize,
    /// Responses started since start.
    requests: AtomicU64,
    /// Handlers running now.
    active: AtomicUsize,
    /// Closed when the accept loop and every connection goroutine returned.
    done_rx: Receiver<()>,
}

/// The state of one connection, as shutdown sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Waiting for the first byte of a request.
    Idle,
    /// Reading a request, running its handler or writing its response.
    Active,
    /// Told by shutdown to close (its read deadline was moved to now).
    Closing,
}

/// One connection, as shared with shutdown.
struct ConnShared {
    /// The socket (also held by its goroutine and the watcher).
    stream: Arc<TcpStream>,
    /// See the module doc. Held only for a few instructions, never across a
    /// blocking call.
    state: Mutex<ConnState>,
}

/// Locks a std mutex, ignoring poisoning (no code panics while holding one).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters of a running server, from [`ServerHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// Requests answered since start, error responses included (counted as
    /// the response starts going out).
    pub requests_served: u64,
    /// Handlers running now.
    pub active_requests: usize,
}

/// [`ServerHandle::shutdown`] ran out of time: the connections still open
/// were force-closed and their request contexts cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownError {
    /// Connections still open when the timeout passed.
    pub open_connections: usize,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "graceful shutdown timed out with {} connection(s) open; they were closed",
            self.open_connections
        )
    }
}

impl std::error::Error for ShutdownError {}

/// Controls a running server: address, counters, shutdown. Cloning gives
/// another handle to the same server.
///
/// ```
/// use std::time::Duration;
/// use goro_http::{Body, Client, Response, Server};
///
/// # goro::Runtime::builder().build().unwrap().block_on(|| {
/// let handle = Server::bind("127.0.0.1:0").unwrap()
///     .serve(|_req, _ctx: &goro_http::RequestCtx| Response::new(Body::from("hi")));
/// let url = format!("http://{}/", handle.local_addr());
/// let client = Client::new();
/// client.get(&url).unwrap();
/// client.get(&url).unwrap();
/// let stats = handle.stats();
/// assert_eq!(stats.requests_served, 2);
/// assert_eq!(stats.connections_accepted, 1); // keep-alive
/// drop(client);
/// handle.shutdown(Duration::from_secs(1)).unwrap();
/// # });
/// ```
#[derive(Clone)]
#[must_use = "the server runs until `shutdown` is called"]
pub struct ServerHandle {
    /// The server's state.
    shared: Arc<Shared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.shared.local_addr)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> ServerStats {
        let s = &self.shared;
        ServerStats {
            connections_accepted: s.accepted.load(Ordering::Relaxed),
            open_connections: s.open.load(Ordering::Relaxed),
            requests_served: s.requests.load(Ordering::Relaxed),
            active_requests: s.active.load(Ordering::Relaxed),
        }
    }

    /// Whether `shutdown` has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// A context cancelled when shutdown gives up waiting (every request
    /// context descends from it).
    pub fn context(&self) -> &Context {
        &self.shared.root_ctx
    }

    /// Waits until the server has stopped: a [`shutdown`](Self::shutdown)
    /// (from another handle, a signal handler, ...) has run and every
    /// connection is closed.
    ///
    /// # Blocking
    ///
    /// Parks the calling goroutine (blocks a plain thread).
    pub fn wait(&self) {
        while self.shared.done_rx.recv().is_ok() {}
    }

    /// Shuts the server down gracefully: stops accepting, closes idle
    /// keep-alive connections, lets in-flight requests finish (their
    /// responses say `Connection: close`), and returns once every
    /// connection is closed. Calling it again (from any handle) waits the
    /// same way.
    ///
    /// # Errors
    ///
    /// When connections are still open after `timeout`: they are then
    /// force-closed and every request context is cancelled; the handlers
    /// still running finish in the background.
    ///
    /// # Blocking
    ///
    /// Parks the calling goroutine (blocks a plain thread) for up to
    /// `timeout`, plus at most 100 ms after a force-close. A handler that
    /// triggers a shutdown should run it in its own goroutine
    /// (`goro::go(move || handle.shutdown(t))`): its own request counts as
    /// in flight until it returns.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ShutdownError> {
        let s = &self.shared;
        let deadline = goro::time::now() + timeout;
        s.shutting_down.store(true, Ordering::SeqCst);
        if let Some(l) = lock(&s.listener).take() {
            let _ = l.set_deadline(Some(goro::time::now()));
        }
        // Close the idle connections; the others close after their response.
        for c in lock(&s.conns).values() {
            let mut st = lock(&c.state);
            if *st == ConnState::Idle {
                *st = ConnState::Closing;
                let _ = c.stream.set_read_deadline(Some(goro::time::now()));
            }
        }
        loop {
            let left = deadline.saturating_duration_since(goro::time::now());
            match s.done_rx.recv_timeout(left) {
                Err(RecvTimeoutError::Closed) => return Ok(()),
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        // Out of time: cancel every request and cut every connection.
        if let Some(c) = lock(&s.root_cancel).take() {
            c.cancel();
        }
        let open = s.open.load(Ordering::Relaxed);
        for c in lock(&s.conns).values() {
            let _ = c.stream.set_deadline(Some(goro::time::now()));
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        let _ = s.done_rx.recv_timeout(Duration::from_millis(100));
        Err(ShutdownError {
            open_connections: open,
        })
    }
}

/// Accepts connections until shutdown; each runs in its own goroutine.
fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, done_tx: &Sender<()>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(_) if shared.shutting_down.load(Ordering::SeqCst) => return,
            Err(e) => {
                // Out of file descriptors and the like: wait and retry, as
                // Go's server does, rather than spin or give up.
                if e.kind() != io::ErrorKind::TimedOut {
                    goro::time::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let _ = stream.set_nodelay(true);
        // A client that stops reading cannot hold a connection goroutine
        // forever: each write must make progress within the idle timeout
        // (the write timeout, when set, bounds the whole response).
        if let Some(t) = shared.config.idle_timeout {
            let _ = stream.set_write_timeout(Some(t));
        }
        let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnShared {
            stream: Arc::new(stream),
            state: Mutex::new(ConnState::Active),
        });
        lock(&shared.conns).insert(id, conn.clone());
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        shared.open.fetch_add(1, Ordering::Relaxed);
        let (s, done) = (shared.clone(), done_tx.clone());
        let spawned = goro::Builder::new()
            .name("goro-http conn")
            .spawn(move || serve_conn(&s, &conn, id, peer, done));
        match spawned {
            Ok(h) => drop(h),
            Err(_) => {
                // No stack to be had: drop the connection.
                lock(&shared.conns).remove(&id);
                shared.open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// Unregisters a connection when its goroutine returns, however it returns.
struct ConnGuard<'a> {
    /// The server.
    shared: &'a Shared,
    /// The connection's id.
    id: u64,
    /// Held until the goroutine returns; see `Shared::done_rx`.
    _done: Sender<()>,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a handler as running until dropped (even if it panics).
struct ActiveGuard<'a>(&'a Shared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// Drop the socket now.
    Now,
    /// Shut down writing and discard what the client still sends for a
    /// moment, so it can read the last response before the socket closes.
    Linger,
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A request head, parsed.
struct Head {
    /// Method, URI, version and headers, with an empty body.
    req: Request<Body>,
}

/// Why a request head was refused: the status to answer with.
type Refusal = (StatusCode, &'static str);

/// Parses a request head at the start of `data`: `Ok(None)` if incomplete,
/// otherwise the head and its length.
fn parse_head(data: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; wire::MAX_HEADERS];
    let mut preq = httparse::Request::new(&mut headers);
    let n = match preq.parse(data) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(n)) => n,
        Err(httparse::Error::TooManyHeaders) => {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too many header fields",
            ))
        }
        Err(httparse::Error::Version) if names_other_version(data) => {
            return Err((
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "unsupported HTTP version",
            ))
        }
        Err(_) => return Err((StatusCode::BAD_REQUEST, "malformed request")),
    };
    let bad = |what| (StatusCode::BAD_REQUEST, what);
    let method =
        Method::from_bytes(preq.method.unwrap_or("").as_bytes()).map_err(|_| bad("bad method"))?;
    let uri: Uri = preq
        .path
        .unwrap_or("")
        .parse()
        .map_err(|_| bad("bad request target"))?;
    let version = match preq.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::with_capacity(preq.headers.len());
    for h in preq.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("bad header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("bad header value"))?;
        map.append(name, value);
    }
    let hosts = map.get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
        return Err(bad("missing or repeated Host header"));
    }
    let mut req = Request::new(Body::empty());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = map;
    Ok(Some((Head { req }, n)))
}

/// Whether the request line ends in a well-formed `HTTP/x.y` other than
/// 1.0 and 1.1 (505 rather than 400).
fn names_other_version(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let data = &data[start..];
    let line = match data.iter().position(|&b| b == b'\n') {
        Some(i) => &data[..i],
        None => data,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let v = match line.rsplit(|&b| b == b' ').next() {
        Some(v) => v,
        None => return false,
    };
    v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

/// How long a handler runs before a watcher starts looking for the client
/// going away.
pub(crate) const WATCH_AFTER: Duration = Duration::from_millis(1);

/// What the watcher saw.
enum Watch {
    /// Stopped by the connection goroutine.
    Stopped,
    /// Bytes of the next request.
    Data(Vec<u8>),
    /// The client closed or reset the connection.
    Gone,
}

/// Serves one connection until it closes.
fn serve_conn(shared: &Shared, conn: &ConnShared, id: u64, peer: SocketAddr, done: Sender<()>) {
    let _guard = ConnGuard {
        shared,
        id,
        _done: done,
    };
    let stream = conn.stream.clone();
    let how = conn_loop(shared, conn, &stream, id, peer);
    if let Close::Linger = how {
        linger(&stream);
    }
}

/// Shuts down writing, then reads and discards for a moment.
fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_deadline(Some(goro::time::now() + LINGER));
    let mut buf = [0u8; 4096];
    let mut total = 0;
    let mut r: &TcpStream = stream;
    while total < LINGER_BYTES {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// The request loop of one connection; returns how to close it.
fn conn_loop(
    shared: &Shared,
    conn: &ConnShared,
    stream: &Arc<TcpStream>,
    id: u64,
    peer: SocketAddr,
) -> Close {
    let cfg = &shared.config;
    let local = stream.local_addr().unwrap_or(shared.local_addr);
    let mut rb = ReadBuf::new();
    let mut seq: u64 = 0;
    let mut r: &TcpStream = stream;
    // Request contexts hang off a per-connection context, so that creating
    // and dropping them touches only this connection's child table, not
    // one shared by every connection.
    let (conn_ctx, _conn_cancel) = shared.root_ctx.with_cancel();
    loop {
        // 1. Wait for the first bytes of the next request.
        if rb.is_empty() {
            rb.shrink_if_idle(IDLE_BUF);
            {
                let mut st = lock(&conn.state);
                if shared.shutting_down.load(Ordering::SeqCst) {
                    return Close::Now;
                }
                *st = ConnState::Idle;
            }
            let wait = if seq == 0 {
                cfg.read_header_timeout
            } else {
                cfg.idle_timeout
            };
            let _ = stream.set_read_deadline(wait.map(|d| goro::time::now() + d));
            let res = rb.fill_with_room(&mut r, IDLE_BUF);
            *lock(&conn.state) = ConnState::Active;
            match res {
                Ok(0) | Err(_) => return Close::Now,
                Ok(_) => {}
            }
        }
        // 2. Read the head.
        let started = goro::time::now();
        let read_deadline = cfg.read_timeout.map(|d| started + d);
        let head_deadline = earliest(cfg.read_header_timeout.map(|d| started + d), read_deadline);
        let _ = stream.set_read_deadline(head_deadline);
        let (head, head_len) = loop {
            match parse_head(rb.data()) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err((status, why)) => return refuse(shared, stream, status, why),
            }
            if rb.data().len() > cfg.max_header_bytes {
                return refuse(
                    shared,
                    stream,
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                );
            }
            match rb.fill(&mut r) {
                Ok(0) => return Close::Now,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return refuse(
                        shared,
                        stream,
                        StatusCode::REQUEST_TIMEOUT,
                        "request head not received in time",
                    )
                }
                Err(_) => return Close::Now,
            }
        };
        if head_len > cfg.max_header_bytes {
            return refuse(
                shared,
                stream,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request head too large",
            );
        }
        rb.consume(head_len);
        let mut req = head.req;

        // 3. Body framing, limits, 100-continue.
        let framing = match wire::framing(req.headers()) {
            Ok(f) => f.unwrap_or(Framing::Empty),
            Err(FramingError::Bad(why)) => {
                return refuse(shared, stream, StatusCode::BAD_REQUEST, why)
            }
            Err(FramingError::Unsupported) => {
                return refuse(
                    shared,
                    stream,
                    StatusCode::NOT_IMPLEMENTED,
                    "unsupported transfer coding",
                )
            }
        };
        if let Framing::Length(n) = framing {
            if n > cfg.max_body_bytes as u64 {
                return refuse(
                    shared,
                    stream,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                );
            }
        }
        if let Some(expect) = req.headers().get(EXPECT) {
            if !expect.as_bytes().eq_ignore_ascii_case(b"100-continue") {
                return refuse(
                    shared,
                    stream,
                    StatusCode::EXPECTATION_FAILED,
                    "unsupported expectation",
                );
            }
            if req.version() == Version::HTTP_11 && framing != Framing::Empty && rb.is_empty() {
                let _ = stream.set_write_deadline(cfg.write_timeout.map(|d| goro::time::now() + d));
                let mut w: &TcpStream = stream;
                if w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                    return Close::Now;
                }
            }
        }
        let _ = stream.set_read_deadline(read_deadline);
        // Without a read timeout, a body that stops arriving is still cut
        // after the idle timeout without progress.
        let stall_limit = framing != Framing::Empty && cfg.idle_timeout.is_some();
        if stall_limit {
            let _ = stream.set_read_timeout(cfg.idle_timeout);
        }
        let body = wire::read_body(&mut rb, &mut r, framing, cfg.max_body_bytes);
        if stall_limit {
            let _ = stream.set_read_timeout(None);
        }
        match body {
            Ok(b) => *req.body_mut() = Body::from(b),
            Err(BodyError::TooLarge) => {
                return refuse(
                    shared,
                    stream,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large",
                )
            }
            Err(BodyError::Malformed(why)) => {
                return refuse(shared, stream, StatusCode::BAD_REQUEST, why)
            }
            Err(BodyError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                return refuse(
                    shared,
                    stream,
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time",
                )
            }
            Err(BodyError::Io(_)) => return Close::Now,
        }

        // 4. Run the handler, watching for the client going away.
        let version = req.version();
        let is_head = req.method() == Method::HEAD;
        let mut keep_alive = match version {
            Version::HTTP_11 => !wire::connection_has(req.headers(), "close"),
            _ => wire::connection_has(req.headers(), "keep-alive"),
        };
        let (ctx, cancel) = match cfg.handler_timeout {
            Some(t) => conn_ctx.with_timeout(t),
            None => conn_ctx.with_cancel(),
        };
        let cancel = Arc::new(cancel);
        let watcher = if cfg.detect_disconnect && rb.is_empty() {
            let _ = stream.set_read_deadline(None);
            let (s, c) = (stream.clone(), cancel.clone());
            let (tx, rx) = goro::chan::bounded::<Watch>(1);
            let timer = goro::time::after_func(WATCH_AFTER, move || {
                let _ = tx.send(watch(&s, &c));
            });
            Some((timer, rx))
        } else {
            None
        };
        let rctx = RequestCtx {
            ctx,
            remote: peer,
            local,
            conn_id: id,
            seq,
        };
        shared.active.fetch_add(1, Ordering::Relaxed);
        let active = ActiveGuard(shared);
        let outcome = catch_unwind(AssertUnwindSafe(|| shared.handler.handle(req, &rctx)));
        drop(active);
        let mut client_gone = false;
        if let Some((timer, verdict)) = watcher {
            // Not started yet: nothing read the socket, nothing to stop.
            if !timer.stop() {
                let _ = stream.set_read_deadline(Some(goro::time::now()));
                match verdict.recv() {
                    Ok(Watch::Data(d)) => rb.extend(&d),
                    Ok(Watch::Gone) => client_gone = true,
                    // `Err`: the watcher panicked (it does not) or the
                    // runtime is being dropped.
                    Ok(Watch::Stopped) | Err(_) => {}
                }
            }
        }
        let resp = match outcome {
            Ok(resp) => resp,
            Err(_) => {
                keep_alive = false;
                simple_response(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
        };

        // 5. Write the response.
        if client_gone || (shared.shutting_down.load(Ordering::SeqCst) && rb.is_empty()) {
            keep_alive = false;
        }
        let _ = stream.set_write_deadline(cfg.write_timeout.map(|d| goro::time::now() + d));
        // Counted before the bytes go out, so a client that has its
        // response also sees it counted.
        shared.requests.fetch_add(1, Ordering::Relaxed);
        // A streaming body runs user code here: a panic in it ends this
        // connection (the peer sees a truncated chunked body), not the
        // goroutine.
        let written = catch_unwind(AssertUnwindSafe(|| {
            write_response(stream, cfg, resp, is_head, version, &mut keep_alive)
        }))
        .unwrap_or_else(|_| Err(io::ErrorKind::Other.into()));
        drop(rctx);
        cancel.cancel();
        seq += 1;
        if written.is_err() || client_gone {
            return Close::Now;
        }
        if !keep_alive {
            return Close::Linger;
        }
    }
}

/// Reads the socket while a handler runs: see the module doc.
fn watch(stream: &TcpStream, cancel: &CancelFunc) -> Watch {
    let mut buf = vec![0u8; 4096];
    let mut r: &TcpStream = stream;
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                cancel.cancel();
                return Watch::Gone;
            }
            Ok(n) => {
                buf.truncate(n);
                return Watch::Data(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Watch::Stopped,
            Err(_) => {
                cancel.cancel();
                return Watch::Gone;
            }
        }
    }
}

/// A plain-text response.
pub(crate) fn simple_response(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(format!("{text}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Answers a request that cannot be served with `status`, and closes.
fn refuse(shared: &Shared, stream: &TcpStream, status: StatusCode, why: &str) -> Close {
    let cfg = &shared.config;
    let _ = stream.set_write_deadline(Some(
        goro::time::now() + cfg.write_timeout.unwrap_or(Duration::from_secs(5)),
    ));
    let mut keep_alive = false;
    let resp = simple_response(status, why);
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let r = write_response(stream, cfg, resp, false, Version::HTTP_11, &mut keep_alive);
    match r {
        Ok(()) => Close::Linger,
        Err(_) => Close::Now,
    }
}

/// Statuses whose responses never have a body.
fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Writes a response. Sets `keep_alive` to false when the connection must
/// close after it (the handler said `Connection: close`, or a stream to an
/// HTTP/1.0 client is delimited by closing).
fn write_response(
    stream: &TcpStream,
    cfg: &Config,
    resp: Response<Body>,
    is_head: bool,
    req_version: Version,
    keep_alive: &mut bool,
) -> io::Result<()> {
    let (mut parts, body) = resp.into_parts();
    let status = parts.status;
    let headers = &mut parts.headers;
    if wire::connection_has(headers, "close") {
        *keep_alive = false;
    }
    if !headers.contains_key(DATE) {
        headers.insert(DATE, wire::http_date());
    }
    if let Some(name) = &cfg.server_name {
        if !headers.contains_key(SERVER) {
            headers.insert(SERVER, name.clone());
        }
    }
    let body = body.into_kind();
    let no_body = is_head || bodiless(status);
    let stream_fn = match body {
        Ok(bytes) => {
            if bodiless(status) {
                headers.remove(TRANSFER_ENCODING);
                if status != StatusCode::NOT_MODIFIED {
                    headers.remove(CONTENT_LENGTH);
                }
            } else if !is_head || !bytes.is_empty() || !headers.contains_key(CONTENT_LENGTH) {
                headers.remove(TRANSFER_ENCODING);
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            Err(bytes)
        }
        Err(f) => {
            if no_body {
                // The stream is not run: its length is unknown.
                headers.remove(CONTENT_LENGTH);
                drop(f);
                Err(bytes::Bytes::new())
            } else {
                headers.remove(CONTENT_LENGTH);
                if req_version == Version::HTTP_11 {
                    headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                } else {
                    headers.remove(TRANSFER_ENCODING);
                    *keep_alive = false;
                }
                Ok(f)
            }
        }
    };
    headers.remove(CONNECTION);
    if !*keep_alive {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    } else if req_version == Version::HTTP_10 {
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    wire::write_headers(&mut out, headers);
    out.extend_from_slice(b"\r\n");
    let mut w: &TcpStream = stream;
    match stream_fn {
        Err(bytes) => {
            if no_body || bytes.is_empty() {
                w.write_all(&out)
            } else if bytes.len() <= 16 * 1024 {
                out.extend_from_slice(&bytes);
                w.write_all(&out)
            } else {
                w.write_all(&out)?;
                w.write_all(&bytes)
            }
        }
        Ok(f) => {
            let mut bw = BufWriter::with_capacity(8 * 1024, w);
            bw.write_all(&out)?;
            if req_version == Version::HTTP_11 {
                let mut cw = ChunkedWriter::new(&mut bw);
                f(&mut cw)?;
                cw.finish()?;
            } else {
                f(&mut bw)?;
            }
            bw.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_detection() {
        assert!(names_other_version(b"GET / HTTP/2.0\r\n"));
        assert!(names_other_version(b"\r\nGET / HTTP/1.2\r\nHost: x\r\n"));
        assert!(!names_other_version(b"GET / FOO/1.1\r\n"));
        assert!(!names_other_version(b"GET / HTTP/1.10\r\n"));
    }

    #[test]
    fn heads() {
        let (h, n) = parse_head(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 40);
        assert_eq!(h.req.uri().path(), "/a");
        assert_eq!(h.req.headers()["x-a"], "1");
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .unwrap()
            .is_none());
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n\r\n").err().unwrap().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_head(b"GET / HTTP/3.0\r\nHost: x\r\n\r\n")
                .err()
                .unwrap()
                .0,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            parse_head(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n")
                .err()
                .unwrap()
                .0,
            StatusCode::BAD_REQUEST
        );
        assert!(parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        // Empty lines before a request line are skipped (RFC 9112 §2.2).
        let (h, _) = parse_head(b"\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.req.uri().path(), "/x");
    }
}
