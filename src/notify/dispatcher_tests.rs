//! The dispatcher on its own: real channels built from config (never sending: the
//! dispatcher only queues) and a real SQLite outbox in memory, read back after each step.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Dispatcher, Slot};
use crate::alerts::{Alert, AlertTransition, Severity, TransitionKind};
use crate::config::Config;
use crate::notify::outbox::{Outbox, Queued};
use crate::notify::outbox_sqlite::SqliteOutbox;
use crate::notify::{EventKind, build_channels, sample_alert};

/// Channels by YAML under `notify.channels`; URLs point at a closed port (nothing is sent).
fn config(channels: &str) -> Config {
    let yaml = format!("notify:\n  channels:\n{channels}");
    match Config::parse(&yaml, Path::new("t.yml")) {
        Ok(c) => c,
        Err(e) => panic!("test config does not parse: {e}"),
    }
}

fn slots(cfg: &Config) -> Vec<Slot> {
    build_channels(cfg)
        .expect("channels build")
        .into_iter()
        .map(|ch| Slot {
            ch: Arc::new(ch),
            wake: Arc::new(Notify::new()),
            repush: None,
        })
        .collect()
}

fn dispatcher(cfg: &Config) -> (Dispatcher, Arc<SqliteOutbox>) {
    let outbox = Arc::new(SqliteOutbox::in_memory().expect("outbox"));
    let mut d = Dispatcher::new(Duration::from_secs(60), outbox.clone());
    d.switch(Duration::from_secs(60), slots(cfg));
    (d, outbox)
}

fn alert(cfg: &Config, id: &str, severity: Severity, group: &str) -> Alert {
    let mut a = sample_alert(cfg);
    a.id = id.to_string();
    a.severity = severity;
    a.groups = vec![group.to_string()];
    a
}

fn fired(a: &Alert) -> AlertTransition {
    AlertTransition {
        event: TransitionKind::Fired,
        alert: a.clone(),
    }
}

fn resolved(a: &Alert) -> AlertTransition {
    AlertTransition {
        event: TransitionKind::Resolved,
        alert: a.clone(),
    }
}

fn queued(outbox: &SqliteOutbox, channel: &str) -> Vec<Queued> {
    outbox.pending(channel, 100).expect("pending")
}

/// (event, alert id) of each notification, in order.
fn events(q: &[Queued]) -> Vec<Vec<(EventKind, String)>> {
    q.iter()
        .map(|n| {
            n.events
                .iter()
                .map(|e| (e.event, e.alert.id.clone()))
                .collect()
        })
        .collect()
}

const HOOK: &str = "    - name: hook\n      kind: webhook\n      url: http://127.0.0.1:9/hook\n";

#[tokio::test]
async fn an_event_goes_only_to_the_channels_whose_routing_takes_it() {
    let cfg = config(&format!(
        "{HOOK}    - name: noc\n      kind: slack\n      url: http://127.0.0.1:9/s\n      groups: [noc]\n    - name: pager\n      kind: discord\n      url: http://127.0.0.1:9/d\n      severities: [critical]\n"
    ));
    let (mut d, outbox) = dispatcher(&cfg);
    d.transition(fired(&alert(&cfg, "a", Severity::Warning, "noc")));
    d.transition(fired(&alert(&cfg, "b", Severity::Critical, "peering")));
    d.flush(true).await;
    let e = |id: &str| (EventKind::Fired, id.to_string());
    // A webhook notification holds one event; a chat message holds the whole group.
    assert_eq!(
        events(&queued(&outbox, "hook")),
        vec![vec![e("a")], vec![e("b")]]
    );
    assert_eq!(events(&queued(&outbox, "noc")), vec![vec![e("a")]]);
    assert_eq!(events(&queued(&outbox, "pager")), vec![vec![e("b")]]);
}

