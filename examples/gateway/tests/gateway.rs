//! The gateway end to end, on loopback: routing, fan-out, deadline, the
//! per-backend limit, retries, graceful shutdown under load, and a short
//! load-generator run. Every test runs under `#[goro::test]`, which fails
//! if a goroutine is left behind.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::gateway::{Gateway, GatewayConfig, Upstream};
use gateway::loadgen::{self, LoadConfig};
use gateway::{Stack, StackConfig};
use goro::net::TcpListener;
use goro_http::{Body, Client, Method, Request, Response, StatusCode};

/// A stack with no simulated latency unless asked.
fn stack(f: impl FnOnce(&mut StackConfig)) -> Stack {
    let mut cfg = StackConfig {
        latency: Duration::ZERO,
        ..StackConfig::default()
    };
    f(&mut cfg);
    Stack::start(&cfg).expect("start the stack")
}

/// `GET http://addr{path}`.
fn get(client: &Client, addr: SocketAddr, path: &str) -> Response<Body> {
    client
        .get(&format!("http://{addr}{path}"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[goro::test]
fn routes_by_prefix() {
    let s = stack(|_| {});
    let c = Client::new();
    let a = s.gateway.addr();
    for (path, service) in [
        ("/users/42", "users"),
        ("/orders/7?x=1", "orders"),
        ("/inventory/", "inventory"),
    ] {
        let r = get(&c, a, path);
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.body().to_str().unwrap();
        assert!(
            body.contains(&format!("\"service\":\"{service}\"")),
            "{path}: {body}"
        );
        let bare = path.split('?').next().unwrap();
        assert!(body.contains(&format!("\"path\":\"{bare}\"")), "{body}");
    }
    assert_eq!(get(&c, a, "/nowhere").status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&c, a, "/users").status(), StatusCode::NOT_FOUND);
    assert!(get(&c, a, "/")
        .body()
        .to_str()
        .unwrap()
        .contains("/dashboard"));
    // The debug endpoints are mounted.
    let stats = get(&c, a, "/debug/stats");
    assert!(stats
        .body()
        .to_str()
        .unwrap()
        .starts_with("{\"goroutines\":"));
    let metrics = get(&c, a, "/metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(!metrics.body().is_empty());
    assert!(get(&c, a, "/debug/goroutines?grouped=1")
        .status()
        .is_success());
    assert!(get(&c, a, "/debug/")
        .body()
        .to_str()
        .unwrap()
        .contains("id=\"goroutines\""));
    // A POST is proxied with its body.
    let req = Request::post(format!("http://{a}/orders/new"))
        .body(Body::from("{\"item\":3}"))
        .unwrap();
    let r = c.request(req).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.backends[1].stats().requests, 2);
    drop(c);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn fanout_merges_every_backend() {
    let s = stack(|c| c.latency = Duration::from_millis(100));
    let c = Client::new();
    let t0 = Instant::now();
    let r = get(&c, s.gateway.addr(), "/dashboard");
    let took = t0.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.body().to_str().unwrap();
    for name in gateway::SERVICES {
        assert!(
            body.contains(&format!(
                "\"{name}\":{{\"service\":\"{name}\",\"path\":\"/{name}/summary\"}}"
            )),
            "{body}"
        );
    }
    assert!(body.starts_with('{') && body.ends_with('}'));
    // Concurrently: three calls of 50..150 ms each take well under their sum.
    assert!(took < Duration::from_millis(400), "{took:?}");
    for b in &s.backends {
        assert_eq!(b.stats().requests, 1);
    }
    assert_eq!(s.gateway.stats().fanouts, 1);
    drop(c);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn fanout_fails_when_a_backend_fails() {
    let s = stack(|c| c.error_rate = 1.0);
    let c = Client::new();
    let r = get(&c, s.gateway.addr(), "/dashboard");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(r.body().to_str().unwrap().contains("answered 500"));
    // A proxied request passes the backend's failure on as it is.
    assert_eq!(
        get(&c, s.gateway.addr(), "/users/1").status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    drop(c);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn deadline_answers_504() {
    let s = stack(|c| c.deadline = Duration::from_millis(200));
    let c = Client::new();
    let a = s.gateway.addr();
    let t0 = Instant::now();
    let r = get(&c, a, "/users/1?delay_ms=700");
    let took = t0.elapsed();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(650), "{took:?}");
    // The fan-out too (it forwards the query to every call).
    let t0 = Instant::now();
    let r = get(&c, a, "/dashboard?delay_ms=700");
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(t0.elapsed() < Duration::from_millis(650));
    assert_eq!(get(&c, a, "/dashboard").status(), StatusCode::OK);
    assert_eq!(s.gateway.stats().timeouts, 2);
    drop(c);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn upstream_limit_is_observed() {
    let s = stack(|c| c.upstream_limit = 3);
    let a = s.gateway.addr();
    let client = Client::new();
    let t0 = Instant::now();
    goro::scope(|sc| {
        for i in 0..20 {
            let client = &client;
            drop(sc.go(move || {
                let r = get(client, a, &format!("/users/{i}?delay_ms=50"));
                assert_eq!(r.status(), StatusCode::OK);
            }));
        }
    });
    let took = t0.elapsed();
    let st = s.backends[0].stats();
    assert_eq!(st.requests, 20);
    assert_eq!(st.peak_in_flight, 3, "the limit is 3 calls at once");
    // 20 calls of 50 ms, 3 at a time: at least 7 rounds.
    assert!(took >= Duration::from_millis(340), "{took:?}");
    drop(client);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

/// A backend that closes its first `drop_first` connections after reading
/// a request, without answering, and answers `200 ok` on later ones.
fn flaky_backend(drop_first: usize) -> (SocketAddr, goro::JoinHandle<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = goro::go(move || {
        for i in 0.. {
            l.set_deadline(Some(Instant::now() + Duration::from_secs(2)))
                .unwrap();
            let Ok((mut s, _)) = l.accept() else {
                return 0;
            };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if i < drop_first {
                drop(s);
                continue;
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            return 1;
        }
        unreachable!()
    });
    (addr, h)
}

/// A gateway with one upstream at `addr` under `/flaky/`.
fn gateway_to(addr: SocketAddr) -> Gateway {
    Gateway::start(
        "127.0.0.1:0",
        GatewayConfig::new(vec![Upstream {
            name: "flaky".into(),
            prefix: "/flaky/".into(),
            addr,
        }]),
    )
    .unwrap()
}

#[goro::test]
fn retries_once_on_a_closed_connection() {
    let (addr, backend) = flaky_backend(1);
    let gw = gateway_to(addr);
    let c = Client::new();
    let r = get(&c, gw.addr(), "/flaky/x");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body().as_bytes(), b"ok");
    assert_eq!(gw.stats().retries, 1);
    assert_eq!(backend.join().unwrap(), 1);
    drop(c);
    gw.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn no_retry_of_a_post_that_was_sent() {
    let (addr, backend) = flaky_backend(1);
    let gw = gateway_to(addr);
    let c = Client::new();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/flaky/x", gw.addr()))
        .body(Body::from("order"))
        .unwrap();
    let r = c.request(req).unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(gw.stats().retries, 0);
    // Let the backend finish (it waits for one more connection).
    assert_eq!(get(&c, gw.addr(), "/flaky/y").status(), StatusCode::OK);
    assert_eq!(backend.join().unwrap(), 1);
    drop(c);
    gw.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn retries_once_when_the_backend_is_down() {
    // A port with nothing listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway_to(addr);
    let c = Client::new();
    let r = get(&c, gw.addr(), "/flaky/x");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(gw.stats().retries, 1);
    assert_eq!(gw.stats().bad_gateway, 1);
    drop(c);
    gw.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn graceful_shutdown_under_load_loses_no_accepted_request() {
    let s = stack(|c| c.latency = Duration::from_millis(40));
    let a = s.gateway.addr();
    let answered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let wg = goro::sync::WaitGroup::new();
    for i in 0..40 {
        let (answered, refused) = (answered.clone(), refused.clone());
        wg.go(move || {
            let c = Client::builder().max_idle_per_host(1).build();
            let path = ["/users/1", "/orders/2", "/inventory/3", "/dashboard"][i % 4];
            loop {
                match c.get(&format!("http://{a}{path}")) {
                    Ok(r) => {
                        assert_eq!(r.status(), StatusCode::OK, "a drained request failed");
                        answered.fetch_add(1, Ordering::SeqCst);
                        let closing = r.headers().get("connection").is_some_and(|v| v == "close");
                        if closing {
                            // Told to go: a well-behaved client stops here.
                            return;
                        }
                    }
                    Err(e) => {
                        // Only a connection the server refused or closed
                        // before reading a request: never an accepted one
                        // (checked against the gateway's count below).
                        assert!(e.is_connection(), "{e}");
                        refused.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
    }
    goro::time::sleep(Duration::from_millis(300));
    let busy = s.gateway.stats().in_flight;
    assert!(busy > 0, "requests are in flight when the shutdown starts");
    let t0 = Instant::now();
    s.gateway.shutdown(Duration::from_secs(5)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    wg.wait();
    let st = s.gateway.stats();
    assert_eq!(st.in_flight, 0);
    assert_eq!(st.requests, st.responses);
    assert_eq!(
        answered.load(Ordering::SeqCst),
        st.requests,
        "every request the gateway accepted reached its client ({} refused)",
        refused.load(Ordering::SeqCst)
    );
    assert!(st.requests > 40);
    s.shutdown(Duration::from_secs(5)).unwrap();
}

#[goro::test]
fn short_load_run_reports_no_errors() {
    let s = stack(|c| c.latency = Duration::from_millis(1));
    let report = loadgen::run(LoadConfig {
        connections: 200,
        duration: Duration::from_secs(1),
        server_pid: Some(std::process::id()),
        ..LoadConfig::new(s.gateway.addr())
    });
    let text = report.render();
    assert_eq!(report.error_count(), 0, "{text}");
    assert_eq!(report.connected, 200, "{text}");
    assert!(report.responses > 200, "{text}");
    assert_eq!(report.ok, report.responses);
    assert!(report.latency.quantile(0.99) >= report.latency.quantile(0.5));
    assert!(report.peak_server_goroutines.unwrap() >= 200, "{text}");
    assert!(report.server_rss_peak.is_some());
    for line in [
        "throughput",
        "p50",
        "p99",
        "p999",
        "errors          none",
        "RSS/connection",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    s.shutdown(Duration::from_secs(5)).unwrap();
}

/// The `/debug/` page in headless Chromium (see `tests/browser.sh`):
/// `cargo test -p gateway --release -- --ignored browser`.
#[test]
#[ignore = "starts Chromium (installs it with apt-get when missing)"]
fn browser_debug_page() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_gateway"))
        .status()
        .expect("run tests/browser.sh");
    assert!(status.success(), "tests/browser.sh failed: {status}");
}
