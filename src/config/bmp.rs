//! The keys of a `bmp` feed: where it listens, which routers may connect, which RIBs feed the
//! detectors, and its limits.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::{FeedConfig, FeedKind, Located};

/// Seconds a disconnected router's routes are kept before they are withdrawn (a router
/// restart or a BMP session reset takes a few minutes at most).
pub const DEFAULT_BMP_HOLD_SECONDS: f64 = 300.0;

/// Routers connected at once, by default.
pub const DEFAULT_BMP_MAX_ROUTERS: u64 = 64;

/// Largest BMP message by default. A Route Monitoring message holds one BGP message (at most
/// 64 KiB with RFC 8654); a Peer Up two OPENs and a few TLVs.
pub const DEFAULT_BMP_MAX_MESSAGE_BYTES: u64 = 1024 * 1024;

/// Smallest `max_frame_bytes` of a `bmp` feed: an extended BGP message and its BMP headers.
pub const MIN_BMP_MESSAGE_BYTES: u64 = 65_535 + 6 + 42;

/// Which routes of a router a BMP message carries (RFC 7854 pre/post-policy Adj-RIB-In,
/// RFC 8671 Adj-RIB-Out, RFC 9069 Loc-RIB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BmpRib {
    /// What a peer sent, before the router's import policy.
    AdjRibInPre,
    /// What the router accepted from a peer, after its import policy.
    AdjRibInPost,
    /// The router's selected best routes (RFC 9069).
    LocRib,
    /// What the router would send a peer, before its export policy (RFC 8671).
    AdjRibOutPre,
    /// What the router sends a peer, after its export policy (RFC 8671).
    AdjRibOutPost,
}

impl BmpRib {
    /// Every kind.
    pub const ALL: [BmpRib; 5] = [
        BmpRib::AdjRibInPre,
        BmpRib::AdjRibInPost,
        BmpRib::LocRib,
        BmpRib::AdjRibOutPre,
        BmpRib::AdjRibOutPost,
    ];

    /// The name in the config, in vantage points and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BmpRib::AdjRibInPre => "adj_rib_in_pre",
            BmpRib::AdjRibInPost => "adj_rib_in_post",
            BmpRib::LocRib => "loc_rib",
            BmpRib::AdjRibOutPre => "adj_rib_out_pre",
            BmpRib::AdjRibOutPost => "adj_rib_out_post",
        }
    }
}

/// What feeds the detectors unless `ribs:` says otherwise: what each router accepted from its
/// peers (post-policy Adj-RIB-In) and, from routers that send it, what each selected (Loc-RIB).
/// Pre-policy routes include those the router's filters already dropped, so a hijack your
/// filters stopped would alert as one that got through; Adj-RIB-Out is what you announce.
pub const DEFAULT_BMP_RIBS: [BmpRib; 2] = [BmpRib::AdjRibInPost, BmpRib::LocRib];

/// A validated `bmp` feed.
#[derive(Debug, Clone, PartialEq)]
pub struct BmpSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Who may connect.
    pub routers: Vec<IpNet>,
    /// RIB kinds that feed the detectors.
    pub ribs: Vec<BmpRib>,
    /// How long a disconnected router's routes are kept.
    pub hold: Duration,
    /// Routers connected at once.
    pub max_routers: usize,
    /// Largest BMP message; a larger one closes the connection.
    pub max_message_bytes: usize,
}

/// An address or prefix of `routers:` (an address is a /32 or /128).
fn router_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()
}

impl FeedConfig {
    /// The settings of a `bmp` feed (None for other kinds). Call after validation: what does not
    /// parse is left out.
    pub fn bmp_settings(&self) -> Option<BmpSettings> {
        if self.kind.value != FeedKind::Bmp {
            return None;
        }
        Some(BmpSettings {
            listen: self.listen.as_ref()?.value.parse().ok()?,
            routers: self
                .routers
                .iter()
                .flat_map(|r| r.value.iter())
                .filter_map(|s| router_net(s))
                .collect(),
            ribs: self
                .ribs
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_else(|| DEFAULT_BMP_RIBS.to_vec()),
            hold: Duration::from_secs_f64(
                self.hold_seconds
                    .as_ref()
                    .map_or(DEFAULT_BMP_HOLD_SECONDS, |h| h.value),
            ),
            max_routers: self
                .max_routers
                .as_ref()
                .map_or(DEFAULT_BMP_MAX_ROUTERS, |m| m.value) as usize,
            max_message_bytes: self
                .max_frame_bytes
                .as_ref()
                .map_or(DEFAULT_BMP_MAX_MESSAGE_BYTES, |m| m.value)
                as usize,
        })
    }

