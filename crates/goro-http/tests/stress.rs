//! Opt-in load checks (`cargo test -p goro-http --release -- --ignored`):
//! thousands of concurrent keep-alive connections through the client.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, serve, stop};
use goro_http::{handler_fn, Body, Client, Response};

/// Resident memory of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[goro::test]
#[ignore = "load test: run with --ignored in release"]
fn thousands_of_keep_alive_connections() {
    const CONNS: usize = 2000;
    const PER_CONN: usize = 20;
    let h = serve(
        builder(),
        handler_fn(|req, _ctx| Response::new(Body::from(format!("hello {}", req.uri().path())))),
    );
    let url = format!("http://{}/x", h.local_addr());
    let ok = Arc::new(AtomicU64::new(0));
    let wg = goro::sync::WaitGroup::new();
    let rss_before = rss_kib();
    let (hold_tx, hold_rx) = goro::chan::bounded::<()>(0);
    let start = Instant::now();
    for _ in 0..CONNS {
        let (url, ok, hold_rx) = (url.clone(), ok.clone(), hold_rx.clone());
        wg.go(move || {
            // One client each: one connection each.
            let client = Client::builder().timeout(Duration::from_secs(30)).build();
            for _ in 0..PER_CONN {
                let r = client.get(&url).unwrap();
                assert_eq!(r.body().as_bytes(), b"hello /x");
                ok.fetch_add(1, Ordering::Relaxed);
            }
            // Keep the connection open (idle) until told to stop.
            let _ = hold_rx.recv();
        });
    }
    while ok.load(Ordering::Relaxed) < (CONNS * PER_CONN) as u64 {
        assert!(start.elapsed() < Duration::from_secs(120), "too slow");
        goro::time::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let stats = h.stats();
    let rss_idle = rss_kib();
    let timers: usize = goro::debug::stats().workers.iter().map(|w| w.timers).sum();
    println!("timers in the runtime's heaps: {timers}");
    println!(
        "{} requests over {} connections in {:?} ({:.0} req/s); open {}; RSS {} -> {} KiB \
         (~{} KiB per connection, both ends)",
        CONNS * PER_CONN,
        stats.connections_accepted,
        took,
        (CONNS * PER_CONN) as f64 / took.as_secs_f64(),
        stats.open_connections,
        rss_before,
        rss_idle,
        rss_idle.saturating_sub(rss_before) / CONNS as u64
    );
    assert_eq!(stats.connections_accepted, CONNS as u64);
    assert_eq!(stats.open_connections, CONNS);
    drop(hold_tx);
    wg.wait();
    stop(h);
}
