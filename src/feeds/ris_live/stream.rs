//! What `bgpsentry stream --feed ris_live` reads and prints.
//!
//! A RIS Live client without reconnection that yields every UPDATE as reference-client
//! messages ([`BgpLiveMsg`], the bgproutes.io client's shape, so both feeds print alike).

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{SinkExt, Stream, StreamExt};
use ipnet::IpNet;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::connection::{subscribe_frames, ws_url};
use super::parser::{self, RisFrame};
use crate::event::{FeedEvent, RouteAttrs, RouteChange};
use crate::feeds::bgproutes::stream::{BgpLiveMsg, MsgType};
use crate::feeds::websocket::{self, LiveTiming};

/// Errors of the RIS Live library client.
#[derive(Debug, thiserror::Error)]
pub enum RisLiveError {
    /// The connection could not be opened, or was cut.
    #[error("RIS Live connection error: {0}")]
    Connection(String),
    /// The server sent `ris_error`.
    #[error("RIS Live error: {0}")]
    Server(String),
}

/// A stream of RIS Live UPDATEs as reference-format messages.
pub type RisMessageStream = Pin<Box<dyn Stream<Item = Result<BgpLiveMsg, RisLiveError>> + Send>>;

/// Connects to RIS Live, subscribes to `prefixes` (more-specifics included) and yields every
/// UPDATE as [`BgpLiveMsg`]s. Like the reference client it does not reconnect: the stream ends
/// with an error when the connection drops. Frames that do not parse are logged and skipped.
pub async fn stream_messages(
    url: &str,
    client: &str,
    prefixes: &[IpNet],
) -> Result<RisMessageStream, RisLiveError> {
    let timing = LiveTiming::default();
    let ws = websocket::connect(&ws_url(url, client), &timing)
        .await
        .map_err(RisLiveError::Connection)?;
    let (mut sink, stream) = ws.split();
    for frame in subscribe_frames(prefixes) {
        sink.send(Message::text(frame))
            .await
            .map_err(|e| RisLiveError::Connection(format!("cannot subscribe: {e}")))?;
    }
    let feed: Arc<str> = "ris_live".into();
    let state = (stream, sink, feed, Vec::<BgpLiveMsg>::new(), false);
    let s = futures_util::stream::unfold(
        state,
        |(mut stream, sink, feed, mut queue, done)| async move {
            loop {
                if let Some(m) = queue.pop() {
                    return Some((Ok(m), (stream, sink, feed, queue, done)));
                }
                if done {
                    return None;
                }
                match stream.next().await {
                    None | Some(Ok(Message::Close(_))) => {
                        let e = RisLiveError::Connection("the server closed the connection".into());
                        return Some((Err(e), (stream, sink, feed, queue, true)));
                    }
                    Some(Err(e)) => {
                        let e = RisLiveError::Connection(format!("connection lost: {e}"));
                        return Some((Err(e), (stream, sink, feed, queue, true)));
                    }
                    Some(Ok(Message::Text(t))) => match parser::parse(t.as_str(), &feed) {
                        Ok(p) => match p.frame {
                            RisFrame::Message { events, .. } => {
                                let mut msgs = to_live_msgs(&events);
                                let origin = origin_of(t.as_str());
                                for m in msgs.iter_mut().filter(|m| m.msg_type == MsgType::Announce)
                                {
                                    m.origin = origin.clone();
                                }
                                msgs.reverse();
                                queue = msgs;
                            }
                            RisFrame::Error(m) => {
                                return Some((
                                    Err(RisLiveError::Server(m)),
                                    (stream, sink, feed, queue, false),
                                ));
                            }
                            other => debug!("RIS Live: {other:?}"),
                        },
                        Err(bad) => debug!("RIS Live: skipping a frame: {bad}"),
                    },
                    Some(Ok(_)) => {}
                }
            }
        },
    );
    Ok(Box::pin(s))
}

/// The BGP ORIGIN attribute of a `ris_message` frame (`IGP`, `EGP`, `INCOMPLETE`), if any.
/// Route events do not carry it; `bgpsentry stream` prints it.
pub fn origin_of(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("data")?.get("origin")?.as_str().map(str::to_string)
}

/// Renders the route events of one RIS UPDATE as reference-client messages (one per next hop
/// group and one for the withdrawals), for `bgpsentry stream`.
pub fn to_live_msgs(events: &[FeedEvent]) -> Vec<BgpLiveMsg> {
    let mut out: Vec<(Option<Arc<RouteAttrs>>, BgpLiveMsg)> = Vec::new();
    for ev in events {
        let FeedEvent::Route(r) = ev else { continue };
        let attrs = match &r.change {
            RouteChange::Announce(a) => Some(a.clone()),
            RouteChange::Withdraw => None,
        };
        let same = |(a, m): &&mut (Option<Arc<RouteAttrs>>, BgpLiveMsg)| {
            m.vp_ip == r.vp.peer_ip.to_string()
                && match (a, &attrs) {
                    (Some(x), Some(y)) => Arc::ptr_eq(x, y),
                    (None, None) => true,
                    _ => false,
                }
        };
        if let Some((_, m)) = out.iter_mut().find(|e| same(e)) {
            m.prefixes.push(r.prefix.to_string());
            continue;
        }
        let msg = BgpLiveMsg {
            msg_type: if attrs.is_some() {
                MsgType::Announce
            } else {
                MsgType::Withdraw
            },
            sec: Some(r.timestamp.secs()),
            usec: Some(r.timestamp.subsec_micros()),
            vp_asn: r.vp.peer_asn,
            vp_ip: r.vp.peer_ip.to_string(),
            exporter: None,
            prefixes: vec![r.prefix.to_string()],
            aspath: attrs
                .as_ref()
                .map(|a| a.path.to_string())
                .unwrap_or_default(),
            communities: attrs
                .as_ref()
                .map(|a| {
                    a.communities
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            origin: None,
            nexthop: attrs
                .as_ref()
                .and_then(|a| a.next_hop.map(|n| n.to_string())),
        };
        out.push((attrs, msg));
    }
    out.into_iter().map(|(_, m)| m).collect()
}
