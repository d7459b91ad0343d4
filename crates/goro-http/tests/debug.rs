//! The debug endpoints: dumps, JSON stats, Prometheus text and the page.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{builder, serve, stop};
use goro_http::{debug, Client};

/// The integer after `"key":` in a flat JSON text.
fn json_int(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[goro::test]
fn endpoints() {
    let h = serve(builder(), debug::handler());
    let base = format!("http://{}", h.local_addr());
    let client = Client::new();
    let get = |path: &str| client.get(&format!("{base}{path}")).unwrap();

    let r = get("/debug/stats");
    assert_eq!(r.headers()["content-type"], "application/json");
    let json = r.body().to_str().unwrap().to_string();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    // This test's main goroutine, the accept loop and the connection.
    assert!(json_int(&json, "goroutines") >= 3, "{json}");
    assert!(json_int(&json, "spawned") >= json_int(&json, "finished"));
    assert!(json.contains("\"by_reason\":{"), "{json}");
    assert!(json.contains("\"workers\":[{\"runs\":"), "{json}");

    let r = get("/metrics");
    let text = r.body().to_str().unwrap();
    assert!(text.contains("# TYPE goro_goroutines gauge"), "{text}");

    let r = get("/debug/goroutines");
    let dump = r.body().to_str().unwrap();
    assert!(dump.contains("goroutine "), "{dump}");
    assert!(dump.contains("goro-http accept"), "{dump}");

    let r = get("/debug/goroutines?grouped=1");
    let grouped = r.body().to_str().unwrap();
    assert!(
        grouped.lines().next().unwrap().ends_with(" goroutines"),
        "{grouped}"
    );
    assert!(grouped.contains(" @ ["), "{grouped}");

    let r = get("/debug/");
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let html = r.body().to_str().unwrap();
    for id in [
        "goroutines",
        "running",
        "runnable",
        "waiting",
        "not_started",
        "spawned",
        "finished",
        "io_waiters",
        "blocking_jobs",
        "updated",
        "chart",
        "by-reason",
        "dump",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(!html.contains("{{"), "unfilled template");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external URL in page"
    );
    check_script(html);

    assert_eq!(get("/nope").status(), 404);
    drop(client);
    stop(h);
}

/// Checks the page's inline script parses, with node when it is installed.
fn check_script(html: &str) {
    let start = html.find("<script>").unwrap() + "<script>".len();
    let end = html.find("</script>").unwrap();
    let js = html[start..end].to_string();
    let ok = goro::blocking(move || {
        let child = Command::new("node")
            .arg("--check")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(_) => return None,
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(js.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Some((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    });
    match ok {
        None => println!("skipping the script syntax check: `node` is not installed"),
        Some((true, _)) => {}
        Some((false, err)) => panic!("the page's script does not parse: {err}"),
    }
}

#[goro::test]
fn route_leaves_other_paths_to_the_caller() {
    let req = goro_http::Request::get("/api").body(()).unwrap();
    assert!(debug::route(&req).is_none());
    let req = goro_http::Request::post("/debug/stats").body(()).unwrap();
    assert!(debug::route(&req).is_none());
    let req = goro_http::Request::get("/debug/stats").body(()).unwrap();
    assert_eq!(debug::route(&req).unwrap().status(), 200);
}

/// The text of the element with `id` in a DOM dump.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let pat = format!("id=\"{id}\">");
    let at = dom.find(&pat).unwrap_or_else(|| panic!("no #{id}")) + pat.len();
    let end = dom[at..].find('<').unwrap();
    &dom[at..at + end]
}

#[goro::test]
fn page_in_headless_chromium() {
    let h = serve(builder(), debug::handler());
    let url = format!("http://{}/debug/", h.local_addr());
    let dom = goro::blocking(move || {
        // Present at all?
        Command::new("chromium")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        // Bounded, so a browser that hangs cannot hang the test run.
        Command::new("timeout")
            .args([
                "60",
                "chromium",
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--virtual-time-budget=3500",
                "--dump-dom",
                &url,
            ])
            .output()
    });
    let dom = match dom {
        Err(_) => {
            println!("skipping: `chromium` is not installed");
            stop(h);
            return;
        }
        Ok(o) if !o.status.success() => {
            // A browser that cannot start here (no display libraries, a
            // sandbox refusal) is the machine's problem, not the page's.
            println!(
                "skipping: chromium failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            stop(h);
            return;
        }
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
    };
    // The script ran and polled.
    let polls: u32 = dom
        .split("data-polls=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("the page never polled");
    assert!(polls >= 1, "{polls} polls");
    assert_ne!(element_text(&dom, "updated"), "never");
    assert_eq!(element_text(&dom, "status"), "");
    // Its numbers are the runtime's: compare with a fresh /debug/stats.
    let client = Client::new();
    let json = client
        .get(&format!("http://{}/debug/stats", h.local_addr()))
        .unwrap()
        .into_body();
    let json = json.to_str().unwrap();
    let shown = |id: &str| -> u64 { element_text(&dom, id).parse().unwrap() };
    assert!(shown("goroutines") >= 3); // test main, accept loop, connection
    assert!(shown("spawned") <= json_int(json, "spawned"));
    assert!(shown("finished") <= json_int(json, "finished"));
    assert!(shown("waiting") >= 1); // at least the accept loop
    assert!(shown("running") >= 1); // the connection serving /debug/stats
    assert!(dom.contains("<pre id=\"dump\">"));
    assert!(element_text(&dom, "dump").contains(" goroutines"));
    drop(client);
    stop(h);
}
