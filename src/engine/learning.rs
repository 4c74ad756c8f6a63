//! Learning mode: the window in which a watched prefix's baseline is learned, and baselines an
//! operator accepts.
//!
//! A window opens with the first route to the watched prefix itself (never a more-specific,
//! which is what a hijacker announces) or with a table dump, and lasts
//! `learning_window_seconds` of event time. While it is open, every origin seen on the prefix
//! and every upstream seen behind an allowed origin is a candidate and raises nothing. When it
//! closes, an origin is learned only if at least `min_vantage_points` VPs and
//! `learning_min_share_percent` of the VPs that routed the prefix showed it, and RPKI data (when
//! loaded) does not call it invalid; an upstream needs `min_vantage_points` VPs. What was not
//! learned is then judged like anything else after learning: a hijacker seen during the window
//! raises `origin_change` (critical) when the window closes, with its VPs at that moment.

use ipnet::IpNet;
use serde::Serialize;

use super::Engine;
use super::vps::VpId;
use super::watched::WatchId;
use crate::event::{RouteAttrs, Timestamp};
use crate::rpki::RovState;

/// Why a baseline could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The prefix is not in the watch list.
    #[error("{0} is not a watched prefix; GET /api/prefixes lists them")]
    NotWatched(IpNet),
    /// Upstreams are not checked for the prefix (`upstreams: []`).
    #[error(
        "upstreams of {0} are not checked (`upstreams: []` in the config); remove that line to check them"
    )]
    UpstreamsNotChecked(IpNet),
    /// Nothing to accept.
    #[error("give at least one ASN in `origins` or `upstreams`")]
    Empty,
    /// ASN 0 is reserved and never a valid origin or upstream.
    #[error("AS0 is reserved (RFC 7607) and cannot be accepted")]
    Reserved,
    /// The prefix is squat space: nobody may announce it.
    #[error("{0} is watched with `squat: true`: it has no allowed origins to accept")]
    Squat(IpNet),
}

/// A baseline as the operator sees it after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedBaseline {
    /// The watched prefix.
    pub prefix: IpNet,
    /// Allowed origins now.
    pub origins: Vec<u32>,
    /// Allowed upstreams now (`None`: not checked).
    pub upstreams: Option<Vec<u32>>,
    /// Origins this request added (not allowed before).
    pub added_origins: Vec<u32>,
    /// Upstreams this request added (not allowed before).
    pub added_upstreams: Vec<u32>,
    /// Alerts the change resolved.
    pub resolved_alerts: usize,
}

impl Engine {
    /// Counts what this route shows into the learning window of watched prefix `w`, opening
    /// the window on the first route to the prefix itself. Returns true when what is allowed
    /// changed (the prefix's conditions must then be judged again).
    pub(super) fn learn(
        &mut self,
        w: WatchId,
        prefix: IpNet,
        vp: VpId,
        attrs: &RouteAttrs,
        ts: Timestamp,
    ) -> bool {
        let loading_rib = self.loading_rib;
        let watched = &self.watched[w];
        let learns = watched.origins.is_learning()
            || watched.upstreams.as_ref().is_some_and(|u| u.is_learning());
        // Nobody may announce squat space: nothing to learn.
        if !learns || watched.cfg.squat {
            return false;
        }
        let changed = if watched.learn_until.is_none() {
            // A more-specific says nothing about who holds the prefix; with configured origins
            // its upstreams in front of one of them still count.
            let trusted = !watched.origins.is_learning()
                && attrs
                    .path
                    .origins()
                    .iter()
                    .all(|o| watched.origins.contains(*o));
            if prefix != watched.cfg.prefix && !trusted {
                return false;
            }
            self.open_window(w, ts)
        } else {
            self.count_route(w, prefix, vp, attrs)
        };
        if changed {
            self.state_dirty.insert(w);
        }
        changed && !loading_rib
    }

