//! The WebSocket connection loop the live feeds (RIS Live, bgproutes.io) share.
//!
//! It connects, sends pings, detects dead and stale connections, batches frames to the engine
//! and reconnects with backoff; it also redacts secrets from what it reports.

use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::info;

use super::error::{FeedErrorReason, Invalid, InvalidReason};
pub use super::handle::FeedHandle;
use super::handle::until_shutdown;
use crate::config::FeedConfig;
use crate::event::FeedEvent;

/// A WebSocket connection to a feed.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Default largest frame accepted (1 MiB); bigger frames are counted and dropped.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Hard limit handed to the WebSocket library: frames above it end the connection. It sits far
/// above the configurable limit so that oversized frames are normally counted, not fatal.
const WS_HARD_LIMIT: usize = 64 * 1024 * 1024;

/// Exponential backoff with jitter: the first delay is at most `initial` (under a second by
/// default), each next one doubles up to `max`; each delay is drawn from its upper half so
/// that many clients do not reconnect in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The next delay to wait before reconnecting.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter_ms = rand::random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter_ms).min(ceiling - half)
    }

    /// Back to the first delay, after a connection that worked.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

pub use crate::config::redact_url;

/// Removes a secret from a message (belt and braces for errors that quote a request).
pub fn scrub(message: &str, secret: &str) -> String {
    let m = redact_url(message);
    if secret.is_empty() {
        m
    } else {
        m.replace(secret, "REDACTED")
    }
}

/// Timing of a live connection.
#[derive(Debug, Clone)]
pub struct LiveTiming {
    /// Interval between WebSocket pings.
    pub ping_interval: Duration,
    /// A connection with no frame at all (not even a pong) for this long is dead.
    pub dead_after: Duration,
    /// No data message for this long: stale, reconnect. `None` disables the check.
    pub stale_after: Option<Duration>,
    /// First reconnect delay (upper bound).
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Connect (TCP + TLS + WebSocket handshake) timeout.
    pub connect_timeout: Duration,
    /// Frames larger than this are counted as `oversized` and dropped.
    pub max_frame_bytes: usize,
}

