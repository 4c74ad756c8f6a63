//! What the HTTP channels (webhook, chat, Alertmanager) share: the channel's URL and headers
//! from config, a client with the channel's timeout, and turning an answer into a delivery
//! result whose text is free of secrets.

use std::time::Duration;

use super::error::{ChannelError, SendError};
use super::secret::read_secret;
use std::collections::BTreeMap;

use crate::config::{UrlSource, redact_url};

/// The channel's URL from `url`, `url_env` or `url_file`.
pub fn channel_url(source: UrlSource<'_>) -> Result<reqwest::Url, ChannelError> {
    let text = match source.url {
        Some(u) => u.trim().to_string(),
        None => read_secret(source.url_env, source.url_file, "URL")?
            .ok_or("no URL configured; set `url`, `url_env` or `url_file`")?,
    };
    match reqwest::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        // What does not parse is not shown: it may be a secret read from a file.
        Ok(u) => Err(ChannelError::new(format!(
            "the URL {} is not an absolute http(s) URL",
            redact_url(u.as_str())
        ))),
        Err(_) => Err(ChannelError::new(
            "the URL (unparsable) is not an absolute http(s) URL",
        )),
    }
}

/// The extra HTTP headers of a webhook or Alertmanager channel (`headers:`).
pub fn channel_headers(
    configured: &BTreeMap<String, String>,
) -> Result<reqwest::header::HeaderMap, ChannelError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    for (k, v) in configured {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("header name `{k}` is not valid"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("the value of header `{k}` is not valid"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// An HTTP client with the channel's timeout, through the configured proxy if any.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ChannelError> {
    crate::proxy::http_client_builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("bgpsentry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ChannelError::new(format!("cannot build the HTTP client: {e}")))
}

/// How much of an error answer's body is read.
const ERROR_BODY_LIMIT: usize = 4096;

/// Turns an HTTP outcome into a delivery result (2xx = delivered).
pub async fn check_response(
    result: Result<reqwest::Response, reqwest::Error>,
    url: &reqwest::Url,
) -> Result<(), SendError> {
    match result {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(mut resp) => {
            let status = resp.status();
            // Only the start of an error body is useful, and a hostile target could send
            // an endless one: read at most a few KiB.
            let mut body = Vec::new();
            while body.len() < ERROR_BODY_LIMIT {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            body.truncate(ERROR_BODY_LIMIT);
            let body = String::from_utf8_lossy(&body);
            let snippet: String = body
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Err(SendError(format!(
                "{} answered HTTP {status}{}",
                redact_url(url.as_str()),
                if snippet.is_empty() {
                    String::new()
                } else {
                    format!(": {}", snippet.trim())
                }
            )))
        }
        Err(e) => {
            // The error's own text would include the URL; drop it.
            let e = e.without_url();
            let what = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                format!("cannot connect ({})", source_chain(&e))
            } else {
                source_chain(&e)
            };
            Err(SendError(format!("{}: {what}", redact_url(url.as_str()))))
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
