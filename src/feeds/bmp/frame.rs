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

/// Reads the next message (header included); `Ok(None)` when the stream ends cleanly between
/// messages.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = reader
            .read(&mut header[got..])
            .await
            .map_err(|e| FrameError::Io(e.to_string()))?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated {
                    expected: HEADER_LEN,
                    got,
                })
            };
        }
        got += n;
    }
    let length = check_header(&header, limit)?;
    // Grows with what arrives (`take` + `read_to_end`), not with what the header claims.
    let mut message = Vec::with_capacity(length.min(64 * 1024));
    message.extend_from_slice(&header);
    let body = (length - HEADER_LEN) as u64;
    let read = reader
        .take(body)
        .read_to_end(&mut message)
        .await
        .map_err(|e| FrameError::Io(e.to_string()))?;
    if (read as u64) < body {
        return Err(FrameError::Truncated {
            expected: length,
            got: HEADER_LEN + read,
        });
    }
    Ok(Some(message))
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
}
