//! Warm start: a live feed's current routes from its own history service, at start and after
//! an outage, so that the engine knows every vantage point's route from the first minute.
//!
//! RIS Live and the bgproutes.io stream send changes only. So when a live feed starts (and
//! when it comes back after being down or silent for longer than `gap_seconds`), the routes of
//! the prefixes it subscribes to (more-specifics included) are loaded: from RIPEstat
//! `bgp-state` for `ris_live` ([`ripestat`], batched), from the bgproutes.io REST API for
//! `bgproutes` ([`rest`]: the RIB at start, the updates since the last message after a gap).
//! Meanwhile the live events are held in a bounded [`gate`]; the loaded state goes to the
//! engine first, then the held events newer than it, in order. A failure ([`fetch`]) is
//! logged, counted and retried with backoff, and the live events flow on (cold) meanwhile.

pub mod fetch;
pub mod gate;
pub mod metrics;
pub mod rest;
pub mod ripestat;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use fetch::{Failed, Failure};
pub use gate::{Gate, Hold};
pub use metrics::WarmStartMetrics;

use super::handle::FeedHandle;
use super::websocket::Backoff;
use crate::config::warm_start_defaults as d;
use crate::config::{WarmStartConfig, redact_url};
use crate::event::{FeedEvent, LoadedState, RouteEvent, Timestamp, VantagePoint};
use crate::feeds::admit::event_time;
use crate::health::WarmStartHealth;

/// Where a feed's state comes from.
#[derive(Clone)]
pub enum Source {
    /// RIPEstat `bgp-state` (for `ris_live`).
    RipeStat {
        /// Base URL (`https://stat.ripe.net`).
        base: String,
        /// Prefixes per request.
        batch: usize,
    },
    /// The bgproutes.io REST API (for `bgproutes`).
    Bgproutes {
        /// Base URL (`https://api.bgproutes.io`).
        base: String,
        /// The API key.
        key: Arc<str>,
    },
}

/// Warm-start settings with their defaults filled in.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Down or silent longer than this: warm start again.
    pub gap: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Largest answer read.
    pub max_bytes: u64,
    /// Largest delay between retries.
    pub retry_max: Duration,
    /// Live events held at most.
    pub buffer: usize,
    /// How long `/readyz` waits for a failing warm start.
    pub ready_timeout: Duration,
}

impl Settings {
    /// The settings of a feed's `warm_start:`.
    pub fn from_config(c: &WarmStartConfig) -> Self {
        let secs = |v: &Option<serde_saphyr::Spanned<f64>>, default: f64| {
            Duration::from_secs_f64(v.as_ref().map_or(default, |v| v.value))
        };
        Settings {
            gap: secs(&c.gap_seconds, d::DEFAULT_GAP_SECONDS),
            timeout: secs(&c.timeout_seconds, d::DEFAULT_TIMEOUT_SECONDS),
            max_bytes: c
                .max_response_bytes
                .as_ref()
                .map_or(d::DEFAULT_MAX_RESPONSE_BYTES, |v| v.value),
            retry_max: secs(&c.retry_max_seconds, d::DEFAULT_RETRY_MAX_SECONDS),
            buffer: c
                .buffer_events
                .as_ref()
                .map_or(d::DEFAULT_BUFFER_EVENTS, |v| v.value) as usize,
            ready_timeout: secs(&c.ready_timeout_seconds, d::DEFAULT_READY_TIMEOUT_SECONDS),
        }
    }
}

/// The source of a `ris_live` feed's warm start from its config.
pub fn ripestat_source(c: &WarmStartConfig) -> Source {
    Source::RipeStat {
        base: c
            .url
            .as_ref()
            .map_or(ripestat::DEFAULT_URL.to_string(), |u| u.value.clone()),
        batch: c
            .batch_prefixes
            .as_ref()
            .map_or(d::DEFAULT_BATCH_PREFIXES, |v| v.value) as usize,
    }
}

/// The source of a `bgproutes` feed's warm start from its config.
pub fn bgproutes_source(c: &WarmStartConfig, key: Arc<str>) -> Source {
    Source::Bgproutes {
        base: c
            .url
            .as_ref()
            .map_or(rest::DEFAULT_URL.to_string(), |u| u.value.clone()),
        key,
    }
}

/// What a warm start asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The whole state now.
    State,
    /// The updates since this event time (bgproutes after a gap).
    Since(Timestamp),
}

