//! An alert's VP count over time: a short series kept with the alert (in memory and in the
//! store, as part of its JSON), for the alert page.

use serde::{Deserialize, Serialize};

use super::Alert;
use crate::event::Timestamp;

/// Most points kept per alert. When full, every other older point is dropped, so the series
/// still spans the whole alert, more coarsely; an alert's size stays bounded however long it
/// fires and however often its VPs change.
pub const VP_HISTORY_POINTS: usize = 64;

/// The number of VPs that showed an alert from a moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpCount {
    /// From when (event time).
    pub at: Timestamp,
    /// How many VPs showed it.
    pub vantage_points: u32,
}

impl Alert {
    /// Records the alert's current VP count at `at`, if it differs from the last one recorded.
    pub fn record_vp_count(&mut self, at: Timestamp) {
        let count = self.vantage_points;
        if self
            .vp_history
            .last()
            .is_some_and(|p| p.vantage_points == count)
        {
            return;
        }
        if self.vp_history.len() >= VP_HISTORY_POINTS {
            thin(&mut self.vp_history);
        }
        self.vp_history.push(VpCount {
            at,
            vantage_points: count,
        });
    }
}

/// Drops every other point but the first and the last: half the points, the same span.
fn thin(points: &mut Vec<VpCount>) {
    let last = points.len().saturating_sub(1);
    let mut i = 0;
    points.retain(|_| {
        let keep = i == 0 || i == last || i % 2 == 0;
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample::sample_alert;

    #[test]
    fn records_changes_only_and_stays_bounded_over_the_whole_span() {
        let cfg = crate::config::Config::parse("", std::path::Path::new("t.yml")).unwrap();
        let mut a = sample_alert(&cfg);
        a.vp_history.clear();
        a.vantage_points = 3;
        a.record_vp_count(Timestamp(1));
        a.record_vp_count(Timestamp(2));
        assert_eq!(a.vp_history.len(), 1, "an unchanged count adds no point");
        for i in 0..10_000u32 {
            a.vantage_points = i % 7;
            a.record_vp_count(Timestamp(10 + i64::from(i)));
        }
        assert!(
            a.vp_history.len() <= VP_HISTORY_POINTS,
            "{}",
            a.vp_history.len()
        );
        assert_eq!(a.vp_history[0].at, Timestamp(1), "the first point stays");
        let last = a.vp_history.last().copied().unwrap();
        assert_eq!(
            (last.at, last.vantage_points),
            (Timestamp(10_009), 9_999 % 7)
        );
        assert!(a.vp_history.windows(2).all(|w| w[0].at < w[1].at));
    }
}
