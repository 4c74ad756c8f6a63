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
        touched
    }
}