/// What an attempt brought.
enum Got {
    /// Loaded states (one per request), and the vantage points in them.
    States(Vec<LoadedState>, usize),
    /// Updates in event-time order, and the vantage points in them.
    Updates(Vec<RouteEvent>, usize),
}

/// A feed connection's warm start: the runner task's end and the connection's end.
pub struct WarmStart {
    source: Source,
    settings: Settings,
    handle: FeedHandle,
    gate: Arc<Gate>,
    prefixes: Vec<IpNet>,
    http: reqwest::Client,
    wants: mpsc::UnboundedSender<Want>,
    /// The bgproutes vantage points last listed (to read updates with).
    vps: Mutex<Option<rest::Vps>>,
}

/// Starts the warm start of one feed connection whose live events go through `handle`: sets
/// the gate on the handle, runs the first warm start at once and returns the connection's end
/// (call [`WarmStart::on_connected`] on every connect).
pub fn start(
    source: Source,
    settings: Settings,
    handle: &mut FeedHandle,
    prefixes: Vec<IpNet>,
) -> Arc<WarmStart> {
    let gate = Arc::new(Gate::new(settings.buffer));
    // Held from the first moment: events from the first connection wait for the state.
    gate.close();
    handle.set_gate(gate.clone());
    let (wants, rx) = mpsc::unbounded_channel();
    let http = crate::proxy::http_client_builder()
        .connect_timeout(settings.timeout)
        .user_agent(concat!("bgpsentry/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    handle.ctx.metrics.warm_start.init(&handle.name);
    let ws = Arc::new(WarmStart {
        source,
        settings,
        handle: handle.clone(),
        gate,
        prefixes,
        http,
        wants,
        vps: Mutex::new(None),
    });
    ws.set_health(|h| *h = Some(initial_health()));
    let _ = ws.wants.send(Want::State);
    tokio::spawn(ws.clone().run(rx));
    ws
}

fn initial_health() -> WarmStartHealth {
    WarmStartHealth {
        state: "loading",
        holds_readiness: true,
        routes: 0,
        vantage_points: 0,
        last_success: None,
        failures: 0,
        last_error: None,
    }
}

impl WarmStart {
    /// The live connection is (re)connected: after a gap longer than `gap_seconds` since the
    /// last live data, the state is loaded again (events are held from now on).
    pub fn on_connected(&self) {
        let Some(last) = self.gate.last_live() else {
            return; // nothing arrived yet: the first warm start covers it
        };
        if last.elapsed() <= self.settings.gap || self.gate.is_holding() {
            return;
        }
        let want = match (&self.source, self.gate.latest()) {
            (Source::Bgproutes { .. }, Some(since)) => Want::Since(since),
            _ => Want::State,
        };
        info!(feed = %self.handle.name, "the feed was away for {:?}: warm start again", last.elapsed());
        self.gate.close();
        let _ = self.wants.send(want);
    }

    fn set_health(&self, f: impl FnOnce(&mut Option<WarmStartHealth>)) {
        self.handle
            .ctx
            .health
            .update(&self.handle.name, |h| f(&mut h.warm_start));
    }

    async fn run(self: Arc<Self>, mut wants: mpsc::UnboundedReceiver<Want>) {
        let started = Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1), self.settings.retry_max);
        let mut retry: Option<Want> = None;
        let mut shutdown = self.handle.ctx.shutdown.clone();
        loop {
            let mut want = match retry.take() {
                Some(w) => w,
                None => tokio::select! {
                    w = wants.recv() => match w { Some(w) => w, None => return },
                    _ = shutdown.wait_for(|s| *s) => return,
                },
            };
            // Several asks at once: a whole state answers all of them.
            while let Ok(w) = wants.try_recv() {
                if w == Want::State || want == Want::State {
                    want = Want::State;
                }
            }
            self.gate.close();
            self.handle
                .ctx
                .metrics
                .warm_start
                .pending
                .with_label_values(&[&self.handle.name])
                .set(1);
            let t0 = Instant::now();
            let result = tokio::select! {
                r = self.attempt(want) => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let m = &self.handle.ctx.metrics.warm_start;
            let name = self.handle.name.as_str();
            m.duration
                .with_label_values(&[name])
                .set(t0.elapsed().as_secs_f64());
            let result = match result {
                Ok(_) if self.gate.overflowed() => Err(Failed::new(
                    Failure::Overflow,
                    format!(
                        "more than {} live events arrived before the state was loaded \
                         (warm_start.buffer_events); they went through unordered",
                        self.settings.buffer
                    ),
                )),
                other => other,
            };
            match result {
                Ok(got) => {
                    backoff.reset();
                    let (routes, vps) = match &got {
                        Got::States(s, v) => (s.iter().map(|s| s.routes.len()).sum(), *v),
                        Got::Updates(u, v) => (u.len(), *v),
                    };
                    let since = match want {
                        Want::Since(s) => Some(s),
                        Want::State => None,
                    };
                    if !self.hand_over(got, since).await {
                        return;
                    }
                    m.runs.with_label_values(&[name, "ok"]).inc();
                    m.routes.with_label_values(&[name]).set(routes as i64);
                    m.vantage_points.with_label_values(&[name]).set(vps as i64);
                    m.last_success
                        .with_label_values(&[name])
                        .set(Timestamp::now().as_secs_f64());
                    m.pending.with_label_values(&[name]).set(0);
                    info!(
                        feed = %name,
                        "warm start done: {routes} {} from {vps} vantage points in {:.1?}",
                        if matches!(want, Want::Since(_)) { "updates since the last message" } else { "routes" },
                        t0.elapsed()
                    );
                    self.set_health(|h| {
                        let h = h.get_or_insert_with(initial_health);
                        h.state = "done";
                        h.holds_readiness = false;
                        h.routes = routes as u64;
                        h.vantage_points = vps as u64;
                        h.last_success = Some(Timestamp::now());
                        h.failures = 0;
                    });
                }
                Err(failed) => {
                    // The live events go on, cold, until a retry works.
                    let held = self.gate.open();
                    if !self.handle.forward(held).await {
                        return;
                    }
                    m.runs
                        .with_label_values(&[name, failed.failure.as_str()])
                        .inc();
                    let delay = failed
                        .retry_after
                        .unwrap_or_default()
                        .max(backoff.next_delay());
                    let cold = started.elapsed() >= self.settings.ready_timeout;
                    warn!(
                        feed = %name,
                        result = failed.failure.as_str(),
                        "warm start failed, running cold; retrying in {delay:.1?}: {}",
                        failed.message
                    );
                    self.set_health(|h| {
                        let h = h.get_or_insert_with(initial_health);
                        h.failures += 1;
                        h.last_error = Some(failed.message.clone());
                        if h.last_success.is_none() {
                            h.state = if cold { "cold" } else { "loading" };
                            h.holds_readiness = !cold;
                        }
                    });
                    // Live events went through meanwhile: only a whole state is exact now.
                    retry = Some(Want::State);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    /// Sends what was loaded, then the held live events newer than it, to the engine.
    async fn hand_over(&self, got: Got, since: Option<Timestamp>) -> bool {
        self.gate.start_draining();
        let newer_than = match got {
            Got::States(states, _) => {
                let oldest = states.iter().map(|s| s.timestamp).min();
                let applied: Vec<_> = states.iter().map(|s| s.applied.clone()).collect();
                let events = states
                    .into_iter()
                    .map(|s| FeedEvent::Loaded(Arc::new(s)))
                    .collect();
                if !self.handle.forward(events).await {
                    return false;
                }
                // Ready means the engine holds the state; live events stay held meanwhile.
                let mut shutdown = self.handle.ctx.shutdown.clone();
                for a in applied {
                    tokio::select! {
                        _ = a.wait() => {}
                        _ = shutdown.wait_for(|s| *s) => return false,
                    }
                }
                oldest
            }
            Got::Updates(updates, _) => {
                // The updates fill the gap between the last event delivered and the first live
                // event held; what lies outside it the engine has, or gets from the stream.
                let cut = self.gate.first_held();
                let events = updates
                    .into_iter()
                    .filter(|u| since.is_none_or(|s| u.timestamp > s))
                    .filter(|u| cut.is_none_or(|c| u.timestamp < c))
                    .map(FeedEvent::Route)
                    .collect();
                if !self.handle.forward(events).await {
                    return false;
                }
                None
            }
        };
        loop {
            let mut held = self.gate.take_or_open();
            if held.is_empty() {
                return true;
            }
            if let Some(t) = newer_than {
                // Already in the loaded state.
                held.retain(|e| event_time(e) > t);
            }
            if !self.handle.forward(held).await {
                return false;
            }
        }
    }

    async fn get(
        &self,
        url: &str,
        secret: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, Failed> {
        fetch::body(
            req,
            url,
            self.settings.max_bytes,
            self.settings.timeout,
            secret,
        )
        .await
    }

    async fn attempt(&self, want: Want) -> Result<Got, Failed> {
        let now = Timestamp::now();
        match &self.source {
            Source::RipeStat { base, batch } => {
                let mut states = Vec::new();
                let mut vps: HashSet<Arc<VantagePoint>> = HashSet::new();
                let chunks: Vec<&[IpNet]> = self.prefixes.chunks((*batch).max(1)).collect();
                for (url, chunk) in ripestat::urls(base, &self.prefixes, *batch)
                    .iter()
                    .zip(chunks)
                {
                    let body = self.get(url, "", self.http.get(url)).await?;
                    let state = ripestat::parse(&body, &self.handle.feed, now)?;
                    for bad in &state.invalid {
                        self.handle.invalid(bad);
                    }
                    vps.extend(state.routes.iter().map(|r| r.vp.clone()));
                    states.push(LoadedState {
                        feed: self.handle.feed.clone(),
                        timestamp: state.time.unwrap_or(now),
                        scope: chunk.to_vec(),
                        routes: state.routes,
                        applied: Default::default(),
                    });
                }
                Ok(Got::States(states, vps.len()))
            }
            Source::Bgproutes { base, key } => {
                let base = base.trim_end_matches('/');
                let date = rest::api_date(now);
                let vps_url = format!("{base}/v1/vantage_points?date={date}");
                let body = self
                    .get(
                        &vps_url,
                        key,
                        self.http.get(&vps_url).header("x-api-key", &**key),
                    )
                    .await?;
                let (vps, invalid) = rest::parse_vantage_points(&body, &self.handle.feed)?;
                for bad in &invalid {
                    self.handle.invalid(bad);
                }
                *self.vps.lock().unwrap_or_else(|p| p.into_inner()) = Some(vps.clone());
                let (bgp, bmp) = vps.ids();
                let mut params: Vec<(&str, String)> = vec![
                    ("prefix_filter", rest::prefix_filter(&self.prefixes)),
                    ("return_aspath", "true".into()),
                    ("return_community", "true".into()),
                ];
                if !bgp.is_empty() {
                    params.push(("vp_bgp_ids", bgp.join(",")));
                }
                if !bmp.is_empty() {
                    params.push(("vp_bmp_ids", bmp.join(",")));
                }
                let path = match want {
                    Want::State => {
                        params.push(("date", date.clone()));
                        "rib"
                    }
                    Want::Since(since) => {
                        params.push(("start_date", rest::api_date(since)));
                        params.push(("end_date", date.clone()));
                        "updates"
                    }
                };
                let url = format!("{base}/v1/{path}");
                let req = if bgp.len() + bmp.len() > rest::MAX_IDS_IN_QUERY {
                    let body: serde_json::Map<String, serde_json::Value> = params
                        .iter()
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                        .collect();
                    self.http.post(&url).json(&body)
                } else {
                    self.http.get(&url).query(&params)
                };
                let body = self.get(&url, key, req.header("x-api-key", &**key)).await?;
                let (routes, invalid) = match want {
                    Want::State => rest::parse_rib(&body, &vps, now)?,
                    Want::Since(_) => rest::parse_updates(&body, &vps, now)?,
                };
                for bad in &invalid {
                    self.handle.invalid(bad);
                }
                let seen: HashSet<&Arc<VantagePoint>> = routes.iter().map(|r| &r.vp).collect();
                let seen = seen.len();
                Ok(match want {
                    Want::State => Got::States(
                        vec![LoadedState {
                            feed: self.handle.feed.clone(),
                            timestamp: now,
                            scope: self.prefixes.clone(),
                            routes,
                            applied: Default::default(),
                        }],
                        seen,
                    ),
                    Want::Since(_) => Got::Updates(routes, seen),
                })
            }
        }
    }
}

/// The base URL of a source, redacted, for the start-up log line.
pub fn describe(source: &Source) -> String {
    match source {
        Source::RipeStat { base, batch } => {
            format!(
                "RIPEstat bgp-state at {} ({batch} prefixes per request)",
                redact_url(base)
            )
        }
        Source::Bgproutes { base, .. } => format!("bgproutes.io REST API at {}", redact_url(base)),
    }
}
