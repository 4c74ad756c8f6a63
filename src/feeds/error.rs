//! The errors every feed reports, by reason, and the size limits every feed enforces.
//!
//! [`Invalid`] input carries its [`InvalidReason`], connection failures a [`FeedErrorReason`];
//! the limits bound what one message may make the engine hold.
//!
//! Both reasons are closed enums because they are metric labels: the service creates every
//! `(feed, reason)` series of `bgpsentry_invalid_input_total` and `bgpsentry_feed_errors_total`
//! at 0 when a feed starts (see [`crate::metrics::Metrics::init_feed_reasons`]), so that
//! `increase()` in alerting rules sees the first event, and a reason cannot be added without
//! its series.

use std::fmt;

/// Most prefixes one message may carry (announced and withdrawn together). An extended BGP
/// UPDATE (RFC 8654, 64 KiB) holds at most about 32,000 prefixes; a message listing more is
/// hostile and dropped whole, counted as `too_many_prefixes`.
pub const MAX_PREFIXES_PER_MESSAGE: usize = 32_768;

/// Most ASNs an AS path may hold (sequence members and AS_SET members together). Real paths,
/// prepending included, stay far below; a longer one is dropped with its message, counted as
/// `path_too_long`, so a hostile path cannot make every event carry megabytes.
pub const MAX_AS_PATH_LEN: usize = 2_048;

/// Refuses a message that lists more than [`MAX_PREFIXES_PER_MESSAGE`] prefixes.
pub fn check_prefix_count(n: usize) -> Result<(), Invalid> {
    if n > MAX_PREFIXES_PER_MESSAGE {
        return Err(Invalid::new(
            InvalidReason::TooManyPrefixes,
            format!("message lists {n} prefixes; the limit is {MAX_PREFIXES_PER_MESSAGE}"),
        ));
    }
    Ok(())
}

/// Refuses an AS path of more than [`MAX_AS_PATH_LEN`] ASNs.
pub fn check_path_len(n: usize) -> Result<(), Invalid> {
    if n > MAX_AS_PATH_LEN {
        return Err(Invalid::new(
            InvalidReason::PathTooLong,
            format!("AS path of {n} or more ASNs; the limit is {MAX_AS_PATH_LEN}"),
        ));
    }
    Ok(())
}

/// Why input could not be used: the `reason` label of `bgpsentry_invalid_input_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// A frame larger than the feed's `max_frame_bytes`.
    Oversized,
    /// Not JSON (or a binary frame where JSON text was expected).
    NotJson,
    /// JSON of the wrong shape: a missing or mistyped field.
    Schema,
    /// A prefix that does not parse.
    InvalidPrefix,
    /// An ASN that does not parse.
    InvalidAsn,
    /// An IP address (vantage point, exporter, next hop) that does not parse.
    InvalidAddress,
    /// A community that does not parse.
    InvalidCommunity,
    /// A withdrawal whose prefixes cannot be found (never guessed).
    UnknownWithdrawal,
    /// More than [`MAX_PREFIXES_PER_MESSAGE`] prefixes in one message.
    TooManyPrefixes,
    /// More than [`MAX_AS_PATH_LEN`] ASNs in one AS path.
    PathTooLong,
    /// A field from the wire longer than its limit (a collector name, for instance).
    OversizedField,
    /// An event time outside the sane window (see [`crate::feeds::admit`]).
    TimestampOutOfRange,
    /// An event from a vantage point beyond the per-connection limit.
    TooManyVantagePoints,
    /// An MRT record that does not parse.
    MrtRecord,
    /// A BMP message (or the BGP message inside it) that does not parse.
    BmpMessage,
}

