//! Field parsers every feed's parser shares: an ASN and a prefix given as text.

use ipnet::IpNet;

use super::error::{Invalid, InvalidReason};

/// An ASN in decimal (an optional `AS` prefix is accepted).
pub fn parse_asn(s: &str) -> Result<u32, Invalid> {
    let t = s.trim();
    let t = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    t.parse::<u32>()
        .map_err(|_| Invalid::new(InvalidReason::InvalidAsn, format!("`{s}` is not an ASN")))
}

/// A prefix, normalised (host bits cleared, IPv6 compressed by the type itself).
pub fn parse_prefix(s: &str) -> Result<IpNet, Invalid> {
    s.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        Invalid::new(
            InvalidReason::InvalidPrefix,
            format!("`{s}` is not a prefix"),
        )
    })
}
