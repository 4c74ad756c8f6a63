//! What every feed's events must pass before the engine sees them.
//!
//! An event time inside a sane window, and a bounded number of distinct vantage points per feed
//! connection. The live feeds apply it where they hand events to the engine, the MRT reader
//! where it builds them, so the rules live here once.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::warn;

use super::error::{Invalid, InvalidReason};
use crate::event::{FeedEvent, Timestamp, VantagePoint};

/// Earliest event time accepted, 1990-01-01T00:00:00Z: BGP-4 and every archive of it are
/// younger, so an earlier time is a broken or hostile clock (zero, a sign error, milliseconds
/// read as seconds divided…).
pub const EARLIEST_EVENT_SECS: i64 = 631_152_000;

/// How far ahead of this host's clock an event time may be: room for a skewed collector clock.
/// Later times (a year-10000 `timestamp`, microseconds sent as seconds) are rejected: they would
/// move the engine's clock into the future for good.
pub const MAX_AHEAD_OF_NOW_SECS: i64 = 86_400;

/// An MRT record whose time is further than this from the records before it in its file is
/// rejected: files hold minutes (updates) or one instant (table dumps) of data.
pub const MAX_MRT_RECORD_GAP_SECS: i64 = 86_400;

/// Distinct vantage points one feed connection may bring: a multiple of what any real feed has
/// (RIS has about two thousand sessions), so only a broken or hostile source reaches it. Events
/// of further new VPs are rejected (`too_many_vantage_points`), which bounds the engine's VP
/// table and the route state they could fill.
pub const MAX_VANTAGE_POINTS: usize = 32_768;

/// Longest name accepted from the wire for a collector or host (`rrc00.ripe.net`): the longest
/// DNS name is 253 bytes. Longer ones are `oversized_field`.
pub const MAX_NAME_BYTES: usize = 255;

/// The event time of any feed event.
pub fn event_time(ev: &FeedEvent) -> Timestamp {
    match ev {
        FeedEvent::Route(r) => r.timestamp,
        FeedEvent::PeerDown { timestamp, .. } => *timestamp,
        FeedEvent::Loaded(s) => s.timestamp,
        FeedEvent::HandOver(h) => h.timestamp,
    }
}

/// The one vantage point of an event (a loaded state has many, checked where it is read).
fn event_vp(ev: &FeedEvent) -> Option<&Arc<VantagePoint>> {
    match ev {
        FeedEvent::Route(r) => Some(&r.vp),
        FeedEvent::PeerDown { vp, .. } => Some(vp),
        FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => None,
    }
}

/// Checks an event time against the absolute window: not before 1990, not more than a day
/// ahead of `now` (this host's clock).
pub fn check_time(ts: Timestamp, now: Timestamp) -> Result<(), Invalid> {
    let earliest = Timestamp::from_parts(EARLIEST_EVENT_SECS, 0);
    let latest = now.plus_secs(MAX_AHEAD_OF_NOW_SECS as u64);
    if ts < earliest || ts > latest {
        return Err(Invalid::new(
            InvalidReason::TimestampOutOfRange,
            format!(
                "event time {} is outside {}..{} (1990 to a day after now)",
                ts.as_secs_f64(),
                earliest.secs(),
                latest.secs()
            ),
        ));
    }
    Ok(())
}

/// Checks a name taken from the wire (host, collector) against [`MAX_NAME_BYTES`].
pub fn check_name(what: &str, name: &str) -> Result<(), Invalid> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Invalid::new(
            InvalidReason::OversizedField,
            format!(
                "`{what}` of {} bytes; the limit is {MAX_NAME_BYTES}",
                name.len()
            ),
        ));
    }
    Ok(())
}

/// The admission state of one feed connection: the vantage points admitted so far.
#[derive(Debug, Default)]
pub struct Admission {
    vps: HashSet<Arc<VantagePoint>>,
    /// The VP admitted last: the events of one message share one `Arc`, so most events are
    /// admitted by comparing a pointer instead of hashing the VP (two strings, ASN, address).
    last: Option<Arc<VantagePoint>>,
    warned_full: bool,
}

impl Admission {
    /// Removes the events that may not reach the engine and returns why each was removed.
    /// `now` is this host's clock.
    pub fn filter(&mut self, events: &mut Vec<FeedEvent>, now: Timestamp) -> Vec<Invalid> {
        let mut rejected = Vec::new();
        events.retain(|ev| match self.admit(ev, now) {
            Ok(()) => true,
            Err(bad) => {
                rejected.push(bad);
                false
            }
        });
        rejected
    }

    /// Whether one event may reach the engine.
    pub fn admit(&mut self, ev: &FeedEvent, now: Timestamp) -> Result<(), Invalid> {
        check_time(event_time(ev), now)?;
        let Some(vp) = event_vp(ev) else {
            return Ok(());
        };
        if self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, vp)) {
            return Ok(());
        }
        if self.vps.contains(vp) {
            self.last = Some(vp.clone());
            return Ok(());
        }
        if self.vps.len() >= MAX_VANTAGE_POINTS {
            if !self.warned_full {
                self.warned_full = true;
                warn!(
                    vantage_point = %vp,
                    "this feed has brought {MAX_VANTAGE_POINTS} distinct vantage points, the most one feed may; \
                     events of new ones are dropped and counted as reason=\"{}\" \
                     (a broken or hostile feed server; restart to start counting afresh)",
                    InvalidReason::TooManyVantagePoints
                );
            }
            return Err(Invalid::new(
                InvalidReason::TooManyVantagePoints,
                format!("vantage point {vp} is beyond the limit of {MAX_VANTAGE_POINTS}"),
            ));
        }
        self.vps.insert(vp.clone());
        self.last = Some(vp.clone());
        Ok(())
    }
}

