//! Helpers for the integration tests: servers with short timeouts and a
//! raw-socket client that reads responses byte-exactly.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use goro::net::TcpStream;
use goro_http::{
    Body, Handler, Request, RequestCtx, Response, Server, ServerBuilder, ServerHandle,
};

/// A builder with test-sized timeouts.
pub fn builder() -> ServerBuilder {
    Server::builder()
        .read_header_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(5))
}

/// Starts `h` on a free loopback port.
pub fn serve<H: Handler>(b: ServerBuilder, h: H) -> ServerHandle {
    b.bind("127.0.0.1:0").unwrap().serve(h)
}

/// A handler answering `path body-len body`.
pub fn echo() -> impl Handler {
    |req: Request<Body>, _: &RequestCtx| {
        let text = format!(
            "{} {} {}",
            req.uri().path(),
            req.body().len().unwrap_or(0),
            req.body().to_str().unwrap_or("<binary>")
        );
        Response::new(Body::from(text))
    }
}

/// Shuts `h` down, expecting every connection to close in time.
pub fn stop(h: ServerHandle) {
    h.shutdown(Duration::from_secs(5))
        .expect("graceful shutdown");
}

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Decoded body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A raw connection with a read buffer.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read, not parsed yet.
    pub buf: Vec<u8>,
}

impl Raw {
    /// Connects to `addr`, with a 5 s read deadline per call.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more bytes; false at end of stream (or a reset).
    fn fill(&mut self) -> bool {
        let mut b = [0u8; 8192];
        match self.stream.read(&mut b) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads until `n` bytes are buffered.
    fn need(&mut self, n: usize) {
        while self.buf.len() < n {
            assert!(self.fill(), "connection closed early");
        }
    }

    /// Reads one CRLF-terminated line.
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return l;
            }
            assert!(self.fill(), "connection closed early");
        }
    }

    /// Reads one response; `head` for a HEAD request (no body).
    pub fn response(&mut self, head: bool) -> Resp {
        self.try_response(head)
            .expect("connection closed before a response")
    }

    /// Reads one response, or `None` if the connection closes first.
    pub fn try_response(&mut self, head: bool) -> Option<Resp> {
        while self.buf.is_empty() {
            if !self.fill() {
                return None;
            }
        }
        let status_line = self.line();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status < 200 || status == 204 || status == 304 {
            return Some(resp);
        }
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                if size == 0 {
                    assert_eq!(self.line(), "");
                    break;
                }
                self.need(size + 2);
                resp.body.extend_from_slice(&self.buf[..size]);
                assert_eq!(&self.buf[size..size + 2], b"\r\n");
                self.buf.drain(..size + 2);
            }
        } else if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().unwrap();
            self.need(n);
            resp.body = self.buf.drain(..n).collect();
        } else {
            while self.fill() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    /// Whether the server closes the connection (EOF or reset) within
    /// `within`, with no further bytes.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.stream
            .set_read_deadline(Some(Instant::now() + within))
            .unwrap();
        let mut b = [0u8; 1024];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return self.buf.is_empty(),
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return self.buf.is_empty()
                }
                Err(_) => return false,
            }
        }
    }
}

impl Raw {
    /// Everything the server sends until it closes the connection, or
    /// `None` if it is still open after `within`.
    pub fn read_until_closed(&mut self, within: Duration) -> Option<Vec<u8>> {
        self.stream
            .set_read_deadline(Some(Instant::now() + within))
            .unwrap();
        let mut b = [0u8; 4096];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return Some(std::mem::take(&mut self.buf)),
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Some(std::mem::take(&mut self.buf))
                }
                Err(_) => return None,
            }
        }
    }
}

/// Sends one request on a fresh connection and reads the response.
pub fn roundtrip(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut c = Raw::connect(addr);
    c.send(request);
    c.response(false)
}

/// Waits up to 5 s for `cond` to hold (counters are updated just after the
/// bytes they count go out).
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never happened: {what}"
        );
        goro::time::sleep(Duration::from_millis(5));
    }
}
