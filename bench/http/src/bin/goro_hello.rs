//! Hello-world on goro-http, for `wrk`: `goro-hello [ADDR] [--no-watch]`.
//!
//! One goroutine per connection; `--no-watch` turns off the per-request
//! disconnect watcher (goro-http's `detect_disconnect`). Runs until SIGINT
//! or SIGTERM.

#![forbid(unsafe_code)]

use std::time::Duration;

use goro_http::{handler_fn, Body, Response, Server};

#[goro::main]
fn main() {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut watch = true;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-watch" => watch = false,
            _ => addr = a,
        }
    }
    let handle = Server::builder()
        .idle_timeout(Duration::from_secs(120))
        .detect_disconnect(watch)
        .bind(&addr)
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"))
        .serve(handler_fn(|_req, _ctx| {
            Response::new(Body::from("Hello, World!\n"))
        }));
    println!("goro-http hello on http://{}/", handle.local_addr());
    let stop = goro::signal::shutdown_context();
    let _ = stop.done().recv();
    let _ = handle.shutdown(Duration::from_secs(2));
}
