//! The one normalised route event that every feed produces and the engine consumes.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Event time in microseconds since the UNIX epoch. The engine runs on event time only, so a
/// replay of the same input always produces the same alerts with the same timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and microseconds.
    pub fn from_parts(secs: i64, micros: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    /// Builds a timestamp from fractional seconds (RIS Live, bgpkit-parser).
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * 1_000_000.0).round() as i64)
    }

    /// Seconds since the epoch, fractional.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Microseconds past the whole second.
    pub fn subsec_micros(self) -> i64 {
        self.0.rem_euclid(1_000_000)
    }

    /// This timestamp plus a number of seconds.
    pub fn plus_secs(self, secs: u64) -> Self {
        Timestamp(
            self.0
                .saturating_add((secs as i64).saturating_mul(1_000_000)),
        )
    }

    /// The wall-clock time now.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2016-08-11T16:00:03.000000Z`.
    pub fn to_rfc3339(self) -> String {
        self.with_rfc3339(str::to_string)
    }

    /// Calls `f` with [`Timestamp::to_rfc3339`]'s text, without allocating it. Alerts carry
    /// half a dozen times each and are written out under every change: formatting the date
    /// and time through chrono each time was a sixth of the store's work, so the text of the
    /// last whole second is kept per thread and only the microseconds are written anew.
    pub fn with_rfc3339<R>(self, f: impl FnOnce(&str) -> R) -> R {
        thread_local! {
            /// (whole second, length of its text, the text followed by the last fraction).
            static LAST: std::cell::RefCell<(Option<i64>, usize, String)> =
                const { std::cell::RefCell::new((None, 0, String::new())) };
        }
        let secs = self.secs();
        let Some(whole) = chrono::DateTime::from_timestamp(secs, 0) else {
            return f(&format!("{}", self.as_secs_f64()));
        };
        LAST.with(|last| {
            let Ok(mut last) = last.try_borrow_mut() else {
                // Only when `f` formats another timestamp: no cache then.
                let mut text = whole.format("%Y-%m-%dT%H:%M:%S").to_string();
                push_fraction(&mut text, self.subsec_micros());
                return f(&text);
            };
            let (cached, len, text) = &mut *last;
            if *cached != Some(secs) {
                text.clear();
                use std::fmt::Write as _;
                let _ = write!(text, "{}", whole.format("%Y-%m-%dT%H:%M:%S"));
                *cached = Some(secs);
                *len = text.len();
            }
            text.truncate(*len);
            push_fraction(text, self.subsec_micros());
            f(text)
        })
    }
}

/// Appends `.ffffffZ`: the microseconds as six digits.
fn push_fraction(text: &mut String, micros: i64) {
    let mut digits = [b'0'; 6];
    let mut v = micros.clamp(0, 999_999);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    text.push('.');
    // Six ASCII digits.
    text.extend(digits.iter().map(|&d| d as char));
    text.push('Z');
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|t| f.write_str(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|t| s.serialize_str(t))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not an RFC 3339 time")))
    }
}

impl Timestamp {
    /// Reads back whatever [`Timestamp::to_rfc3339`] wrote, for any value: RFC 3339, years
    /// beyond 9999 with their sign (`+11476-…`), and plain seconds for times chrono cannot
    /// represent. A time that slipped past the feeds' checks must never make an alert
    /// unreadable in the store or the outbox.
    pub fn parse(s: &str) -> Option<Timestamp> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(Timestamp(t.timestamp_micros()));
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ") {
            return Some(Timestamp(t.and_utc().timestamp_micros()));
        }
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Timestamp::from_secs_f64)
    }
}

/// One vantage point: a BGP session of a collector (or a BMP-monitored peer) that reports routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VantagePoint {
    /// Feed name as configured (`ris_live`, `bgproutes`, `mrt`, …).
    pub feed: Arc<str>,
    /// Collector that the peer talks to (`rrc00`, `route-views2`, …); empty when unknown.
    pub collector: Arc<str>,
    /// ASN of the peer that sent the route.
    pub peer_asn: u32,
    /// Address of the peer that sent the route.
    pub peer_ip: IpAddr,
    /// For BMP data: the router that exported the peer's routes, as (ASN, address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exporter: Option<(u32, IpAddr)>,
}

