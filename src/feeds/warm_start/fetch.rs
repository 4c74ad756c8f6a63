//! One request to a history service: a size limit, a timeout, and every way it can fail
//! named, so that the warm start can count, log and retry it.

use std::time::Duration;

use crate::config::redact_url;

/// Why a warm-start request failed: the `result` label of `bgpsentry_warm_start_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection (DNS, refused, TLS, proxy) or no answer in time.
    Unreachable,
    /// HTTP 401 or 403: the API key is missing, wrong or not allowed.
    Unauthorized,
    /// HTTP 429: rate limited.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// Another HTTP status that is not 2xx.
    HttpError,
    /// Not JSON, or JSON of the wrong shape.
    Malformed,
    /// The answer ended before its announced length.
    Truncated,
    /// The answer is larger than `max_response_bytes`.
    Oversized,
    /// Live events overflowed the buffer before the state arrived.
    Overflow,
}

impl Failure {
    /// Every failure, in the order the metric catalogue lists them.
    pub const ALL: [Failure; 9] = [
        Failure::Unreachable,
        Failure::Unauthorized,
        Failure::RateLimited,
        Failure::ServerError,
        Failure::HttpError,
        Failure::Malformed,
        Failure::Truncated,
        Failure::Oversized,
        Failure::Overflow,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::Unauthorized => "unauthorized",
            Failure::RateLimited => "rate_limited",
            Failure::ServerError => "server_error",
            Failure::HttpError => "http_error",
            Failure::Malformed => "malformed",
            Failure::Truncated => "truncated",
            Failure::Oversized => "oversized",
            Failure::Overflow => "overflow",
        }
    }
}

/// A failed request: why, what to tell the operator (free of secrets), and how long the server
/// asked us to wait (`Retry-After`).
#[derive(Debug, Clone)]
pub struct Failed {
    /// Why, as counted.
    pub failure: Failure,
    /// Human message.
    pub message: String,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Failed {
    /// A failure with a message and no `Retry-After`.
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Failed {
            failure,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Largest `Retry-After` honoured: a server asking for more is waited for this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads `Retry-After` in seconds (an HTTP date is read as "a minute").
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let v = value?.trim();
    match v.parse::<u64>() {
        Ok(s) => Some(Duration::from_secs(s).min(MAX_RETRY_AFTER)),
        Err(_) if !v.is_empty() => Some(Duration::from_secs(60)),
        Err(_) => None,
    }
}

/// Sends `request` and reads the whole body, up to `max_bytes`. `secret` is scrubbed from
/// every message.
pub async fn body(
    request: reqwest::RequestBuilder,
    shown_url: &str,
    max_bytes: u64,
    timeout: Duration,
    secret: &str,
) -> Result<Vec<u8>, Failed> {
    let scrub = |m: String| crate::feeds::websocket::scrub(&m, secret);
    let shown = redact_url(shown_url);
    let work = async {
        let mut resp = request.send().await.map_err(|e| {
            Failed::new(
                Failure::Unreachable,
                scrub(format!("cannot reach {shown}: {}", error_chain(&e))),
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let after = retry_after(
                resp.headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            let mut snippet = Vec::new();
            while snippet.len() < 512 {
                match resp.chunk().await {
                    Ok(Some(c)) => snippet.extend_from_slice(&c),
                    _ => break,
                }
            }
            snippet.truncate(512);
            let snippet: String = String::from_utf8_lossy(&snippet)
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let (failure, hint) = match status.as_u16() {
                401 | 403 => (Failure::Unauthorized, "; check the API key"),
                429 => (Failure::RateLimited, "; waiting as the server asks"),
                500..=599 => (Failure::ServerError, "; retrying later"),
                _ => (Failure::HttpError, "; check the warm_start url"),
            };
            return Err(Failed {
                failure,
                message: scrub(format!(
                    "{shown} answered HTTP {status}: {}{hint}",
                    snippet.trim()
                )),
                retry_after: after,
            });
        }
        if let Some(len) = resp.content_length()
            && len > max_bytes
        {
            return Err(Failed::new(
                Failure::Oversized,
                format!(
                    "{shown} announced {len} bytes, over the limit of {max_bytes} (warm_start.max_response_bytes)"
                ),
            ));
        }
        let announced = resp.content_length();
        let mut out = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if out.len() as u64 + c.len() as u64 > max_bytes {
                        return Err(Failed::new(
                            Failure::Oversized,
                            format!(
                                "the answer of {shown} is over the limit of {max_bytes} bytes (warm_start.max_response_bytes)"
                            ),
                        ));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failed::new(
                        Failure::Truncated,
                        scrub(format!(
                            "the answer of {shown} broke off after {} bytes: {}",
                            out.len(),
                            error_chain(&e)
                        )),
                    ));
                }
            }
        }
        if let Some(len) = announced
            && (out.len() as u64) < len
        {
            return Err(Failed::new(
                Failure::Truncated,
                format!(
                    "the answer of {shown} ended after {} of {len} bytes",
                    out.len()
                ),
            ));
        }
        Ok(out)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(Failed::new(
            Failure::Unreachable,
            format!("{shown} gave no complete answer within {timeout:?}"),
        )),
    }
}

/// The error and its causes, without the URL (it may carry a key; callers show it redacted).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    redact_url(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_the_message_names_it_without_the_secret() {
        // Bound, then closed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/v1/rib");
        let req = reqwest::Client::new()
            .get(&url)
            .header("x-api-key", "SECRET");
        let e = body(req, &url, 1024, Duration::from_secs(5), "SECRET")
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::Unreachable);
        assert!(
            e.message.contains(&format!("127.0.0.1:{port}")),
            "{}",
            e.message
        );
        assert!(!e.message.contains("SECRET"), "{}", e.message);
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        assert_eq!(retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("99999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after(Some("")), None);
        assert_eq!(retry_after(None), None);
    }
}