#[tokio::test]
async fn a_resolution_reaches_only_channels_told_of_the_firing_that_want_resolutions() {
    let cfg = config(&format!(
        "{HOOK}    - name: quiet\n      kind: slack\n      url: http://127.0.0.1:9/s\n      send_resolved: false\n    - name: late\n      kind: discord\n      url: http://127.0.0.1:9/d\n"
    ));
    let outbox = Arc::new(SqliteOutbox::in_memory().expect("outbox"));
    let mut d = Dispatcher::new(Duration::from_secs(60), outbox.clone());
    // `late` is added after the alert fired, with `tell` off: it was never told.
    let mut all = slots(&cfg);
    let late = all.pop().expect("three channels");
    d.switch(Duration::from_secs(60), all);
    let a = alert(&cfg, "a", Severity::Critical, "noc");
    d.transition(fired(&a));
    d.flush(true).await;
    let mut again = slots(&cfg);
    again.truncate(2);
    again.push(late);
    d.switch(Duration::from_secs(60), again);
    // The new channel is told the alert is still firing, with a reminder.
    d.flush(true).await;
    assert_eq!(
        events(&queued(&outbox, "late")),
        vec![vec![(EventKind::Reminder, "a".to_string())]]
    );
    d.transition(resolved(&a));
    d.flush(true).await;
    let kinds = |c: &str| -> Vec<EventKind> {
        events(&queued(&outbox, c))
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(kinds("hook"), vec![EventKind::Fired, EventKind::Resolved]);
    assert_eq!(kinds("quiet"), vec![EventKind::Fired]);
    assert_eq!(
        kinds("late"),
        vec![EventKind::Reminder, EventKind::Resolved]
    );
}

#[tokio::test]
async fn a_window_stays_open_until_its_deadline_and_a_removed_channel_keeps_what_it_holds() {
    let cfg = config(&format!(
        "{HOOK}    - name: noc\n      kind: slack\n      url: http://127.0.0.1:9/s\n"
    ));
    let (mut d, outbox) = dispatcher(&cfg);
    d.transition(fired(&alert(&cfg, "a", Severity::Critical, "noc")));
    // The window (60 s) is open: nothing is queued yet.
    d.flush(false).await;
    assert!(queued(&outbox, "noc").is_empty());
    // A reload removes `noc`: what its window holds goes to the outbox all the same.
    let mut kept = slots(&cfg);
    kept.truncate(1);
    d.switch(Duration::from_secs(60), kept);
    d.flush(false).await;
    assert_eq!(
        events(&queued(&outbox, "noc")),
        vec![vec![(EventKind::Fired, "a".to_string())]]
    );
    assert!(
        queued(&outbox, "hook").is_empty(),
        "hook's window is still open"
    );
    // And it is told nothing more.
    d.transition(resolved(&alert(&cfg, "a", Severity::Critical, "noc")));
    d.flush(true).await;
    assert_eq!(queued(&outbox, "noc").len(), 1);
    assert_eq!(queued(&outbox, "hook").len(), 2);
}

#[tokio::test]
async fn alerts_restored_at_start_are_not_told_again_but_are_resolved() {
    let cfg = config(HOOK);
    let (mut d, outbox) = dispatcher(&cfg);
    let a = alert(&cfg, "a", Severity::Critical, "noc");
    d.already_firing(vec![a.clone()], false);
    d.flush(true).await;
    assert!(queued(&outbox, "hook").is_empty());
    d.transition(resolved(&a));
    d.flush(true).await;
    assert_eq!(
        events(&queued(&outbox, "hook")),
        vec![vec![(EventKind::Resolved, "a".to_string())]]
    );
}

#[tokio::test]
async fn alertmanager_holds_a_quick_resolution_back() {
    let cfg = config(
        "    - name: am\n      kind: alertmanager\n      url: http://127.0.0.1:9\n      hold_resolved_seconds: 30\n",
    );
    let (mut d, outbox) = dispatcher(&cfg);
    let a = alert(&cfg, "a", Severity::Critical, "noc");
    d.transition(fired(&a));
    d.transition(resolved(&a));
    d.flush(true).await;
    let q = queued(&outbox, "am");
    assert_eq!(
        events(&q),
        vec![
            vec![(EventKind::Fired, "a".to_string())],
            vec![(EventKind::Resolved, "a".to_string())]
        ]
    );
    assert_eq!(q[0].next_attempt_ms, q[0].created_ms);
    assert_eq!(q[1].next_attempt_ms, q[1].created_ms + 30_000);
}

fn silence_of_group(group: &str) -> crate::triage::Silence {
    crate::triage::Silence {
        id: "s1".into(),
        matchers: crate::triage::Matchers {
            group: Some(group.into()),
            ..Default::default()
        },
        comment: String::new(),
        created_by: "ops".into(),
        created_at: crate::event::Timestamp::now(),
        expires_at: crate::event::Timestamp::now().plus_secs(3600),
    }
}

#[tokio::test]
async fn a_silenced_alert_is_told_to_alertmanager_only_until_the_silence_goes() {
    let cfg = config(&format!(
        "{HOOK}    - name: am\n      kind: alertmanager\n      url: http://127.0.0.1:9\n      hold_resolved_seconds: 0\n"
    ));
    let (mut d, outbox) = dispatcher(&cfg);
    let triage = crate::triage::Triage::in_memory();
    triage.add_silence(silence_of_group("noc")).unwrap();
    d.set_triage(triage.clone());
    d.transition(fired(&alert(&cfg, "a", Severity::Critical, "noc")));
    d.transition(fired(&alert(&cfg, "b", Severity::Critical, "peering")));
    d.timers();
    d.flush(true).await;
    let e = |k: EventKind, id: &str| (k, id.to_string());
    assert_eq!(
        events(&queued(&outbox, "hook")),
        vec![vec![e(EventKind::Fired, "b")]]
    );
    assert_eq!(
        events(&queued(&outbox, "am")),
        vec![vec![e(EventKind::Fired, "a"), e(EventKind::Fired, "b")]]
    );
    // The silence goes: the alert still firing is told, as a reminder, to the webhook only
    // (Alertmanager had it all along).
    triage.remove_silence("s1").unwrap();
    d.timers();
    d.flush(true).await;
    assert_eq!(
        events(&queued(&outbox, "hook")),
        vec![
            vec![e(EventKind::Fired, "b")],
            vec![e(EventKind::Reminder, "a")]
        ]
    );
    assert_eq!(queued(&outbox, "am").len(), 1);
    // Told once: the next look finds nothing held.
    d.timers();
    d.flush(true).await;
    assert_eq!(queued(&outbox, "hook").len(), 2);
}

#[tokio::test]
async fn an_acknowledged_alert_gets_no_reminder_and_what_follows_says_who() {
    let cfg = config(&format!("{HOOK}      renotify_seconds: 1\n"));
    let (mut d, outbox) = dispatcher(&cfg);
    let triage = crate::triage::Triage::in_memory();
    d.set_triage(triage.clone());
    let a = alert(&cfg, "a", Severity::Critical, "noc");
    let b = alert(&cfg, "b", Severity::Critical, "noc");
    d.transition(fired(&a));
    d.transition(fired(&b));
    let ack = crate::triage::Ack {
        by: "alice".into(),
        comment: "on it".into(),
        at: crate::event::Timestamp::now(),
    };
    triage.acknowledge("a", ack.clone()).unwrap();
    // Both are due for a reminder.
    let long_ago = std::time::Instant::now() - Duration::from_secs(5);
    for id in ["a", "b"] {
        d.channels[0].last_told.insert(id.to_string(), long_ago);
    }
    d.timers();
    d.transition(resolved(&a));
    d.flush(true).await;
    let q = queued(&outbox, "hook");
    let e = |k: EventKind, id: &str| (k, id.to_string());
    assert_eq!(
        events(&q),
        vec![
            vec![e(EventKind::Fired, "a")],
            vec![e(EventKind::Fired, "b")],
            vec![e(EventKind::Reminder, "b")],
            vec![e(EventKind::Resolved, "a")],
        ]
    );
    assert_eq!(q[3].events[0].acknowledged, Some(ack));
    assert_eq!(q[2].events[0].acknowledged, None);
}

#[tokio::test]
async fn at_a_start_an_alert_whose_silence_ended_meanwhile_is_told_to_channels_never_told() {
    let cfg = config(HOOK);
    let (mut d, outbox) = dispatcher(&cfg);
    let triage = crate::triage::Triage::in_memory();
    // A silence of group noc that ended while the service was stopped.
    let mut ended = silence_of_group("noc");
    ended.expires_at = crate::event::Timestamp::now();
    triage.add_silence(ended).unwrap();
    d.set_triage(triage);
    let held = alert(&cfg, "held", Severity::Critical, "noc");
    let told = alert(&cfg, "told", Severity::Critical, "noc");
    let other = alert(&cfg, "other", Severity::Critical, "peering");
    // The outbox recorded that the webhook was told about `told` only.
    d.restore_told(vec![("hook".to_string(), "told".to_string())]);
    d.already_firing(vec![held, told, other], false);
    d.timers();
    d.flush(true).await;
    assert_eq!(
        events(&queued(&outbox, "hook")),
        vec![vec![(EventKind::Reminder, "held".to_string())]]
    );
    d.timers();
    d.flush(true).await;
    assert_eq!(queued(&outbox, "hook").len(), 1);
}
