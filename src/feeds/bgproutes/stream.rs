//! What `bgpsentry stream --feed bgproutes` reads and prints.
//!
//! The library client associates prefixes and streams the WebSocket's messages without
//! reconnecting; [`BgpLiveMsg`] is a message in the reference client's shape, with its pipe
//! and JSON line formats (RIS Live messages are printed in the same shape).

use std::fmt;
use std::io::{self, Write};
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::connection::{
    ClientError, DEFAULT_LIVE_MANAGER_URL, DEFAULT_URL, associate, http_client, read_key, ws_url,
};
use super::parser::{Frame, parse_frame};
use crate::event::Timestamp;
use crate::feeds::websocket::{self, LiveTiming};

/// Announcement (`U`) or withdrawal (`W`), as the reference client names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MsgType {
    /// The prefixes are announced with the message's attributes.
    #[serde(rename = "U")]
    Announce,
    /// The prefixes are withdrawn.
    #[serde(rename = "W")]
    Withdraw,
}

impl MsgType {
    /// `U` or `W`.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Announce => "U",
            MsgType::Withdraw => "W",
        }
    }
}

/// One BGP message of a live stream, in the shape of the reference client's message.
///
/// `Display` prints the reference client's pipe format
/// `TIMESTAMP|MSG_TYPE|VP_ASN|VP_IP|PREFIXES|ASPATH|COMMUNITIES|ORIGIN|NEXTHOP`; a BMP message
/// adds `|EXPORTER_ASN|EXPORTER_IP`. Absent values print as `None`, absent AS path and
/// communities as empty, and the timestamp as seconds with the microseconds as a fraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpLiveMsg {
    /// Announcement or withdrawal.
    #[serde(rename = "type")]
    pub msg_type: MsgType,
    /// UNIX seconds, if the server sent them.
    pub sec: Option<i64>,
    /// Microseconds past `sec`, if the server sent them.
    pub usec: Option<i64>,
    /// ASN of the vantage point (for BMP: the peer behind the exporter).
    pub vp_asn: u32,
    /// Address of the vantage point, as sent.
    pub vp_ip: String,
    /// For BMP: the exporter (the router streaming BMP) as (ASN, address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exporter: Option<(u32, String)>,
    /// Announced or withdrawn prefixes, as sent.
    pub prefixes: Vec<String>,
    /// AS path, space-separated, as sent (empty if absent).
    pub aspath: String,
    /// Communities, as sent (empty if absent).
    pub communities: String,
    /// BGP ORIGIN attribute.
    pub origin: Option<String>,
    /// Next hop.
    pub nexthop: Option<String>,
}

impl BgpLiveMsg {
    /// The event time (zero when the server sent none).
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_parts(self.sec.unwrap_or(0), self.usec.unwrap_or(0))
    }

    /// Writes the message as one line: the pipe format, or JSON with `json`.
    pub fn write_line(&self, out: &mut impl Write, json: bool) -> io::Result<()> {
        if json {
            let s = serde_json::to_string(self).map_err(io::Error::other)?;
            writeln!(out, "{s}")
        } else {
            writeln!(out, "{self}")
        }
    }
}

/// Python's `str()` of a float: the shortest round-trip digits, with `.0` on whole numbers.
fn python_float(v: f64) -> String {
    let s = format!("{v}");
    if v.is_finite() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

impl fmt::Display for BgpLiveMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reference client adds `Usec / 1e6` to the integer seconds, so the time is an
        // integer without `Usec` and a float with it; both spellings are kept.
        let ts = match (self.sec, self.usec) {
            (None, _) => "None".to_string(),
            (Some(s), None) => s.to_string(),
            (Some(s), Some(u)) => python_float(s as f64 + u as f64 / 1_000_000.0),
        };
        write!(
            f,
            "{ts}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.msg_type.as_str(),
            self.vp_asn,
            self.vp_ip,
            self.prefixes.join(","),
            self.aspath,
            self.communities,
            self.origin.as_deref().unwrap_or("None"),
            self.nexthop.as_deref().unwrap_or("None"),
        )?;
        if let Some((asn, ip)) = &self.exporter {
            write!(f, "|{asn}|{ip}")?;
        }
        Ok(())
    }
}