    /// Opens the learning window of `w` at `ts` and counts the routes held under it now.
    fn open_window(&mut self, w: WatchId, ts: Timestamp) -> bool {
        let watched = &mut self.watched[w];
        let until = ts.plus_secs(watched.cfg.learning_window_seconds);
        let quorum = watched.cfg.min_vantage_points as usize;
        let share = f64::from(watched.cfg.learning_min_share_percent.min(100)) / 100.0;
        watched.learn_until = Some(until);
        watched.origins.open_window(quorum, share);
        if let Some(u) = watched.upstreams.as_mut() {
            u.open_window(quorum, 0.0);
        }
        self.learning_windows.insert((until, w));
        self.meta_dirty = true;
        self.count_held_routes(w)
    }

    /// Counts every route held under `w` into its open window.
    fn count_held_routes(&mut self, w: WatchId) -> bool {
        let net = self.watched[w].cfg.prefix;
        let under: Vec<IpNet> = std::iter::once(net)
            .chain(self.more_specifics[w].iter().copied())
            .collect();
        let mut changed = false;
        for prefix in under {
            let routes: Vec<(VpId, RouteAttrs)> = self
                .routes
                .get(&prefix)
                .map(|by_vp| {
                    by_vp
                        .iter()
                        .map(|(vp, r)| (vp, r.attrs.to_attrs()))
                        .collect()
                })
                .unwrap_or_default();
            for (vp, attrs) in routes {
                changed |= self.count_route(w, prefix, vp, &attrs);
            }
        }
        changed
    }

    /// Counts one route into the open window of `w`: origins of the prefix itself, and
    /// upstreams in front of allowed origins. True when what is allowed changed.
    fn count_route(&mut self, w: WatchId, prefix: IpNet, vp: VpId, attrs: &RouteAttrs) -> bool {
        let watched = &mut self.watched[w];
        let origins = attrs.path.origins();
        let mut changed = false;
        if prefix == watched.cfg.prefix && watched.origins.window_open() {
            let leading = watched.origins.leading();
            watched.origins.count_vp(vp);
            for &o in origins {
                changed |= watched.origins.count(o, vp);
            }
            // What more-specifics are judged by moved.
            changed |= watched.origins.leading() != leading;
        }
        if let Some(upstreams) = watched.upstreams.as_mut()
            && upstreams.window_open()
            && !origins.is_empty()
            && origins.iter().all(|o| watched.origins.contains(*o))
            && let Some(u) = attrs.path.origin_neighbor()
        {
            for &o in origins {
                changed |= upstreams.count_behind(u, o, vp);
            }
        }
        changed
    }

    /// Closes the learning windows that ended before `now`. Returns true when it raised or
    /// resolved an alert.
    pub(super) fn close_learning_windows(&mut self, now: Timestamp) -> bool {
        // A table dump's routes carry the times they were learned, in no order: its windows
        // close together when it is loaded.
        if self.loading_rib {
            return false;
        }
        let before = self.alerts.len();
        while let Some(&(until, w)) = self.learning_windows.first() {
            if until >= now {
                break;
            }
            self.learning_windows.pop_first();
            self.now = self.now.max(now);
            self.close_window(w, now);
            self.rebuild_conditions(w, now);
        }
        self.alerts.len() > before
    }

    /// Closes every open learning window at once (a table dump is a full view).
    pub(super) fn close_all_learning_windows(&mut self, now: Timestamp) {
        while let Some((_, w)) = self.learning_windows.pop_first() {
            self.close_window(w, now);
        }
    }

    /// Ends the learning window of `w`: the candidates that met the quorum become the baseline.
    /// When no origin was learned (the prefix was seen by too few VPs), the next route to the
    /// prefix opens a new window.
    fn close_window(&mut self, w: WatchId, now: Timestamp) {
        let rpki = self.ctx.rpki.data.clone();
        let watched = &mut self.watched[w];
        let net = watched.cfg.prefix;
        let invalid = |asn: u32| {
            rpki.as_ref()
                .is_some_and(|d| d.rov(&net, Some(asn)) == RovState::Invalid)
        };
        let left_out = watched.origins.close_window(invalid, |_| true);
        let origins = watched.origins.asns().to_vec();
        if let Some(u) = watched.upstreams.as_mut() {
            u.close_window(|_| false, |o| origins.binary_search(&o).is_ok());
        }
        for r in &left_out {
            tracing::warn!(
                prefix = %net,
                "learning: origin AS{} not learned ({} of the {} VPs needed{})",
                r.asn,
                r.vantage_points,
                r.needed,
                if r.rpki_invalid { "; RPKI-invalid" } else { "" }
            );
        }
        if watched.origins.is_learning() && watched.origins.asns().is_empty() {
            watched.learn_until = None;
        } else {
            watched.learn_until = Some(watched.learn_until.map_or(now, |u| u.min(now)));
        }
        self.meta_dirty = true;
        self.state_dirty.insert(w);
    }

