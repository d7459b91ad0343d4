//! Debug endpoints for any goro-http server: goroutine dumps, runtime
//! counters as JSON and Prometheus text, and a live HTML page.
//!
//! | path | what |
//! |---|---|
//! | `/debug/` | a self-contained page (inline JS and SVG, no CDN) polling `/debug/stats` every second: goroutine counts over time, goroutines by state and by wait reason, and the grouped dump |
//! | `/debug/goroutines` | [`goro::debug::dump`]: every goroutine with its stack, Go's format; `?grouped=1` gives [`goro::debug::dump_grouped`] |
//! | `/debug/stats` | [`goro::debug::stats`] as JSON |
//! | `/metrics` | the same counters in Prometheus' text format |
//!
//! Serve them alone with [`handler`], or inside your own handler with
//! [`route`]:
//!
//! ```
//! use std::time::Duration;
//! use goro_http::{debug, Body, Client, Request, RequestCtx, Response, Server};
//!
//! # goro::Runtime::builder().build().unwrap().block_on(|| {
//! let handle = Server::bind("127.0.0.1:0").unwrap().serve(|req: Request<Body>, _: &RequestCtx| {
//!     debug::route(&req).unwrap_or_else(|| Response::new(Body::from("app")))
//! });
//! let client = Client::new();
//! let stats = client.get(&format!("http://{}/debug/stats", handle.local_addr())).unwrap();
//! assert!(stats.body().to_str().unwrap().contains("\"goroutines\":"));
//! drop(client);
//! handle.shutdown(Duration::from_secs(1)).unwrap();
//! # });
//! ```
//!
//! The page's numbers sit in elements with stable ids — `goroutines`,
//! `running`, `runnable`, `waiting`, `not_started`, `spawned`, `finished`,
//! `io_waiters`, `blocking_jobs` — and `updated` holds the time of the
//! last poll, so a browser test can compare them with `/debug/stats`.

use std::fmt::Write as _;

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::server::{simple_response, Handler, RequestCtx};

/// A [`Handler`] serving the debug endpoints, and 404 for other paths.
///
/// ```
/// let h = goro_http::debug::handler();
/// # let _ = h;
/// ```
pub fn handler() -> DebugHandler {
    DebugHandler { _private: () }
}

/// The handler returned by [`handler`].
#[derive(Debug, Clone)]
pub struct DebugHandler {
    /// Keeps the struct extensible.
    _private: (),
}

impl Handler for DebugHandler {
    fn handle(&self, req: Request<Body>, _ctx: &RequestCtx) -> Response<Body> {
        route(&req).unwrap_or_else(|| simple_response(StatusCode::NOT_FOUND, "not found"))
    }
}

/// Answers `req` if it is for one of the debug endpoints (GET or HEAD);
/// `None` otherwise.
pub fn route<B>(req: &Request<B>) -> Option<Response<Body>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let path = req.uri().path();
    let grouped = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "grouped=1" || kv == "grouped=true")
    });
    let (ctype, body) = match path {
        "/debug" | "/debug/" => ("text/html; charset=utf-8", page()),
        "/debug/goroutines" => (
            "text/plain; charset=utf-8",
            if grouped {
                goro::debug::dump_grouped()
            } else {
                goro::debug::dump()
            },
        ),
        "/debug/stats" => ("application/json", stats_json(&goro::debug::stats())),
        "/metrics" | "/debug/metrics" => (
            "text/plain; version=0.0.4; charset=utf-8",
            goro::debug::stats().to_prometheus(),
        ),
        _ => return None,
    };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(resp)
}

/// Writes `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The runtime counters as a JSON object:
///
/// ```json
/// {"goroutines":12,"running":1,"runnable":0,"waiting":11,"not_started":0,
///  "spawned":40,"finished":28,"io_waiters":3,"blocking_jobs":0,
///  "by_reason":{"IO wait":3,"chan receive":8},
///  "workers":[{"runs":100,"spawned":20,"finished":14,"steals":2,"sleeps":9,"timers":1,"pinned":6}]}
/// ```
///
/// ```
/// let json = goro_http::debug::stats_json(&goro::debug::stats());
/// assert!(json.starts_with("{\"goroutines\":"));
/// ```
pub fn stats_json(s: &goro::debug::Stats) -> String {
    let mut o = String::with_capacity(512);
    let _ = write!(
        o,
        "{{\"goroutines\":{},\"running\":{},\"runnable\":{},\"waiting\":{},\"not_started\":{},\
         \"spawned\":{},\"finished\":{},\"io_waiters\":{},\"blocking_jobs\":{},\"by_reason\":{{",
        s.goroutines,
        s.running,
        s.runnable,
        s.waiting,
        s.not_started,
        s.spawned,
        s.finished,
        s.io_waiters,
        s.blocking_jobs
    );
    for (i, (reason, n)) in s.by_reason.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        json_str(&mut o, &reason.to_string());
        let _ = write!(o, ":{n}");
    }
    o.push_str("},\"workers\":[");
    for (i, w) in s.workers.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"runs\":{},\"spawned\":{},\"finished\":{},\"steals\":{},\"sleeps\":{},\"timers\":{},\"pinned\":{}}}",
            w.runs, w.spawned, w.finished, w.steals, w.sleeps, w.timers, w.pinned
        );
    }
    o.push_str("]}");
    o
}