    /// The `bmp` keys: only on a `bmp` feed, and complete there.
    pub(super) fn validate_bmp(&self, errors: &mut Vec<Located>) {
        let at = &self.kind.referenced;
        if self.kind.value != FeedKind::Bmp {
            // A `kafka` feed of OpenBMP records has RIB kinds too.
            let ribs_elsewhere = self.ribs.is_some() && self.kind.value != FeedKind::Kafka;
            let set = self.listen.is_some()
                || self.routers.is_some()
                || ribs_elsewhere
                || self.hold_seconds.is_some()
                || self.max_routers.is_some();
            if set {
                errors.push(Located::at(
                    at,
                    format!(
                        "`listen`, `routers`, `ribs` (also of a `kafka` feed), `hold_seconds` and `max_routers` apply only to a `bmp` feed; remove them from this `{}` feed",
                        self.kind.value.as_str()
                    ),
                ));
            }
            return;
        }
        match &self.listen {
            None => errors.push(Located::at(
                at,
                "a `bmp` feed needs `listen:`, the address and port routers connect to, e.g. `listen: 0.0.0.0:11019`",
            )),
            Some(l) if l.value.parse::<SocketAddr>().is_err() => errors.push(Located::at(
                &l.referenced,
                format!(
                    "`listen` must be an address and port like 0.0.0.0:11019 or [::]:11019; got `{}`",
                    l.value
                ),
            )),
            Some(_) => {}
        }
        match &self.routers {
            None => errors.push(Located::at(
                at,
                "a `bmp` feed needs `routers:`, the addresses or prefixes of the routers allowed to connect (anyone who can connect can inject routes); write 0.0.0.0/0 and ::/0 to allow all",
            )),
            Some(r) => {
                if r.value.is_empty() {
                    errors.push(Located::at(
                        &r.referenced,
                        "`routers:` is empty: no router could connect; list their addresses or prefixes",
                    ));
                }
                for s in &r.value {
                    if router_net(s).is_none() {
                        errors.push(Located::at(
                            &r.referenced,
                            format!("`{s}` in `routers:` is not an address or prefix like 192.0.2.1 or 192.0.2.0/24"),
                        ));
                    }
                }
            }
        }
        if let Some(r) = &self.ribs
            && r.value.is_empty()
        {
            errors.push(Located::at(
                &r.referenced,
                "`ribs:` is empty: no route would reach the detectors; list at least one of adj_rib_in_pre, adj_rib_in_post, loc_rib, adj_rib_out_pre, adj_rib_out_post",
            ));
        }
        if let Some(h) = &self.hold_seconds
            && !(h.value.is_finite() && h.value >= 0.0 && h.value <= 7.0 * 86_400.0)
        {
            errors.push(Located::at(
                &h.referenced,
                format!(
                    "`hold_seconds` must be between 0 and 604800 (a week); got {}",
                    h.value
                ),
            ));
        }
        if let Some(m) = &self.max_routers
            && !(1..=65_536).contains(&m.value)
        {
            errors.push(Located::at(
                &m.referenced,
                format!("`max_routers` must be between 1 and 65536; got {}", m.value),
            ));
        }
        if let Some(m) = &self.max_frame_bytes
            && m.value < MIN_BMP_MESSAGE_BYTES
        {
            errors.push(Located::at(
                &m.referenced,
                format!(
                    "`max_frame_bytes` of a `bmp` feed must be at least {MIN_BMP_MESSAGE_BYTES} (an extended BGP message in its BMP headers); got {}",
                    m.value
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn errors(text: &str) -> String {
        match Config::parse(text, Path::new("test.yml")) {
            Ok(_) => panic!("config was accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bmp_feed_with_its_defaults() {
        let cfg = Config::parse(
            "feeds:\n  - kind: bmp\n    listen: 0.0.0.0:11019\n    routers: [192.0.2.1, 198.51.100.0/24, '2001:db8::/32']\n",
            Path::new("test.yml"),
        )
        .unwrap();
        let s = cfg.feeds[0].bmp_settings().unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:11019");
        assert_eq!(s.routers.len(), 3);
        assert!(s.routers[0].contains(&"192.0.2.1".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(s.ribs, DEFAULT_BMP_RIBS.to_vec());
        assert_eq!(s.hold, Duration::from_secs(300));
        assert_eq!(s.max_routers, 64);
        assert_eq!(s.max_message_bytes, 1024 * 1024);
        assert_eq!(cfg.feeds[0].name(), "bmp");
    }

    #[test]
    fn a_bmp_feed_says_what_it_lacks_and_where() {
        let e = errors("feeds:\n  - kind: bmp\n");
        assert!(e.contains("test.yml:2:"), "{e}");
        assert!(e.contains("needs `listen:`"), "{e}");
        assert!(e.contains("needs `routers:`"), "{e}");
        let e = errors(
            "feeds:\n  - kind: bmp\n    listen: here\n    routers: [not-an-address]\n    ribs: [adj_rib_in_post]\n    hold_seconds: -1\n    max_routers: 0\n    max_frame_bytes: 1000\n",
        );
        for needle in [
            "`listen` must be an address and port",
            "`not-an-address` in `routers:`",
            "`hold_seconds` must be between",
            "`max_routers` must be between",
            "must be at least 65583",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let e = errors(
            "feeds:\n  - kind: bmp\n    listen: 0.0.0.0:1\n    routers: [0.0.0.0/0]\n    ribs: [adj_rib_in_everything]\n",
        );
        assert!(e.contains("test.yml:5:"), "{e}");
        let e = errors("feeds:\n  - kind: ris_live\n    listen: 0.0.0.0:1\n");
        assert!(e.contains("apply only to a `bmp` feed"), "{e}");
    }
}
