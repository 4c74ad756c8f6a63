//! The TCP listener routers connect to, and one task per router connection.
//!
//! Who may connect is decided before a byte is read (the allow-list, then the connection
//! limit); what a connection may cost is bounded by the message limit. A connection that
//! cannot be framed is closed with its reason logged and counted, and only that router's
//! routes are affected: they are held for the hold time like those of any router that went
//! away, and withdrawn if it does not come back.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use futures_util::FutureExt;

use super::frame::{FrameError, FrameReader};
use super::metrics::BmpMetrics;
use super::session::{Held, Outcome, Session};
use crate::config::BmpSettings;
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::error::FeedErrorReason;
use crate::feeds::handle::FeedHandle;
use crate::health::RouterHealth;

/// Most events handed to the engine at once.
const BATCH: usize = 4096;

/// How long a replaced connection may take to hand its routes over.
const HANDOVER: Duration = Duration::from_secs(5);

/// What one router left or holds: its live connection's stop switch, or its held routes.
#[derive(Default)]
struct Slot {
    /// The connection now (its id and stop switch).
    live: Option<(u64, watch::Sender<bool>)>,
    /// Routes kept since its last connection ended, until the deadline.
    held: Option<(Instant, Held)>,
}

/// What every connection of the listener shares.
struct Shared {
    handle: FeedHandle,
    settings: BmpSettings,
    metrics: BmpMetrics,
    slots: Mutex<HashMap<IpAddr, Slot>>,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, HashMap<IpAddr, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn feed(&self) -> &str {
        &self.handle.name
    }

    /// Changes the router's entry in health (creating it).
    fn router_health(&self, address: &str, f: impl FnOnce(&mut RouterHealth)) {
        self.handle.ctx.health.update(&self.handle.name, |h| {
            let i = match h.routers.iter().position(|r| r.address == address) {
                Some(i) => i,
                None => {
                    h.routers.push(RouterHealth {
                        address: address.to_string(),
                        name: None,
                        description: None,
                        connected: false,
                        held: false,
                        peers_up: 0,
                        messages: 0,
                        errors: 0,
                        last_message: None,
                        last_error: None,
                    });
                    h.routers.len() - 1
                }
            };
            f(&mut h.routers[i]);
        });
    }

    fn set_held_gauge(&self) {
        let held = self.slots().values().filter(|s| s.held.is_some()).count();
        self.metrics
            .held
            .with_label_values(&[self.feed()])
            .set(held as i64);
    }
}

/// The address a connection comes from, IPv4-mapped IPv6 read as IPv4.
fn source(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// Whether `ip` is in the allow-list.
pub fn allowed(routers: &[IpNet], ip: IpAddr) -> bool {
    routers.iter().any(|n| n.contains(&ip))
}

/// Listens until the service shuts down (or the task is aborted by a reload, which closes
/// every router connection with it).
pub async fn run(handle: FeedHandle, settings: BmpSettings) {
    let metrics = handle.ctx.metrics.bmp.clone();
    metrics.init_feed(&handle.name);
    let listener = loop {
        match TcpListener::bind(settings.listen).await {
            Ok(l) => break l,
            Err(e) => {
                handle.error(
                    FeedErrorReason::Connect,
                    &format!(
                        "cannot listen for BMP routers on {}: {e}; check that the address is this host's and the port is free (retrying in 5 s)",
                        settings.listen
                    ),
                );
                if handle.sleep_or_shutdown(Duration::from_secs(5)).await {
                    return;
                }
            }
        }
    };
    let local = listener.local_addr().map_or(settings.listen, |a| a);
    info!(feed = %handle.name, "listening for BMP routers on {local}");
    handle.set_connected(true);
    let shared = Arc::new(Shared {
        handle,
        settings,
        metrics,
        slots: Mutex::default(),
    });
    let mut connections = JoinSet::new();
    let mut shutdown = shared.handle.ctx.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait instead of spinning.
                        warn!(feed = %shared.feed(), "accepting a BMP connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                while connections.try_join_next().is_some() {}
                let ip = source(addr);
                let reject = if !allowed(&shared.settings.routers, ip) {
                    Some(("not_allowed", "its address is not in the feed's `routers:`"))
                } else if connections.len() >= shared.settings.max_routers {
                    Some(("limit", "`max_routers` routers are connected already"))
                } else {
                    None
                };
                if let Some((reason, why)) = reject {
                    shared.metrics.rejected.with_label_values(&[shared.feed(), reason]).inc();
                    warn!(feed = %shared.feed(), router = %ip, reason, "refused a BMP connection from {addr}: {why}");
                    drop(stream);
                    continue;
                }
                if let Err(e) = keep_alive(&stream) {
                    warn!(feed = %shared.feed(), router = %ip, "cannot turn on TCP keepalive for {addr}: {e}; a router that vanishes without closing the connection will not be noticed");
                }
                next_id += 1;
                connections.spawn(connection(shared.clone(), stream, ip, next_id));
            }
            _ = tick.tick() => expire(&shared).await,
        }
    }
    connections.shutdown().await;
}