    /// Reopens the window of a learning prefix restored mid-window, counting the restored
    /// routes (which VPs showed what before the restart is not saved; the routes held now are).
    pub(super) fn reopen_restored_window(&mut self, w: WatchId, now: Timestamp) {
        let watched = &mut self.watched[w];
        let Some(until) = watched.learn_until else {
            return;
        };
        let learns = watched.origins.is_learning()
            || watched.upstreams.as_ref().is_some_and(|u| u.is_learning());
        if until < now || !learns || watched.cfg.squat {
            return;
        }
        let quorum = watched.cfg.min_vantage_points as usize;
        let share = f64::from(watched.cfg.learning_min_share_percent.min(100)) / 100.0;
        watched.origins.open_window(quorum, share);
        if let Some(u) = watched.upstreams.as_mut() {
            u.open_window(quorum, 0.0);
        }
        self.learning_windows.insert((until, w));
        self.count_held_routes(w);
    }

    /// Adds origins and upstreams an operator accepted to the baseline of a watched prefix
    /// (exact match) and judges its routes again at the engine's time, so the alerts they
    /// explain resolve.
    pub fn accept_baseline(
        &mut self,
        prefix: &IpNet,
        origins: &[u32],
        upstreams: &[u32],
    ) -> Result<AcceptedBaseline, AcceptError> {
        let &w = self
            .watch
            .get(prefix)
            .ok_or(AcceptError::NotWatched(*prefix))?;
        if origins.is_empty() && upstreams.is_empty() {
            return Err(AcceptError::Empty);
        }
        if origins.contains(&0) || upstreams.contains(&0) {
            return Err(AcceptError::Reserved);
        }
        let watched = &mut self.watched[w];
        if watched.cfg.squat && !origins.is_empty() {
            return Err(AcceptError::Squat(*prefix));
        }
        if !upstreams.is_empty() && watched.upstreams.is_none() {
            return Err(AcceptError::UpstreamsNotChecked(*prefix));
        }
        let added_origins = watched.origins.accept(origins);
        let added_upstreams = match watched.upstreams.as_mut() {
            Some(u) => u.accept(upstreams),
            None => Vec::new(),
        };
        let resolved_before = self.alerts.resolved;
        let now = self.now;
        self.rebuild_conditions(w, now);
        // The operator's word takes effect now, not at the end of the instant in progress.
        self.settle_at(now);
        self.meta_dirty = true;
        self.state_dirty.insert(w);
        let watched = &self.watched[w];
        Ok(AcceptedBaseline {
            prefix: *prefix,
            origins: watched.origins.asns().to_vec(),
            upstreams: watched.upstreams.as_ref().map(|u| u.asns().to_vec()),
            added_origins,
            added_upstreams,
            resolved_alerts: (self.alerts.resolved - resolved_before) as usize,
        })
    }
}

/// A request to accept origins or upstreams into a baseline, sent to the thread that owns the
/// engine; the answer comes back on `reply`.
#[derive(Debug)]
pub struct AcceptRequest {
    /// The watched prefix (exact match).
    pub prefix: IpNet,
    /// Origins to accept.
    pub origins: Vec<u32>,
    /// Upstreams to accept.
    pub upstreams: Vec<u32>,
    /// Where the result goes.
    pub reply: tokio::sync::oneshot::Sender<Result<AcceptedBaseline, AcceptError>>,
}
