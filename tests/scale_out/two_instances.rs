//! One relay and two instances on the real 2016 RIS data (as OpenBMP records on a raw topic):
//! every alert a single bgpsentry raises on the same data is raised once at Alertmanager, by
//! the instance that owns its prefix, and each instance owns a disjoint share of the
//! partitions. Then one instance stops: the other takes its partitions over, rebuilds their
//! routes from the topic, and raises a hijack the stream shows after the stop.

use std::collections::BTreeSet;

use crate::util::kafka::{Broker, mrt_openbmp_records};
use crate::util::notify::{Alertmanager, Receiver};
use crate::util::scale_out::*;
use crate::util::{Service, poll_until_async, shared_data};
use bgpsentry::feeds::events::partition::{Partitioner, partition_of};

/// The raw topics: OpenBMP records of the RIS data, and RIS Live messages.
const RAW_BMP: &str = "raw.bmp";
const RAW_RIS: &str = "raw.ris";

/// Records of the internal topic an instance read.
async fn records_read(svc: &Service) -> f64 {
    svc.metric("bgpsentry_kafka_records_total{feed=\"events\",format=\"events\",result=\"ok\"}")
        .await
        .unwrap_or(0.0)
}

/// Events the engine of an instance judged, of every type.
async fn events_judged(svc: &Service) -> f64 {
    svc.metric_sum("bgpsentry_route_events_total{feed=\"events\",")
        .await
}

