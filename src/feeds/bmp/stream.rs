//! What `bgpsentry stream --feed bmp` reads: a listener that prints what routers send, without
//! the service. It keeps no hold state: a router's routes simply stop being printed.

use std::net::SocketAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::frame::read_message;
use super::listener::allowed;
use super::session::Session;
use crate::config::BmpRib;
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::bgproutes::stream::BgpLiveMsg;
use crate::feeds::ris_live::stream::to_live_msgs;

/// What to listen on and print.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Where routers connect.
    pub listen: SocketAddr,
    /// Who may connect.
    pub routers: Vec<IpNet>,
    /// RIB kinds to print.
    pub ribs: Vec<BmpRib>,
    /// Prefixes to print (and their more-specifics).
    pub prefixes: Vec<IpNet>,
    /// Largest BMP message.
    pub max_message_bytes: usize,
}

/// Whether an event's prefix is one of `prefixes` or more specific.
fn wanted(prefixes: &[IpNet], ev: &FeedEvent) -> bool {
    match ev {
        FeedEvent::Route(r) => prefixes.iter().any(|p| p.contains(&r.prefix)),
        // A BMP session never loads a state; nothing else to print.
        FeedEvent::PeerDown { .. } | FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => false,
    }
}

/// The events of one message as reference-format lines, the router as exporter.
pub fn live_msgs(events: &[FeedEvent]) -> Vec<BgpLiveMsg> {
    let mut out = Vec::new();
    // One group per vantage point, so every line names its exporter.
    let mut rest: &[FeedEvent] = events;
    while let Some(first) = rest.first() {
        let vp = match first {
            FeedEvent::Route(r) => r.vp.clone(),
            FeedEvent::PeerDown { vp, .. } => vp.clone(),
            FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => {
                rest = &rest[1..];
                continue;
            }
        };
        let n = rest
            .iter()
            .take_while(|e| matches!(e, FeedEvent::Route(r) if Arc::ptr_eq(&r.vp, &vp)))
            .count()
            .max(1);
        for mut m in to_live_msgs(&rest[..n]) {
            m.exporter = vp.exporter.map(|(asn, ip)| (asn, ip.to_string()));
            out.push(m);
        }
        rest = &rest[n..];
    }
    out
}

/// Listens and hands every printed line to `out` until it is closed; the address it listens on
/// is written to the log and to stderr.
pub async fn run(settings: StreamSettings, out: mpsc::Sender<BgpLiveMsg>) -> Result<(), String> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    eprintln!("listening for BMP routers on {local}");
    let settings = Arc::new(settings);
    loop {
        let (stream, addr) = tokio::select! {
            a = listener.accept() => a.map_err(|e| format!("accepting a connection failed: {e}"))?,
            _ = out.closed() => return Ok(()),
        };
        let ip = addr.ip().to_canonical();
        if !allowed(&settings.routers, ip) {
            warn!("refused a BMP connection from {addr}: not in --routers");
            continue;
        }
        info!("a BMP router connected from {addr}");
        let (settings, out) = (settings.clone(), out.clone());
        tokio::spawn(async move {
            let mut session = Session::new("bmp".into(), ip, settings.ribs.clone(), None);
            let mut reader = stream;
            loop {
                match read_message(&mut reader, settings.max_message_bytes).await {
                    Ok(Some(message)) => {
                        let mut outcome = session.handle(&message, Timestamp::now());
                        if let Some(bad) = &outcome.invalid {
                            warn!("router {ip}: {bad}");
                        }
                        outcome.events.retain(|e| wanted(&settings.prefixes, e));
                        for m in live_msgs(&outcome.events) {
                            if out.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!("router {ip}: {e}");
                        break;
                    }
                }
            }
            info!("the BMP router {ip} disconnected");
        });
    }
}
