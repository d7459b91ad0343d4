//! The client against the server: pooling, bodies both ways, timeouts,
//! cancellation and error kinds.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{builder, echo, eventually, serve, stop};
use goro::context::Context;
use goro_http::{Body, Client, ErrorKind, Request, RequestCtx, Response, StatusCode};

#[goro::test]
fn pool_reuses_one_connection_for_sequential_requests() {
    let h = serve(builder(), echo());
    let client = Client::new();
    for i in 0..10 {
        let r = client
            .get(&format!("http://{}/n{i}", h.local_addr()))
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.body().to_str().unwrap(), format!("/n{i} 0 "));
    }
    assert_eq!(h.stats().connections_accepted, 1);
    assert_eq!(client.idle_connections(), 1);
    drop(client);
    stop(h);
}

#[goro::test]
fn concurrent_requests_open_at_most_one_connection_each() {
    const WORKERS: usize = 4;
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        goro::time::sleep(Duration::from_millis(2));
        Response::new(Body::from("ok"))
    });
    let client = Client::builder().max_idle_per_host(WORKERS).build();
    let url = format!("http://{}/", h.local_addr());
    let wg = goro::sync::WaitGroup::new();
    for _ in 0..WORKERS {
        let (client, url) = (client.clone(), url.clone());
        wg.go(move || {
            for _ in 0..20 {
                assert_eq!(client.get(&url).unwrap().body().as_bytes(), b"ok");
            }
        });
    }
    wg.wait();
    let accepted = h.stats().connections_accepted;
    assert!(
        (1..=WORKERS as u64).contains(&accepted),
        "{accepted} connections"
    );
    assert_eq!(h.stats().requests_served, (WORKERS * 20) as u64);
    drop(client);
    stop(h);
}

#[goro::test]
fn max_idle_zero_disables_pooling() {
    let h = serve(builder(), echo());
    let client = Client::builder().max_idle_per_host(0).build();
    for _ in 0..3 {
        client.get(&format!("http://{}/", h.local_addr())).unwrap();
    }
    assert_eq!(h.stats().connections_accepted, 3);
    drop(client);
    stop(h);
}

#[goro::test]
fn bodies_both_ways() {
    let h = serve(builder(), echo());
    let client = Client::new();
    let base = format!("http://{}", h.local_addr());
    // In-memory body.
    let req = Request::post(format!("{base}/mem"))
        .body(Body::from(vec![b'z'; 100_000]))
        .unwrap();
    let r = client.request(req).unwrap();
    assert!(r.body().to_str().unwrap().starts_with("/mem 100000 zzz"));
    // Streaming body: sent chunked.
    let req = Request::put(format!("{base}/stream"))
        .body(Body::stream(|w| {
            for i in 0..5 {
                write!(w, "{i}")?;
            }
            Ok(())
        }))
        .unwrap();
    assert_eq!(
        client.request(req).unwrap().body().to_str().unwrap(),
        "/stream 5 01234"
    );
    // HEAD: no body, connection still usable.
    let req = Request::head(format!("{base}/h"))
        .body(Body::empty())
        .unwrap();
    let r = client.request(req).unwrap();
    assert_eq!(r.headers()["content-length"], "5");
    assert!(r.body().is_empty());
    assert_eq!(
        client
            .get(&format!("{base}/after"))
            .unwrap()
            .body()
            .to_str()
            .unwrap(),
        "/after 0 "
    );
    assert_eq!(h.stats().connections_accepted, 1);
    drop(client);
    stop(h);
}

#[goro::test]
fn chunked_and_close_delimited_responses() {
    let h = serve(builder(), |req: Request<Body>, _: &RequestCtx| {
        let mut r = Response::new(Body::stream(|w| {
            for _ in 0..100 {
                w.write_all(b"0123456789")?;
            }
            Ok(())
        }));
        if req.uri().path() == "/close" {
            r.headers_mut()
                .insert("connection", "close".parse().unwrap());
        }
        r
    });
    let client = Client::new();
    let r = client
        .get(&format!("http://{}/chunked", h.local_addr()))
        .unwrap();
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert_eq!(r.body().len(), Some(1000));
    let r = client
        .get(&format!("http://{}/close", h.local_addr()))
        .unwrap();
    assert_eq!(r.body().len(), Some(1000));
    // The same connection carried both; closed after the second, it left
    // the pool.
    assert_eq!(h.stats().connections_accepted, 1);
    assert_eq!(client.idle_connections(), 0);
    drop(client);
    stop(h);
}

#[goro::test]
fn close_delimited_response_from_a_raw_server() {
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = goro::go(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil the end")
            .unwrap();
    });
    let client = Client::new();
    let r = client.get(&format!("http://{addr}/")).unwrap();
    assert_eq!(r.version(), goro_http::Version::HTTP_10);
    assert_eq!(r.body().as_bytes(), b"until the end");
    assert_eq!(client.idle_connections(), 0);
    srv.join().unwrap();
}

