//! Conformance against HTTP clients written by others: `curl` and Python's
//! `http.client` (plus a raw Python socket for pipelining and
//! 100-continue). Each test prints a message and passes when its tool is
//! missing.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{builder, echo, eventually, serve, stop};
use goro_http::{Body, Request, RequestCtx, Response};

/// Whether `tool --version` runs; prints a skip message when it does not.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipping: `{tool}` is not installed");
    }
    ok
}

/// Runs `cmd` with `stdin` on the blocking pool, so the goroutine's worker
/// stays free for the server.
fn run(mut cmd: Command, stdin: Vec<u8>) -> Output {
    goro::blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut input = child.stdin.take().unwrap();
        input.write_all(&stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
}

/// Runs curl with `args`, expecting success; returns (stdout, stderr).
fn curl(args: &[&str], stdin: &[u8]) -> (String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "10"])
        .args(args);
    let out = run(cmd, stdin.to_vec());
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "curl {args:?} failed: {e}");
    (o, e)
}

/// Runs a Python script with the server's port as its argument, expecting
/// it to print `OK` last.
fn python(script: &str, port: u16) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(port.to_string());
    let out = run(cmd, Vec::new());
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "python failed:\n{o}\n{e}");
    assert!(o.trim_end().ends_with("OK"), "python said:\n{o}\n{e}");
    o
}

#[goro::test]
fn curl_keep_alive() {
    if !have("curl") {
        return;
    }
    let h = serve(builder(), echo());
    let base = format!("http://{}", h.local_addr());
    let (out, err) = curl(&["-v", &format!("{base}/one"), &format!("{base}/two")], b"");
    assert_eq!(out, "/one 0 /two 0 ");
    assert!(err.contains("< HTTP/1.1 200 OK"), "{err}");
    eventually("both requests served", || h.stats().requests_served == 2);
    assert_eq!(
        h.stats().connections_accepted,
        1,
        "curl did not reuse: {err}"
    );
    stop(h);
}

#[goro::test]
fn curl_chunked_upload() {
    if !have("curl") {
        return;
    }
    let h = serve(builder(), echo());
    let body: Vec<u8> = (0..20_000).map(|i| b'a' + (i % 26) as u8).collect();
    let (out, err) = curl(
        &[
            "-v",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            &format!("http://{}/upload", h.local_addr()),
        ],
        &body,
    );
    assert!(err.contains("Transfer-Encoding: chunked"), "{err}");
    let expected = format!("/upload 20000 {}", String::from_utf8(body).unwrap());
    assert_eq!(out, expected);
    stop(h);
}

#[goro::test]
fn curl_head() {
    if !have("curl") {
        return;
    }
    let h = serve(builder(), |_req: Request<Body>, _: &RequestCtx| {
        Response::new(Body::from("twelve bytes"))
    });
    let (out, _) = curl(&["-I", &format!("http://{}/", h.local_addr())], b"");
    let lower = out.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 ok\r\n"), "{out}");
    assert!(lower.contains("content-length: 12\r\n"), "{out}");
    assert!(lower.contains("date: "), "{out}");
    stop(h);
}

#[goro::test]
fn curl_expect_100_continue() {
    if !have("curl") {
        return;
    }
    let h = serve(builder(), echo());
    let body = vec![b'x'; 4096];
    let (out, err) = curl(
        &[
            "-v",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            &format!("http://{}/big", h.local_addr()),
        ],
        &body,
    );
    // curl prints the interim response only when the server sent one (after
    // a second without it, curl sends the body anyway).
    assert!(err.contains("< HTTP/1.1 100 Continue"), "{err}");
    assert!(out.starts_with("/big 4096 xxxx"), "{out}");
    stop(h);
}

#[goro::test]
fn curl_refused_upload_gets_413() {
    if !have("curl") {
        return;
    }
    let h = serve(builder().max_body_bytes(1000), echo());
    let (_, err) = curl(
        &[
            "-v",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            &format!("http://{}/big", h.local_addr()),
        ],
        &[b'y'; 5000],
    );
    assert!(err.contains("HTTP/1.1 413"), "{err}");
    assert!(!err.contains("100 Continue"), "{err}");
    stop(h);
}

/// Python's `http.client`: keep-alive, chunked upload, HEAD.
const PY_CLIENT: &str = r#"
import http.client, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(3):
    c.request("GET", "/ka%d" % i)
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, r.status
    assert body == b"/ka%d 0 " % i, body
    assert r.getheader("Connection") is None
# chunked upload: an iterable body with encode_chunked
c.request("POST", "/chunked", body=iter([b"hello ", b"chunked ", b"world"]),
          headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
r = c.getresponse()
body = r.read()
assert body == b"/chunked 19 hello chunked world", body
# HEAD
c.request("HEAD", "/head")
r = c.getresponse()
assert r.status == 200
assert r.getheader("Content-Length") == "8", r.getheaders()
assert r.read() == b""
# still the same connection
c.request("GET", "/last")
r = c.getresponse()
assert r.read() == b"/last 0 "
c.close()
print("OK")
"#;

#[goro::test]
fn python_http_client() {
    if !have("python3") {
        return;
    }
    let h = serve(builder(), echo());
    python(PY_CLIENT, h.local_addr().port());
    eventually("all served", || h.stats().requests_served == 6);
    assert_eq!(h.stats().connections_accepted, 1);
    stop(h);
}

/// Pipelining and 100-continue over a raw Python socket.
const PY_RAW: &str = r#"
import socket, sys
port = int(sys.argv[1])

def read_response(f, head=False):
    status = f.readline()
    assert status.startswith(b"HTTP/1.1 "), status
    code = int(status.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if not head and code >= 200 and code not in (204, 304):
        if headers.get("transfer-encoding") == "chunked":
            while True:
                n = int(f.readline().strip(), 16)
                if n == 0:
                    f.readline()
                    break
                body += f.read(n)
                f.readline()
        else:
            body = f.read(int(headers.get("content-length", "0")))
    return code, headers, body

s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
s.sendall(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
          b"GET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert read_response(f)[2] == b"/p1 0 "
assert read_response(f)[2] == b"/p2 3 abc"
code, headers, body = read_response(f)
assert body == b"/p3 0 ", body
assert headers.get("connection") == "close", headers
assert f.read() == b""  # closed after the third
s.close()

s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
s.sendall(b"PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n")
code, _, _ = read_response(f)
assert code == 100, code
s.sendall(b"q" * 2000)
code, _, body = read_response(f)
assert code == 200 and body.startswith(b"/c 2000 qqq"), (code, body[:20])
s.close()
print("OK")
"#;

#[goro::test]
fn python_raw_pipelining_and_100_continue() {
    if !have("python3") {
        return;
    }
    let h = serve(builder(), echo());
    python(PY_RAW, h.local_addr().port());
    stop(h);
}
