//! The server on raw sockets: keep-alive, pipelining, bodies, HEAD,
//! 100-continue, `Connection: close`, limits and their statuses, timeouts,
//! panics, disconnects and graceful shutdown. Every test runs under
//! `#[goro::test]`, which fails on a leaked goroutine.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{builder, echo, eventually, roundtrip, serve, stop, Raw};
use goro_http::{Body, Request, RequestCtx, Response, StatusCode};

#[goro::test]
fn keep_alive_reuses_the_connection() {
    let h = serve(builder(), |req: Request<Body>, ctx: &RequestCtx| {
        Response::new(Body::from(format!(
            "{} #{}",
            req.uri().path(),
            ctx.request_index()
        )))
    });
    let mut c = Raw::connect(h.local_addr());
    for i in 0..3 {
        c.send(format!("GET /k{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("/k{i} #{i}"));
        assert!(r.header("date").unwrap().ends_with(" GMT"));
        assert_eq!(r.header("server"), Some("goro-http"));
        assert_eq!(r.header("connection"), None);
    }
    eventually("3 requests served", || h.stats().requests_served == 3);
    let s = h.stats();
    assert_eq!(s.connections_accepted, 1);
    assert_eq!(s.open_connections, 1);
    drop(c);
    stop(h);
}

#[goro::test]
fn pipelined_responses_come_back_in_order() {
    // The first request is the slowest: order must still hold.
    let h = serve(builder(), |req: Request<Body>, _: &RequestCtx| {
        let ms: u64 = req.uri().path()[1..].parse().unwrap();
        goro::time::sleep(Duration::from_millis(ms));
        Response::new(Body::from(format!("slept {ms}")))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(
        b"GET /60 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /20 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    for ms in [60, 1, 20] {
        let r = c.response(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("slept {ms}"));
    }
    assert_eq!(h.stats().connections_accepted, 1);
    drop(c);
    stop(h);
}

#[goro::test]
fn chunked_request_body_is_decoded() {
    let h = serve(builder(), echo());
    let r = roundtrip(
        h.local_addr(),
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "/up 16 hello 0123456789");
    stop(h);
}

#[goro::test]
fn content_length_body_split_across_writes() {
    let h = serve(builder(), echo());
    let mut c = Raw::connect(h.local_addr());
    c.send(b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    goro::time::sleep(Duration::from_millis(30));
    c.send(b"56789");
    assert_eq!(c.response(false).text(), "/p 10 0123456789");
    drop(c);
    stop(h);
}

#[goro::test]
fn head_has_the_headers_of_get_and_no_body() {
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        Response::new(Body::from("twelve bytes"))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = c.response(true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("12"));
    // No body bytes leaked: the next response starts right away.
    let get = c.response(false);
    assert_eq!(get.text(), "twelve bytes");
    drop(c);
    stop(h);
}

#[goro::test]
fn head_of_a_streaming_response() {
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        Response::new(Body::stream(|w| w.write_all(b"streamed")))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = c.response(true);
    assert_eq!(head.status, 200);
    let get = c.response(false);
    assert_eq!(get.header("transfer-encoding"), Some("chunked"));
    assert_eq!(get.text(), "streamed");
    drop(c);
    stop(h);
}

#[goro::test]
fn streaming_response_to_http10_is_close_delimited() {
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        Response::new(Body::stream(|w| {
            w.write_all(b"part one, ")?;
            w.write_all(b"part two")
        }))
    });
    let r = roundtrip(h.local_addr(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.text(), "part one, part two");
    stop(h);
}

#[goro::test]
fn expect_100_continue() {
    let h = serve(builder().max_body_bytes(1000), echo());
    let mut c = Raw::connect(h.local_addr());
    c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response(false);
    assert_eq!(interim.status, 100);
    c.send(b"data");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "/e 4 data");

    // Too large: refused before the body is sent, no 100.
    c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));

    // An expectation we do not know.
    let r = roundtrip(
        h.local_addr(),
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx",
    );
    assert_eq!(r.status, 417);
    drop(c);
    stop(h);
}

#[goro::test]
fn connection_close_both_ways() {
    let h = serve(builder(), |req: Request<Body>, _: &RequestCtx| {
        let mut resp = Response::new(Body::from("bye"));
        if req.uri().path() == "/server-closes" {
            resp.headers_mut()
                .insert("connection", "close".parse().unwrap());
        }
        resp
    });
    let addr = h.local_addr();
    // The client asks.
    let mut c = Raw::connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));
    // The handler asks.
    let mut c = Raw::connect(addr);
    c.send(b"GET /server-closes HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response(false).header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));
    // HTTP/1.0 closes by default...
    let mut c = Raw::connect(addr);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.response(false).header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));
    // ...unless it asks for keep-alive.
    let mut c = Raw::connect(addr);
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response(false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.text(), "bye");
    }
    drop(c);
    stop(h);
}

