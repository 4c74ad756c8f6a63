//! A clean stop is bounded: `bgpsentry run` flooded with alerts (a real storm of updates,
//! replayed over and over, watched by prefixes that make nearly every update an alert, with
//! a webhook that never answers) gets SIGTERM and exits 0 well before systemd would kill it.
//! What it committed is in the store and survives the restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{Launch, http_get, poll_until, shared_data};

/// The stop bound the docs state (docs/src/state.md).
const STOP_BOUND: Duration = Duration::from_secs(10);

/// The config; `flood` replays the storm (20 times over), else there is no feed.
fn config(dir: &Path, webhook: &str, flood: bool) -> std::path::PathBuf {
    let feeds = if flood {
        let storm = shared_data("mrt/rrc01.updates.20100827.0840.gz");
        let files: Vec<String> = (0..20)
            .map(|_| format!("\"{}\"", storm.display()))
            .collect();
        format!("feeds:\n  - kind: mrt\n    files: [{}]\n", files.join(", "))
    } else {
        "feeds: []\n".to_string()
    };
    // Several channels take every alert: the notifier has a backlog of its own to route.
    let channels: String = (0..4)
        .map(|i| {
            format!("    - name: hook{i}\n      kind: webhook\n      url: {webhook}\n      timeout_seconds: 30\n")
        })
        .collect();
    // Nearly every announced prefix is a more-specific of these, from another origin. The
    // storm is from 2010: keep its resolved alerts whatever their age.
    let yaml = format!(
        "defaults:\n  min_vantage_points: 1\n  visibility_min_vantage_points: 0\n\
         prefixes:\n  - prefix: 0.0.0.0/1\n    origins: [64496]\n  - prefix: 128.0.0.0/1\n    origins: [64496]\n\
         {feeds}store:\n  path: state.db\n  retention_days: 36500\n\
         notify:\n  channels:\n{channels}"
    );
    let path = dir.join("bgpsentry.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Ids of every alert the service shows, firing or resolved.
fn alert_ids(addr: &str) -> BTreeSet<String> {
    let (status, _, body) = http_get(addr, "/alerts?state=all").expect("/alerts answers");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn metric(addr: &str, series: &str) -> f64 {
    let (_, _, body) = http_get(addr, "/metrics").expect("/metrics answers");
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[test]
fn sigterm_during_an_alert_flood_exits_0_within_the_bound() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    // A webhook that accepts connections and never answers: every delivery hangs.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &url, true);

    let mut svc = Launch::config(&cfg)
        .log("bgpsentry=info,bgpsentry::service=debug")
        .start();
    let addr = svc.addr.clone();
    // Well into the flood: the engine's queue is full and alerts keep firing.
    poll_until("an alert flood", 60, || {
        (metric(&addr, "bgpsentry_engine_queue_batches") >= 8.0 && alert_ids(&addr).len() >= 2_000)
            .then_some(())
    });
    let shown = alert_ids(&addr);

    let pid = svc.pid().to_string();
    let stop = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    // Generous: twice the bound. Without a bound the stop takes as long as the backlog.
    let status = svc.proc.wait_exit(2 * STOP_BOUND);
    let took = stop.elapsed();
    eprintln!(
        "stopped in {took:?} with {} alerts shown at SIGTERM",
        shown.len()
    );
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running {took:?} after SIGTERM; the docs promise an exit within {STOP_BOUND:?}"
        )
    });
    assert!(status.success(), "exit status {status:?}");
    drop(svc);

    // What was shown had been committed: it is in the store.
    let stored = stored_alerts(dir.path());
    let lost: Vec<&String> = shown
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} alerts shown before SIGTERM are not in the store",
        lost.len()
    );
    let waiting = waiting_events(dir.path());
    eprintln!(
        "{} alerts in the store, {waiting} alert events left for the next start to queue",
        stored.len()
    );

    // A restart (without the flood) has everything committed, shows the firing alerts, and
    // queues the alert events the stop left waiting.
    let cfg = config(dir.path(), &url, false);
    let svc = Launch::config(&cfg).log("bgpsentry=info").start();
    let firing: BTreeSet<String> = stored
        .iter()
        .filter(|(_, state)| *state == "firing")
        .map(|(id, _)| id.clone())
        .collect();
    // The restarted service is busy queueing what the stop left: poll until it answers.
    let body = poll_until("/alerts after the restart", 60, || {
        http_get(&svc.addr, "/alerts").map(|(_, _, body)| body)
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let shown_firing: BTreeSet<String> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    // The restored engine judges its restored routes again (hold-downs and thresholds cut short
    // by the stop run again, as after a crash), so an alert may fire or resolve at the restart;
    // but every alert the store had firing is restored and shown.
    let shown_now = poll_until("/alerts?state=all after the restart", 60, || {
        let (_, _, body) = http_get(&svc.addr, "/alerts?state=all")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(
            v["alerts"]
                .as_array()?
                .iter()
                .filter_map(|a| Some(a["id"].as_str()?.to_string()))
                .collect::<BTreeSet<String>>(),
        )
    });
    let gone: Vec<&String> = firing.difference(&shown_now).collect();
    assert!(
        gone.is_empty(),
        "{} alerts firing in the store are not shown after the restart",
        gone.len()
    );
    eprintln!(
        "at the restart {} alerts fired and {} resolved",
        shown_firing.difference(&firing).count(),
        firing.difference(&shown_firing).count()
    );
    let dir_path = dir.path().to_path_buf();
    poll_until("every alert event queued for notification", 30, || {
        (waiting_events(&dir_path) == 0).then_some(())
    });
    drop(svc);
    let after = stored_alerts(dir.path());
    let missing = stored.keys().filter(|id| !after.contains_key(*id)).count();
    assert_eq!(missing, 0, "stored alerts gone after the restart");
    drop(hook);
}

/// Alerts in the store: id → state.
fn stored_alerts(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.prepare("SELECT id, state FROM alerts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Alert events in the store not yet handed to the notifier.
fn waiting_events(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM alert_events WHERE notified = 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}
