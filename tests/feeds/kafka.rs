//! The Kafka feed against a real Kafka-compatible broker (tansu, in memory, on loopback): real
//! BMP as OpenBMP records and real RIS Live messages, read by the real `bgpsentry run` in a
//! consumer group; alerts, hostile records, offsets committed only once stored, and a kill -9
//! in the middle of a topic.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::util::kafka::{
    Broker, feed_yaml, hijack_openbmp_records, ris_live_records, router_openbmp_records, write,
};
use crate::util::{Launch, Service, poll_until, poll_until_async};

/// The watched prefix: AS18196's, hijacked by AS58678 in the 2016 RIS data.
const WATCHED: &str = "202.134.148.0/24";

fn config(broker: &Broker, topic: &str, group: &str, format: &str, prefixes: &str) -> String {
    format!(
        "prefixes:\n{prefixes}feeds:\n{}",
        feed_yaml(broker, topic, group, format)
    )
}

fn hijack_prefixes() -> String {
    format!("  - prefix: {WATCHED}\n    origins: [18196]\n    visibility_min_vantage_points: 0\n")
}

/// Waits until the group's committed offsets reach the end of every partition: `ends[p]` is
/// the number of records produced to partition `p` of a new topic, whose offsets start at 0.
/// Counted here, not asked of the broker: tansu's high watermark is the base offset of the
/// partition's last record batch plus one, not the offset after its last record.
fn wait_all_committed(broker: &Broker, group: &str, topic: &str, ends: &[usize]) {
    let ends: Vec<i64> = ends.iter().map(|n| *n as i64).collect();
    poll_until(
        &format!("group {group} to commit {ends:?} on {topic}"),
        60,
        || {
            let got = broker.committed(group, topic, ends.len() as i32);
            (got.iter().map(|o| o.unwrap_or(0)).collect::<Vec<_>>() == ends).then_some(())
        },
    );
}