/// Idle time before the first TCP keepalive probe on a router's connection.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes after which the connection is dropped.
pub const KEEPALIVE_PROBES: u32 = 6;

/// Turns on TCP keepalive: BMP has no keepalive of its own and a quiet router may send
/// nothing for hours, so without it a router that loses power or its link (no FIN, no RST)
/// would look connected forever and its routes would never be held and withdrawn. With
/// these settings a vanished router is noticed within about two minutes of silence.
fn keep_alive(stream: &TcpStream) -> std::io::Result<()> {
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&params)
}

/// Withdraws the routes of routers whose hold time is over.
async fn expire(shared: &Shared) {
    let now = Instant::now();
    let expired: Vec<(IpAddr, Held)> = {
        let mut slots = shared.slots();
        let due: Vec<IpAddr> = slots
            .iter()
            .filter(|(_, s)| s.held.as_ref().is_some_and(|(d, _)| *d <= now))
            .map(|(ip, _)| *ip)
            .collect();
        due.into_iter()
            .filter_map(|ip| {
                let slot = slots.get_mut(&ip)?;
                slot.held.take().map(|(_, h)| (ip, h))
            })
            .collect()
    };
    if expired.is_empty() {
        return;
    }
    shared.set_held_gauge();
    for (ip, held) in expired {
        let vps = held.vantage_points();
        info!(feed = %shared.feed(), router = %ip, "the router did not come back within the hold time: its {vps} vantage points' routes are withdrawn");
        let address = ip.to_string();
        shared.router_health(&address, |r| r.held = false);
        let _ = shared.handle.send(held.expire(Timestamp::now())).await;
    }
}

