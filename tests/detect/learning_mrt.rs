//! Learning mode on real data: a hijacker seen first is not learned, background path changes
//! do not page once the window has passed, and a hijack seen during the window is caught.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::util::shared_data;
use bgpsentry::alerts::{AlertTransition, Rule, Severity, TransitionKind};
use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{AsPath, FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp};
use bgpsentry::feeds::mrt::MrtReader;
use ipnet::IpNet;

fn events(file: &Path) -> Vec<FeedEvent> {
    let mut reader = MrtReader::open(file, "mrt", None).unwrap();
    let mut out = Vec::new();
    let mut batch = Vec::new();
    while let Some(r) = reader.next_record(&mut batch) {
        r.unwrap();
        out.append(&mut batch);
    }
    out
}

fn fired(e: &mut Engine, evs: &[FeedEvent]) -> Vec<AlertTransition> {
    let mut out = Vec::new();
    for ev in evs {
        e.process(ev);
        out.extend(
            e.drain_transitions()
                .filter(|t| t.event == TransitionKind::Fired),
        );
    }
    out
}

fn engine(yaml: &str) -> Engine {
    Engine::from_config(&Config::parse(yaml, Path::new("t.yml")).unwrap())
}

/// The real announcements of the RIS beacon 84.205.64.0/24 (AS12654), with a hijacker's
/// routes spliced in: AS17557 announces the more-specific 84.205.64.0/25 one second before
/// the beacon is first seen (the YouTube/Pakistan Telecom pattern), through the real VPs'
/// first hops and AS3491, and a minority of VPs also show AS17557 for the /24 itself during
/// the learning window, keeping it after.
fn beacon_with_hijacker() -> (Vec<FeedEvent>, Timestamp) {
    let all = events(&shared_data("mrt/ris-updates.20160811.1600.gz"));
    let watched: IpNet = "84.205.64.0/24".parse().unwrap();
    let real: Vec<RouteEvent> = all
        .iter()
        .filter_map(|ev| match ev {
            FeedEvent::Route(r) if watched.contains(&r.prefix) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let first = real
        .iter()
        .find(|r| matches!(r.change, RouteChange::Announce(_)))
        .unwrap();
    let start = first.timestamp;
    let mut vps = Vec::new();
    for r in &real {
        if let RouteChange::Announce(a) = &r.change
            && !vps.iter().any(|(v, _)| v == &r.vp)
        {
            vps.push((r.vp.clone(), a.path.first().cloned()));
        }
    }
    assert!(vps.len() >= 10, "the beacon is seen by {} VPs", vps.len());
    let hijack = |vp: usize, prefix: &str, at: Timestamp| {
        let (vp, first_hop) = vps[vp].clone();
        let mut path: Vec<u32> = match first_hop {
            Some(bgpsentry::event::PathElem::Asn(a)) => vec![a],
            _ => Vec::new(),
        };
        path.extend([3491, 17557]);
        RouteEvent {
            timestamp: at,
            vp,
            prefix: prefix.parse().unwrap(),
            change: RouteChange::Announce(Arc::new(RouteAttrs {
                path: AsPath::from_asns(path),
                communities: Vec::new().into(),
                next_hop: None,
            })),
        }
    };
    // The whole file, so that the window ends with the traffic of other prefixes.
    let ts = |ev: &FeedEvent| match ev {
        FeedEvent::Route(r) => r.timestamp,
        FeedEvent::PeerDown { timestamp, .. } => *timestamp,
        FeedEvent::Loaded(s) => s.timestamp,
        FeedEvent::HandOver(h) => h.timestamp,
    };
    let before = Timestamp(start.0 - 1_000_000);
    let mut out = all;
    let at = out.iter().position(|ev| ts(ev) >= start).unwrap();
    for vp in (0..3).rev() {
        out.insert(at, FeedEvent::Route(hijack(vp, "84.205.64.0/25", before)));
    }
    // Ten seconds in, two VPs switch to the hijacker's /24 and keep it (their later real
    // routes to the /24 lose to it, so they are left out).
    let during = start.plus_secs(10);
    let hijacked = [vps[3].0.clone(), vps[4].0.clone()];
    out.retain(|ev| match ev {
        FeedEvent::Route(r) => {
            !(r.prefix == watched && r.timestamp > during && hijacked.contains(&r.vp))
        }
        FeedEvent::PeerDown { .. } | FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => true,
    });
    let at = out.iter().position(|ev| ts(ev) > during).unwrap();
    for vp in [3, 4] {
        out.insert(at, FeedEvent::Route(hijack(vp, "84.205.64.0/24", during)));
    }
    (out, start)
}

#[test]
fn learning_does_not_pick_a_hijacker_seen_first_and_still_catches_it() {
    let (evs, start) = beacon_with_hijacker();
    let mut e = engine(
        "prefixes:\n  - prefix: 84.205.64.0/24\n    upstreams: []\n    visibility_min_vantage_points: 0\n    learning_window_seconds: 60\n",
    );
    let fired = fired(&mut e, &evs);
    let watched: IpNet = "84.205.64.0/24".parse().unwrap();
    assert_eq!(e.baseline_origins(&watched), Some(vec![12654]));
    let summary: Vec<(Rule, String, Option<u32>, Severity)> = fired
        .iter()
        .map(|t| {
            let a = &t.alert;
            (a.rule, a.prefix.to_string(), a.origin, a.severity)
        })
        .collect();
    // The owner is never the hijacker.
    assert!(
        summary
            .iter()
            .all(|(_, _, origin, _)| *origin != Some(12654)),
        "{summary:?}"
    );
    // The more-specific is a critical hijack from the start, not a more_specific warning.
    let sub = fired
        .iter()
        .find(|t| t.alert.rule == Rule::SubprefixHijack)
        .expect("the more-specific hijack fires");
    assert_eq!(sub.alert.origin, Some(17557));
    assert_eq!(sub.alert.severity, Severity::Critical);
    assert!(sub.alert.fired_at < start);
    // The minority seen for the /24 during the window is not learned: it fires once the
    // window has passed.
    let change = fired
        .iter()
        .find(|t| t.alert.rule == Rule::OriginChange)
        .expect("the hijacker of the /24 itself fires after the window");
    assert_eq!(change.alert.origin, Some(17557));
    assert_eq!(change.alert.severity, Severity::Critical);
    assert!(change.alert.fired_at > start.plus_secs(60));
    assert!(!summary.iter().any(|(r, ..)| *r == Rule::MoreSpecific));
}

/// The 200 prefixes announced most often in the file, in learning mode.
fn busiest_prefixes(evs: &[FeedEvent], n: usize) -> Vec<IpNet> {
    let mut counts: HashMap<IpNet, u64> = HashMap::new();
    for ev in evs {
        if let FeedEvent::Route(r) = ev
            && matches!(r.change, RouteChange::Announce(_))
        {
            *counts.entry(r.prefix).or_default() += 1;
        }
    }
    let mut v: Vec<(IpNet, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().take(n).map(|(p, _)| p).collect()
}

fn noise(evs: &[FeedEvent], prefixes: &[IpNet], window: Option<u64>) -> (usize, usize) {
    let mut yaml = String::from("prefixes:\n");
    for p in prefixes {
        yaml += &format!("  - prefix: {p}\n");
        if let Some(w) = window {
            yaml += &format!("    learning_window_seconds: {w}\n");
        }
    }
    let mut e = engine(&yaml);
    let alerts: Vec<AlertTransition> = fired(&mut e, evs)
        .into_iter()
        .filter(|t| matches!(t.alert.rule, Rule::NewUpstream | Rule::OriginChange))
        .collect();
    let mut affected: Vec<IpNet> = alerts.iter().map(|t| t.alert.watched_prefix).collect();
    affected.sort_unstable();
    affected.dedup();
    (alerts.len(), affected.len())
}

#[test]
fn the_learning_window_removes_background_upstream_noise() {
    let file: PathBuf = shared_data("mrt/rrc00-updates.20190101.0000.gz");
    let evs = events(&file);
    let prefixes = busiest_prefixes(&evs, 200);
    let first_instant = noise(&evs, &prefixes, Some(0));
    let two_minutes = noise(&evs, &prefixes, Some(120));
    let default = noise(&evs, &prefixes, None);
    eprintln!(
        "new_upstream + origin_change on 200 busy prefixes of {}: window 0 s: {first_instant:?}, 120 s: {two_minutes:?}, default: {default:?} (alerts, prefixes)",
        file.display()
    );
    assert!(first_instant.0 >= 20, "{first_instant:?}");
    // Past a two-minute window (three minutes of traffic left), far fewer alerts per minute.
    assert!(two_minutes.0 * 5 <= first_instant.0, "{two_minutes:?}");
    assert_eq!(default.0, 0, "{default:?}");
}
