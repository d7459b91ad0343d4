//! [`Body`]: the payload of a request or a response.
//!
//! A body is either *full* — bytes already in memory, sent with a
//! `Content-Length` — or a *stream*: a closure that writes the payload when
//! the message is sent, framed with `Transfer-Encoding: chunked` because its
//! length is not known in advance. Bodies read off the wire (request bodies
//! on the server, response bodies on the client) are always full, bounded by
//! the configured maximum size.

use std::fmt;
use std::io::{self, Write};

use bytes::Bytes;

/// The writer a streaming body writes to.
///
/// Every `write` becomes one chunk on the wire (for HTTP/1.1 peers), so
/// write in reasonably sized pieces; `flush` pushes what was written so far
/// to the socket.
pub type BodyWriter<'a> = dyn Write + 'a;

/// The closure behind a streaming body.
pub(crate) type StreamFn = Box<dyn FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + Send + 'static>;

/// What a [`Body`] holds.
enum Kind {
    /// Bytes in memory.
    Full(Bytes),
    /// A writer run when the message is sent.
    Stream(StreamFn),
}

/// The body of a request or a response: bytes in memory, or a stream written
/// when the message is sent.
///
/// ```
/// use goro_http::Body;
///
/// let b = Body::from("hello");
/// assert_eq!(b.len(), Some(5));
/// assert_eq!(b.as_bytes(), b"hello");
/// assert_eq!(b.to_str().unwrap(), "hello");
///
/// // A streaming body, sent with chunked encoding.
/// let s = Body::stream(|w| {
///     for i in 0..3 {
///         writeln!(w, "line {i}")?;
///     }
///     Ok(())
/// });
/// assert!(s.is_stream());
/// assert_eq!(s.into_bytes().unwrap(), "line 0\nline 1\nline 2\n");
/// ```
pub struct Body {
    /// Full or streaming.
    kind: Kind,
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Full(Bytes::new()),
        }
    }

    /// A streaming body: `f` writes the payload when the message is sent
    /// (after the head), with `Transfer-Encoding: chunked` for HTTP/1.1
    /// peers, or delimited by closing the connection for HTTP/1.0 ones.
    ///
    /// An error returned by `f` (or a write that fails) aborts the message:
    /// the connection is closed without the final chunk, so the peer sees an
    /// incomplete body rather than a truncated one that looks complete.
    pub fn stream<F>(f: F) -> Body
    where
        F: FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + Send + 'static,
    {
        Body {
            kind: Kind::Stream(Box::new(f)),
        }
    }

    /// The length of a full body; `None` for a stream.
    pub fn len(&self) -> Option<usize> {
        match &self.kind {
            Kind::Full(b) => Some(b.len()),
            Kind::Stream(_) => None,
        }
    }

    /// Whether this is a full body of zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether this is a streaming body.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream(_))
    }

    /// The bytes of a full body; empty for a stream.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.kind {
            Kind::Full(b) => b,
            Kind::Stream(_) => &[],
        }
    }

    /// The bytes of a full body as UTF-8.
    ///
    /// # Errors
    ///
    /// When they are not valid UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(self.as_bytes())
    }

    /// The bytes of the body; a stream is run into memory first.
    ///
    /// # Errors
    ///
    /// What the stream's writer returned.
    pub fn into_bytes(self) -> io::Result<Bytes> {
        match self.kind {
            Kind::Full(b) => Ok(b),
            Kind::Stream(f) => {
                let mut v = Vec::new();
                f(&mut v)?;
                Ok(Bytes::from(v))
            }
        }
    }

    /// Splits the body into its bytes or its stream closure.
    pub(crate) fn into_kind(self) -> Result<Bytes, StreamFn> {
        match self.kind {
            Kind::Full(b) => Ok(b),
            Kind::Stream(f) => Err(f),
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(b) => f.debug_tuple("Body").field(&b.len()).finish(),
            Kind::Stream(_) => f.write_str("Body(stream)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            kind: Kind::Full(b),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(s))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Body {
        Body::empty()
    }
}