impl fmt::Display for VantagePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/AS{}/{}",
            self.feed, self.collector, self.peer_asn, self.peer_ip
        )?;
        if let Some((asn, ip)) = self.exporter {
            write!(f, " via AS{asn}/{ip}")?;
        }
        Ok(())
    }
}

/// One element of an AS path: a single ASN or an AS_SET (kept as a set, order irrelevant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// An ASN of an AS_SEQUENCE.
    Asn(u32),
    /// The members of an AS_SET.
    Set(Box<[u32]>),
}

/// An AS path, first hop first, origin last.
///
/// Held as the first hop (when it is a single ASN) and the rest of the path behind a shared
/// pointer: routes of different vantage points often differ only in their first hop (the
/// peer's own ASN), so the engine holds each distinct rest once (`src/engine/interner.rs`).
/// The split is canonical (the first element is in `head` exactly when it is an ASN), so two
/// equal paths always compare and hash equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    /// The first hop, when the path starts with a single ASN (always [`PathElem::Asn`]).
    head: Option<PathElem>,
    /// The elements after `head` (all of them when `head` is `None`).
    rest: Arc<[PathElem]>,
}

impl From<Vec<PathElem>> for AsPath {
    fn from(elems: Vec<PathElem>) -> Self {
        AsPath::new(&elems)
    }
}

impl AsPath {
    /// A path of these elements, first hop first.
    pub fn new(elems: &[PathElem]) -> Self {
        match elems.split_first() {
            Some((head @ PathElem::Asn(_), rest)) => AsPath {
                head: Some(head.clone()),
                rest: rest.into(),
            },
            _ => AsPath {
                head: None,
                rest: elems.into(),
            },
        }
    }

    /// A path made only of sequence ASNs.
    pub fn from_asns(asns: impl IntoIterator<Item = u32>) -> Self {
        let elems: Vec<PathElem> = asns.into_iter().map(PathElem::Asn).collect();
        AsPath::new(&elems)
    }

    /// The path with first hop `head` and then `rest`; `head` `None` when `rest` is the whole
    /// path, which then does not start with a single ASN. The engine rebuilds its held routes'
    /// paths this way without copying them.
    pub(crate) fn from_parts(head: Option<u32>, rest: Arc<[PathElem]>) -> Self {
        debug_assert!(head.is_some() || !matches!(rest.first(), Some(PathElem::Asn(_))));
        AsPath {
            head: head.map(PathElem::Asn),
            rest,
        }
    }

    /// The first hop when it is a single ASN (see [`AsPath::rest`]).
    pub(crate) fn head_asn(&self) -> Option<u32> {
        match self.head {
            Some(PathElem::Asn(a)) => Some(a),
            _ => None,
        }
    }

    /// The elements after the first hop when that is a single ASN, else the whole path.
    pub(crate) fn rest(&self) -> &Arc<[PathElem]> {
        &self.rest
    }