/// Takes over the router's slot: stops an older connection of the same router and takes
/// the routes it holds. Returns this connection's stop switch and the held routes.
async fn take_over(
    shared: &Shared,
    ip: IpAddr,
    id: u64,
) -> (watch::Receiver<bool>, Option<(Instant, Held)>) {
    let (tx, rx) = watch::channel(false);
    let old = {
        let mut slots = shared.slots();
        let slot = slots.entry(ip).or_default();
        slot.live.replace((id, tx)).map(|(_, stop)| stop)
    };
    if let Some(stop) = old {
        // The router came back while its old connection still looked open (a reboot that
        // left a half-open socket): the new one wins, the old one hands over its routes.
        info!(feed = %shared.feed(), router = %ip, "a new BMP connection replaces the router's old one");
        let _ = stop.send(true);
        let deadline = Instant::now() + HANDOVER;
        while !stop.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let held = shared.slots().get_mut(&ip).and_then(|s| s.held.take());
    shared.set_held_gauge();
    (rx, held)
}

/// One router connection, from its first byte to its end.
async fn connection(shared: Arc<Shared>, stream: TcpStream, ip: IpAddr, id: u64) {
    let feed = shared.feed().to_string();
    let address = ip.to_string();
    let (mut stop, held) = take_over(&shared, ip, id).await;
    let (hold_deadline, held) = match held {
        Some((deadline, h)) => (Some(deadline), Some(h)),
        None => (None, None),
    };
    if held.is_some() {
        info!(feed = %feed, router = %ip, "the router reconnected within the hold time: routes it does not send again are withdrawn at its End-of-RIB or when the hold time ends");
    } else {
        info!(feed = %feed, router = %ip, "a BMP router connected");
    }
    let m = &shared.metrics;
    m.init_router(&feed, &address);
    m.connected.with_label_values(&[&feed, &address]).set(1);
    shared.router_health(&address, |r| {
        r.connected = true;
        r.held = false;
    });
    let mut session = Session::new(
        shared.handle.feed.clone(),
        ip,
        shared.settings.ribs.clone(),
        held,
    );
    let mut hold_deadline = hold_deadline;
    let (mut reader, _writer) = stream.into_split();
    let mut shutdown = shared.handle.ctx.shutdown.clone();
    let mut frames = FrameReader::new(shared.settings.max_message_bytes);
    let mut pending: Vec<FeedEvent> = Vec::new();
    let ended: Result<(), FrameError> = loop {
        if *stop.borrow() || *shutdown.borrow() {
            break Ok(());
        }
        if hold_deadline.is_some_and(|d| d <= Instant::now()) {
            hold_deadline = None;
            pending.extend(session.hold_expired(Timestamp::now()));
        }
        // What is already there is read without waiting; before waiting, the events so far go
        // to the engine in one batch (a table dump is thousands of one-route messages).
        let read = match frames.next(&mut reader).now_or_never() {
            Some(read) => read,
            None => {
                if !flush(&shared, &mut pending).await {
                    break Ok(());
                }
                let hold_over = async {
                    match hold_deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                // Cancelling `frames.next` loses nothing: the reader keeps what it read.
                tokio::select! {
                    read = frames.next(&mut reader) => read,
                    _ = hold_over => continue,
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => break Ok(()),
                    _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break Ok(()),
                }
            }
        };
        match read {
            Ok(Some(message)) => {
                let outcome = session.handle(&message, Timestamp::now());
                pending.extend(record(&shared, &address, &session, outcome));
                if pending.len() >= BATCH && !flush(&shared, &mut pending).await {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // What the router said before it went is still news.
    let _ = flush(&shared, &mut pending).await;
    m.connected.with_label_values(&[&feed, &address]).set(0);
    m.peers_up.with_label_values(&[&feed, &address]).set(0);
    let reason = match &ended {
        Ok(()) => "the connection was closed".to_string(),
        Err(e) => {
            m.errors
                .with_label_values(&[&feed, &address, e.reason()])
                .inc();
            e.to_string()
        }
    };
    let hold = shared.settings.hold;
    match &ended {
        Ok(()) => {
            info!(feed = %feed, router = %ip, "BMP session ended: {reason}; its routes are held for {} s", hold.as_secs())
        }
        Err(_) => {
            warn!(feed = %feed, router = %ip, "BMP session closed: {reason}; its routes are held for {} s", hold.as_secs())
        }
    }
    shared.router_health(&address, |r| {
        r.connected = false;
        r.held = true;
        r.peers_up = 0;
        if ended.is_err() {
            r.errors += 1;
            r.last_error = Some(reason.clone());
        }
    });
    let held = session.into_held();
    {
        let mut slots = shared.slots();
        let slot = slots.entry(ip).or_default();
        // A newer connection has the slot already: it waits for these routes.
        if slot.live.as_ref().is_some_and(|(i, _)| *i == id) {
            slot.live = None;
        }
        slot.held = Some((Instant::now() + hold, held));
    }
    shared.set_held_gauge();
    if hold.is_zero() {
        expire(&shared).await;
    }
}

/// Counts a handled message; returns its events.
fn record(shared: &Shared, address: &str, session: &Session, outcome: Outcome) -> Vec<FeedEvent> {
    let feed = shared.feed();
    let m = &shared.metrics;
    m.messages
        .with_label_values(&[feed, address, outcome.kind])
        .inc();
    let now = Timestamp::now();
    m.last_message
        .with_label_values(&[feed, address])
        .set(now.as_secs_f64());
    let peers_up = session.peers_up();
    m.peers_up
        .with_label_values(&[feed, address])
        .set(peers_up as i64);
    for s in &outcome.stats {
        m.statistics
            .with_label_values(&[feed, address, &s.peer, &s.stat])
            .set(s.value);
    }
    if let Some(bad) = &outcome.invalid {
        m.errors
            .with_label_values(&[feed, address, "bmp_message"])
            .inc();
        shared.handle.invalid(bad);
    }
    if let Some(why) = &outcome.terminated {
        info!(feed = %feed, router = %address, "the router ends its BMP session: {why}");
    }
    shared.handle.message(outcome.kind);
    let last_error = outcome.invalid.as_ref().map(|b| b.to_string());
    shared.router_health(address, |r| {
        r.messages += 1;
        r.peers_up = peers_up as u64;
        r.last_message = Some(now);
        r.name.clone_from(&session.name);
        r.description.clone_from(&session.description);
        if let Some(e) = last_error {
            r.errors += 1;
            r.last_error = Some(e);
        }
    });
    outcome.events
}

/// Hands the pending events to the engine; false when the engine is gone.
async fn flush(shared: &Shared, pending: &mut Vec<FeedEvent>) -> bool {
    if pending.is_empty() {
        return true;
    }
    shared.handle.send(std::mem::take(pending)).await
}