/// Sends `req` and expects `status` and a closed connection.
fn refused(addr: std::net::SocketAddr, req: &[u8], status: u16) {
    let mut c = Raw::connect(addr);
    c.send(req);
    let r = c.response(false);
    assert_eq!(r.status, status, "for {:?}", String::from_utf8_lossy(req));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[goro::test]
fn malformed_requests_get_400() {
    let h = serve(builder(), echo());
    let a = h.local_addr();
    refused(a, b"this is not http\r\n\r\n", 400);
    refused(
        a,
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
        400,
    );
    refused(a, b"GET / HTTP/1.1\r\n\r\n", 400); // no Host
    refused(a, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    );
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
        400,
    );
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    );
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        400,
    );
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
        400,
    );
    refused(a, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    refused(
        a,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    // The server is fine afterwards.
    assert_eq!(
        roundtrip(a, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "/ok 0 "
    );
    stop(h);
}

#[goro::test]
fn huge_head_gets_431() {
    let h = serve(builder().max_header_bytes(4096), echo());
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat(b'a').take(8000));
    req.extend_from_slice(b"\r\n\r\n");
    refused(h.local_addr(), &req, 431);
    // Too many header fields.
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..150 {
        req.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    refused(h.local_addr(), &req, 431);
    stop(h);
}

#[goro::test]
fn big_body_gets_413() {
    let h = serve(builder().max_body_bytes(1024), echo());
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_vec();
    req.extend(std::iter::repeat(b'b').take(5000));
    refused(h.local_addr(), &req, 413);
    // Chunked, going over the limit on the way.
    let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"200\r\n");
        req.extend(std::iter::repeat(b'c').take(0x200));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    refused(h.local_addr(), &req, 413);
    stop(h);
}

#[goro::test]
fn slowloris_is_cut_at_the_header_timeout() {
    let timeout = Duration::from_millis(200);
    let h = serve(builder().read_header_timeout(timeout), echo());
    let mut c = Raw::connect(h.local_addr());
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    goro::time::sleep(Duration::from_millis(50));
    c.send(b"a"); // trickling does not extend the deadline
    let r = c.response(false);
    let took = start.elapsed();
    assert_eq!(r.status, 408);
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(took >= timeout, "cut after {took:?}");
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    // A connection that sends nothing is closed silently.
    let mut c = Raw::connect(h.local_addr());
    let start = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(start.elapsed() >= timeout);
    eventually("connections closed", || h.stats().open_connections == 0);
    stop(h);
}

#[goro::test]
fn stalled_body_is_cut_after_the_idle_timeout() {
    let h = serve(builder().idle_timeout(Duration::from_millis(200)), echo());
    let mut c = Raw::connect(h.local_addr());
    let start = Instant::now();
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let r = c.response(false);
    assert_eq!(r.status, 408);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(c.closed_within(Duration::from_secs(5)));
    stop(h);
}

#[goro::test]
fn idle_keep_alive_connection_is_closed() {
    let h = serve(builder().idle_timeout(Duration::from_millis(150)), echo());
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response(false).status, 200);
    let start = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(start.elapsed() >= Duration::from_millis(150));
    stop(h);
}