    /// The elements, first hop first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &PathElem> + Clone + '_ {
        self.head.iter().chain(self.rest.iter())
    }

    /// The first hop.
    pub fn first(&self) -> Option<&PathElem> {
        self.head.as_ref().or_else(|| self.rest.first())
    }

    /// The origin element.
    pub fn last(&self) -> Option<&PathElem> {
        self.rest.last().or(self.head.as_ref())
    }

    /// The elements as a vector, first hop first.
    pub fn to_vec(&self) -> Vec<PathElem> {
        self.iter().cloned().collect()
    }

    /// The possible origins: the last ASN, or every member of an AS_SET in origin position.
    pub fn origins(&self) -> &[u32] {
        match self.last() {
            Some(PathElem::Asn(a)) => std::slice::from_ref(a),
            Some(PathElem::Set(s)) => s,
            None => &[],
        }
    }

    /// The neighbour of the origin (the AS just before it), with prepends collapsed.
    /// `None` when the origin is the first hop, when the path is empty, or when the element
    /// before the origin is an AS_SET (no single neighbour can be named).
    pub fn origin_neighbor(&self) -> Option<u32> {
        let mut rev = self.iter().rev();
        let origin = rev.next()?;
        for elem in rev {
            if elem != origin {
                return match elem {
                    PathElem::Asn(a) => Some(*a),
                    PathElem::Set(_) => None,
                };
            }
        }
        None
    }

    /// Number of elements (an AS_SET counts once, as in the BGP decision process).
    pub fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    /// True for an empty path (a route originated by the peer itself over iBGP).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for AsPath {
    /// Space-separated, AS_SETs as `{a,b}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, elem) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match elem {
                PathElem::Asn(a) => write!(f, "{a}")?,
                PathElem::Set(s) => {
                    f.write_str("{")?;
                    for (j, a) in s.iter().enumerate() {
                        if j > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{a}")?;
                    }
                    f.write_str("}")?;
                }
            }
        }
        Ok(())
    }
}

impl Serialize for AsPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A BGP community: standard (RFC 1997) or large (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Community {
    /// `ASN:VALUE`, 16 bits each.
    Standard(u16, u16),
    /// `A:B:C`, 32 bits each.
    Large(u32, u32, u32),
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The attributes of an announced route; shared by all prefixes of one UPDATE (and, in the
/// engine, by every route with equal attributes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RouteAttrs {
    /// AS path, first hop first.
    pub path: AsPath,
    /// Communities, standard and large; shared like the rest of the path.
    pub communities: Arc<[Community]>,
    /// Next hop, when the feed reports one.
    pub next_hop: Option<IpAddr>,
}

/// What happened to the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// The VP now has this route (replacing any earlier one: implicit withdrawal).
    Announce(Arc<RouteAttrs>),
    /// The VP no longer has a route to the prefix.
    Withdraw,
}

/// An announcement or withdrawal of one prefix, seen by one vantage point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEvent {
    /// When the VP saw it (event time).
    pub timestamp: Timestamp,
    /// Who saw it.
    pub vp: Arc<VantagePoint>,
    /// The prefix, normalised (host bits cleared).
    pub prefix: IpNet,
    /// Announcement or withdrawal.
    pub change: RouteChange,
}

/// What a feed hands to the engine: route events, or the loss of a whole session
/// (all routes of that VP are gone, e.g. RIS `STATE: down`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// One route change.
    Route(RouteEvent),
    /// The VP's session went down: drop all its routes.
    PeerDown {
        /// When the session went down.
        timestamp: Timestamp,
        /// The VP whose routes are gone.
        vp: Arc<VantagePoint>,
        /// Only the routes under these watched prefixes, each the least specific of those
        /// that cover it, sorted (one partition's share of a scale-out deployment, where each
        /// partition carries its own copy of the peer down); `None`: every route of the VP.
        within: Option<Arc<[IpNet]>>,
    },
    /// A feed's routes as its history service reported them (warm start): they replace what
    /// the engine holds of that feed's vantage points under the loaded prefixes.
    Loaded(Arc<LoadedState>),
    /// Scale-out: the prefixes under `scope` now belong to another instance. The engine drops
    /// what it holds under them and hands their firing alerts over, unresolved.
    HandOver(Arc<HandOver>),
}

/// Prefixes given up to another instance of a scale-out deployment (a rebalance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOver {
    /// When this instance gave them up (wall clock).
    pub timestamp: Timestamp,
    /// The prefixes given up, more-specifics included.
    pub scope: Vec<IpNet>,
}