#[goro::test]
fn stale_pooled_connection_is_replaced_transparently() {
    let h = serve(builder().idle_timeout(Duration::from_millis(100)), echo());
    let client = Client::new();
    let url = format!("http://{}/", h.local_addr());
    client.get(&url).unwrap();
    // The server closes the idle connection while it sits in the pool.
    eventually("server closed the idle connection", || {
        h.stats().open_connections == 0
    });
    assert_eq!(client.get(&url).unwrap().status(), 200);
    assert_eq!(h.stats().connections_accepted, 2);
    drop(client);
    stop(h);
}

/// A handler that waits for its context (or 5 s), reporting whether it was
/// cancelled.
fn slow(flag: Arc<AtomicBool>) -> impl goro_http::Handler {
    move |_req: Request<Body>, ctx: &RequestCtx| {
        goro::select! {
            recv(ctx.context().done()) -> _ => flag.store(true, Ordering::SeqCst),
            recv(goro::time::after(Duration::from_secs(5))) -> _ => {},
        }
        Response::new(Body::from("slow"))
    }
}

#[goro::test]
fn client_timeout() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let h = serve(builder(), slow(cancelled.clone()));
    let client = Client::builder()
        .timeout(Duration::from_millis(200))
        .build();
    let start = Instant::now();
    let err = client
        .get(&format!("http://{}/", h.local_addr()))
        .unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The timed-out connection is dropped, so the server's handler sees
    // its client go away.
    eventually("handler cancelled", || cancelled.load(Ordering::SeqCst));
    drop(client);
    stop(h);
}

#[goro::test]
fn context_cancel_aborts_the_request() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let h = serve(builder(), slow(cancelled.clone()));
    let client = Client::new();
    let (ctx, cancel) = Context::background().with_cancel();
    let canceller = goro::go(move || {
        goro::time::sleep(Duration::from_millis(100));
        cancel.cancel();
    });
    let start = Instant::now();
    let req = Request::get(format!("http://{}/", h.local_addr()))
        .body(Body::empty())
        .unwrap();
    let err = client.request_ctx(&ctx, req).unwrap_err();
    assert!(err.is_canceled(), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(start.elapsed() < Duration::from_secs(5));
    canceller.join().unwrap();
    eventually("handler cancelled", || cancelled.load(Ordering::SeqCst));
    // A context cancelled before the call fails at once.
    let req = Request::get(format!("http://{}/", h.local_addr()))
        .body(Body::empty())
        .unwrap();
    assert!(client.request_ctx(&ctx, req).unwrap_err().is_canceled());
    drop(client);
    stop(h);
}

#[goro::test]
fn context_deadline_is_a_timeout() {
    let h = serve(builder(), slow(Arc::new(AtomicBool::new(false))));
    let client = Client::new();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(150));
    let req = Request::get(format!("http://{}/", h.local_addr()))
        .body(Body::empty())
        .unwrap();
    let start = Instant::now();
    let err = client.request_ctx(&ctx, req).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(150));
    drop(client);
    stop(h);
}

#[goro::test]
fn context_not_cancelled_keeps_the_connection_pooled() {
    let h = serve(builder(), echo());
    let client = Client::new();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    for _ in 0..3 {
        let req = Request::get(format!("http://{}/", h.local_addr()))
            .body(Body::empty())
            .unwrap();
        client.request_ctx(&ctx, req).unwrap();
    }
    assert_eq!(h.stats().connections_accepted, 1);
    drop(client);
    stop(h);
}

#[goro::test]
fn error_kinds() {
    let client = Client::new();
    // Nothing listens: connect error.
    let port = goro::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .unwrap_err();
    assert!(e.is_connect() && e.is_connection(), "{e}");
    // Not http://.
    assert_eq!(
        client.get("https://example.com/").unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        client.get("/relative").unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    // A server that hangs up without answering: closed.
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = goro::go(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
    });
    let e = client.get(&format!("http://{addr}/")).unwrap_err();
    assert!(e.is_closed() && e.is_connection(), "{e}");
    srv.join().unwrap();
    // Garbage instead of HTTP.
    let l = goro::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = goro::go(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n");
    });
    let e = client.get(&format!("http://{addr}/")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    srv.join().unwrap();
}

#[goro::test]
fn response_body_limit() {
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        Response::new(Body::from(vec![1u8; 10_000]))
    });
    let client = Client::builder().max_response_body_bytes(1000).build();
    let e = client
        .get(&format!("http://{}/", h.local_addr()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BodyTooLarge);
    drop(client);
    stop(h);
}

/// Server and client work from a plain OS thread too (on goro's default
/// runtime), as std code would use them.
#[test]
fn works_from_a_plain_thread() {
    let h = goro_http::Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(goro_http::handler_fn(|_req, _ctx| {
            Response::new(Body::from("plain"))
        }));
    let client = Client::builder().timeout(Duration::from_secs(5)).build();
    let url = format!("http://{}/", h.local_addr());
    assert_eq!(client.get(&url).unwrap().body().as_bytes(), b"plain");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(5));
    let req = Request::get(&url).body(Body::empty()).unwrap();
    assert_eq!(client.request_ctx(&ctx, req).unwrap().status(), 200);
    drop(client);
    h.shutdown(Duration::from_secs(5)).unwrap();
}
