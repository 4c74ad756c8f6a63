//! A feed's loaded state (warm start): the routes its history service reported replace what the
//! engine holds of that feed's vantage points under the loaded prefixes, as one table dump.

use std::collections::HashSet;

use ipnet::IpNet;

use super::vps::VpId;
use super::{Chain, Engine};
use crate::event::{LoadedState, RouteChange};

impl Engine {
    /// Applies a loaded state. Routes of the feed's vantage points under `scope` that the state
    /// does not hold are withdrawn (they went away while the feed was down); the loaded routes
    /// are then stored like a table dump: baselines learn from them, and conditions are judged
    /// once on the whole state. A route the engine got from the stream after the state's time
    /// is kept: it is newer. Returns true when it touched a watched prefix.
    pub fn load_state(&mut self, state: &LoadedState) -> bool {
        if state.timestamp > self.now {
            self.advance_to(state.timestamp);
        }
        let in_scope = |p: &IpNet| state.scope.iter().any(|s| s.contains(p));
        let loaded: HashSet<(IpNet, VpId)> = state
            .routes
            .iter()
            .filter(|r| matches!(r.change, RouteChange::Announce(_)))
            .map(|r| (r.prefix, self.vps.intern(&r.vp)))
            .collect();
        let mut gone: Vec<(IpNet, VpId)> = Vec::new();
        for (prefix, by_vp) in &self.routes {
            if !in_scope(prefix) {
                continue;
            }
            for (vp, route) in by_vp.iter() {
                let of_feed = self.vps.get_vp(vp).is_some_and(|v| v.feed == state.feed);
                // A route the stream brought after the state's time is newer than the state.
                if of_feed && route.since <= state.timestamp && !loaded.contains(&(*prefix, vp)) {
                    gone.push((*prefix, vp));
                }
            }
        }
        // Map order is random per process; the same input must give the same alerts.
        gone.sort_unstable();
        let touched = !gone.is_empty() || !state.routes.is_empty();
        self.begin_rib();
        for (prefix, vp) in gone {
            let covering: Chain = self.watch.cover(&prefix).map(|(_, &w)| w).collect();
            self.apply_route(
                &covering,
                prefix,
                vp,
                &RouteChange::Withdraw,
                state.timestamp,
            );
        }
        for route in &state.routes {
            let newer = self
                .vps
                .get(&route.vp)
                .and_then(|vp| self.routes.get(&route.prefix)?.get(&vp))
                .is_some_and(|held| held.since > state.timestamp);
            if !newer {
                self.process_route(route);
            }
        }
        self.finish_rib(state.timestamp);
        state.applied.set();
        touched
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{announce, engine_without_hold_downs};
    use crate::event::{FeedEvent, LoadedState, RouteEvent, Timestamp};

    const YAML: &str = "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\n";

    fn loaded(t: i64, scope: &str, routes: &[(u32, &str)]) -> FeedEvent {
        let routes = routes
            .iter()
            .map(|(v, p)| match announce(t, *v, p, &[64500 + v, 64496]) {
                FeedEvent::Route(r) => r,
                _ => unreachable!(),
            })
            .collect::<Vec<RouteEvent>>();
        FeedEvent::Loaded(Arc::new(LoadedState {
            feed: "test".into(),
            timestamp: Timestamp::from_parts(t, 0),
            scope: vec![scope.parse().unwrap()],
            routes,
            applied: Default::default(),
        }))
    }

    #[test]
    fn a_loaded_state_replaces_older_routes_keeps_newer_ones_and_signals() {
        let mut e = engine_without_hold_downs(YAML);
        let p = "192.0.2.0/24".parse().unwrap();
        e.process(&announce(10, 1, "192.0.2.0/24", &[64501, 64496]));
        e.process(&announce(30, 2, "192.0.2.0/24", &[64502, 64496]));
        e.process(&announce(10, 3, "192.0.2.128/25", &[64503, 64496]));
        let state = loaded(20, "192.0.2.0/23", &[(4, "192.0.2.0/24")]);
        e.process(&state);
        // VP 1 (older than the state, not in it) is gone, VP 2 (newer) stays, VP 4 is new;
        // VP 3's more-specific is gone too.
        assert_eq!(e.visibility_of(&p).vantage_points, 2);
        assert_eq!(e.route_count(), 2);
        let FeedEvent::Loaded(s) = &state else {
            unreachable!()
        };
        assert!(s.applied.is_set());
        // A state outside the routes' prefixes, or of another feed's VPs, takes nothing away.
        e.process(&loaded(40, "198.51.100.0/24", &[]));
        assert_eq!(e.route_count(), 2);
        let mut other = loaded(50, "192.0.2.0/23", &[]);
        if let FeedEvent::Loaded(s) = &mut other {
            Arc::get_mut(s).unwrap().feed = "other".into();
        }
        e.process(&other);
        assert_eq!(e.route_count(), 2);
    }
}