async fn resolved_hijack(svc: &Service) -> serde_json::Value {
    poll_until_async("a resolved origin_hijack", 60, async || {
        let all = svc.json("/alerts?state=resolved").await;
        all["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "origin_hijack" && a["prefix"] == WATCHED)
            .cloned()
    })
    .await
}

/// Every fired and resolved transition in a store, in order: (alert id, event).
fn transitions(store: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(store).unwrap();
    let mut q = db
        .prepare("SELECT alert_id, event FROM alert_events ORDER BY seq")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The real hijack as OpenBMP records on one partition, real router streams (gobgpd, FRR:
/// Initiation, Peer Up, Route Monitoring, Peer Down) on the other: `origin_hijack` fires and
/// resolves, every record is counted, and the group's offsets reach the end of both
/// partitions once everything is stored.
#[tokio::test(flavor = "multi_thread")]
async fn openbmp_records_of_the_real_hijack_raise_and_resolve_origin_hijack() {
    let broker = Broker::start();
    broker.create_topic("bmp_raw", 2);
    let hijack = hijack_openbmp_records();
    let mut routers = router_openbmp_records("gobgpd-all-ribs.bmp", Ipv4Addr::new(192, 0, 2, 1));
    routers.extend(router_openbmp_records(
        "frr-bgpd-pre-post.bmp",
        Ipv4Addr::new(192, 0, 2, 2),
    ));
    broker.produce("bmp_raw", 0, &hijack);

    let svc = Launch::yaml(&config(
        &broker,
        "bmp_raw",
        "sentry",
        "openbmp",
        &hijack_prefixes(),
    ))
    .start_async()
    .await;
    let alert = resolved_hijack(&svc).await;
    assert_eq!(alert["origin"], 58678, "{alert}");
    assert!(
        alert["fired_at"]
            .as_str()
            .unwrap()
            .starts_with("2016-08-11T16:00"),
        "{alert}"
    );
    // The routers' records carry today's times: the engine has one event-time clock, so
    // today's events read before the hijack's of 2016 would judge those against today (its
    // pending conditions would wait for a time that has already passed). They come after.
    broker.produce("bmp_raw", 1, &routers);

    wait_all_committed(&broker, "sentry", "bmp_raw", &[hijack.len(), routers.len()]);
    let total = (hijack.len() + routers.len()) as f64;
    let metrics = svc.metrics().await;
    let series = |r: &str| {
        crate::util::metric(
            &metrics,
            &format!(
                "bgpsentry_kafka_records_total{{feed=\"kafka\",format=\"openbmp\",result=\"{r}\"}}"
            ),
        )
        .unwrap_or(-1.0)
    };
    assert_eq!(series("ok") + series("skipped"), total, "{metrics}");
    assert_eq!(series("malformed"), 0.0);
    // Route Monitoring and Peer Down of the hijack's peers are used; the routers' Initiation
    // and Peer Up are skipped.
    assert!(series("ok") >= hijack.len() as f64, "{metrics}");
    assert!(series("skipped") >= 4.0, "{metrics}");
    for needle in [
        "bgpsentry_kafka_connected{feed=\"kafka\"} 1",
        "bgpsentry_kafka_assigned_partitions{feed=\"kafka\"} 2",
        "bgpsentry_kafka_records_in_flight{feed=\"kafka\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle}:\n{metrics}");
    }
    let ready = svc.json("/readyz").await;
    assert_eq!(ready["feeds"]["kafka"]["connected"], true, "{ready}");
}

/// Real RIS Live messages, one per record (the whole message, and a message's `data` alone):
/// their routes reach the engine, and an origin other than the watched one alerts.
#[tokio::test(flavor = "multi_thread")]
async fn ris_live_records_reach_the_engine() {
    let broker = Broker::start();
    broker.create_topic("ris", 1);
    let mut records = ris_live_records();
    // The first message's data object alone, as some relays publish it.
    let first: serde_json::Value = serde_json::from_slice(&records[0]).unwrap();
    records.push(serde_json::to_vec(&first["data"]).unwrap());
    broker.produce("ris", 0, &records);
    // One vantage point in these messages: one is enough to fire.
    let prefixes = "  - prefix: 2a12:3fc6::/48\n    origins: [64500]\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\n";
    let svc = Launch::yaml(&config(&broker, "ris", "sentry", "ris_live", prefixes))
        .start_async()
        .await;
    let alert = poll_until_async("an origin_hijack of 2a12:3fc6::/48", 60, async || {
        let all = svc.json("/alerts?state=firing").await;
        all["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "origin_hijack")
            .cloned()
    })
    .await;
    assert_eq!(alert["origin"], 57330, "{alert}");
    wait_all_committed(&broker, "sentry", "ris", &[records.len()]);
    // The coordinator's answers are counted, and the committed offset is shown.
    let committed = format!(
        "bgpsentry_kafka_committed_offset{{feed=\"kafka\",partition=\"0\",topic=\"ris\"}} {}",
        records.len()
    );
    poll_until_async("the commits counted", 60, async || {
        let m = svc.metrics().await;
        let commits =
            crate::util::metric(&m, "bgpsentry_kafka_offset_commits_total{feed=\"kafka\"}")?;
        (commits > 0.0 && m.contains(&committed)).then_some(())
    })
    .await;
    let metrics = svc.metrics().await;
    let ok = crate::util::metric(
        &metrics,
        "bgpsentry_kafka_records_total{feed=\"kafka\",format=\"ris_live\",result=\"ok\"}",
    );
    assert_eq!(ok, Some(records.len() as f64), "{metrics}");
}

/// Garbage, a truncated header, the wrong magic, a huge declared length, a message that is
/// not BMP, an empty record and an oversized one among the real hijack's records: each is
/// counted and skipped, and the hijack still raises its alert.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_records_are_counted_and_skipped_and_the_good_ones_still_alert() {
    let broker = Broker::start();
    broker.create_topic("bmp_raw", 1);
    let good = hijack_openbmp_records();
    let sample = good[0].clone();
    let mut wrong_magic = sample.clone();
    wrong_magic[..4].copy_from_slice(b"XBMP");
    let mut huge = sample.clone();
    huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut not_bmp = sample.clone();
    // The BMP message starts where the OpenBMP header says it ends; version 9 is not BMP.
    not_bmp[usize::from(u16::from_be_bytes([sample[6], sample[7]]))] = 9;
    let hostile: Vec<Vec<u8>> = vec![
        b"\x00\x01garbage, not a record".to_vec(),
        sample[..30].to_vec(),
        wrong_magic,
        huge,
        not_bmp,
        Vec::new(),
        // Over the feed's `max_record_bytes` below (and within a fetch).
        vec![b'O'; 200_000],
    ];
    let mut records = Vec::new();
    for (i, g) in good.iter().enumerate() {
        records.push(g.clone());
        if let Some(h) = hostile.get(i) {
            records.push(h.clone());
        }
    }
    broker.produce("bmp_raw", 0, &records);
    let text = format!(
        "{}    max_record_bytes: 100000\n",
        config(&broker, "bmp_raw", "sentry", "openbmp", &hijack_prefixes())
    );
    let svc = Launch::yaml(&text).start_async().await;
    let alert = resolved_hijack(&svc).await;
    assert_eq!(alert["origin"], 58678, "{alert}");
    wait_all_committed(&broker, "sentry", "bmp_raw", &[records.len()]);
    let metrics = svc.metrics().await;
    let series = |r: &str| {
        crate::util::metric(
            &metrics,
            &format!(
                "bgpsentry_kafka_records_total{{feed=\"kafka\",format=\"openbmp\",result=\"{r}\"}}"
            ),
        )
    };
    assert_eq!(series("malformed"), Some(5.0), "{metrics}");
    assert_eq!(series("empty"), Some(1.0), "{metrics}");
    assert_eq!(series("oversized"), Some(1.0), "{metrics}");
    assert_eq!(series("ok"), Some(good.len() as f64), "{metrics}");
    assert!(
        svc.proc
            .log()
            .contains("skipped a malformed record bmp_raw/0@"),
        "{}",
        svc.proc.log()
    );
}

/// kill -9 in the middle of the topic, then a restart on the same store: the alert's
/// transitions are those of a run without the kill (none lost, none twice), and the group's
/// offset went on from where it was committed to the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_in_the_middle_of_the_topic_loses_and_duplicates_no_transition() {
    let broker = Broker::start();
    let records = hijack_openbmp_records();

    // The run without a kill.
    broker.create_topic("whole", 1);
    broker.produce("whole", 0, &records);
    let whole = tempfile::tempdir().unwrap();
    let cfg = write(
        whole.path(),
        "bgpsentry.yml",
        &config(&broker, "whole", "whole", "openbmp", &hijack_prefixes()),
    );
    let svc = Launch::config(&cfg).start_async().await;
    resolved_hijack(&svc).await;
    wait_all_committed(&broker, "whole", "whole", &[records.len()]);
    svc.terminate(30).await;
    let want = transitions(&whole.path().join("bgpsentry.db"));
    assert_eq!(
        want.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
        ["fired", "resolved"],
        "{want:?}"
    );

    // The same records, the service killed half-way.
    broker.create_topic("killed", 1);
    let half = records.len() / 2;
    broker.produce("killed", 0, &records[..half]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "bgpsentry.yml",
        &config(&broker, "killed", "killed", "openbmp", &hijack_prefixes()),
    );
    let svc = Launch::config(&cfg).start_async().await;
    let at_kill = poll_until("the first half committed", 60, || {
        broker.committed("killed", "killed", 1)[0].filter(|o| *o == half as i64)
    });
    // The rest arrives, and the service dies while it reads it.
    broker.produce("killed", 0, &records[half..]);
    poll_until_async("records of the second half read", 60, async || {
        let m = svc.metrics().await;
        let ok = crate::util::metric(
            &m,
            "bgpsentry_kafka_records_total{feed=\"kafka\",format=\"openbmp\",result=\"ok\"}",
        )?;
        (ok > half as f64).then_some(())
    })
    .await;
    svc.kill9();
    let after_kill = broker.committed("killed", "killed", 1)[0].unwrap_or(0);
    assert!(after_kill >= at_kill, "{after_kill} < {at_kill}");

    let svc = Launch::config(&cfg).start_async().await;
    resolved_hijack(&svc).await;
    wait_all_committed(&broker, "killed", "killed", &[records.len()]);
    svc.terminate(30).await;
    let got = transitions(&dir.path().join("bgpsentry.db"));
    assert_eq!(got, want);
}

/// A broker that speaks only TLS: the feed with `tls: {ca_file}` trusting the broker's
/// certificate reads the hijack and alerts.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "tansu 0.6.0 refuses --cert together with --key (a clap group), so it starts no TLS listener"]
async fn the_feed_reads_a_broker_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_file = write(dir.path(), "broker.pem", &cert.cert.pem());
    let key_file = write(dir.path(), "broker.key", &cert.signing_key.serialize_pem());
    let broker = Broker::start_tls(&cert_file, &key_file);
    broker.create_topic("bmp_raw", 1);
    let records = hijack_openbmp_records();
    broker.produce("bmp_raw", 0, &records);
    let text = format!(
        "{}    tls:\n      ca_file: {}\n",
        config(&broker, "bmp_raw", "sentry", "openbmp", &hijack_prefixes()),
        cert_file.display()
    );
    let svc = Launch::yaml(&text).start_async().await;
    let alert = resolved_hijack(&svc).await;
    assert_eq!(alert["origin"], 58678, "{alert}");
    wait_all_committed(&broker, "sentry", "bmp_raw", &[records.len()]);
}

