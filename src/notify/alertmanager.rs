//! Alertmanager API v2: `POST {url}/api/v2/alerts`.
//!
//! Labels identify an alert and are the same on every bgpsentry instance that sees the same
//! incident, so an HA pair pushing to one Alertmanager is deduplicated there. Firing alerts
//! carry `endsAt` a few re-push intervals ahead (they resolve on their own if every instance
//! dies); resolutions carry the time the incident ended.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Serialize;

use super::error::{ChannelError, SendError};
use super::http_client::{channel_headers, channel_url, check_response, http_client};
use super::template::alert_link;
use super::{EventKind, NotifyEvent};
use crate::alerts::Alert;
use crate::config::{AlertmanagerSettings, DEFAULT_HOLD_RESOLVED_SECONDS, DEFAULT_REPUSH_SECONDS};
use crate::event::Timestamp;

/// One alert in Alertmanager's `postableAlert` shape.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PostableAlert {
    /// Identity of the alert.
    pub labels: BTreeMap<String, String>,
    /// Details that do not identify it.
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// When it ends or, while firing, when it expires unless pushed again.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Link to the alert in bgpsentry.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// A configured Alertmanager.
pub struct AlertmanagerChannel {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    labels: BTreeMap<String, String>,
    base_url: String,
    /// Interval of re-pushes of firing alerts.
    pub repush: Duration,
    /// Minimum time between the first push of an alert and its resolution.
    pub hold_resolved: Duration,
}

impl AlertmanagerChannel {
    /// Builds from config.
    pub fn new(
        cfg: &AlertmanagerSettings,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let base = channel_url(cfg.url_source())?;
        let endpoint = base
            .join(&format!(
                "{}/api/v2/alerts",
                base.path().trim_end_matches('/')
            ))
            .map_err(|e| format!("cannot build the Alertmanager URL: {e}"))?;
        let headers = channel_headers(&cfg.headers)?;
        Ok(AlertmanagerChannel {
            client: http_client(timeout)?,
            endpoint,
            headers,
            labels: cfg.labels.clone(),
            base_url: base_url.to_string(),
            repush: Duration::from_secs_f64(cfg.repush_seconds.unwrap_or(DEFAULT_REPUSH_SECONDS)),
            hold_resolved: Duration::from_secs_f64(
                cfg.hold_resolved_seconds
                    .unwrap_or(DEFAULT_HOLD_RESOLVED_SECONDS)
                    .clamp(0.0, 86_400.0),
            ),
        })
    }

    /// Turns a closed grouping window's events, queued at `created_ms`, into notifications:
    /// firings and reminders now, in one; a resolution no earlier than `hold_resolved` after
    /// its alert's first push, so that an incident shorter than Alertmanager's `group_wait`
    /// is still notified. `first_push` (alert id → Unix ms of its first push) is this
    /// channel's memory of first pushes: firings add to it, resolutions take from it.
    pub fn batches(
        &self,
        events: Vec<NotifyEvent>,
        first_push: &mut HashMap<String, i64>,
        created_ms: i64,
    ) -> Vec<(i64, Vec<NotifyEvent>)> {
        let hold = self.hold_resolved.as_millis() as i64;
        let mut batches = Vec::new();
        let mut now_batch = Vec::new();
        for e in events {
            match e.event {
                EventKind::Fired | EventKind::Reminder => {
                    first_push.entry(e.alert.id.clone()).or_insert(created_ms);
                    now_batch.push(e);
                }
                EventKind::Resolved => {
                    let first = first_push.remove(&e.alert.id).unwrap_or(created_ms);
                    let not_before = first + hold;
                    if not_before > created_ms {
                        batches.push((not_before, vec![e]));
                    } else {
                        now_batch.push(e);
                    }
                }
            }
        }
        if !now_batch.is_empty() {
            batches.insert(0, (created_ms, now_batch));
        }
        batches
    }

    /// How long a firing push stays valid: several re-pushes, and past the hold.
    fn validity(&self) -> Duration {
        (self.repush * 4).max(self.hold_resolved + self.repush)
    }

    /// The labels of an alert: only what identifies the incident, so that two instances
    /// produce identical labels.
    pub fn labels(&self, a: &Alert) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        l.insert("alertname".into(), a.rule.as_str().into());
        l.insert("severity".into(), a.severity.as_str().into());
        l.insert("prefix".into(), a.prefix.to_string());
        l.insert("watched_prefix".into(), a.watched_prefix.to_string());
        if let Some(o) = a.origin {
            l.insert("origin_asn".into(), o.to_string());
        }
        if let Some(u) = a.upstream {
            l.insert("upstream_asn".into(), u.to_string());
        }
        if !a.groups.is_empty() {
            let mut g = a.groups.clone();
            g.sort();
            l.insert("groups".into(), g.join(","));
        }
        l
    }

    /// The postable form of an event at wall-clock time `now`.
    pub fn postable(&self, e: &NotifyEvent, now: Timestamp) -> PostableAlert {
        let a = &e.alert;
        let mut ann = BTreeMap::new();
        ann.insert("summary".into(), a.summary());
        if !a.description.is_empty() {
            ann.insert("description".into(), a.description.clone());
        }
        ann.insert("alert_id".into(), a.id.clone());
        ann.insert("vantage_points".into(), a.vantage_points.to_string());
        ann.insert(
            "expected_origins".into(),
            a.expected_origins
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        if !a.expected_upstreams.is_empty() {
            ann.insert(
                "expected_upstreams".into(),
                a.expected_upstreams
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        if !a.sample.is_empty() {
            ann.insert(
                "sample_as_paths".into(),
                a.sample
                    .iter()
                    .map(|s| format!("{}: {}", s.vantage_point, s.as_path))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        if let Some(ack) = &e.acknowledged {
            ann.insert("acknowledged_by".into(), ack.by.clone());
            ann.insert("acknowledged_at".into(), ack.at.to_rfc3339());
            if !ack.comment.is_empty() {
                ann.insert("acknowledged_comment".into(), ack.comment.clone());
            }
        }
        ann.insert("first_seen".into(), a.first_seen.to_rfc3339());
        ann.insert("last_seen".into(), a.last_seen.to_rfc3339());
        let ends = match e.event {
            EventKind::Resolved => a.resolved_at.unwrap_or(now).max(a.fired_at),
            EventKind::Fired | EventKind::Reminder => {
                now.plus_secs(self.validity().as_secs().max(1))
            }
        };
        PostableAlert {
            labels: self.labels(a),
            annotations: ann,
            starts_at: a.fired_at.to_rfc3339(),
            ends_at: ends.to_rfc3339(),
            generator_url: alert_link(&self.base_url, &a.id),
        }
    }

    /// Pushes the events' alerts in one request.
    pub async fn send(&self, events: &[NotifyEvent]) -> Result<(), SendError> {
        let now = Timestamp::now();
        let body: Vec<PostableAlert> = events.iter().map(|e| self.postable(e, now)).collect();
        check_response(
            self.client
                .post(self.endpoint.clone())
                .headers(self.headers.clone())
                .json(&body)
                .send()
                .await,
            &self.endpoint,
        )
        .await
    }
}
