//! Handing prefixes over to another instance (a scale-out deployment's rebalance): the routes,
//! conditions, visibility counts and hold-downs under some prefixes are dropped, and their
//! firing alerts leave as `handed_over`, not resolved: the incident goes on, and the instance
//! that takes the prefixes over raises it with the same labels.

use ipnet::IpNet;

use super::watched::WatchId;
use super::{Due, Engine};
use crate::alerts::{AlertTransition, TransitionKind};

impl Engine {
    /// Drops everything held under `scope` (watched prefixes and routes inside one of its
    /// prefixes) without judging it: each firing alert of a watched prefix in scope becomes a
    /// `handed_over` transition. Learned baselines stay. Returns the number of alerts handed
    /// over.
    pub fn hand_over(&mut self, scope: &[IpNet]) -> usize {
        let in_scope = |p: &IpNet| scope.iter().any(|s| s.contains(p));
        let gone: Vec<WatchId> = self
            .watched
            .enumerate()
            .filter(|(_, w)| in_scope(&w.cfg.prefix))
            .map(|(id, _)| id)
            .collect();
        let is_gone = |w: &WatchId| gone.binary_search(w).is_ok();
        let mut prefixes: Vec<IpNet> = self
            .routes
            .keys()
            .filter(|p| in_scope(p))
            .copied()
            .collect();
        prefixes.sort_unstable();
        for prefix in prefixes {
            if let Some(by_vp) = self.routes.remove(&prefix) {
                self.route_count -= by_vp.len();
                for r in by_vp.values() {
                    self.attr_table.release(r.attrs.clone());
                }
                self.dirty.insert(prefix);
            }
        }
        let mut handed = Vec::new();
        for &w in &gone {
            let net = self.watched[w].cfg.prefix;
            let keys: Vec<_> = self.conditions.keys_of(&net).copied().collect();
            for k in keys {
                if let Some(alert) = self.conditions.remove(&k).and_then(|c| c.firing) {
                    handed.push(alert);
                }
            }
            self.more_specifics[w].clear();
            self.last_change[w] = None;
            self.state_dirty.insert(w);
            self.touched.insert(net);
        }
        let mut visibility: Vec<(WatchId, IpNet)> = self
            .visibility
            .keys()
            .filter(|(w, _)| is_gone(w))
            .copied()
            .collect();
        visibility.sort_unstable();
        for key in visibility {
            if let Some(alert) = self.visibility.remove(&key).and_then(|v| v.firing) {
                handed.push(*alert);
            }
            self.meta_dirty = true;
        }
        self.timers.retain(|(_, due)| match due {
            Due::Condition(w, _) | Due::Visibility(w, _) => !is_gone(w),
        });
        self.unsettled.retain(|(w, _)| !is_gone(w));
        self.unsettled_keys = self.unsettled.iter().map(|(_, k)| *k).collect();
        self.unsettled_visibility.retain(|(w, _)| !is_gone(w));
        self.unsettled_visibility_keys = self.unsettled_visibility.iter().copied().collect();
        let n = handed.len();
        for alert in handed {
            self.alerts.transitions().push(AlertTransition {
                event: TransitionKind::HandedOver,
                alert,
            });
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{announce, engine_without_hold_downs, vp};
    use crate::alerts::{Rule, TransitionKind};
    use crate::event::{FeedEvent, RouteChange, RouteEvent, Timestamp};

    const YAML: &str = "prefixes:
  - prefix: 192.0.2.0/24
    origins: [64496]
    min_vantage_points: 1
    visibility_min_vantage_points: 1
  - prefix: 198.51.100.0/24
    origins: [64496]
    min_vantage_points: 1
";

    #[test]
    fn handed_over_prefixes_leave_no_state_and_no_resolution() {
        let mut e = engine_without_hold_downs(YAML);
        e.process(&announce(10, 1, "192.0.2.0/24", &[64501, 64496]));
        e.process(&announce(10, 2, "192.0.2.0/25", &[64502, 666]));
        e.process(&announce(10, 3, "198.51.100.0/24", &[64503, 666]));
        e.settle();
        let fired: Vec<_> = e.drain_transitions().collect();
        assert_eq!(
            fired
                .iter()
                .filter(|t| t.event == TransitionKind::Fired)
                .count(),
            2,
            "{fired:?}"
        );
        let handed = e.hand_over(&["192.0.2.0/24".parse().unwrap()]);
        assert_eq!(handed, 1);
        let out: Vec<_> = e.drain_transitions().collect();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].event, TransitionKind::HandedOver);
        assert_eq!(out[0].alert.rule, Rule::SubprefixHijack);
        assert_eq!(e.route_count(), 1, "only the other prefix's route is left");
        // Time goes on, the last route of the prefix is withdrawn: nothing resolves, no
        // visibility loss fires (the prefix is no longer this engine's).
        e.process(&FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_parts(20, 0),
            vp: vp(1),
            prefix: "192.0.2.0/24".parse().unwrap(),
            change: RouteChange::Withdraw,
        }));
        e.advance_to(Timestamp::from_parts(100, 0));
        assert_eq!(e.drain_transitions().count(), 0);
        // Taken back: the hijack fires again, as a new incident.
        e.process(&announce(110, 2, "192.0.2.0/25", &[64502, 666]));
        e.settle();
        let again: Vec<_> = e.drain_transitions().collect();
        assert!(
            again
                .iter()
                .any(|t| t.event == TransitionKind::Fired && t.alert.rule == Rule::SubprefixHijack),
            "{again:?}"
        );
        // Everything handed over: the other prefix's alert goes too.
        e.hand_over(&["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]);
        assert_eq!(e.route_count(), 0);
        assert!(
            e.drain_transitions()
                .all(|t| t.event == TransitionKind::HandedOver)
        );
    }
}
