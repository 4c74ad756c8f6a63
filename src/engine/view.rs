//! Read-only views of what the engine knows per watched prefix, for the prefix API and the
//! status page, and [`SharedPrefixStates`], the in-memory copy the engine thread publishes them
//! to (not the SQLite store).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use serde::Serialize;

use super::watched::WatchId;
use super::{Engine, FastMap};
use crate::event::Timestamp;

/// An ASN and how many VPs show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnCount {
    /// The ASN.
    pub asn: u32,
    /// Distinct VPs whose route shows it.
    pub vantage_points: usize,
}

/// A more-specific of a watched prefix that some VPs route now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoreSpecificState {
    /// The more-specific prefix.
    pub prefix: IpNet,
    /// VPs with a route to it.
    pub vantage_points: usize,
    /// Its origins, most VPs first.
    pub origins: Vec<AsnCount>,
}

/// What the engine knows of one watched prefix right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixState {
    /// The watched prefix.
    pub prefix: IpNet,
    /// Its description from the config.
    pub description: String,
    /// Allowed origins (configured, or learned so far).
    pub expected_origins: Vec<u32>,
    /// True when the origins are learned rather than configured.
    pub origins_learned: bool,
    /// Allowed upstreams (configured, or learned so far); `None` when upstreams are not checked.
    pub expected_upstreams: Option<Vec<u32>>,
    /// True when the upstreams are learned rather than configured.
    pub upstreams_learned: bool,
    /// Origins an operator accepted (`POST /baselines/{prefix}`), also in `expected_origins`.
    pub accepted_origins: Vec<u32>,
    /// Upstreams an operator accepted, also in `expected_upstreams`.
    pub accepted_upstreams: Vec<u32>,
    /// While the learning window is open: when it ends. Until then what the prefix itself
    /// shows raises no origin or upstream alert; afterwards only what enough VPs showed is in
    /// the baseline.
    pub learning_window_ends: Option<Timestamp>,
    /// VPs with a route to the exact prefix now.
    pub vantage_points: usize,
    /// The visibility threshold (`visibility_min_vantage_points`; 0 = not checked).
    pub visibility_threshold: u32,
    /// Origins of the exact prefix, most VPs first.
    pub origins: Vec<AsnCount>,
    /// Neighbours of the origin on routes to the exact prefix, most VPs first.
    pub upstreams: Vec<AsnCount>,
    /// More-specifics routed now, in prefix order.
    pub more_specifics: Vec<MoreSpecificState>,
    /// Event time of the last route change under this prefix (exact or more-specific).
    pub last_change: Option<Timestamp>,
}

fn counts(map: FastMap<u32, usize>) -> Vec<AsnCount> {
    let mut v: Vec<AsnCount> = map
        .into_iter()
        .map(|(asn, vantage_points)| AsnCount {
            asn,
            vantage_points,
        })
        .collect();
    v.sort_by(|a, b| {
        b.vantage_points
            .cmp(&a.vantage_points)
            .then(a.asn.cmp(&b.asn))
    });
    v
}

impl Engine {
    /// The state of one watched prefix (exact match); `None` when it is not watched.
    pub fn prefix_state(&self, prefix: &IpNet) -> Option<PrefixState> {
        let w = *self.watch.get(prefix)?;
        self.states_of([w]).pop()
    }

    /// The state of every watched prefix, in config order.
    pub fn prefix_states(&self) -> Vec<PrefixState> {
        self.states_of(self.watched.ids())
    }

    /// The states of the watched prefixes whose routes changed since the last call.
    pub fn take_changed_states(&mut self) -> Vec<PrefixState> {
        if self.state_dirty.is_empty() {
            return Vec::new();
        }
        let dirty = std::mem::take(&mut self.state_dirty);
        self.states_of(dirty)
    }

