//! Entry points for hostile input, shared by the fuzz targets and the corpus test.
//!
//! The `cargo fuzz` targets in `fuzz/` call these, and a normal test runs every seed of
//! `fuzz/corpus/` through them, so the seeds stay valid regression inputs without a nightly
//! toolchain. Each takes raw bytes, must never panic on them, and asserts what must hold of
//! whatever the parser accepted.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::event::{FeedEvent, RouteChange};
use crate::feeds::bgproutes::parser::{Frame, parse_as_path, parse_frame};
use crate::feeds::error::{MAX_AS_PATH_LEN, MAX_PREFIXES_PER_MESSAGE};
use crate::feeds::mrt::MrtReader;
use crate::feeds::ris_live::parser::{self as ris_live_parser, RisFrame};
use crate::feeds::ris_live::stream::{origin_of, to_live_msgs};

/// Route events must carry normalised prefixes (host bits clear).
fn check_events(events: &[FeedEvent], limited: bool) {
    if limited {
        assert!(
            events.len() <= MAX_PREFIXES_PER_MESSAGE,
            "{} events from one message",
            events.len()
        );
    }
    for ev in events {
        let FeedEvent::Route(r) = ev else { continue };
        assert_eq!(r.prefix, r.prefix.trunc(), "prefix not normalised");
        if let (true, RouteChange::Announce(a)) = (limited, &r.change) {
            assert!(a.path.len() <= MAX_AS_PATH_LEN, "AS path over the limit");
        }
    }
}

/// One bgproutes.io text frame: parsed, printed as the reference client does, made into events.
pub fn bgproutes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Frame::Message(m)) = parse_frame(text) {
        assert!(m.prefixes.len() <= MAX_PREFIXES_PER_MESSAGE);
        let _ = m.to_string();
        let _ = parse_as_path(&m.aspath);
        let (events, _invalid) = m.to_events(&Arc::from("bgproutes"), &Arc::from(""));
        check_events(&events, true);
    }
}

/// One RIS Live text frame: parsed into events, which are then rendered for `stream`.
pub fn ris_live(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = origin_of(text);
    if let Ok(parsed) = ris_live_parser::parse(text, &Arc::from("ris"))
        && let RisFrame::Message { kind, events } = &parsed.frame
    {
        let _ = ris_live_parser::metric_kind(kind);
        check_events(events, true);
        for m in to_live_msgs(events) {
            let _ = m.to_string();
        }
    }
}

/// A config file's text: validated, and its errors rendered as the user would see them.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(text, Path::new("fuzz.yml")) {
        let _ = e.to_string();
    }
}

/// Bytes of a (decompressed) MRT file: every record framed, parsed and made into events.
pub fn mrt(data: &[u8]) {
    let mut reader = MrtReader::from_reader(
        Box::new(Cursor::new(data.to_vec())),
        Path::new("fuzz.mrt"),
        "mrt",
        "",
    );
    let mut events = Vec::new();
    while let Some(result) = reader.next_record(&mut events) {
        if let Err(bad) = result {
            let _ = bad.to_string();
        }
        // MRT carries what the collector saw; no per-message limits apply here.
        check_events(&events, false);
        events.clear();
    }
}

/// Bytes a router sends to the BMP listener: framed with the listener's limit, every message
/// handled by one router session (all RIB kinds feed events), then the hold of a disconnect.
pub fn bmp(data: &[u8]) {
    use crate::config::{BmpRib, DEFAULT_BMP_MAX_MESSAGE_BYTES};
    use crate::event::Timestamp;
    use crate::feeds::bmp::frame::split;
    use crate::feeds::bmp::session::Session;
    let router = std::net::IpAddr::from([192, 0, 2, 1]);
    let mut session = Session::new("bmp".into(), router, BmpRib::ALL.to_vec(), None);
    let now = Timestamp::from_parts(1_700_000_000, 0);
    for message in split(data, DEFAULT_BMP_MAX_MESSAGE_BYTES as usize) {
        let Ok(message) = message else { break };
        let outcome = session.handle(message, now);
        check_events(&outcome.events, true);
        if let Some(bad) = outcome.invalid {
            let _ = bad.to_string();
        }
    }
    let held = session.into_held();
    let _ = held.vantage_points();
    let mut again = Session::new("bmp".into(), router, BmpRib::ALL.to_vec(), Some(held));
    for message in split(data, DEFAULT_BMP_MAX_MESSAGE_BYTES as usize).flatten() {
        check_events(&again.handle(message, now).events, true);
    }
    check_events(&again.hold_expired(now), false);
    let _ = again.into_held().expire(now);
}

