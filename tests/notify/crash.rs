//! No notification is lost to `kill -9`: `bgpsentry run` is fed an alert storm over a RIS Live
//! fixture (hijacks and resolutions of many prefixes, with a grouping window open most of the
//! time) and killed with SIGKILL at random points of it, several times, restarting on the same
//! store in between. At the end every alert event the store holds (the `fired` of every alert
//! and the `resolved` of every resolved one) has reached the webhook at least once.
//!
//! The kill points are drawn from a seed, printed at the start; set `BGPSENTRY_CRASH_SEED` to
//! run the same points again.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::feeds::{Conn, WsServer, ris_announce};
use crate::util::notify::Receiver;
use crate::util::{Launch, Rng, Service, poll_until_async};

/// Watched prefixes; each is hijacked (origin AS666) and given back (origin AS100) in turns.
const PREFIXES: usize = 16;
/// Runs killed with SIGKILL before the last one, which ends cleanly.
const KILLS: usize = 5;
/// The seed of the kill points when `BGPSENTRY_CRASH_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5eed_0b9b_5e47_0001;

/// Every alert the service shows, firing or resolved: id → (prefix, state).
async fn all_alerts(run: &Service) -> BTreeMap<String, (String, String)> {
    let v = run.json("/alerts?state=all").await;
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                (
                    a["prefix"].as_str().unwrap().to_string(),
                    a["state"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// Prefixes with a firing alert.
async fn firing_prefixes(run: &Service) -> BTreeSet<String> {
    all_alerts(run)
        .await
        .into_values()
        .filter(|(_, state)| state == "firing")
        .map(|(p, _)| p)
        .collect()
}

fn prefix(i: usize) -> String {
    format!("10.{i}.0.0/16")
}

/// Accepts the service's connection and waits for its subscriptions.
async fn connect(ws: &mut WsServer) -> Conn {
    let mut conn = ws.accept(30).await;
    for _ in 0..PREFIXES {
        let sub = conn.recv().await;
        assert!(sub.contains("ris_subscribe"), "{sub}");
    }
    conn
}

/// Both peers announce `prefix` with `origin`: 666 hijacks it, 100 gives it back.
fn announce(conn: &Conn, prefix: &str, origin: u32, ts: &mut f64) {
    *ts += 1.0;
    for (peer, asn) in [("192.0.2.1", 64501), ("192.0.2.2", 64502)] {
        conn.send(&ris_announce(peer, asn, &[asn, origin], prefix, *ts));
    }
}

/// (alert id, event) of every alert event the webhook received.
fn delivered(receiver: &Receiver) -> BTreeSet<(String, String)> {
    receiver
        .got()
        .iter()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
            Some((
                v["alert"]["id"].as_str()?.to_string(),
                v["event"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The alert events the service's alerts stand for: `fired` for each, `resolved` for each
/// resolved one.
fn events_of(alerts: &BTreeMap<String, (String, String)>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (id, (_, state)) in alerts {
        out.insert((id.clone(), "fired".to_string()));
        if state == "resolved" {
            out.insert((id.clone(), "resolved".to_string()));
        }
    }
    out
}

/// Where in a round the process is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Right after the frames are sent: some may not even be read.
    Sent,
    /// As soon as `/alerts` shows one of the round's resolutions.
    FirstResolved,
    /// As soon as `/alerts` shows all of them (each is then inside a grouping window).
    AllResolved,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_an_alert_storm_loses_no_notification() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    let seed = std::env::var("BGPSENTRY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("kill points drawn from seed {seed} (BGPSENTRY_CRASH_SEED={seed} repeats them)");
    let mut rng = Rng(seed);

    let mut ws = WsServer::start().await;
    // Up all along: what matters is what is handed over, not retries.
    let receiver = Receiver::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from(
        "defaults:\n  min_vantage_points: 2\n  visibility_min_vantage_points: 0\nprefixes:\n",
    );
    for i in 0..PREFIXES {
        yaml.push_str(&format!(
            "  - prefix: {}\n    origins: [100]\n    upstreams: []\n",
            prefix(i)
        ));
    }
    yaml.push_str(&format!(
        "feeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    beacons: []\n    warm_start: false\n\
         store:\n  path: state.db\n  commit_interval_seconds: 1\n\
         notify:\n  group_window_seconds: 1\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 1\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n",
        ws.addr,
        receiver.url()
    ));
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, yaml).unwrap();

    let started = std::time::Instant::now();
    let all: Vec<String> = (0..PREFIXES).map(prefix).collect();
    // Event times near now: old ones would fall out of the store's retention.
    let mut ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();
    for round in 0..KILLS {
        let run = Launch::config(&config)
            .log("bgpsentry=info")
            .start_async()
            .await;
        let conn = connect(&mut ws).await;
        // Hijack some of the prefixes that are not, and let their `fired` reach the webhook.
        let firing = firing_prefixes(&run).await;
        let quiet: Vec<String> = all
            .iter()
            .filter(|p| !firing.contains(*p))
            .cloned()
            .collect();
        let hijacked = rng.some(&quiet);
        for p in &hijacked {
            announce(&conn, p, 666, &mut ts);
        }
        let r = &run;
        let hijacked_set: BTreeSet<String> = hijacked.iter().cloned().collect();
        let fired: Vec<String> = poll_until_async("the round's hijacks", 30, || {
            let hijacked_set = hijacked_set.clone();
            async move {
                let alerts = all_alerts(r).await;
                let ids: Vec<String> = alerts
                    .iter()
                    .filter(|(_, (p, s))| s == "firing" && hijacked_set.contains(p))
                    .map(|(id, _)| id.clone())
                    .collect();
                (ids.len() == hijacked_set.len()).then_some(ids)
            }
        })
        .await;
        poll_until_async("the round's `fired` at the webhook", 30, || {
            let got = delivered(&receiver);
            let done = fired
                .iter()
                .all(|id| got.contains(&(id.clone(), "fired".to_string())));
            async move { done.then_some(()) }
        })
        .await;

        // Give some back (their `resolved` opens a grouping window), hijack others, and kill.
        let firing: Vec<String> = firing_prefixes(&run).await.into_iter().collect();
        let resolving = rng.some(&firing);
        let quiet: Vec<String> = all
            .iter()
            .filter(|p| !firing.contains(*p))
            .cloned()
            .collect();
        let point = match rng.below(3) {
            0 => KillPoint::Sent,
            1 => KillPoint::FirstResolved,
            _ => KillPoint::AllResolved,
        };
        eprintln!(
            "{:?} round {round}: {} hijacked, {} given back, kill when {point:?}",
            started.elapsed(),
            hijacked.len(),
            resolving.len()
        );
        for p in &resolving {
            announce(&conn, p, 100, &mut ts);
            if rng.below(3) == 0
                && let Some(q) = quiet.get(rng.below(quiet.len().max(1) as u64) as usize)
            {
                announce(&conn, q, 666, &mut ts);
            }
        }
        let need = match point {
            KillPoint::Sent => 0,
            KillPoint::FirstResolved => 1,
            KillPoint::AllResolved => resolving.len(),
        };
        if need > 0 {
            let resolving: BTreeSet<String> = resolving.iter().cloned().collect();
            poll_until_async("the round's resolutions", 30, || {
                let resolving = resolving.clone();
                async move {
                    let still = firing_prefixes(r).await;
                    let gone = resolving.iter().filter(|p| !still.contains(*p)).count();
                    (gone >= need).then_some(())
                }
            })
            .await;
        }
        run.kill9();
        drop(conn);
    }

    // The last run is not killed: whatever the store holds must reach the webhook.
    let run = Launch::config(&config)
        .log("bgpsentry=info")
        .start_async()
        .await;
    let conn = connect(&mut ws).await;
    let alerts = all_alerts(&run).await;
    let expected = events_of(&alerts);
    let resolved = expected.iter().filter(|(_, e)| e == "resolved").count();
    eprintln!(
        "{} alerts, {} alert events ({resolved} resolutions) in the store",
        alerts.len(),
        expected.len()
    );
    assert!(resolved > 0, "the storm resolved nothing: {alerts:?}");
    // Waits, then reports what is missing rather than only that the wait timed out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut got = delivered(&receiver);
    while !expected.iter().all(|e| got.contains(e)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        got = delivered(&receiver);
    }
    let missing: Vec<&(String, String)> = expected.iter().filter(|e| !got.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} alert events never reached the webhook (seed {seed}): {missing:?}",
        missing.len(),
        expected.len()
    );
    drop(conn);
    drop(run);

    // The store agrees: each of its alert events is handed over and was delivered.
    let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let rows: Vec<(String, String, bool)> = db
        .prepare("SELECT alert_id, event, notified FROM alert_events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, event, notified) in &rows {
        assert!(notified, "{event} of {id} is not marked handed over");
        assert!(
            got.contains(&(id.clone(), event.clone())),
            "{event} of {id} is in the store but never reached the webhook"
        );
    }
}