    fn states_of(&self, which: impl IntoIterator<Item = WatchId>) -> Vec<PrefixState> {
        let mut ids: Vec<WatchId> = which.into_iter().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|w| {
                let watched = self.watched.get(w)?;
                let view = self.visibility_of(&watched.cfg.prefix);
                // The engine indexes the more-specifics routed under each watched prefix, so
                // this costs what the prefix holds, not what the whole table holds.
                let more_specifics = self
                    .more_specifics
                    .get(w)?
                    .iter()
                    .filter_map(|p| {
                        let by_vp = self.routes.get(p)?;
                        let mut origins: FastMap<u32, usize> = FastMap::default();
                        for r in by_vp.values() {
                            for o in r.attrs.origins() {
                                *origins.entry(*o).or_default() += 1;
                            }
                        }
                        Some(MoreSpecificState {
                            prefix: *p,
                            vantage_points: by_vp.len(),
                            origins: counts(origins),
                        })
                    })
                    .collect();
                Some(PrefixState {
                    prefix: watched.cfg.prefix,
                    description: watched.cfg.description.clone(),
                    expected_origins: watched.origins.asns().to_vec(),
                    origins_learned: watched.origins.is_learning(),
                    expected_upstreams: watched.upstreams.as_ref().map(|u| u.asns().to_vec()),
                    upstreams_learned: watched.upstreams.as_ref().is_some_and(|u| u.is_learning()),
                    accepted_origins: watched.origins.accepted().to_vec(),
                    accepted_upstreams: watched
                        .upstreams
                        .as_ref()
                        .map(|u| u.accepted().to_vec())
                        .unwrap_or_default(),
                    learning_window_ends: (watched.origins.window_open()
                        || watched.upstreams.as_ref().is_some_and(|u| u.window_open()))
                    .then_some(watched.learn_until)
                    .flatten(),
                    vantage_points: view.vantage_points,
                    visibility_threshold: watched.cfg.visibility_min_vantage_points,
                    origins: counts(view.origins),
                    upstreams: counts(view.upstreams),
                    more_specifics,
                    last_change: self.last_change.get(w).copied().flatten(),
                })
            })
            .collect()
    }
}

/// Prefix states published by the engine thread for the HTTP handlers: a snapshot that is
/// replaced per prefix after each batch, so readers never wait on the engine.
#[derive(Debug, Clone, Default)]
pub struct SharedPrefixStates {
    inner: Arc<RwLock<SharedInner>>,
}

#[derive(Debug, Default)]
struct SharedInner {
    order: Vec<IpNet>,
    states: BTreeMap<IpNet, Arc<PrefixState>>,
    vantage_points: usize,
}

impl SharedPrefixStates {
    /// Replaces every state (at start-up), keeping the given order.
    pub fn set_all(&self, states: Vec<PrefixState>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.order = states.iter().map(|s| s.prefix).collect();
        inner.states = states
            .into_iter()
            .map(|s| (s.prefix, Arc::new(s)))
            .collect();
    }

