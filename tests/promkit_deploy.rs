//! The deploy kit: every config is checked by its own tool (promtool, amtool, systemd-analyze,
//! bgpsentry check), laid out the way docker-compose mounts it, and the Kubernetes manifests
//! fit together and carry the same rules as rules/.

mod promkit_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use promkit_common::*;
use serde_json::Value;

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    yaml(&deploy().join("docker-compose.yml"))
}

/// A compose service's bind mounts: (host path relative to deploy/, container path).
fn bind_mounts(service: &str) -> Vec<(String, String)> {
    compose()["services"][service]["volumes"]
        .as_array()
        .unwrap_or_else(|| panic!("compose service {service} has no volumes"))
        .iter()
        .filter_map(|v| {
            let mut parts = v.as_str()?.split(':');
            let (src, dst) = (parts.next()?, parts.next()?);
            src.starts_with('.')
                .then(|| (src.to_string(), dst.to_string()))
        })
        .collect()
}

fn copy_tree(src: &Path, dst: &Path) {
    if src.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &dst.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
}

/// Lays out a service's bind mounts under `root` as the container sees them.
fn mount_as_in_container(service: &str, root: &Path) {
    for (src, dst) in bind_mounts(service) {
        let host = deploy().join(&src);
        assert!(
            host.exists(),
            "compose mounts {src} into {service}, but it does not exist"
        );
        copy_tree(&host, &root.join(dst.trim_start_matches('/')));
    }
}

