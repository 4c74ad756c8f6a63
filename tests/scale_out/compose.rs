//! deploy/kafka/compose.yaml, run as far as it runs without Docker: every file it mounts exists
//! and passes `bgpsentry check` where the container reads it, the commands it gives the image
//! are ones the binary takes, and the relay and the instances agree on the watch list, the
//! topic and the group, with at least as many partitions as instances.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{bin, check_config, root};

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