    /// Replaces the states of some prefixes and the count of VPs seen.
    pub fn update(&self, states: Vec<PrefixState>, vantage_points: usize) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.vantage_points = vantage_points;
        for s in states {
            if !inner.states.contains_key(&s.prefix) {
                inner.order.push(s.prefix);
            }
            inner.states.insert(s.prefix, Arc::new(s));
        }
    }

    /// One prefix's state.
    pub fn get(&self, prefix: &IpNet) -> Option<Arc<PrefixState>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.states.get(prefix).cloned()
    }

    /// Every state, in config order.
    pub fn all(&self) -> Vec<Arc<PrefixState>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner
            .order
            .iter()
            .filter_map(|p| inner.states.get(p).cloned())
            .collect()
    }

    /// Distinct VPs the engine has seen (for visibility bars).
    pub fn vantage_points(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .vantage_points
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::event::{
        AsPath, FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
    };

    fn engine(yaml: &str) -> Engine {
        let cfg = Config::parse(yaml, Path::new("t.yml")).unwrap();
        Engine::new(&cfg.prefixes)
    }

    fn ev(t: i64, v: u8, prefix: &str, path: Option<&[u32]>) -> FeedEvent {
        FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_parts(t, 0),
            vp: Arc::new(VantagePoint {
                feed: "test".into(),
                collector: "rrc00".into(),
                peer_asn: 64500 + u32::from(v),
                peer_ip: IpAddr::from([192, 0, 2, v]),
                exporter: None,
            }),
            prefix: prefix.parse().unwrap(),
            change: match path {
                Some(p) => RouteChange::Announce(Arc::new(RouteAttrs {
                    path: AsPath::from_asns(p.iter().copied()),
                    communities: Vec::new().into(),
                    next_hop: None,
                })),
                None => RouteChange::Withdraw,
            },
        })
    }

    const CFG: &str = "prefixes:\n  - prefix: 10.0.0.0/16\n    description: d\n    origins: [65001]\n  - prefix: 10.0.1.0/24\n    origins: [65001]\n    upstreams: []\n  - prefix: 192.0.2.0/24\n";

    #[test]
    fn state_counts_origins_upstreams_and_more_specifics() {
        let mut e = engine(CFG);
        let fresh = e.prefix_states();
        assert_eq!(fresh.len(), 3);
        assert!(
            fresh
                .iter()
                .all(|s| s.vantage_points == 0 && s.last_change.is_none())
        );
        assert!(fresh[2].origins_learned);
        // `upstreams: []` turns the check off: no allowed set to show.
        assert_eq!(fresh[1].expected_upstreams, None);
        assert_eq!(fresh[0].expected_upstreams, Some(vec![]));
        for event in [
            ev(10, 1, "10.0.0.0/16", Some(&[64501, 3356, 65001])),
            ev(11, 2, "10.0.0.0/16", Some(&[64502, 174, 65001])),
            ev(12, 3, "10.0.0.0/16", Some(&[64503, 174, 65001])),
            ev(13, 1, "10.0.1.0/24", Some(&[64501, 666])),
            ev(14, 2, "10.0.1.0/24", Some(&[64502, 3356, 65001])),
            ev(15, 3, "10.0.200.0/24", Some(&[64503, 174, 65001])),
        ] {
            e.process(&event);
        }
        let s = e.prefix_state(&"10.0.0.0/16".parse().unwrap()).unwrap();
        assert_eq!(s.description, "d");
        assert_eq!(s.vantage_points, 3);
        let pairs = |v: &[AsnCount]| -> Vec<(u32, usize)> {
            v.iter().map(|c| (c.asn, c.vantage_points)).collect()
        };
        assert_eq!(pairs(&s.origins), [(65001, 3)]);
        // Most VPs first, then by ASN.
        assert_eq!(pairs(&s.upstreams), [(174, 2), (3356, 1)]);
        type More = (String, usize, Vec<(u32, usize)>);
        let more: Vec<More> = s
            .more_specifics
            .iter()
            .map(|m| (m.prefix.to_string(), m.vantage_points, pairs(&m.origins)))
            .collect();
        assert_eq!(
            more,
            [
                ("10.0.1.0/24".into(), 2, vec![(666, 1), (65001, 1)]),
                ("10.0.200.0/24".into(), 1, vec![(65001, 1)]),
            ]
        );
        assert_eq!(s.last_change, Some(Timestamp::from_parts(15, 0)));
        // The nested watched /24 sees only its own routes, changed last at 14.
        let inner = e.prefix_state(&"10.0.1.0/24".parse().unwrap()).unwrap();
        assert_eq!(inner.vantage_points, 2);
        assert!(inner.more_specifics.is_empty());
        assert_eq!(inner.last_change, Some(Timestamp::from_parts(14, 0)));
        assert!(e.prefix_state(&"10.0.2.0/24".parse().unwrap()).is_none());
    }

    #[test]
    fn changed_states_are_those_touched_since_the_last_call() {
        let mut e = engine(CFG);
        assert!(e.take_changed_states().is_empty());
        e.process(&ev(10, 1, "10.0.1.0/24", Some(&[64501, 65001])));
        let changed: Vec<String> = e
            .take_changed_states()
            .iter()
            .map(|s| s.prefix.to_string())
            .collect();
        // A route to the /24 changes both the /24 and its covering /16.
        assert_eq!(changed, ["10.0.0.0/16", "10.0.1.0/24"]);
        assert!(e.take_changed_states().is_empty());
        // A withdrawal of a route the VP never had changes nothing.
        e.process(&ev(11, 2, "10.0.1.0/24", None));
        assert!(e.take_changed_states().is_empty());
        e.process(&ev(12, 1, "10.0.1.0/24", None));
        let changed = e.take_changed_states();
        assert_eq!(changed.len(), 2);
        assert!(changed.iter().all(|s| s.vantage_points == 0
            && s.more_specifics.is_empty()
            && s.last_change == Some(Timestamp::from_parts(12, 0))));
        // Unrelated space changes nothing.
        e.process(&ev(13, 1, "203.0.113.0/24", Some(&[64501, 65001])));
        assert!(e.take_changed_states().is_empty());
    }

    #[test]
    fn store_keeps_config_order_and_replaces_per_prefix() {
        let mut e = engine(CFG);
        let store = SharedPrefixStates::default();
        store.set_all(e.prefix_states());
        e.process(&ev(10, 1, "192.0.2.0/24", Some(&[64501, 65009])));
        store.update(e.take_changed_states(), e.vantage_point_count());
        let all = store.all();
        let order: Vec<String> = all.iter().map(|s| s.prefix.to_string()).collect();
        assert_eq!(order, ["10.0.0.0/16", "10.0.1.0/24", "192.0.2.0/24"]);
        assert_eq!(all[2].vantage_points, 1);
        // Learning: the window is open for 300 s after the first route, nothing learned yet.
        assert!(all[2].expected_origins.is_empty());
        assert_eq!(
            all[2].learning_window_ends,
            Some(Timestamp::from_parts(310, 0))
        );
        assert_eq!(store.vantage_points(), 1);
        assert!(store.get(&"10.0.0.0/16".parse().unwrap()).is_some());
        assert!(store.get(&"10.9.0.0/16".parse().unwrap()).is_none());
    }
}