/// The value of a `--flag=value` in a compose service's command.
fn flag(service: &str, name: &str) -> String {
    compose()["services"][service]["command"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| {
            c.as_str()?
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("compose service {service} has no {name}"))
}

#[test]
fn prometheus_config_passes_promtool_with_the_rules_mounted_as_in_compose() {
    let promtool = tool("promtool", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    mount_as_in_container("prometheus", dir.path());
    let config = dir
        .path()
        .join(flag("prometheus", "--config.file").trim_start_matches('/'));
    let (ok, out) = run_tool(
        &promtool,
        &["check", "config", config.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok, "promtool check config:\n{out}");
    assert!(
        out.contains("SUCCESS: 1 rule files found"),
        "the shipped rules are not loaded:\n{out}"
    );

    // It scrapes bgpsentry under the job name the rules select, at the compose service's port,
    // and alerts to the compose Alertmanager.
    let prom = yaml(&config);
    let job = prom["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "bgpsentry")
        .expect("a scrape job named bgpsentry");
    assert_eq!(job["static_configs"][0]["targets"][0], "bgpsentry:9179");
    let bgp_ports = compose()["services"]["bgpsentry"]["ports"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bgp_ports.ends_with(":9179"), "{bgp_ports}");
    assert_eq!(
        prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0],
        "alertmanager:9093"
    );
}

#[test]
fn alertmanager_config_passes_amtool() {
    let amtool = tool("amtool", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    mount_as_in_container("alertmanager", dir.path());
    let config = dir
        .path()
        .join(flag("alertmanager", "--config.file").trim_start_matches('/'));
    let (ok, out) = run_tool(
        &amtool,
        &["check-config", config.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok, "amtool check-config:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    // Routing alerts are grouped per prefix, so two hijacked prefixes are two notifications.
    let am = yaml(&config);
    let group_by: Vec<&str> = am["route"]["group_by"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        group_by.contains(&"prefix") && group_by.contains(&"alertname"),
        "{group_by:?}"
    );
}

#[test]
fn grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    mount_as_in_container("grafana", dir.path());
    let prov = dir.path().join("etc/grafana/provisioning");
    let providers = yaml(&prov.join("dashboards/bgpsentry.yml"));
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let mounted = dir.path().join(path.trim_start_matches('/'));
    for board in ["bgpsentry-overview.json", "bgpsentry-prefix.json"] {
        assert!(
            mounted.join(board).is_file(),
            "{board} is not at the provider's path {path}"
        );
    }
    let ds = yaml(&prov.join("datasources/prometheus.yml"));
    let ds = &ds["datasources"][0];
    assert_eq!(ds["type"], "prometheus");
    assert_eq!(ds["url"], "http://prometheus:9090");
    assert!(compose()["services"]["prometheus"].is_object());
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_non_root() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(stages.len() >= 2, "not a multi-stage build");
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(!["root", "0", "0:0"].contains(&user.trim()), "runs as root");
    assert!(
        !runtime.contains("RUN "),
        "the runtime image should need no shell"
    );
    assert!(text.contains("cargo build --release --locked"));
    for copied in text.lines().filter_map(|l| l.strip_prefix("COPY ")) {
        if copied.starts_with("--from") {
            continue;
        }
        let src = copied.split_whitespace().next().unwrap();
        assert!(
            root().join(src).exists(),
            "the Dockerfile copies {src}, which does not exist"
        );
    }
    let build = &compose()["services"]["bgpsentry"]["build"];
    assert_eq!(build["dockerfile"], "deploy/Dockerfile");
    assert_eq!(build["context"], "..");
}

#[test]
fn systemd_unit_verifies_and_is_sandboxed() {
    let analyze = tool("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(deploy().join("systemd/bgpsentry.service")).unwrap();
    for needed in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=bgpsentry",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed:?}");
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bgpsentry.service");
    std::fs::write(
        &file,
        unit.replace("/usr/local/bin/bgpsentry", env!("CARGO_BIN_EXE_bgpsentry")),
    )
    .unwrap();
    let (ok, out) = run_tool(&analyze, &["verify", file.to_str().unwrap()], dir.path());
    assert!(
        ok && out.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
    let (_, out) = run_tool(
        &analyze,
        &["security", "--offline=true", file.to_str().unwrap()],
        dir.path(),
    );
    let level: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for bgpsentry.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(
        level <= 2.0,
        "exposure level {level} (0 = fully sandboxed, 10 = not at all):\n{out}"
    );
}

fn manifests() -> BTreeMap<String, Value> {
    let dir = deploy().join("kubernetes");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut out = BTreeMap::new();
    for file in kustomization["resources"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        let m = yaml(&dir.join(file));
        for key in ["apiVersion", "kind"] {
            assert!(m[key].is_string(), "{file}: no {key}");
        }
        assert!(
            m["metadata"]["name"].is_string(),
            "{file}: no metadata.name"
        );
        out.insert(m["kind"].as_str().unwrap().to_string(), m);
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        out.len() + 1,
        "every manifest is listed in kustomization.yaml"
    );
    out
}

#[test]
fn kubernetes_manifests_fit_together() {
    let m = manifests();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(m.contains_key(kind), "no {kind}");
    }
    let dep = &m["Deployment"];
    let pod_labels = &dep["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&dep["spec"]["selector"]["matchLabels"], pod_labels);
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        m["Secret"]["metadata"]["name"]
    );
    assert!(m["Secret"]["stringData"].get("BGP_API_KEY").is_some());
    let config_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"].is_object())
        .unwrap();
    assert_eq!(
        config_volume["configMap"]["name"],
        m["ConfigMap"]["metadata"]["name"]
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");

    // Service → pods, ServiceMonitor → Service, by labels and port name.
    let svc = &m["Service"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "the Service does not select the pods");
    }
    let port_name = svc["spec"]["ports"][0]["name"].as_str().unwrap();
    assert_eq!(c["ports"][0]["name"], svc["spec"]["ports"][0]["targetPort"]);
    // The job label prometheus-operator gives the targets is the Service name.
    assert_eq!(svc["metadata"]["name"], "bgpsentry");
    let sm = &m["ServiceMonitor"];
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the ServiceMonitor does not select the Service"
        );
    }
    assert_eq!(sm["spec"]["endpoints"][0]["port"], port_name);
}

#[test]
fn prometheusrule_embeds_the_shipped_rules() {
    let m = manifests();
    let rules = yaml(&root().join("rules/bgpsentry.rules.yml"));
    assert_eq!(
        m["PrometheusRule"]["spec"], rules,
        "deploy/kubernetes/prometheusrule.yaml differs from rules/bgpsentry.rules.yml"
    );
}

#[test]
fn configmap_holds_a_valid_config_that_matches_the_example() {
    let m = manifests();
    let text = m["ConfigMap"]["data"]["bgpsentry.yml"].as_str().unwrap();
    let example = std::fs::read_to_string(deploy().join("bgpsentry.example.yml")).unwrap();
    assert_eq!(
        text, example,
        "the ConfigMap's config differs from deploy/bgpsentry.example.yml"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bgpsentry.yml");
    std::fs::write(&file, text).unwrap();
    let (ok, out) = run_tool(
        Path::new(env!("CARGO_BIN_EXE_bgpsentry")),
        &["check", "--config", file.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok, "bgpsentry check rejects the ConfigMap's config:\n{out}");
}