/// A stream of messages from the WebSocket.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<BgpLiveMsg, ClientError>> + Send>>;

/// A bgproutes.io live client with the reference client's shape: associate prefixes, then
/// read messages. It does not reconnect (the `bgproutes` feed of the service does).
#[derive(Debug, Clone)]
pub struct BgproutesClient {
    api_key: String,
    ws_base: String,
    manager: String,
    http: reqwest::Client,
    max_frame_bytes: usize,
}

impl BgproutesClient {
    /// A client for this API key, talking to the public service.
    pub fn new(api_key: impl Into<String>) -> Self {
        BgproutesClient {
            api_key: api_key.into(),
            ws_base: DEFAULT_URL.into(),
            manager: DEFAULT_LIVE_MANAGER_URL.into(),
            http: http_client(),
            max_frame_bytes: websocket::DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// A client with the key from `BGP_API_KEY`.
    pub fn from_env() -> Result<Self, ClientError> {
        Ok(Self::new(read_key(None, None)?))
    }

    /// Uses another WebSocket base URL (`ws://` allowed, for tests).
    pub fn with_websocket_url(mut self, url: impl Into<String>) -> Self {
        self.ws_base = url.into();
        self
    }

    /// Uses another live-manager base URL (`http://` allowed, for tests).
    pub fn with_live_manager_url(mut self, url: impl Into<String>) -> Self {
        self.manager = url.into();
        self
    }

    /// Associates a comma-separated list of prefixes with the key.
    pub async fn subscribe_to_prefixes(&mut self, prefixes: &str) -> Result<(), ClientError> {
        associate(&self.http, &self.manager, &self.api_key, prefixes).await?;
        debug!("prefixes associated with the API key");
        Ok(())
    }

    /// Opens the WebSocket and streams its messages. A `{"error": ...}` frame or a dropped
    /// connection ends the stream with [`ClientError::Connection`]; frames that do not parse
    /// are logged at debug level and skipped.
    pub async fn messages(&self) -> Result<MessageStream, ClientError> {
        let timing = LiveTiming {
            max_frame_bytes: self.max_frame_bytes,
            ..LiveTiming::default()
        };
        let ws = websocket::connect(&ws_url(&self.ws_base, &self.api_key), &timing)
            .await
            .map_err(|e| ClientError::Connection(websocket::scrub(&e, &self.api_key)))?;
        let max = self.max_frame_bytes;
        let s = futures_util::stream::unfold(Some(ws), move |state| async move {
            let mut ws = state?;
            loop {
                let cut = |m: String| Some((Err(ClientError::Connection(m)), None));
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => {
                        return cut("connection with the websocket server has been cut off".into());
                    }
                    Some(Err(e)) => {
                        return cut(format!(
                            "connection lost: {}",
                            websocket::redact_url(&e.to_string())
                        ));
                    }
                    Some(Ok(Message::Text(t))) => {
                        if t.len() > max {
                            debug!("skipping a frame of {} bytes (limit {max})", t.len());
                            continue;
                        }
                        match parse_frame(t.as_str()) {
                            Ok(Frame::Message(m)) => return Some((Ok(m), Some(ws))),
                            Ok(Frame::Error(reason)) => {
                                return cut(format!("connection rejected: '{reason}'"));
                            }
                            Ok(Frame::Skipped(rt)) => debug!("skipping record type {rt}"),
                            Err(bad) => debug!("unable to parse a message: {bad}"),
                        }
                    }
                    Some(Ok(_)) => {}
                }
            }
        });
        Ok(Box::pin(s))
    }
}