/// A Kafka record of an OpenBMP topic: the OpenBMP header read, the BMP message inside made
/// into events, through the same decoder the `kafka` feed uses (its size limit included).
pub fn openbmp(data: &[u8]) {
    use crate::config::{BmpRib, DEFAULT_KAFKA_MAX_RECORD_BYTES, KafkaFormat};
    use crate::event::Timestamp;
    use crate::feeds::kafka::decode::{Decoded, Decoder};
    use crate::feeds::kafka::openbmp::read_record;
    let now = Timestamp::from_parts(1_700_000_000, 0);
    if let Ok(r) = read_record(data) {
        // The message lies inside the record, and its own header agrees with its length.
        assert!(r.message.len() >= 6 && r.message.len() <= data.len());
        assert!(r.collector.chars().count() <= 64);
    }
    let mut d = Decoder::new(KafkaFormat::Openbmp, "kafka".into(), BmpRib::ALL.to_vec());
    match d.decode(Some(data), DEFAULT_KAFKA_MAX_RECORD_BYTES as usize, now) {
        Decoded::Events(events, _) => check_events(&events, true),
        Decoded::Malformed(bad) | Decoded::Oversized(bad) => {
            let _ = bad.to_string();
        }
        Decoded::Skipped(_) | Decoded::Empty => {}
    }
}

/// A record of a scale-out deployment's internal topic (`format: events`): whatever the codec
/// accepts is one normalised event, which encodes and reads back as the same event.
pub fn events_record(data: &[u8]) {
    use crate::feeds::events::codec::{Decoder, encode};
    let mut decoder = Decoder::default();
    let Ok(event) = decoder.decode(data) else {
        return;
    };
    check_events(std::slice::from_ref(&event), true);
    let mut again = Vec::new();
    assert!(encode(&event, &mut again), "an accepted record encodes");
    assert_eq!(
        decoder.decode(&again).ok(),
        Some(event),
        "and reads back the same"
    );
}

/// A body of `POST /silences` or `POST /alerts/{id}/ack` as a client sends it: whatever the
/// checks accept is a silence with a matcher and an end within the allowed window, and text
/// fields on one line and within their limits.
pub fn triage(data: &[u8]) {
    use crate::event::Timestamp;
    use crate::triage::input::{MAX_COMMENT, MAX_NAME, MAX_SILENCE_SECONDS};
    use crate::triage::{AckRequest, SilenceRequest};
    let now = Timestamp::now();
    let fits = |s: &str, max: usize| s.chars().count() <= max && !s.chars().any(char::is_control);
    if let Ok(req) = serde_json::from_slice::<SilenceRequest>(data)
        && let Ok(s) = req.validate(now)
    {
        assert!(!s.matchers.is_empty(), "a silence without matchers");
        assert!(s.expires_at > now, "a silence that has ended");
        assert!(
            s.expires_at <= now.plus_secs(MAX_SILENCE_SECONDS),
            "too long"
        );
        assert!(fits(&s.comment, MAX_COMMENT) && fits(&s.created_by, MAX_NAME));
        assert!(!s.created_by.is_empty(), "a silence by nobody");
    }
    if let Ok(req) = serde_json::from_slice::<AckRequest>(data)
        && let Ok(a) = req.validate(now)
    {
        assert!(!a.by.is_empty() && fits(&a.by, MAX_NAME) && fits(&a.comment, MAX_COMMENT));
    }
}

/// One RIPEstat `bgp-state` answer (warm start of `ris_live`): read into routes whose prefixes
/// are normalised and paths within the limit.
pub fn warm_start_ripestat(data: &[u8]) {
    use crate::feeds::warm_start::ripestat;
    let now = crate::event::Timestamp::from_parts(1_800_000_000, 0);
    if let Ok(state) = ripestat::parse(data, &Arc::from("ris_live"), now) {
        let events: Vec<FeedEvent> = state.routes.into_iter().map(FeedEvent::Route).collect();
        check_events(&events, false);
    }
}

/// One bgproutes.io REST answer (warm start of `bgproutes`), read as each of the three kinds:
/// vantage points, a RIB and updates (with the vantage points it lists, when it is a list).
pub fn warm_start_rest(data: &[u8]) {
    use crate::feeds::warm_start::rest;
    let feed: Arc<str> = Arc::from("bgproutes");
    let now = crate::event::Timestamp::from_parts(1_800_000_000, 0);
    let vps = rest::parse_vantage_points(data, &feed)
        .map(|(v, _)| v)
        .unwrap_or_default();
    let parsed = [
        rest::parse_rib(data, &vps, now),
        rest::parse_updates(data, &vps, now),
    ];
    for (routes, _) in parsed.into_iter().flatten() {
        // A RIB is one instant; updates come in event-time order.
        assert!(routes.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        let events: Vec<FeedEvent> = routes.into_iter().map(FeedEvent::Route).collect();
        check_events(&events, false);
    }
}