/// A gauge once it no longer moves: the same value twice, further apart than the engine's
/// refresh of its gauges (every 100 ms while anything changes).
async fn settled_metric(svc: &Service, series: &str) -> f64 {
    let mut last = None;
    poll_until_async(&format!("{series} to settle"), 60, async || {
        let now = svc.metric(series).await;
        let settled = now.is_some() && now == last;
        last = now;
        if !settled {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        settled.then_some(now?)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_the_prefixes_and_one_takes_over_when_the_other_stops() {
    let data = shared_data("mrt/ris-updates.20160811.1600.gz");
    // What one bgpsentry raises on the same data: the reference.
    let (expected, fired_once) =
        reference_firing(&format!("prefixes:\n{}", watched_prefixes()), &data);
    assert!(
        expected.contains(&(
            "origin_hijack".to_string(),
            "202.134.148.0/24".to_string(),
            "58678".to_string()
        )),
        "the data holds the 2016 hijack: {expected:?}"
    );

    let broker = Broker::start();
    broker.create_topic(EVENTS_TOPIC, PARTITIONS);
    broker.create_topic(RAW_BMP, 1);
    broker.create_topic(RAW_RIS, 1);
    let rx = Receiver::start(vec![]).await;
    let am = Alertmanager::start(&rx.url());
    let dir = tempfile::tempdir().unwrap();

    // Both instances in the group, each with a share, before anything is relayed.
    let a = start_instance(&dir, &broker, "a", &am.url).await;
    let b = start_instance(&dir, &broker, "b", &am.url).await;
    let (owned_a, owned_b) = poll_until_async("both instances to own partitions", 60, async || {
        let (pa, pb) = (owned_partitions(&a)?, owned_partitions(&b)?);
        let all: BTreeSet<i32> = pa.iter().chain(&pb).copied().collect();
        (!pa.is_empty()
            && !pb.is_empty()
            && pa.len() + pb.len() == PARTITIONS as usize
            && all.len() == PARTITIONS as usize
            && ready(&a).await
            && ready(&b).await)
            .then_some((pa, pb))
    })
    .await;

    assert!(
        owned_a.iter().all(|p| !owned_b.contains(p)),
        "disjoint shares: {owned_a:?} and {owned_b:?}"
    );

    // The real data through the relay.
    broker.produce(RAW_BMP, 0, &mrt_openbmp_records(&data));
    let relay = start_relay(&relay_config(
        dir.path(),
        &broker,
        &[(RAW_BMP, "openbmp"), (RAW_RIS, "ris_live")],
    ))
    .await;
    // Waits for them, then compares (a difference shows in the failure).
    await_notified(&rx, &expected, &relay, &[&a, &b]).await;
    assert_eq!(
        notified_firing(&rx),
        expected,
        "alerts at Alertmanager vs one bgpsentry"
    );
    // Each alert was raised by one instance only: together they fired what one bgpsentry did.
    let sum = fired_total(&a).await + fired_total(&b).await;
    assert_eq!(
        sum, fired_once,
        "alerts fired by the two instances together"
    );
    // The hijacked prefix's alert came from its owner alone.
    let partitioner = Partitioner::new(["202.134.148.0/24".parse().unwrap()]);
    let hijacked = partition_of(
        &partitioner
            .root(&"202.134.148.0/24".parse().unwrap())
            .unwrap(),
        PARTITIONS as u32,
    ) as i32;
    let (owner, other) = if owned_a.contains(&hijacked) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let in_alerts = async |svc: &Service| {
        svc.json("/alerts?state=all").await["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == "origin_hijack" && x["prefix"] == "202.134.148.0/24")
    };
    assert!(in_alerts(owner).await, "the owner raised the hijack");
    assert!(!in_alerts(other).await, "the other instance did not");

    // A beacon on one of A's partitions, and the routes A holds for it.
    let beacon = (64..80)
        .map(|i| format!("84.205.{i}.0/24"))
        .find(|p| owned_a.contains(&(partition_of(&p.parse().unwrap(), PARTITIONS as u32) as i32)))
        .expect("a beacon on one of A's partitions");
    let vps = format!("bgpsentry_prefix_vantage_points{{prefix=\"{beacon}\"}}");
    // Every relayed record read by its owner and judged: A's routes of the beacon are final.
    poll_until_async("every relayed record judged", 60, async || {
        let produced = relay
            .metric("bgpsentry_relay_records_produced_total")
            .await?;
        let (read_a, judged_a) = (records_read(&a).await, events_judged(&a).await);
        let (read_b, judged_b) = (records_read(&b).await, events_judged(&b).await);
        (produced > 0.0 && read_a + read_b == produced && judged_a == read_a && judged_b == read_b)
            .then_some(())
    })
    .await;
    let held_by_a = settled_metric(&a, &vps).await;
    assert!(held_by_a >= 1.0, "A holds routes of {beacon}");
    assert_eq!(
        b.metric(&vps).await,
        Some(0.0),
        "B holds nothing of A's partitions"
    );

    // A stops. B takes every partition over and rebuilds A's from the topic. (Stopped, not
    // killed: tansu 0.6 keeps a killed member in the group after its session timed out, so
    // its partitions stay assigned to it; see "Limits" in docs/src/scale-out.md.)
    let replayed = "bgpsentry_scale_out_records_replayed_total{feed=\"events\"}";
    let replayed_before = b.metric(replayed).await.unwrap_or(0.0);
    a.terminate(30).await;
    poll_until_async("B to own every partition", 90, async || {
        let owned = owned_partitions(&b)?;
        (owned.len() == PARTITIONS as usize && ready(&b).await).then_some(())
    })
    .await;
    assert!(
        b.metric(replayed).await.unwrap_or(0.0) > replayed_before,
        "B replayed records"
    );
    let log = b.log_text();
    assert!(log.contains("rebuilding partition"), "{log}");
    assert_eq!(
        settled_metric(&b, &vps).await,
        held_by_a,
        "B rebuilt A's routes of {beacon}"
    );

    // A hijack of the beacon after the stop, on the RIS Live raw topic: B raises it.
    // Two vantage points (the rules' default `min_vantage_points`).
    let hijack = [("193.0.0.56", 3333), ("195.66.224.175", 13030)].map(|(peer, asn)| {
        crate::util::feeds::ris_announce(peer, asn, &[asn, 64666], &beacon, 1_470_931_800.0)
            .into_bytes()
    });
    broker.produce(RAW_RIS, 0, &hijack);
    let wanted = (
        "origin_hijack".to_string(),
        beacon.clone(),
        "64666".to_string(),
    );
    poll_until_async(
        "the hijack after the stop at Alertmanager",
        60,
        async || notified_firing(&rx).contains(&wanted).then_some(()),
    )
    .await;
    assert!(
        b.json("/alerts").await["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == "origin_hijack" && x["prefix"] == beacon.as_str()),
        "B raised it"
    );
    // The relay was ready throughout, and counted what it relayed and what it filtered.
    assert_eq!(relay.get("/readyz").await.0, 200);
    let relay_metrics = relay.metrics().await;
    for series in [
        "bgpsentry_relay_events_total{result=\"relayed\"}",
        "bgpsentry_relay_events_total{result=\"filtered\"}",
        "bgpsentry_relay_records_produced_total",
    ] {
        assert!(
            crate::util::metric(&relay_metrics, series).unwrap_or(0.0) > 0.0,
            "{series}\n{relay_metrics}"
        );
    }
    assert_eq!(
        crate::util::metric(&relay_metrics, "bgpsentry_relay_produce_errors_total"),
        Some(0.0)
    );
}

async fn start_instance(dir: &tempfile::TempDir, broker: &Broker, name: &str, am: &str) -> Service {
    crate::util::Launch::config(&instance_config(dir.path(), broker, name, am))
        .start_async()
        .await
}
