//! deploy/kafka/compose.yaml, run as far as it runs without Docker: every file it mounts exists
//! and passes `bgpsentry check` where the container reads it, the commands it gives the image
//! are ones the binary takes, and the relay and the instances agree on the watch list, the
//! topic and the group, with at least as many partitions as instances. Then the shipped configs
//! run as the compose file wires them, on a real broker, with only the addresses changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::kafka::{Broker, mrt_openbmp_records};
use crate::util::notify::{Alertmanager, Receiver};
use crate::util::scale_out::{
    await_notified, fired_total, notified_firing, owned_partitions, ready, reference_firing,
    start_relay,
};
use crate::util::{Launch, bin, check_config, poll_until_async, root, shared_data};

fn kafka_dir() -> PathBuf {
    root().join("deploy/kafka")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    yaml(&kafka_dir().join("compose.yaml"))
}

/// A service's bind mounts: (host path relative to deploy/kafka, container path).
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let mut parts = v.as_str()?.split(':');
            let (src, dst) = (parts.next()?, parts.next()?);
            src.starts_with('.')
                .then(|| (src.to_string(), dst.to_string()))
        })
        .collect()
}

/// A service's command (empty when it has none: the image's default).
fn command(service: &Value) -> Vec<String> {
    service["command"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_scale_out_compose_file_runs_what_the_binary_takes_with_configs_that_check() {
    let c = compose();
    let services = c["services"].as_object().unwrap();
    let instances: Vec<&String> = services
        .keys()
        .filter(|k| command(&services[*k]).first().map(String::as_str) == Some("run"))
        .collect();
    assert_eq!(instances.len(), 2, "two run instances: {instances:?}");
    let relay = &services["relay"];
    assert_eq!(command(relay)[0], "relay");

    let layout = tempfile::tempdir().unwrap();
    let mut watch_lists = Vec::new();
    let mut events_feeds = Vec::new();
    for name in ["relay"]
        .iter()
        .copied()
        .chain(instances.iter().map(|s| s.as_str()))
    {
        let svc = &services[name];
        assert_eq!(
            svc["image"], "bgpsentry:latest",
            "{name} runs the project's image"
        );
        assert_eq!(svc["build"]["dockerfile"], "deploy/Dockerfile");
        // The config the command names is mounted there, and checks where it lies.
        let cmd = command(svc);
        let at = cmd.iter().position(|a| a == "--config").expect("--config");
        let in_container = &cmd[at + 1];
        let (src, _) = bind_mounts(svc)
            .into_iter()
            .find(|(_, dst)| dst == in_container)
            .unwrap_or_else(|| panic!("{name}: {in_container} is not mounted"));
        let host = kafka_dir().join(&src);
        let copy = layout
            .path()
            .join(name)
            .join(in_container.trim_start_matches('/'));
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(&host, &copy).unwrap_or_else(|e| panic!("{name}: {}: {e}", host.display()));
        let out = check_config(&copy);
        assert!(
            out.status.success(),
            "{name}: bgpsentry check {}:\n{}{}",
            copy.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The binary takes the command's subcommand and flags (`--help` parses them first).
        let mut args: Vec<String> = cmd.clone();
        args[at + 1] = copy.display().to_string();
        args.push("--help".into());
        let help = Command::new(bin()).args(&args).output().unwrap();
        assert!(
            help.status.success(),
            "{name}: {args:?}: {}",
            String::from_utf8_lossy(&help.stderr)
        );
        let cfg = yaml(&copy);
        watch_lists.push(cfg["prefixes"].clone());
        if name != "relay" {
            events_feeds.push(cfg["feeds"][0].clone());
        }
    }
    // The same watch list everywhere: the partition of a prefix is computed from it.
    assert!(
        watch_lists.windows(2).all(|w| w[0] == w[1]),
        "{watch_lists:?}"
    );

    // The relay writes the topic the `topics` job creates; the instances read it in one group.
    let relay_cfg = yaml(&kafka_dir().join("relay.yml"));
    let topic = relay_cfg["relay"]["topic"].as_str().unwrap();
    let create = command(&services["topics"]);
    let create = services["topics"]["entrypoint"]
        .as_array()
        .map_or(create, |e| {
            e.iter().map(|c| c.as_str().unwrap().to_string()).collect()
        });
    assert!(create.contains(&format!("--topic={topic}")), "{create:?}");
    let partitions: usize = create
        .iter()
        .find_map(|a| a.strip_prefix("--partitions="))
        .expect("--partitions")
        .parse()
        .unwrap();
    assert!(
        partitions >= instances.len(),
        "{partitions} partitions for {} instances",
        instances.len()
    );
    for f in &events_feeds {
        assert_eq!(f["kind"], "kafka");
        assert_eq!(f["format"], "events");
        assert_eq!(f["topics"][0], topic);
        assert_eq!(f["group"], events_feeds[0]["group"]);
    }
    // Every broker address names the compose broker.
    let broker = &relay_cfg["relay"]["brokers"][0];
    assert!(services.contains_key(broker.as_str().unwrap().split(':').next().unwrap()));
    assert!(events_feeds.iter().all(|f| &f["brokers"][0] == broker));
    // Each instance keeps its own store.
    let states: Vec<String> = instances
        .iter()
        .map(|i| {
            services[*i]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .find(|v| v.ends_with(":/var/lib/bgpsentry"))
                .unwrap_or_else(|| panic!("{i} has no state volume"))
                .to_string()
        })
        .collect();
    assert_ne!(states[0], states[1]);
    // The Alertmanager config it mounts is the deploy kit's.
    for (src, _) in bind_mounts(&services["alertmanager"]) {
        assert!(kafka_dir().join(&src).exists(), "{src}");
    }
}

/// The shipped relay.yml and instance.yml, run as compose.yaml wires them (one relay, two
/// instances in one group, each with its own state directory, the topic its `topics` job
/// creates), with only the addresses changed: the broker, and Alertmanager. OpenBMP records of
/// the real 2016 RIS data on a topic named like RouteViews' (`routeviews.<collector>.bmp_raw`)
/// reach the relay through its topic pattern, and Alertmanager is told of exactly what one
/// bgpsentry raises on the same data with the shipped watch list: the AS58678 hijack of
/// 202.134.148.0/24, inside the shipped 202.134.148.0/22, raised by one instance.
#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_scale_out_configs_raise_the_real_hijack_through_a_broker() {
    let data = shared_data("mrt/ris-updates.20160811.1600.gz");
    let instance_text = std::fs::read_to_string(kafka_dir().join("instance.yml")).unwrap();
    let watch_list = instance_text
        .split("\nfeeds:")
        .next()
        .expect("instance.yml has a watch list before its feeds");
    let (expected, fired_once) = reference_firing(watch_list, &data);
    assert!(
        expected
            .iter()
            .any(|(_, prefix, origin)| prefix == "202.134.148.0/24" && origin == "58678"),
        "the shipped watch list catches the 2016 hijack: {expected:?}"
    );

    let broker = Broker::start();
    // What the `topics` job of compose.yaml creates, and a RouteViews-like raw topic.
    let services = compose();
    let services = services["services"].as_object().unwrap();
    let create: Vec<String> = services["topics"]["entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let arg = |name: &str| {
        create
            .iter()
            .find_map(|a| a.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {create:?}"))
            .to_string()
    };
    let partitions: i32 = arg("--partitions=").parse().unwrap();
    broker.create_topic(&arg("--topic="), partitions);
    let raw = "routeviews.linx.bmp_raw";
    broker.create_topic(raw, 1);
    let rx = Receiver::start(vec![]).await;
    let am = Alertmanager::start(&rx.url());

    // The shipped files, with the broker and Alertmanager where this test has them.
    let dir = tempfile::tempdir().unwrap();
    let shipped = |name: &str| {
        let text = std::fs::read_to_string(kafka_dir().join(name)).unwrap();
        let text = text
            .replace("stream.routeviews.org:9092", &broker.addr)
            .replace("kafka:9092", &broker.addr)
            .replace("http://alertmanager:9093", &am.url);
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (relay_yml, instance_yml) = (shipped("relay.yml"), shipped("instance.yml"));
    // Each instance's volume: the images set STATE_DIRECTORY to it.
    let start_instance = async |name: &str| {
        let state = dir.path().join(name);
        std::fs::create_dir_all(&state).unwrap();
        Launch::config(&instance_yml)
            .env("STATE_DIRECTORY", state.to_str().unwrap())
            .start_async()
            .await
    };
    let a = start_instance("instance-a").await;
    let b = start_instance("instance-b").await;
    poll_until_async("both instances to own partitions", 60, async || {
        let (pa, pb) = (owned_partitions(&a)?, owned_partitions(&b)?);
        (!pa.is_empty()
            && !pb.is_empty()
            && pa.len() + pb.len() == partitions as usize
            && ready(&a).await
            && ready(&b).await)
            .then_some(())
    })
    .await;

    // The shipped relay starts at the end of a raw topic it never read (live data): a first
    // record is sent until the relay reads one, then the rest.
    let relay = start_relay(&relay_yml).await;
    let records = mrt_openbmp_records(&data);
    let read = async || {
        relay
            .metric_sum("bgpsentry_kafka_records_total{feed=\"routeviews\"")
            .await
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read().await == 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay read nothing of {raw}:\n{}",
            relay.log_text()
        );
        broker.produce(raw, 0, &records[..1]);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    broker.produce(raw, 0, &records[1..]);
    await_notified(&rx, &expected, &relay, &[&a, &b]).await;
    assert_eq!(
        notified_firing(&rx),
        expected,
        "alerts at Alertmanager vs one bgpsentry"
    );
    assert_eq!(
        fired_total(&a).await + fired_total(&b).await,
        fired_once,
        "each alert raised by one instance only"
    );
}