/// The live page, with the current numbers filled in so it reads well
/// before its first poll.
fn page() -> String {
    let s = goro::debug::stats();
    let mut html = PAGE.to_string();
    for (id, v) in [
        ("goroutines", s.goroutines as u64),
        ("running", s.running as u64),
        ("runnable", s.runnable as u64),
        ("waiting", s.waiting as u64),
        ("not_started", s.not_started as u64),
        ("spawned", s.spawned),
        ("finished", s.finished),
        ("io_waiters", s.io_waiters as u64),
        ("blocking_jobs", s.blocking_jobs as u64),
    ] {
        html = html.replace(&format!("{{{{{id}}}}}"), &v.to_string());
    }
    html
}

/// The page's template: `{{name}}` is replaced with the current value.
const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>goro debug</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .5em; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.cards { display: flex; flex-wrap: wrap; gap: .6em; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: .4em .8em; min-width: 7em; }
.card .v { font-size: 1.5em; font-weight: 600; }
.card .k { color: #666; font-size: .85em; }
svg { border: 1px solid #ccc; border-radius: 6px; background: #fafafa; }
table { border-collapse: collapse; }
td, th { padding: .15em .8em .15em 0; text-align: left; }
pre { background: #f4f4f4; padding: .6em; border-radius: 6px; max-height: 28em; overflow: auto; font-size: 12px; }
#status { color: #a00; }
</style>
</head>
<body>
<h1>goro runtime</h1>
<div>updated <span id="updated">never</span> <span id="status"></span></div>
<h2>Goroutines</h2>
<div class="cards">
<div class="card"><div class="v" id="goroutines">{{goroutines}}</div><div class="k">live</div></div>
<div class="card"><div class="v" id="running">{{running}}</div><div class="k">running</div></div>
<div class="card"><div class="v" id="runnable">{{runnable}}</div><div class="k">runnable</div></div>
<div class="card"><div class="v" id="waiting">{{waiting}}</div><div class="k">waiting</div></div>
<div class="card"><div class="v" id="not_started">{{not_started}}</div><div class="k">not started</div></div>
<div class="card"><div class="v" id="spawned">{{spawned}}</div><div class="k">spawned (total)</div></div>
<div class="card"><div class="v" id="finished">{{finished}}</div><div class="k">finished (total)</div></div>
<div class="card"><div class="v" id="io_waiters">{{io_waiters}}</div><div class="k">I/O waiters</div></div>
<div class="card"><div class="v" id="blocking_jobs">{{blocking_jobs}}</div><div class="k">blocking jobs</div></div>
</div>
<h2>Live goroutines over time (last 2 minutes)</h2>
<svg id="chart" width="640" height="160" viewBox="0 0 640 160">
<polyline id="line" fill="none" stroke="#2a6fdb" stroke-width="2" points=""></polyline>
<text id="chart-max" x="4" y="14" font-size="11" fill="#666"></text>
</svg>
<h2>Waiting, by reason</h2>
<table><tbody id="by-reason"></tbody></table>
<h2>Grouped dump</h2>
<pre id="dump">loading…</pre>
<script>
(function () {
  "use strict";
  var ids = ["goroutines", "running", "runnable", "waiting", "not_started",
             "spawned", "finished", "io_waiters", "blocking_jobs"];
  var history = [];
  var W = 640, H = 160, N = 120;
  function text(id, v) { document.getElementById(id).textContent = String(v); }
  function draw() {
    var max = 1;
    history.forEach(function (v) { if (v > max) max = v; });
    var pts = history.map(function (v, i) {
      var x = (N - history.length + i) * (W / (N - 1));
      var y = H - 4 - (v / max) * (H - 24);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    document.getElementById("line").setAttribute("points", pts.join(" "));
    text("chart-max", "max " + max);
  }
  function reasons(by) {
    var body = document.getElementById("by-reason");
    while (body.firstChild) body.removeChild(body.firstChild);
    Object.keys(by).forEach(function (k) {
      var tr = document.createElement("tr");
      var a = document.createElement("td"); a.textContent = k;
      var b = document.createElement("td"); b.textContent = by[k];
      tr.appendChild(a); tr.appendChild(b); body.appendChild(tr);
    });
  }
  function poll() {
    fetch("/debug/stats", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        window.goroStats = s;
        ids.forEach(function (id) { text(id, s[id]); });
        reasons(s.by_reason || {});
        history.push(s.goroutines);
        if (history.length > N) history.shift();
        draw();
        text("updated", new Date().toLocaleTimeString());
        text("status", "");
        document.body.setAttribute("data-polls", String((+document.body.getAttribute("data-polls") || 0) + 1));
      })
      .catch(function (e) { text("status", "poll failed: " + e); });
    fetch("/debug/goroutines?grouped=1", { cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (t) { text("dump", t); })
      .catch(function () {});
  }
  poll();
  setInterval(poll, 1000);
})();
</script>
</body>
</html>
"##;