#[goro::test]
fn panicking_handler_gets_500_and_the_server_carries_on() {
    let h = serve(builder(), |req: Request<Body>, _: &RequestCtx| {
        if req.uri().path() == "/panic" {
            panic!("handler bug (expected by the test)");
        }
        Response::new(Body::from("fine"))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(
        roundtrip(h.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "fine"
    );
    stop(h);
}

#[goro::test]
fn panicking_stream_closes_the_connection_only() {
    let h = serve(builder(), |req: Request<Body>, _: &RequestCtx| {
        if req.uri().path() == "/bad" {
            Response::new(Body::stream(|w| {
                w.write_all(b"partial")?;
                w.flush()?;
                panic!("stream bug (expected by the test)");
            }))
        } else {
            Response::new(Body::from("fine"))
        }
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET /bad HTTP/1.1\r\nHost: x\r\n\r\n");
    // The head and the first chunk, then the connection ends: no final
    // chunk, so the body is visibly incomplete.
    let got = c
        .read_until_closed(Duration::from_secs(5))
        .expect("connection left open");
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("7\r\npartial\r\n"), "{got}");
    assert!(!got.ends_with("0\r\n\r\n"), "{got}");
    assert_eq!(
        roundtrip(h.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "fine"
    );
    stop(h);
}

#[goro::test]
fn request_context_is_cancelled_when_the_client_goes_away() {
    let (tx, rx) = goro::chan::bounded::<Duration>(1);
    let h = serve(builder(), move |_req: Request<Body>, ctx: &RequestCtx| {
        let start = Instant::now();
        goro::select! {
            recv(ctx.context().done()) -> _ => {},
            recv(goro::time::after(Duration::from_secs(5))) -> _ => {},
        }
        let _ = tx.send(start.elapsed());
        Response::new(Body::from("too late"))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    goro::time::sleep(Duration::from_millis(100));
    drop(c);
    let waited = rx.recv().unwrap();
    assert!(waited < Duration::from_secs(5), "handler waited {waited:?}");
    stop(h);
}

#[goro::test]
fn handler_timeout_sets_the_context_deadline() {
    let h = serve(
        builder().handler_timeout(Duration::from_millis(100)),
        |_req: Request<Body>, ctx: &RequestCtx| {
            let _ = ctx.context().done().recv();
            let err = ctx.context().err().unwrap();
            let mut r = Response::new(Body::from(err.to_string()));
            *r.status_mut() = StatusCode::GATEWAY_TIMEOUT;
            r
        },
    );
    let r = roundtrip(h.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 504);
    assert_eq!(r.text(), "context deadline exceeded");
    stop(h);
}

#[goro::test]
fn write_timeout_cuts_a_stalled_reader() {
    // A client that never reads a large response.
    let h = serve(
        builder().write_timeout(Duration::from_millis(200)),
        |_req: Request<Body>, _: &RequestCtx| {
            Response::new(Body::stream(|w| {
                let block = vec![b'x'; 64 * 1024];
                for _ in 0..1024 {
                    w.write_all(&block)?;
                }
                Ok(())
            }))
        },
    );
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let start = Instant::now();
    while h.stats().open_connections > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "write never timed out"
        );
        goro::time::sleep(Duration::from_millis(20));
    }
    drop(c);
    stop(h);
}

#[goro::test]
fn graceful_shutdown_closes_idle_connections_at_once() {
    let h = serve(builder(), echo());
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.response(false);
    let start = Instant::now();
    h.shutdown(Duration::from_secs(5)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(c.closed_within(Duration::from_secs(5)));
    // The listener is closed: new connections are refused.
    assert!(goro::net::TcpStream::connect(h.local_addr()).is_err());
}

#[goro::test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        goro::time::sleep(Duration::from_millis(300));
        Response::new(Body::from("done"))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    while h.stats().active_requests == 0 {
        goro::time::sleep(Duration::from_millis(5));
    }
    let h2 = h.clone();
    let stopper = goro::go(move || h2.shutdown(Duration::from_secs(5)));
    let h3 = h.clone();
    let waiter = goro::go(move || h3.wait());
    let r = c.response(false);
    assert_eq!(r.text(), "done");
    assert_eq!(r.header("connection"), Some("close"));
    stopper.join().unwrap().unwrap();
    waiter.join().unwrap();
    assert_eq!(h.stats().open_connections, 0);
}

#[goro::test]
fn shutdown_timeout_force_closes_and_cancels() {
    let h = serve(builder(), |_req: Request<Body>, ctx: &RequestCtx| {
        let _ = ctx.context().done().recv(); // only a cancel ends this
        Response::new(Body::from("cancelled"))
    });
    let mut c = Raw::connect(h.local_addr());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    while h.stats().active_requests == 0 {
        goro::time::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    let err = h.shutdown(Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.open_connections, 1);
    assert!(start.elapsed() >= Duration::from_millis(200));
    drop(c);
    // The handler saw the cancel and returned; nothing is left running.
    let start = Instant::now();
    while h.stats().open_connections > 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        goro::time::sleep(Duration::from_millis(10));
    }
}

#[goro::test]
fn graceful_shutdown_under_load_loses_no_accepted_request() {
    const CLIENTS: usize = 16;
    let handled = Arc::new(Mutex::new(Vec::<u64>::new()));
    let hd = handled.clone();
    let h = serve(builder(), move |req: Request<Body>, _: &RequestCtx| {
        let id: u64 = req.uri().path()[1..].parse().unwrap();
        goro::time::sleep(Duration::from_millis(id % 7));
        hd.lock().unwrap().push(id);
        Response::new(Body::from(id.to_string()))
    });
    let url = format!("http://{}", h.local_addr());
    let answered = Arc::new(Mutex::new(Vec::<u64>::new()));
    let other_errors = Arc::new(AtomicUsize::new(0));
    let wg = goro::sync::WaitGroup::new();
    for c in 0..CLIENTS {
        let (url, answered, other_errors) = (url.clone(), answered.clone(), other_errors.clone());
        wg.go(move || {
            let client = goro_http::Client::builder()
                .timeout(Duration::from_secs(10))
                .build();
            for i in 0.. {
                let id = (c as u64) << 32 | i;
                match client.get(&format!("{url}/{id}")) {
                    Ok(r) => {
                        assert_eq!(r.body().to_str().unwrap(), id.to_string());
                        answered.lock().unwrap().push(id);
                    }
                    Err(e) => {
                        if !e.is_connection() {
                            eprintln!("unexpected client error: {e}");
                            other_errors.fetch_add(1, Ordering::SeqCst);
                        }
                        return;
                    }
                }
            }
        });
    }
    goro::time::sleep(Duration::from_millis(300));
    let served_before = h.stats().requests_served;
    h.shutdown(Duration::from_secs(10)).unwrap();
    wg.wait();
    assert!(served_before > 0);
    assert_eq!(other_errors.load(Ordering::SeqCst), 0);
    let mut handled = handled.lock().unwrap().clone();
    let mut answered = answered.lock().unwrap().clone();
    handled.sort_unstable();
    answered.sort_unstable();
    assert_eq!(
        handled.len(),
        answered.len(),
        "a handled request got no answer"
    );
    assert_eq!(handled, answered);
}

#[goro::test]
fn stats_track_active_requests() {
    let (release_tx, release_rx) = goro::chan::bounded::<()>(0);
    let h = serve(builder(), move |_req: Request<Body>, _: &RequestCtx| {
        let _ = release_rx.recv();
        Response::new(Body::empty())
    });
    let mut conns: Vec<Raw> = (0..3).map(|_| Raw::connect(h.local_addr())).collect();
    for c in &mut conns {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    let start = Instant::now();
    while h.stats().active_requests < 3 {
        assert!(start.elapsed() < Duration::from_secs(5));
        goro::time::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.stats().open_connections, 3);
    for _ in 0..3 {
        release_tx.send(()).unwrap();
    }
    for c in &mut conns {
        assert_eq!(c.response(false).status, 200);
    }
    eventually("requests done", || {
        let s = h.stats();
        s.active_requests == 0 && s.requests_served == 3
    });
    drop(conns);
    stop(h);
}

#[goro::test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<goro_http::Server>();
    check::<goro_http::ServerHandle>();
    check::<goro_http::ServerStats>();
    check::<goro_http::Client>();
    check::<goro_http::Error>();
    check::<goro_http::RequestCtx>();
    fn send<T: Send>() {}
    send::<Body>();
}

/// A small deterministic generator for the garbage test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[goro::test]
fn garbage_never_crashes_the_server_or_leaks() {
    let h = serve(
        builder().read_header_timeout(Duration::from_millis(300)),
        echo(),
    );
    let addr = h.local_addr();
    // Valid pieces mutated at random, sent from many connections at once.
    let pieces: [&[u8]; 12] = [
        b"GET / HTTP/1.1\r\n",
        b"POST /x HTTP/1.1\r\n",
        b"Host: x\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Expect: 100-continue\r\n",
        b"\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"\x00\xff\xfe",
        b"Connection: close\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let wg = goro::sync::WaitGroup::new();
    for seed in 0..64u64 {
        wg.go(move || {
            let mut rng = Lcg(seed);
            let mut msg = Vec::new();
            for _ in 0..(1 + rng.next() % 10) {
                let mut p = pieces[(rng.next() % pieces.len() as u64) as usize].to_vec();
                if rng.next() % 4 == 0 && !p.is_empty() {
                    let i = (rng.next() as usize) % p.len();
                    p[i] = rng.next() as u8;
                }
                msg.extend_from_slice(&p);
            }
            let mut s = match goro::net::TcpStream::connect(addr) {
                Ok(s) => s,
                Err(_) => return,
            };
            use std::io::{Read, Write};
            let _ = s.write_all(&msg);
            if rng.next() % 2 == 0 {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
            if !sink.is_empty() {
                assert!(
                    sink.starts_with(b"HTTP/1.1 "),
                    "{:?}",
                    String::from_utf8_lossy(&sink)
                );
            }
        });
    }
    wg.wait();
    // Still serving.
    assert_eq!(
        roundtrip(addr, b"GET /alive HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "/alive 0 "
    );
    eventually("every connection closed", || {
        h.stats().open_connections == 0
    });
    stop(h);
}
