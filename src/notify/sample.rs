//! A made-up alert, for `bgpsentry notify test` and tests.

use super::new_delivery_id;
use crate::alerts::{Alert, Rule, Severity};
use crate::config::Config;

/// A made-up alert for `notify test`.
pub fn sample_alert(cfg: &Config) -> Alert {
    use crate::alerts::{AlertState, VpSample};
    use crate::event::Timestamp;
    let watched = cfg.prefixes.first();
    let prefix = watched
        .map(|p| p.prefix)
        .unwrap_or_else(|| "192.0.2.0/24".parse().unwrap_or_default());
    let now = Timestamp::now();
    let expected = watched
        .map(|p| p.origins.clone())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| vec![64500]);
    Alert {
        id: format!("test-{}", &new_delivery_id()[..16]),
        rule: Rule::OriginHijack,
        severity: Severity::Critical,
        state: AlertState::Firing,
        prefix,
        watched_prefix: prefix,
        description: "TEST from `bgpsentry notify test`; not a real incident".into(),
        origin: Some(64511),
        upstream: None,
        expected_origins: expected.clone(),
        expected_upstreams: Vec::new(),
        vantage_points: 2,
        peak_vantage_points: 2,
        sample: vec![
            VpSample {
                vantage_point: "test/rrc00/AS64496/192.0.2.1".into(),
                as_path: "64496 64510 64511".into(),
                seen_at: now,
                communities: Vec::new(),
            },
            VpSample {
                vantage_point: "test/rrc01/AS64497/192.0.2.2".into(),
                as_path: "64497 64511".into(),
                seen_at: now,
                communities: Vec::new(),
            },
        ],
        groups: watched.map(|p| p.groups.clone()).unwrap_or_default(),
        first_seen: now,
        fired_at: now,
        last_seen: now,
        resolved_at: None,
        vp_history: Vec::new(),
        detail: Default::default(),
    }
}
