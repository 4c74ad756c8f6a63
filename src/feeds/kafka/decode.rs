//! One record's events, by the feed's format: OpenBMP (a BMP message behind a header) or
//! RIS Live (one JSON message).

use std::sync::Arc;

use super::openbmp::{NotUsed, OpenBmpDecoder};
use crate::config::{BmpRib, KafkaFormat};
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::error::{Invalid, InvalidReason};
use crate::feeds::ris_live::parser::{Parser, RisFrame};

/// What became of a record.
#[derive(Debug)]
pub enum Decoded {
    /// Its events (possibly none: a route of no interest), and what inside it could not be
    /// used (a bad prefix in an otherwise good message).
    Events(Vec<FeedEvent>, Vec<Invalid>),
    /// Well formed but of no use for routes (a Peer Up, a keepalive), with what it was.
    Skipped(&'static str),
    /// No value (a tombstone) or an empty one.
    Empty,
    /// Over `max_record_bytes`.
    Oversized(Invalid),
    /// Not a record of the format.
    Malformed(Invalid),
}

/// Decodes the records of one feed.
#[derive(Debug)]
pub enum Decoder {
    /// OpenBMP records.
    OpenBmp(OpenBmpDecoder),
    /// RIS Live JSON records.
    RisLive(Box<Parser>),
    /// Normalised route events of a scale-out deployment's internal topic.
    Events(Box<crate::feeds::events::codec::Decoder>),
}

impl Decoder {
    /// A decoder of `format` whose events belong to `feed`; `ribs` are the BMP RIB kinds that
    /// become events (OpenBMP only).
    pub fn new(format: KafkaFormat, feed: Arc<str>, ribs: Vec<BmpRib>) -> Self {
        match format {
            KafkaFormat::Openbmp => Decoder::OpenBmp(OpenBmpDecoder::new(feed, ribs)),
            KafkaFormat::RisLive => Decoder::RisLive(Box::new(Parser::new(feed))),
            KafkaFormat::Events => Decoder::Events(Box::default()),
        }
    }

    /// Decodes a record's value; `received` stands in for a missing event time.
    pub fn decode(
        &mut self,
        value: Option<&[u8]>,
        max_bytes: usize,
        received: Timestamp,
    ) -> Decoded {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Decoded::Empty;
        };
        if value.len() > max_bytes {
            return Decoded::Oversized(Invalid::new(
                InvalidReason::Oversized,
                format!(
                    "a record of {} bytes is over `max_record_bytes` ({max_bytes})",
                    value.len()
                ),
            ));
        }
        match self {
            Decoder::OpenBmp(d) => match d.decode(value, received) {
                Ok(events) => Decoded::Events(events, Vec::new()),
                Err(NotUsed::Skipped(what)) => Decoded::Skipped(what),
                Err(NotUsed::Malformed(bad)) => Decoded::Malformed(bad),
            },
            Decoder::RisLive(parser) => ris_live(parser, value),
            Decoder::Events(d) => match d.decode(value) {
                Ok(event) => Decoded::Events(vec![event], Vec::new()),
                Err(bad) => Decoded::Malformed(bad),
            },
        }
    }
}

/// A RIS Live record: the whole message (`{"type": "ris_message", "data": {...}}`), or only
/// its `data` object, as some relays publish it.
fn ris_live(parser: &mut Parser, value: &[u8]) -> Decoded {
    let Ok(text) = std::str::from_utf8(value) else {
        return Decoded::Malformed(Invalid::new(
            InvalidReason::NotJson,
            "a RIS Live record that is not UTF-8 text",
        ));
    };
    let parsed = match parser.parse(text) {
        // A BGP message type (`UPDATE`, `RIS_PEER_STATE`) at the top: the data object alone,
        // read inside the envelope it would have had.
        Ok(p) if matches!(&p.frame, RisFrame::Other(t) if t.chars().all(|c| c.is_ascii_uppercase() || c == '_')) => {
            match parser.parse(&format!("{{\"type\":\"ris_message\",\"data\":{text}}}")) {
                Ok(p) => p,
                Err(bad) => return Decoded::Malformed(bad),
            }
        }
        Ok(p) => p,
        Err(bad) => return Decoded::Malformed(bad),
    };
    match parsed.frame {
        RisFrame::Message { events, .. } => Decoded::Events(events, parsed.invalid),
        RisFrame::SubscribeOk => Decoded::Skipped("ris_subscribe_ok"),
        RisFrame::Pong => Decoded::Skipped("pong"),
        RisFrame::Error(_) => Decoded::Skipped("ris_error"),
        RisFrame::Other(_) => Decoded::Skipped("another RIS Live message type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAMES: &str = include_str!("../../../tests/fixtures/ris-live-frames.jsonl");

    fn ris() -> Decoder {
        Decoder::new(KafkaFormat::RisLive, "kafka".into(), Vec::new())
    }

    #[test]
    fn a_ris_live_message_and_its_data_alone_give_the_same_events() {
        let first = FRAMES.lines().next().unwrap();
        let Decoded::Events(whole, _) = ris().decode(Some(first.as_bytes()), 1 << 20, Timestamp(0))
        else {
            panic!("the whole message is not decoded");
        };
        assert!(!whole.is_empty());
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        let data = serde_json::to_vec(&v["data"]).unwrap();
        let Decoded::Events(alone, _) = ris().decode(Some(&data), 1 << 20, Timestamp(0)) else {
            panic!("the data object alone is not decoded");
        };
        assert_eq!(whole, alone);
    }

    #[test]
    fn empty_oversized_and_malformed_records_say_so() {
        let mut d = ris();
        assert!(matches!(d.decode(None, 100, Timestamp(0)), Decoded::Empty));
        assert!(matches!(
            d.decode(Some(b""), 100, Timestamp(0)),
            Decoded::Empty
        ));
        assert!(matches!(
            d.decode(Some(&[b'{'; 101]), 100, Timestamp(0)),
            Decoded::Oversized(_)
        ));
        for bad in [
            &b"\xff\xfe not text"[..],
            b"{\"type\":",
            b"[1,2]",
            b"{\"type\":\"ris_message\",\"data\":7}",
        ] {
            assert!(
                matches!(
                    d.decode(Some(bad), 100, Timestamp(0)),
                    Decoded::Malformed(_)
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            d.decode(Some(b"{\"type\":\"pong\"}"), 100, Timestamp(0)),
            Decoded::Skipped(_)
        ));
        let mut o = Decoder::new(KafkaFormat::Openbmp, "kafka".into(), Vec::new());
        assert!(matches!(
            o.decode(Some(b"OBMP"), 100, Timestamp(0)),
            Decoded::Malformed(_)
        ));
    }
}