/// `bgpsentry stream --feed kafka` prints the topic's routes of the watched prefix in the pipe
/// format, the router as exporter, and commits nothing to any group.
#[test]
fn stream_prints_the_routes_of_an_openbmp_topic() {
    use std::process::{Command, Stdio};
    let broker = Broker::start();
    broker.create_topic("bmp_raw", 1);
    broker.produce("bmp_raw", 0, &hijack_openbmp_records());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["stream", "--feed", "kafka", "--brokers", &broker.addr])
        .args([
            "--topics",
            "bmp_raw",
            "--from-earliest",
            "--prefixes",
            WATCHED,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = crate::util::lines_of(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    // Until the hijacker's route is printed.
    while !lines
        .iter()
        .any(|l| l.contains("|U|") && l.contains(" 58678|"))
    {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let hijack = lines
        .iter()
        .find(|l| l.contains("|U|") && l.contains(" 58678|"))
        .unwrap_or_else(|| panic!("no line of the hijack: {lines:#?}"));
    let fields: Vec<&str> = hijack.split('|').collect();
    assert!(fields[0].starts_with("14709312"), "{hijack}");
    assert_eq!(fields[4], WATCHED, "{hijack}");
    // The exporter is the router (the collector's address in the RIS records), ASN unknown.
    assert_eq!(fields[fields.len() - 2], "0", "{hijack}");
    assert!(
        lines.iter().all(|l| l.split('|').nth(4) == Some(WATCHED)),
        "{lines:#?}"
    );
}