/// The file-relative time check of an MRT reader: a record far from the records before it is
/// rejected. The reference follows the file; two rejected records in a row that agree with each
/// other move it (the file really jumped, or its first record was the odd one).
#[derive(Debug, Default)]
pub struct FileClock {
    reference: Option<Timestamp>,
    rejected: Option<Timestamp>,
}

impl FileClock {
    /// Checks a record time (from the MRT header) against the file's other records.
    pub fn check(&mut self, ts: Timestamp) -> Result<(), Invalid> {
        let near =
            |a: Timestamp, b: Timestamp| (a.secs() - b.secs()).abs() <= MAX_MRT_RECORD_GAP_SECS;
        match self.reference {
            Some(r) if !near(ts, r) => {
                if self.rejected.is_some_and(|p| near(ts, p)) {
                    // The file moved on: follow it from here.
                    self.reference = Some(ts);
                    self.rejected = None;
                    return Ok(());
                }
                self.rejected = Some(ts);
                Err(Invalid::new(
                    InvalidReason::TimestampOutOfRange,
                    format!(
                        "record time {} is more than {MAX_MRT_RECORD_GAP_SECS} s away from the file's records around it ({})",
                        ts.secs(),
                        r.secs()
                    ),
                ))
            }
            _ => {
                self.reference = Some(ts);
                self.rejected = None;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RouteChange, RouteEvent};

    fn vp(n: u32) -> Arc<VantagePoint> {
        Arc::new(VantagePoint {
            feed: "f".into(),
            collector: "rrc00".into(),
            peer_asn: n,
            peer_ip: "192.0.2.1".parse().unwrap(),
            exporter: None,
        })
    }

    fn withdraw(vp: Arc<VantagePoint>, secs: f64) -> FeedEvent {
        FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_secs_f64(secs),
            vp,
            prefix: "192.0.2.0/24".parse().unwrap(),
            change: RouteChange::Withdraw,
        })
    }

    #[test]
    fn times_outside_1990_to_a_day_ahead_are_rejected() {
        let now = Timestamp::from_parts(1_700_000_000, 0);
        let mut a = Admission::default();
        let mut events = vec![
            withdraw(vp(1), 3e11),                       // year 11476
            withdraw(vp(1), 1_700_000_000.0 + 90_000.0), // 25 h ahead
            withdraw(vp(1), 1.0),
            withdraw(vp(1), -5.0),
            withdraw(vp(1), 1_700_000_000.0 + 3_600.0), // an hour of skew is fine
            withdraw(vp(1), 700_000_000.0),             // 1992
        ];
        let bad = a.filter(&mut events, now);
        assert_eq!(bad.len(), 4);
        assert!(
            bad.iter()
                .all(|b| b.reason == InvalidReason::TimestampOutOfRange)
        );
        let kept: Vec<i64> = events.iter().map(|e| event_time(e).secs()).collect();
        assert_eq!(kept, [1_700_003_600, 700_000_000]);
    }

    #[test]
    fn new_vantage_points_beyond_the_limit_are_rejected_known_ones_pass() {
        let now = Timestamp::from_parts(1_700_000_000, 0);
        let mut a = Admission::default();
        for n in 0..MAX_VANTAGE_POINTS as u32 {
            assert!(a.admit(&withdraw(vp(n), 1.7e9), now).is_ok());
        }
        let over = a.admit(&withdraw(vp(u32::MAX), 1.7e9), now);
        assert_eq!(
            over.map_err(|e| e.reason),
            Err(InvalidReason::TooManyVantagePoints)
        );
        assert!(a.admit(&withdraw(vp(7), 1.7e9), now).is_ok());
        assert_eq!(a.vps.len(), MAX_VANTAGE_POINTS);
    }

    #[test]
    fn a_record_far_from_its_file_is_rejected_and_a_real_jump_is_followed() {
        let t = |s: i64| Timestamp::from_parts(s, 0);
        let mut c = FileClock::default();
        assert!(c.check(t(1_470_931_200)).is_ok());
        assert!(c.check(t(1_470_931_260)).is_ok());
        // One odd record (a year later) among normal ones.
        assert!(c.check(t(1_502_467_200)).is_err());
        assert!(c.check(t(1_470_931_320)).is_ok());
        // The file jumps two days ahead: the first record of the new run is lost, then it follows.
        assert!(c.check(t(1_471_104_000)).is_err());
        assert!(c.check(t(1_471_104_060)).is_ok());
        assert!(c.check(t(1_471_104_120)).is_ok());
        assert_eq!(
            check_name("host", &"x".repeat(255)).map_err(|e| e.reason),
            Ok(())
        );
        assert_eq!(
            check_name("host", &"x".repeat(256)).map_err(|e| e.reason),
            Err(InvalidReason::OversizedField)
        );
    }
}