/// The routes of one feed's vantage points under some prefixes at one time, as a history
/// service (RIPEstat, the bgproutes.io REST API) reported them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedState {
    /// The feed whose vantage points these are.
    pub feed: Arc<str>,
    /// When the state was current.
    pub timestamp: Timestamp,
    /// The prefixes covered, more-specifics included: a route of this feed under one of them
    /// that is not in `routes` is gone.
    pub scope: Vec<IpNet>,
    /// One announcement per (vantage point, prefix), at `timestamp`.
    pub routes: Vec<RouteEvent>,
    /// Set by the engine once it holds these routes (readiness waits for it).
    pub applied: Applied,
}

/// A flag the engine raises once it has applied a [`LoadedState`]; the warm start waits for it
/// before it reports the feed ready. It is a signal, not data: any two compare equal.
#[derive(Debug, Clone, Default)]
pub struct Applied(Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>);

impl Applied {
    /// Raises the flag.
    pub fn set(&self) {
        self.0.0.store(true, std::sync::atomic::Ordering::Release);
        self.0.1.notify_waiters();
    }

    /// Whether the flag is up.
    pub fn is_set(&self) -> bool {
        self.0.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the flag is up.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

impl PartialEq for Applied {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Applied {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_neighbor_collapses_prepends() {
        let p = AsPath::from_asns([3333, 4755, 18196, 18196, 18196]);
        assert_eq!(p.origin_neighbor(), Some(4755));
        assert_eq!(p.origins(), &[18196]);
        let p = AsPath::from_asns([18196, 18196]);
        assert_eq!(p.origin_neighbor(), None);
        let p = AsPath::from(vec![PathElem::Asn(1), PathElem::Set(vec![2, 3].into())]);
        assert_eq!(p.origins(), &[2, 3]);
        assert_eq!(p.origin_neighbor(), Some(1));
        assert_eq!(p.to_string(), "1 {2,3}");
    }

    #[test]
    fn every_timestamp_reads_back_as_written() {
        let cases = [
            Timestamp::from_secs_f64(3e11), // year 11476
            Timestamp::from_parts(1470931200, 5),
            Timestamp::from_parts(-1, 0),
            Timestamp::from_parts(-70_000_000_000, 0), // before year 0
            Timestamp(i64::MAX),
            Timestamp(i64::MIN),
            Timestamp(0),
        ];
        for t in cases {
            let json = serde_json::to_string(&t).unwrap();
            let back: Timestamp = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{json} does not read back: {e}"));
            // Beyond chrono's range the text is seconds as a float: close, not exact.
            let tolerance = if chrono::DateTime::from_timestamp(t.secs(), 0).is_some() {
                0
            } else {
                t.0.unsigned_abs() / 1_000_000_000
            };
            assert!(
                back.0.abs_diff(t.0) <= tolerance,
                "{json}: {t:?} vs {back:?}"
            );
        }
    }

    #[test]
    fn timestamp_formats() {
        let t = Timestamp::from_parts(1470931200, 5);
        assert_eq!(t.to_rfc3339(), "2016-08-11T16:00:00.000005Z");
    }

    #[test]
    fn the_cached_second_gives_the_same_text_as_chrono() {
        // Same second twice (the cache), the next second, back again, the edges of a second,
        // negative and far times.
        let cases = [
            Timestamp::from_parts(1470931200, 5),
            Timestamp::from_parts(1470931200, 999_999),
            Timestamp::from_parts(1470931201, 0),
            Timestamp::from_parts(1470931200, 123_456),
            Timestamp(-1),
            Timestamp::from_parts(-62_135_596_800, 7), // 0001-01-01
            Timestamp::from_secs_f64(3e11),
            Timestamp::from_parts(1470931200, 5),
        ];
        for t in cases {
            let chrono =
                chrono::DateTime::from_timestamp(t.secs(), (t.subsec_micros() * 1000) as u32)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string();
            assert_eq!(t.to_rfc3339(), chrono, "{t:?}");
            assert_eq!(t.to_string(), chrono);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{chrono}\""));
        }
        // Beyond chrono's range: seconds as a float, as before.
        assert_eq!(
            Timestamp(i64::MAX).to_rfc3339(),
            format!("{}", Timestamp(i64::MAX).as_secs_f64())
        );
    }
}