impl InvalidReason {
    /// Every reason, in the order the metric catalogue lists them.
    pub const ALL: [InvalidReason; 15] = [
        InvalidReason::Oversized,
        InvalidReason::NotJson,
        InvalidReason::Schema,
        InvalidReason::InvalidPrefix,
        InvalidReason::InvalidAsn,
        InvalidReason::InvalidAddress,
        InvalidReason::InvalidCommunity,
        InvalidReason::UnknownWithdrawal,
        InvalidReason::TooManyPrefixes,
        InvalidReason::PathTooLong,
        InvalidReason::OversizedField,
        InvalidReason::TimestampOutOfRange,
        InvalidReason::TooManyVantagePoints,
        InvalidReason::MrtRecord,
        InvalidReason::BmpMessage,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Oversized => "oversized",
            InvalidReason::NotJson => "not_json",
            InvalidReason::Schema => "schema",
            InvalidReason::InvalidPrefix => "invalid_prefix",
            InvalidReason::InvalidAsn => "invalid_asn",
            InvalidReason::InvalidAddress => "invalid_address",
            InvalidReason::InvalidCommunity => "invalid_community",
            InvalidReason::UnknownWithdrawal => "unknown_withdrawal",
            InvalidReason::TooManyPrefixes => "too_many_prefixes",
            InvalidReason::PathTooLong => "path_too_long",
            InvalidReason::OversizedField => "oversized_field",
            InvalidReason::TimestampOutOfRange => "timestamp_out_of_range",
            InvalidReason::TooManyVantagePoints => "too_many_vantage_points",
            InvalidReason::MrtRecord => "mrt_record",
            InvalidReason::BmpMessage => "bmp_message",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the metric label, so callers and tests can name a reason as it is exported.
impl PartialEq<&str> for InvalidReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a feed's connection failed: the `reason` label of `bgpsentry_feed_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedErrorReason {
    /// The connection (TCP, TLS or WebSocket handshake) could not be opened.
    Connect,
    /// bgproutes.io's live manager refused or could not be reached to associate the prefixes.
    Association,
    /// The server refused the session (a `{"error": ...}` frame, a RIS Live `ris_error`).
    ServerError,
    /// The server closed the connection.
    Closed,
    /// Reading from the connection failed.
    Read,
    /// Sending to the server (a subscription, a ping) failed.
    Send,
    /// No frame and no pong for too long: the connection is dead.
    Dead,
    /// Connected, but no data message for too long.
    Stale,
    /// No API key could be read for a bgproutes connection.
    NoKey,
}

impl FeedErrorReason {
    /// Every reason, in the order the metric catalogue lists them.
    pub const ALL: [FeedErrorReason; 9] = [
        FeedErrorReason::Connect,
        FeedErrorReason::Association,
        FeedErrorReason::ServerError,
        FeedErrorReason::Closed,
        FeedErrorReason::Read,
        FeedErrorReason::Send,
        FeedErrorReason::Dead,
        FeedErrorReason::Stale,
        FeedErrorReason::NoKey,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedErrorReason::Connect => "connect",
            FeedErrorReason::Association => "association",
            FeedErrorReason::ServerError => "server_error",
            FeedErrorReason::Closed => "closed",
            FeedErrorReason::Read => "read",
            FeedErrorReason::Send => "send",
            FeedErrorReason::Dead => "dead",
            FeedErrorReason::Stale => "stale",
            FeedErrorReason::NoKey => "no_key",
        }
    }
}

impl fmt::Display for FeedErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame or part of it could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The metric label it is counted under.
    pub reason: InvalidReason,
    /// What exactly was wrong, for the debug log.
    pub detail: String,
}

impl Invalid {
    /// A problem with a reason and a detail.
    pub fn new(reason: InvalidReason, detail: impl Into<String>) -> Self {
        Invalid {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_lowercase_words() {
        let invalid: Vec<&str> = InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
        let errors: Vec<&str> = FeedErrorReason::ALL.iter().map(|r| r.as_str()).collect();
        for labels in [&invalid, &errors] {
            let mut unique = labels.to_vec();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), labels.len(), "{labels:?}");
            for l in labels.iter() {
                assert!(
                    l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{l}"
                );
            }
        }
    }
}
