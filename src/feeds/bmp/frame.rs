//! Cuts a BMP byte stream into messages by their common header (RFC 7854 §4.1), refusing
//! what cannot be a BMP message before reading its body.
//!
//! The length field is all a reader has to go on, so it is checked before anything is
//! allocated: a version other than 3, a length under the header's own 6 bytes or over the
//! feed's limit ends the connection (the stream cannot be framed past it). The body is read as
//! it arrives, so a router that announces a large message and sends it slowly holds no more
//! memory than it has sent.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the common header: version (1), message length (4), message type (1).
pub const HEADER_LEN: usize = 6;

/// The only BMP version (RFC 7854).
pub const BMP_VERSION: u8 = 3;

/// Why a stream cannot be framed further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A version other than 3: not BMP, or a pre-standard draft.
    Version(u8),
    /// A length shorter than the header itself.
    TooShort(u32),
    /// A length over the feed's limit.
    TooLarge {
        /// The length the header claims.
        length: u32,
        /// The feed's limit.
        limit: usize,
    },
    /// The stream ended inside a message.
    Truncated {
        /// Bytes the message should have had.
        expected: usize,
        /// Bytes that came.
        got: usize,
    },
    /// Reading the socket failed.
    Io(String),
}

impl FrameError {
    /// The `reason` label it is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Version(_) => "bad_version",
            FrameError::TooShort(_) => "bad_length",
            FrameError::TooLarge { .. } => "oversized",
            FrameError::Truncated { .. } => "truncated",
            FrameError::Io(_) => "read",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Version(v) => write!(
                f,
                "BMP version {v} in a message header; only version 3 (RFC 7854) is spoken: the peer is not a BMP router or the stream lost its framing"
            ),
            FrameError::TooShort(l) => write!(
                f,
                "message length {l} is shorter than the 6-byte header: the stream lost its framing"
            ),
            FrameError::TooLarge { length, limit } => write!(
                f,
                "message of {length} bytes is over the limit of {limit} (`max_frame_bytes`)"
            ),
            FrameError::Truncated { expected, got } => write!(
                f,
                "the connection ended inside a message ({got} of {expected} bytes)"
            ),
            FrameError::Io(e) => write!(f, "reading from the router failed: {e}"),
        }
    }
}

/// Checks a common header and returns the whole message's length.
pub fn check_header(header: &[u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    if header[0] != BMP_VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if (length as usize) < HEADER_LEN {
        return Err(FrameError::TooShort(length));
    }
    if length as usize > limit {
        return Err(FrameError::TooLarge { length, limit });
    }
    Ok(length as usize)
}

/// Reads messages one after another, keeping a message's partial bytes between calls, so
/// that [`FrameReader::next`] may be cancelled (by a timer in a `select!`) without losing the
/// framing: reading a socket is cancel-safe, and everything read is kept here.
#[derive(Debug)]
pub struct FrameReader {
    limit: usize,
    header: [u8; HEADER_LEN],
    header_got: usize,
    /// The message so far (header included) and its length, once the header is in.
    message: Vec<u8>,
    length: usize,
}

/// Bytes read from the socket at a time.
const CHUNK: usize = 16 * 1024;

impl FrameReader {
    /// A reader refusing messages over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        FrameReader {
            limit,
            header: [0; HEADER_LEN],
            header_got: 0,
            message: Vec::new(),
            length: 0,
        }
    }

    /// The next message (header included); `Ok(None)` when the stream ends cleanly between
    /// messages.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let io = |e: std::io::Error| FrameError::Io(e.to_string());
        loop {
            if self.header_got < HEADER_LEN {
                let n = reader
                    .read(&mut self.header[self.header_got..])
                    .await
                    .map_err(io)?;
                if n == 0 {
                    return if self.header_got == 0 {
                        Ok(None)
                    } else {
                        Err(FrameError::Truncated {
                            expected: HEADER_LEN,
                            got: self.header_got,
                        })
                    };
                }
                self.header_got += n;
                if self.header_got == HEADER_LEN {
                    self.length = check_header(&self.header, self.limit)?;
                    // Grows with what arrives, not with what the header claims.
                    self.message = Vec::with_capacity(self.length.min(64 * 1024));
                    self.message.extend_from_slice(&self.header);
                }
                continue;
            }
            if self.message.len() >= self.length {
                self.header_got = 0;
                return Ok(Some(std::mem::take(&mut self.message)));
            }
            let want = (self.length - self.message.len()).min(CHUNK);
            let mut chunk = [0u8; CHUNK];
            let n = reader.read(&mut chunk[..want]).await.map_err(io)?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    expected: self.length,
                    got: self.message.len(),
                });
            }
            self.message.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Reads the next message (header included); `Ok(None)` when the stream ends cleanly between
