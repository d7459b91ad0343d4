//! # goro-http — HTTP/1.1 on goroutines, written as plain blocking code
//!
//! A server and a client for HTTP/1.1 on [`goro::net`]: one goroutine per
//! connection, handlers that are ordinary functions (block on channels,
//! sockets, locks or other HTTP calls as you like), Go-style deadlines,
//! keep-alive and pipelining, graceful shutdown. Heads are parsed with
//! [`httparse`]; requests and responses are the [`http`] crate's types, with
//! [`Body`] as their payload.
//!
//! ```
//! use std::time::Duration;
//! use goro_http::{Body, Client, Request, RequestCtx, Response, Server, StatusCode};
//!
//! # goro::Runtime::builder().build().unwrap().block_on(|| {
//! let handle = Server::builder()
//!     .read_header_timeout(Duration::from_secs(5))
//!     .bind("127.0.0.1:0")
//!     .unwrap()
//!     .serve(|req: Request<Body>, ctx: &RequestCtx| {
//!         match req.uri().path() {
//!             "/hello" => Response::new(Body::from(format!("hello, {}\n", ctx.remote_addr().ip()))),
//!             _ => Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap(),
//!         }
//!     });
//!
//! let client = Client::new();
//! let resp = client.get(&format!("http://{}/hello", handle.local_addr())).unwrap();
//! assert_eq!(resp.status(), StatusCode::OK);
//! assert_eq!(resp.body().to_str().unwrap(), "hello, 127.0.0.1\n");
//!
//! drop(client); // closes its idle keep-alive connection
//! handle.shutdown(Duration::from_secs(1)).unwrap();
//! # });
//! ```
//!
//! ## Server
//!
//! [`Server::builder`] sets timeouts and limits, [`Server::serve`] starts the
//! accept loop and returns a [`ServerHandle`] (address, [`ServerStats`],
//! graceful [`shutdown`](ServerHandle::shutdown)). A [`Handler`] is any
//! `Fn(Request<Body>, &RequestCtx) -> Response<Body>` (wrap a closure in
//! [`handler_fn`] to have its argument types inferred); [`RequestCtx`]
//! carries the request's [`Context`](goro::context::Context), cancelled when
//! the client goes away.
//!
//! | behaviour | how |
//! |---|---|
//! | keep-alive, pipelining | responses in request order; HTTP/1.0 closes unless `Connection: keep-alive` |
//! | request bodies | `Content-Length` or chunked, read into memory up to `max_body_bytes` |
//! | response bodies | in memory (`Content-Length`) or [`Body::stream`] (chunked) |
//! | `HEAD` | headers as for `GET`, no body |
//! | `Expect: 100-continue` | `100 Continue` before the body is read; 413 instead when the body is too large; 417 for other expectations |
//! | `Connection: close` | honoured both ways (a handler may set it on its response) |
//! | limits | 431 head too large, 413 body too large, 400 malformed (request line, headers, chunk encoding, conflicting `Content-Length`, both `Transfer-Encoding` and `Content-Length`), 408 head not received in time (slowloris), 505 other HTTP versions, 501 transfer codings other than chunked |
//! | timeouts | read-header, read, write, idle, handler (the request context's deadline) |
//! | panicking handler | 500, the connection closes, the server carries on |
//! | headers added | `Date`, `Server` (configurable) |
//!
//! ## Client
//!
//! [`Client`] keeps idle keep-alive connections per `host:port`, bounds each
//! request by its [`timeout`](ClientBuilder::timeout) and by a
//! [`Context`](goro::context::Context) ([`Client::request_ctx`]), and says
//! what failed through [`Error`]: [`is_connect`](Error::is_connect),
//! [`is_closed`](Error::is_closed), [`is_timeout`](Error::is_timeout),
//! [`is_canceled`](Error::is_canceled).
//!
//! A gateway forwards a request by rebuilding its URI for the backend,
//! dropping the connection-level headers with [`remove_hop_by_hop_headers`],
//! and passing the handler's [`RequestCtx::context`] to
//! [`Client::request_ctx`], so a client that goes away cancels the backend
//! call too.
//!
//! ## Debug endpoints
//!
//! [`debug::handler`] and [`debug::route`] serve `/debug/goroutines`,
//! `/debug/stats`, `/metrics` and a live `/debug/` page.
//!
//! ## Coming from Go
//!
//! | Go `net/http` | goro-http |
//! |---|---|
//! | `http.Server{ReadHeaderTimeout: …}` | `Server::builder().read_header_timeout(…)` |
//! | `srv.Serve(ln)` | `Server::builder().serve(ln, handler)` → [`ServerHandle`] |
//! | `srv.Shutdown(ctx)` | `handle.shutdown(timeout)` |
//! | `func(w http.ResponseWriter, r *http.Request)` | `Fn(Request<Body>, &RequestCtx) -> Response<Body>` |
//! | `r.Context()` | `ctx.context()` |
//! | `http.MaxBytesReader` | `max_body_bytes` |
//! | `http.Client{Timeout: …}` | `Client::builder().timeout(…)` |
//! | `http.NewRequestWithContext(ctx, …)` | `client.request_ctx(&ctx, req)` |
//! | `net/http/pprof`, `expvar` | [`debug::handler`] |
//!
//! ## Limits of this version
//!
//! No TLS, no HTTP/2, no `Upgrade`; request bodies are read into memory
//! before the handler runs; client responses are read whole.

#![forbid(unsafe_code)]

mod body;
mod client;
pub mod debug;
mod server;
mod wire;

pub use body::{Body, BodyWriter};
pub use client::{Client, ClientBuilder, Error, ErrorKind};
pub use server::{
    handler_fn, Handler, RequestCtx, Server, ServerBuilder, ServerHandle, ServerStats,
    ShutdownError,
};
pub use wire::remove_hop_by_hop_headers;

pub use http;
pub use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
