//! The HTTP/1.1 wire format shared by the server and the client: a read
//! buffer over a stream, body framing (Content-Length, chunked,
//! close-delimited), the chunked writer, and the `Date` header.
//!
//! Everything here is plain blocking I/O on a `Read`/`Write`; timeouts come
//! from the socket's deadlines, set by the caller.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};

/// The most bytes one chunk-size line (with extensions) may take.
const MAX_CHUNK_LINE: usize = 4096;
/// The most bytes the trailer section of a chunked body may take.
const MAX_TRAILERS: usize = 16 * 1024;
/// The most headers one message may carry.
pub(crate) const MAX_HEADERS: usize = 100;

/// Bytes read from a stream and not consumed yet: `buf[start..end]`.
///
/// Pipelined requests (server) and the bytes after a response (client) stay
/// here between messages.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    /// Storage; only `start..end` holds data.
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last byte read.
    end: usize,
}

impl ReadBuf {
    /// An empty buffer.
    pub(crate) fn new() -> ReadBuf {
        ReadBuf::default()
    }

    /// The unconsumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks `n` bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Appends bytes read elsewhere (by a disconnect watcher).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Ensures at least `n` free bytes after `end`, compacting first.
    fn make_room(&mut self, n: usize) {
        if self.start > 0 && self.buf.len() - self.end < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < n {
            let want = (self.end + n).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
    }

    /// Reads once from `r` into the buffer; `Ok(0)` at end of stream.
    pub(crate) fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        self.fill_with_room(r, 4096)
    }

    /// Like `fill`, with at least `room` free bytes to read into: an idle
    /// connection waits with a small buffer, since most requests are small
    /// and memory per idle connection counts at 10,000 connections.
    pub(crate) fn fill_with_room<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        room: usize,
    ) -> io::Result<usize> {
        self.make_room(room);
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Releases the storage when it is empty and larger than `keep`, so an
    /// idle connection holds little memory.
    pub(crate) fn shrink_if_idle(&mut self, keep: usize) {
        if self.is_empty() && self.buf.len() > keep {
            self.buf = Vec::new();
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The stream failed or ended early.
    Io(io::Error),
    /// Bad chunked encoding.
    Malformed(&'static str),
    /// Longer than allowed.
    TooLarge,
}

impl From<io::Error> for BodyError {
    fn from(e: io::Error) -> BodyError {
        BodyError::Io(e)
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the peer closes (responses only).
    Close,
}

/// Why a message's framing headers are unacceptable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// Malformed or conflicting headers (400).
    Bad(&'static str),
    /// A transfer coding other than chunked (501).
    Unsupported,
}

/// Reads the framing headers of a message: `Transfer-Encoding` (only
/// `chunked` is understood) and `Content-Length` (duplicates must agree).
/// Both at once is refused, as RFC 9112 §6.3 allows, because it is the
/// shape of request smuggling.
pub(crate) fn framing(headers: &HeaderMap) -> Result<Option<Framing>, FramingError> {
    let mut te_seen = false;
    let mut chunked_last = false;
    for v in headers.get_all(TRANSFER_ENCODING) {
        let s = v
            .to_str()
            .map_err(|_| FramingError::Bad("bad Transfer-Encoding"))?;
        for coding in s.split(',') {
            let c = coding.trim();
            if c.is_empty() {
                continue;
            }
            if chunked_last {
                // chunked must be the last coding, applied once.
                return Err(FramingError::Bad(
                    "chunked is not the final transfer coding",
                ));
            }
            te_seen = true;
            if c.eq_ignore_ascii_case("chunked") {
                chunked_last = true;
            } else if c.eq_ignore_ascii_case("identity") {
                return Err(FramingError::Bad("identity transfer coding"));
            } else {
                return Err(FramingError::Unsupported);
            }
        }
    }
    let mut length: Option<u64> = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = trim_ascii(part);
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::Bad("bad Content-Length"));
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(FramingError::Bad("bad Content-Length"))?;
            match length {
                Some(m) if m != n => return Err(FramingError::Bad("conflicting Content-Length")),
                _ => length = Some(n),
            }
        }
    }
    match (te_seen, length) {
        (true, Some(_)) => Err(FramingError::Bad(
            "both Transfer-Encoding and Content-Length",
        )),
        (true, None) => Ok(Some(Framing::Chunked)),
        (false, Some(0)) => Ok(Some(Framing::Empty)),
        (false, Some(n)) => Ok(Some(Framing::Length(n))),
        (false, None) => Ok(None),
    }
}

/// `s` without leading and trailing ASCII whitespace.
fn trim_ascii(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(a, |i| i + 1);
    &s[a..b.max(a)]
}

/// Whether the `Connection` header lists `token`.
pub(crate) fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Reads a body of the given framing, at most `max` bytes.
pub(crate) fn read_body<R: Read + ?Sized>(
    rb: &mut ReadBuf,
    r: &mut R,
    framing: Framing,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(n) => {
            if n > max as u64 {
                return Err(BodyError::TooLarge);
            }
            read_exact_body(rb, r, n as usize)
        }
        Framing::Chunked => read_chunked(rb, r, max),
        Framing::Close => read_to_close(rb, r, max),
    }
}