/// messages. Not cancel-safe: use a [`FrameReader`] where the read may be cancelled.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    FrameReader::new(limit).next(reader).await
}

/// The messages of a recorded stream in memory (fixtures, the fuzzer), each with its framing
/// error; the iteration ends after an error.
pub fn split(data: &[u8], limit: usize) -> impl Iterator<Item = Result<&[u8], FrameError>> {
    let mut rest = data;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let Some(header) = rest.first_chunk::<HEADER_LEN>() else {
            failed = true;
            return Some(Err(FrameError::Truncated {
                expected: HEADER_LEN,
                got: rest.len(),
            }));
        };
        let length = match check_header(header, limit) {
            Ok(l) => l,
            Err(e) => {
                failed = true;
                return Some(Err(e));
            }
        };
        if rest.len() < length {
            failed = true;
            return Some(Err(FrameError::Truncated {
                expected: length,
                got: rest.len(),
            }));
        }
        let (message, tail) = rest.split_at(length);
        rest = tail;
        Some(Ok(message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u8, length: u32, kind: u8) -> Vec<u8> {
        let mut h = vec![version];
        h.extend_from_slice(&length.to_be_bytes());
        h.push(kind);
        h
    }

    #[test]
    fn lying_lengths_are_refused_before_any_body_is_read() {
        let limit = 1 << 20;
        assert_eq!(
            check_header(&[3, 0, 0, 0, 5, 4], limit),
            Err(FrameError::TooShort(5))
        );
        // 100 MB announced: refused from the header alone.
        let h: [u8; 6] = header(3, 100_000_000, 0).try_into().unwrap();
        assert_eq!(
            check_header(&h, limit),
            Err(FrameError::TooLarge {
                length: 100_000_000,
                limit
            })
        );
        let h: [u8; 6] = header(1, 10, 0).try_into().unwrap();
        assert_eq!(check_header(&h, limit), Err(FrameError::Version(1)));
        let garbage = b"GET / HTTP/1.1\r\n\r\n";
        let first = split(garbage, limit).next().unwrap();
        assert!(matches!(first, Err(FrameError::Version(b'G'))));
    }

    #[tokio::test]
    async fn truncated_streams_are_reported_with_what_came() {
        let mut data = header(3, 20, 4);
        data.extend_from_slice(&[0; 4]);
        let mut r = &data[..];
        assert_eq!(
            read_message(&mut r, 1 << 20).await,
            Err(FrameError::Truncated {
                expected: 20,
                got: 10
            })
        );
        let mut r = &data[..3];
        assert_eq!(
            read_message(&mut r, 1 << 20).await,
            Err(FrameError::Truncated {
                expected: 6,
                got: 3
            })
        );
        let mut empty: &[u8] = &[];
        assert_eq!(read_message(&mut empty, 1 << 20).await, Ok(None));
        let parts: Vec<_> = split(&data, 1 << 20).collect();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].is_err());
    }

    #[tokio::test]
    async fn whole_messages_come_back_byte_for_byte() {
        let mut one = header(3, 8, 4);
        one.extend_from_slice(&[0xAA, 0xBB]);
        let mut data = one.clone();
        data.extend_from_slice(&one);
        let mut r = &data[..];
        assert_eq!(read_message(&mut r, 64).await, Ok(Some(one.clone())));
        assert_eq!(read_message(&mut r, 64).await, Ok(Some(one.clone())));
        assert_eq!(read_message(&mut r, 64).await, Ok(None));
        let parts: Vec<_> = split(&data, 64).collect();
        assert_eq!(parts, vec![Ok(&one[..]), Ok(&one[..])]);
    }

    #[tokio::test]
    async fn a_cancelled_read_loses_nothing() {
        // The message arrives in pieces with pauses; every read is cut short by a timer, as
        // the listener's hold timer may do, and the message still comes out whole.
        let mut one = header(3, 40_000, 0);
        one.resize(40_000, 0xAB);
        let (mut tx, mut rx) = tokio::io::duplex(1024);
        let sent = one.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in sent.chunks(3_000) {
                tx.write_all(piece).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        });
        let mut frames = FrameReader::new(1 << 20);
        let mut cancelled = 0;
        let got = loop {
            tokio::select! {
                m = frames.next(&mut rx) => break m,
                _ = tokio::time::sleep(std::time::Duration::from_millis(1)) => cancelled += 1,
            }
        };
        assert!(cancelled > 0);
        assert_eq!(got, Ok(Some(one)));
    }
}