impl Default for LiveTiming {
    fn default() -> Self {
        LiveTiming {
            ping_interval: Duration::from_secs(30),
            dead_after: Duration::from_secs(90),
            stale_after: None,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// Timing settings of a live feed from its config.
pub fn timing_from_config(cfg: &FeedConfig, default_stale: Option<f64>) -> LiveTiming {
    let mut t = LiveTiming::default();
    let secs = |v: f64| Duration::from_secs_f64(v);
    if let Some(p) = &cfg.ping_interval_seconds {
        t.ping_interval = secs(p.value);
        t.dead_after = secs(p.value * 3.0);
    }
    t.stale_after = cfg
        .stale_after_seconds
        .as_ref()
        .map(|s| s.value)
        .or(default_stale)
        .map(secs);
    if let Some(m) = &cfg.reconnect_max_seconds {
        t.backoff_max = secs(m.value);
        t.backoff_initial = t.backoff_initial.min(t.backoff_max);
    }
    if let Some(m) = &cfg.max_frame_bytes {
        t.max_frame_bytes = usize::try_from(m.value).unwrap_or(usize::MAX);
    }
    t
}

/// Makes ring the process's TLS crypto provider, once. The WebSocket library asks rustls for
/// the process default; if another dependency also enabled a provider, none would be chosen
/// automatically and every `wss://` connection would fail.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only means a provider was installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Opens a WebSocket; errors name the redacted URL and the cause.
pub async fn connect(url: &str, timing: &LiveTiming) -> Result<Ws, String> {
    install_crypto_provider();
    let config = WebSocketConfig::default()
        .max_message_size(Some(WS_HARD_LIMIT))
        .max_frame_size(Some(WS_HARD_LIMIT));
    let shown = redact_url(url);
    if let Some(proxy) = crate::proxy::proxy_for(url) {
        return connect_via(url, &proxy, config, timing).await;
    }
    match tokio::time::timeout(
        timing.connect_timeout,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    {
        Err(_) => Err(format!(
            "cannot connect to {shown}: no answer within {:?}",
            timing.connect_timeout
        )),
        Ok(Err(e)) => Err(format!(
            "cannot connect to {shown}: {}",
            redact_url(&e.to_string())
        )),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// Opens a WebSocket through an HTTP proxy: a `CONNECT` tunnel, then TLS (for `wss`) and the
/// WebSocket handshake inside it.
async fn connect_via(
    url: &str,
    proxy: &str,
    config: WebSocketConfig,
    timing: &LiveTiming,
) -> Result<Ws, String> {
    let shown = redact_url(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("cannot connect to {shown}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("cannot connect to {shown}: no host"))?;
    let port = parsed
        .port()
        .unwrap_or(if parsed.scheme() == "wss" { 443 } else { 80 });
    let work = async {
        let tcp = crate::proxy::tunnel(proxy, host, port, timing.connect_timeout)
            .await
            .map_err(|e| format!("cannot connect to {shown}: {e}"))?;
        tokio_tungstenite::client_async_tls_with_config(url, tcp, Some(config), None)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| {
                format!(
                    "cannot connect to {shown} through the proxy: {}",
                    redact_url(&e.to_string())
                )
            })
    };
    match tokio::time::timeout(timing.connect_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "cannot connect to {shown} through the proxy: no answer within {:?}",
            timing.connect_timeout
        )),
    }
}

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The service is shutting down.
    Shutdown,
    /// The connection failed or was dropped; reconnect (`reason` is the metric label).
    Failed {
        /// Why, as counted in `bgpsentry_feed_errors_total`.
        reason: FeedErrorReason,
        /// Human message, free of secrets.
        message: String,
    },
}

/// What a protocol does with one text frame.
pub enum Verdict {
    /// Go on.
    Continue,
    /// The server refused the session: stop this connection with this message.
    Refused(String),
}

/// The per-protocol part of the connection loop.
pub trait Protocol: Send {
    /// Frames to send right after connecting (subscriptions).
    fn on_open(&mut self) -> Vec<String>;
    /// Handles one text frame (size already checked). Returns the events it carried.
    fn on_text(&mut self, text: &str, handle: &FeedHandle) -> (Vec<FeedEvent>, Verdict);
    /// How often [`Protocol::periodic`] runs while connected (`None`: never).
    fn periodic_every(&self) -> Option<Duration> {
        None
    }
    /// Periodic work while connected (bgproutes: re-associate the prefixes).
    fn periodic(&mut self) -> PeriodicFut {
        Box::pin(async { Ok(()) })
    }
}

/// Runs one connection until it fails, goes stale or the service shuts down. Returns whether
/// route data arrived (a connection that worked resets the backoff) and how it ended.
pub async fn drive<P: Protocol>(
    ws: Ws,
    proto: &mut P,
    handle: &FeedHandle,
    timing: &LiveTiming,
) -> (bool, Ended) {
    let (mut sink, mut stream) = ws.split();
    for frame in proto.on_open() {
        if let Err(e) = sink.send(Message::text(frame)).await {
            return (
                false,
                Ended::Failed {
                    reason: FeedErrorReason::Send,
                    message: format!("cannot subscribe: {e}"),
                },
            );
        }
    }
    handle.set_connected(true);
    let mut shutdown = handle.ctx.shutdown.clone();
    let mut ping = tokio::time::interval(timing.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut last_frame = Instant::now();
    let mut last_data = Instant::now();
    let mut got_data = false;
    let periodic_every = proto.periodic_every();
    let mut next_periodic = periodic_every.map(|d| Instant::now() + d);
    // Checks run at least this often, so short test timeouts take effect promptly.
    let check_every = timing
        .stale_after
        .unwrap_or(timing.dead_after)
        .min(timing.dead_after)
        .min(Duration::from_secs(1))
        / 4;
    let mut check = tokio::time::interval(check_every.max(Duration::from_millis(10)));
    let ended = loop {
        tokio::select! {
            _ = until_shutdown(&mut shutdown) => break Ended::Shutdown,
            _ = ping.tick() => {
                // A peer that stops reading can fill the socket buffer; never wait on it longer
                // than a dead connection is tolerated.
                match tokio::time::timeout(timing.dead_after, sink.send(Message::Ping(Vec::new().into()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break Ended::Failed { reason: FeedErrorReason::Send, message: format!("cannot send a ping: {e}") },
                    Err(_) => break Ended::Failed { reason: FeedErrorReason::Dead, message: "a ping could not be sent; reconnecting".into() },
                }
            }
            _ = check.tick() => {
                if last_frame.elapsed() > timing.dead_after {
                    break Ended::Failed {
                        reason: FeedErrorReason::Dead,
                        message: format!("no frame and no pong for {:?}; reconnecting", timing.dead_after),
                    };
                }
                if let Some(stale) = timing.stale_after
                    && last_data.elapsed() > stale
                {
                    handle.set_stale(true);
                    break Ended::Failed {
                        reason: FeedErrorReason::Stale,
                        message: format!("no message for {stale:?}: feed marked stale; reconnecting"),
                    };
                }
                if let (Some(at), Some(every)) = (next_periodic, periodic_every)
                    && Instant::now() >= at
                {
                    next_periodic = Some(Instant::now() + every);
                    if let Err(e) = proto.periodic().await {
                        handle.error(FeedErrorReason::Association, &e);
                    }
                }
            }
            msg = stream.next() => {
                last_frame = Instant::now();
                // Frames that are already here are taken with this one and go to the engine as
                // one batch: under load that saves a queue hand-over and an engine wake-up per
                // frame, and a frame is never held back waiting for another.
                let mut events = Vec::new();
                let mut got_text = false;
                let mut end = on_message(msg, proto, handle, timing, &mut events, &mut got_text);
                let mut taken = 1;
                while end.is_none() && taken < COALESCE_FRAMES && events.len() < COALESCE_EVENTS {
                    let Some(next) = stream.next().now_or_never() else { break };
                    end = on_message(next, proto, handle, timing, &mut events, &mut got_text);
                    taken += 1;
                }
                if got_text {
                    last_data = Instant::now();
                }
                // Only route data proves the session works (acks and errors do not), so a
                // server that accepts and then refuses keeps backing off.
                got_data |= !events.is_empty();
                if !handle.send(events).await {
                    break Ended::Shutdown;
                }
                if let Some(e) = end {
                    break e;
                }
            }
        }
    };
    handle.set_connected(false);
    // A polite close, but a dead peer must not keep the feed waiting.
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
    (got_data, ended)
}

/// Most frames taken into one batch.
const COALESCE_FRAMES: usize = 256;
/// A batch stops taking frames once it holds this many events.
const COALESCE_EVENTS: usize = 4096;

/// Handles one WebSocket message: its events go into `events`; returns how the connection
/// ends if this message ends it.
fn on_message<P: Protocol>(
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    proto: &mut P,
    handle: &FeedHandle,
    timing: &LiveTiming,
    events: &mut Vec<FeedEvent>,
    got_text: &mut bool,
) -> Option<Ended> {
    match msg {
        None => Some(Ended::Failed {
            reason: FeedErrorReason::Closed,
            message: "the server closed the connection".into(),
        }),
        Some(Err(e)) => Some(Ended::Failed {
            reason: FeedErrorReason::Read,
            message: format!("connection lost: {}", redact_url(&e.to_string())),
        }),
        Some(Ok(Message::Text(t))) => {
            if t.len() > timing.max_frame_bytes {
                handle.message("oversized");
                handle.invalid(&Invalid::new(
                    InvalidReason::Oversized,
                    format!(
                        "frame of {} bytes; the limit is {}",
                        t.len(),
                        timing.max_frame_bytes
                    ),
                ));
                return None;
            }
            *got_text = true;
            let (mut new, verdict) = proto.on_text(t.as_str(), handle);
            if events.is_empty() {
                *events = new;
            } else {
                events.append(&mut new);
            }
            match verdict {
                Verdict::Refused(m) => Some(Ended::Failed {
                    reason: FeedErrorReason::ServerError,
                    message: m,
                }),
                Verdict::Continue => None,
            }
        }
        Some(Ok(Message::Binary(b))) => {
            handle.message("binary");
            handle.invalid(&Invalid::new(
                InvalidReason::NotJson,
                format!("binary frame of {} bytes", b.len()),
            ));
            None
        }
        Some(Ok(Message::Close(c))) => {
            let why = c
                .map(|c| format!(" (code {}, {})", c.code, c.reason))
                .unwrap_or_default();
            Some(Ended::Failed {
                reason: FeedErrorReason::Closed,
                message: format!("the server closed the connection{why}"),
            })
        }
        Some(Ok(_)) => None, // ping, pong, raw frames: liveness only
    }
}

/// Connects to `url` and [`drive`]s the connection until it ends. `connected` runs once the
/// socket is open (the feed's own log line); a connection that carried route data resets
/// `backoff`. A failure to connect ends as [`FeedErrorReason::Connect`], with `secret` (a key
/// the URL carries) scrubbed from its message.
pub async fn connect_and_drive<P: Protocol>(
    url: &str,
    secret: Option<&str>,
    proto: &mut P,
    handle: &FeedHandle,
    timing: &LiveTiming,
    backoff: &mut Backoff,
    connected: impl FnOnce(),
) -> Ended {
    match connect(url, timing).await {
        Ok(ws) => {
            connected();
            let (worked, ended) = drive(ws, proto, handle, timing).await;
            if worked {
                backoff.reset();
            }
            ended
        }
        Err(message) => Ended::Failed {
            reason: FeedErrorReason::Connect,
            message: match secret {
                Some(secret) => scrub(&message, secret),
                None => message,
            },
        },
    }
}

/// A boxed future for periodic work (re-association) inside [`drive`].
pub type PeriodicFut =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// Logs and counts the end of a connection, then waits for the backoff. Returns true when the
/// service is shutting down.
pub async fn after_disconnect(handle: &FeedHandle, backoff: &mut Backoff, ended: Ended) -> bool {
    match ended {
        Ended::Shutdown => return true,
        Ended::Failed { reason, message } => handle.error(reason, &message),
    }
    let delay = backoff.next_delay();
    info!(feed = %handle.name, "reconnecting in {delay:?}");
    if handle.sleep_or_shutdown(delay).await {
        return true;
    }
    handle.reconnecting();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_under_a_second_doubles_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(800), Duration::from_secs(10));
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(800) && first >= Duration::from_millis(400));
        let mut last = first;
        for _ in 0..30 {
            last = b.next_delay();
            assert!(last <= Duration::from_secs(10));
        }
        assert!(last >= Duration::from_secs(5));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(800));
    }

    #[test]
    fn a_tls_client_config_can_be_built() {
        install_crypto_provider();
        let roots = rustls::RootCertStore::empty();
        let _ = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
    }

    // redact_url itself is tested where it lives, in config::secret.
    #[test]
    fn scrub_removes_the_secret_and_redacts_urls() {
        assert_eq!(scrub("x SECRET y", "SECRET"), "x REDACTED y");
        assert_eq!(
            scrub("see wss://h/?api_key=K", ""),
            "see wss://h/?api_key=REDACTED"
        );
        assert_eq!(scrub("no key", ""), "no key");
    }
}
