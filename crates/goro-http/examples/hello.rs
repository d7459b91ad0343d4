//! A hello-world server with the debug endpoints, for load tools such as
//! `wrk`:
//!
//! ```sh
//! cargo run --release -p goro-http --example hello -- 127.0.0.1:8080
//! wrk -c 1000 -d 10s http://127.0.0.1:8080/
//! # live runtime view: http://127.0.0.1:8080/debug/
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts it down gracefully.

use std::time::Duration;

use goro_http::{debug, handler_fn, Body, Response, Server};

#[goro::main]
fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let handle = Server::builder()
        .read_header_timeout(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(60))
        // Throughput first: no per-request disconnect watcher.
        .detect_disconnect(false)
        .bind(&addr)
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"))
        .serve(handler_fn(|req, _ctx| {
            debug::route(&req).unwrap_or_else(|| Response::new(Body::from("Hello, World!\n")))
        }));
    println!(
        "listening on http://{}/ (debug page at /debug/)",
        handle.local_addr()
    );
    let stop = goro::signal::shutdown_context();
    let _ = stop.done().recv();
    println!("shutting down: {:?}", handle.stats());
    match handle.shutdown(Duration::from_secs(10)) {
        Ok(()) => println!("all connections closed"),
        Err(e) => println!("{e}"),
    }
}