/// Reads exactly `n` bytes.
fn read_exact_body<R: Read + ?Sized>(
    rb: &mut ReadBuf,
    r: &mut R,
    n: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(n);
    let take = rb.data().len().min(n);
    out.extend_from_slice(&rb.data()[..take]);
    rb.consume(take);
    if out.len() < n {
        // Read the rest straight into the body, not through the buffer.
        out.resize(n, 0);
        let mut got = take;
        while got < n {
            match r.read(&mut out[got..]) {
                Ok(0) => return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Reads until the peer closes.
fn read_to_close<R: Read + ?Sized>(
    rb: &mut ReadBuf,
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    loop {
        if rb.data().len() > max {
            return Err(BodyError::TooLarge);
        }
        if rb.fill(r)? == 0 {
            let out = rb.data().to_vec();
            let n = out.len();
            rb.consume(n);
            return Ok(out);
        }
    }
}

/// Reads one line ending in LF (an optional CR before it is dropped), at
/// most `limit` bytes; returns it without the line ending.
fn read_line<R: Read + ?Sized>(
    rb: &mut ReadBuf,
    r: &mut R,
    limit: usize,
    what: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let mut scanned = 0;
    loop {
        if let Some(i) = rb.data()[scanned..].iter().position(|&b| b == b'\n') {
            let i = scanned + i;
            let mut line = rb.data()[..i].to_vec();
            rb.consume(i + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        scanned = rb.data().len();
        if scanned > limit {
            return Err(BodyError::Malformed(what));
        }
        if rb.fill(r)? == 0 {
            return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// Decodes a chunked body (RFC 9112 §7.1); extensions are ignored and
/// trailers are read and dropped.
fn read_chunked<R: Read + ?Sized>(
    rb: &mut ReadBuf,
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    loop {
        let line = read_line(rb, r, MAX_CHUNK_LINE, "chunk size line too long")?;
        let size_part = match line.iter().position(|&b| b == b';') {
            Some(i) => &line[..i],
            None => &line[..],
        };
        let size_part = trim_ascii(size_part);
        if size_part.is_empty() || size_part.len() > 15 {
            return Err(BodyError::Malformed("bad chunk size"));
        }
        let mut size: usize = 0;
        for &b in size_part {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(BodyError::Malformed("bad chunk size")),
            };
            size = size * 16 + d as usize;
        }
        if size == 0 {
            // Trailer section, then an empty line.
            let mut total = 0;
            loop {
                let t = read_line(rb, r, MAX_TRAILERS, "trailers too long")?;
                if t.is_empty() {
                    return Ok(out);
                }
                total += t.len() + 2;
                if total > MAX_TRAILERS {
                    return Err(BodyError::Malformed("trailers too long"));
                }
            }
        }
        if out.len() + size > max {
            return Err(BodyError::TooLarge);
        }
        let data = read_exact_body(rb, r, size)?;
        out.extend_from_slice(&data);
        // The chunk's data ends with CRLF.
        while rb.data().len() < 2 {
            if rb.fill(r)? == 0 {
                return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        if &rb.data()[..2] != b"\r\n" {
            return Err(BodyError::Malformed("chunk data not followed by CRLF"));
        }
        rb.consume(2);
    }
}

/// A writer that frames everything written to it as chunks; `finish`
/// writes the last chunk.
pub(crate) struct ChunkedWriter<'a, W: Write + ?Sized> {
    /// The stream underneath.
    inner: &'a mut W,
}

impl<'a, W: Write + ?Sized> ChunkedWriter<'a, W> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: &'a mut W) -> Self {
        ChunkedWriter { inner }
    }

    /// Writes the zero-length last chunk and the empty trailer section.
    pub(crate) fn finish(self) -> io::Result<()> {
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()
    }
}

impl<W: Write + ?Sized> Write for ChunkedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            // An empty chunk would end the body.
            return Ok(0);
        }
        let mut frame = Vec::with_capacity(buf.len() + 20);
        let _ = write!(frame, "{:x}\r\n", buf.len());
        frame.extend_from_slice(buf);
        frame.extend_from_slice(b"\r\n");
        self.inner.write_all(&frame)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes each header as `name: value\r\n`.
pub(crate) fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

thread_local! {
    /// The last formatted `Date` value and the second it stands for: a
    /// goroutine never leaves its worker thread once started, and one
    /// formatting per second per worker is plenty.
    static DATE: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
}

/// The current time as an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn http_date() -> HeaderValue {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let s = format_http_date(secs);
            c.1 = HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
            c.0 = secs;
        }
        c.1.clone()
    })
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub(crate) fn format_http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from a day count (proleptic Gregorian, era-based).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        h,
        m,
        s
    )
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1 — `Connection`, the
/// headers it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`, `Proxy-Authenticate`,
/// `Proxy-Authorization` — which describe one connection and must not be
/// forwarded by a proxy or gateway.
///
/// ```
/// use goro_http::{remove_hop_by_hop_headers, HeaderMap};
///
/// let mut h = HeaderMap::new();
/// h.insert("connection", "close, x-session".parse().unwrap());
/// h.insert("x-session", "42".parse().unwrap());
/// h.insert("keep-alive", "timeout=5".parse().unwrap());
/// h.insert("x-request-id", "7".parse().unwrap());
/// remove_hop_by_hop_headers(&mut h);
/// assert_eq!(h.len(), 1);
/// assert_eq!(h["x-request-id"], "7");
/// ```
pub fn remove_hop_by_hop_headers(headers: &mut HeaderMap) {
    let named: Vec<http::header::HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|t| http::header::HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            format_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(1_767_225_599),
            "Wed, 31 Dec 2025 23:59:59 GMT"
        );
    }

    fn chunked(input: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
        let mut rb = ReadBuf::new();
        let mut r = input;
        read_body(&mut rb, &mut r, Framing::Chunked, max)
    }

    #[test]
    fn chunked_decoding() {
        let body = chunked(b"5\r\nhello\r\n1;ext=1\r\n \r\n0\r\nX-T: 1\r\n\r\n", 100).unwrap();
        assert_eq!(body, b"hello ");
        assert!(matches!(
            chunked(b"zz\r\n", 100),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            chunked(b"\r\n", 100),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            chunked(b"3\r\nabcd\r\n", 100),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(chunked(b"ff\r\n", 10), Err(BodyError::TooLarge)));
        assert!(matches!(chunked(b"3\r\nab", 10), Err(BodyError::Io(_))));
    }

    #[test]
    fn framing_rules() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(*k, HeaderValue::from_static(v));
            }
            framing(&m)
        };
        assert_eq!(h(&[]), Ok(None));
        assert_eq!(h(&[("content-length", "5")]), Ok(Some(Framing::Length(5))));
        assert_eq!(
            h(&[("content-length", "5"), ("content-length", "5")]),
            Ok(Some(Framing::Length(5)))
        );
        assert!(h(&[("content-length", "5"), ("content-length", "6")]).is_err());
        assert!(h(&[("content-length", "-1")]).is_err());
        assert!(h(&[("content-length", "+5")]).is_err());
        assert_eq!(
            h(&[("transfer-encoding", "chunked")]),
            Ok(Some(Framing::Chunked))
        );
        assert_eq!(
            h(&[("transfer-encoding", "gzip, chunked")]),
            Err(FramingError::Unsupported)
        );
        assert!(h(&[("transfer-encoding", "chunked"), ("content-length", "3")]).is_err());
        assert!(h(&[("transfer-encoding", "chunked, chunked")]).is_err());
    }

    #[test]
    fn chunked_writer() {
        let mut out = Vec::new();
        let mut w = ChunkedWriter::new(&mut out);
        w.write_all(b"hello").unwrap();
        w.write_all(b"").unwrap();
        w.finish().unwrap();
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
    }
}
