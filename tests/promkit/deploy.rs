//! The deploy kit: every config is checked by its own tool (promtool, amtool, systemd-analyze,
//! kubernetes-validate, bgpsentry check), laid out the way docker-compose mounts it, and the
//! Kubernetes manifests fit together and carry the same rules as rules/. The shipped files are
//! run: the systemd unit's command as an unprivileged user with a read-only config folder, the
//! image's build context alone through cargo, the health check subcommand against a service.
//!
//! Longer than most files: one test per shipped deploy file, each running it as a user would.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::promkit::*;
use crate::util::{Launch, Service, poll_until};
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
    for (src, _) in dockerfile_copies(&text) {
        assert!(
            root().join(&src).exists(),
            "the Dockerfile copies {src}, which does not exist"
        );
    }
    // The store goes to the image's one writable folder, and the image checks its own health
    // with the binary (there is no shell or curl), on the port the service listens on.
    assert!(
        runtime.contains("ENV STATE_DIRECTORY=/var/lib/bgpsentry"),
        "{runtime}"
    );
    let health = runtime
        .split("HEALTHCHECK")
        .nth(1)
        .expect("the image has a HEALTHCHECK");
    let probe = health
        .split("CMD [")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .expect("HEALTHCHECK CMD in exec form (no shell in the image)");
    assert!(
        probe.contains("\"/usr/local/bin/bgpsentry\", \"healthcheck\"")
            && probe.contains("\"127.0.0.1:9179\""),
        "{probe}"
    );
    let cmd = runtime
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    assert!(cmd.contains("\"0.0.0.0:9179\""), "{cmd}");
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
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(m.contains_key(kind), "no {kind}");
    }
    let dep = &m["StatefulSet"];
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

/// (source in the build context, destination under WORKDIR) of every `COPY` of the build stage
/// and of the runtime stage that reads the context (not `--from`).
fn dockerfile_copies(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for copied in text.lines().filter_map(|l| l.strip_prefix("COPY ")) {
        if copied.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = copied.split_whitespace().collect();
        let dst = words.last().unwrap().to_string();
        for src in &words[..words.len() - 1] {
            out.push((src.to_string(), dst.clone()));
        }
    }
    out
}

#[test]
fn dockerfile_build_context_alone_passes_cargo() {
    // What `docker build` can see in the build stage is exactly what the Dockerfile COPYs
    // before its `cargo build`: lay that out alone and let cargo compile it. `cargo check`
    // (not a release build) keeps it fast: it reads the manifest and every declared target,
    // runs build.rs and compiles the crate, so a missing file fails here as it would in the
    // image. The dependencies come from the crate's own target directory.
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let build_stage = &text[..text.rfind("\nFROM ").unwrap()];
    let workdir = build_stage
        .lines()
        .find_map(|l| l.strip_prefix("WORKDIR "))
        .expect("the build stage sets WORKDIR")
        .trim()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("context");
    for (src, dst) in dockerfile_copies(build_stage) {
        let dst = if dst.starts_with('/') {
            PathBuf::from(dst)
        } else {
            Path::new(&workdir).join(dst)
        };
        let rel = dst
            .strip_prefix(&workdir)
            .unwrap_or_else(|_| panic!("COPY {src} goes outside WORKDIR {workdir}"));
        let target = if dst.to_string_lossy().ends_with('/') {
            ctx.join(rel).join(Path::new(&src).file_name().unwrap())
        } else {
            ctx.join(rel)
        };
        copy_tree(&root().join(&src), &target);
    }
    assert!(
        build_stage.contains("cargo build --release --locked"),
        "the build stage runs cargo build"
    );
    let out = Command::new(env!("CARGO"))
        .args(["check", "--locked", "--offline"])
        .current_dir(&ctx)
        .env("CARGO_TARGET_DIR", root().join("target"))
        // The context has no .git, so the build script could not read a revision. Set one:
        // this check shares its build-script unit with the suite's own builds, and without a
        // value of its own it would leave "unknown" for the next build of this checkout (the
        // script reruns for a changed variable, not for a .git it never saw).
        .env("BGPSENTRY_GIT_REVISION", "build-context-check")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Dockerfile's build context does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A WebSocket server on loopback standing in for RIS Live: it accepts every connection and
/// reads what the client sends (its subscriptions) until the client goes. Returns its URL.
fn fake_ris_live() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use futures_util::StreamExt;
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }
        });
    });
    format!("ws://{addr}/v1/ws/")
}

/// `KEY=value` settings of the `[Service]` section of the shipped unit, in order.
fn unit_settings() -> Vec<(String, String)> {
    let unit = std::fs::read_to_string(deploy().join("systemd/bgpsentry.service")).unwrap();
    unit.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn unit_setting(key: &str) -> String {
    unit_settings()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

#[test]
fn systemd_unit_command_runs_unprivileged_with_a_read_only_config_folder_and_gets_ready() {
    // Root in CI: the service drops to `nobody` like DynamicUser= would, with the unit's
    // StateDirectory= and WorkingDirectory= as systemd sets them up.
    let setpriv = tool("setpriv", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // ExecStart, with the binary under test, the config copied into a root-owned folder, and a
    // free port instead of the configured one (tests run side by side).
    let exec: Vec<String> = unit_setting("ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/bgpsentry");
    let config_at = exec
        .iter()
        .position(|a| a == "--config")
        .map(|i| exec[i + 1].clone())
        .expect("ExecStart passes --config");
    assert_eq!(
        Path::new(&config_at).parent().unwrap(),
        Path::new("/etc").join(unit_setting("ConfigurationDirectory")),
        "the config is in the unit's ConfigurationDirectory="
    );
    let etc = dir.path().join("etc/bgpsentry");
    std::fs::create_dir_all(&etc).unwrap();
    // The shipped config, with RIS Live on loopback so that the feed connects here.
    let shipped = std::fs::read_to_string(deploy().join("bgpsentry.example.yml")).unwrap();
    let ris_line = shipped
        .lines()
        .find(|l| l.trim_start().starts_with("- kind: ris_live"))
        .expect("the example config has a ris_live feed");
    let config_text = shipped.replace(
        ris_line,
        &format!(
            "{ris_line}\n    url: {}\n    warm_start: false",
            fake_ris_live()
        ),
    );
    let config = etc.join("bgpsentry.yml");
    std::fs::write(&config, config_text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();

    // StateDirectory=bgpsentry: /var/lib/bgpsentry, owned by the service's user, in
    // $STATE_DIRECTORY; WorkingDirectory=%S/bgpsentry is that folder.
    let state_root = dir.path().join("var/lib");
    let state = state_root.join(unit_setting("StateDirectory"));
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let workdir =
        PathBuf::from(unit_setting("WorkingDirectory").replace("%S", state_root.to_str().unwrap()));
    assert_eq!(workdir, state);

    let mut cmd = Command::new(&setpriv);
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        env!("CARGO_BIN_EXE_bgpsentry"),
    ]);
    for arg in &exec[1..] {
        cmd.arg(if *arg == config_at {
            config.to_str().unwrap()
        } else {
            arg
        });
    }
    cmd.args(["--listen", "127.0.0.1:0"])
        .current_dir(&workdir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("STATE_DIRECTORY", &state)
        .env("RUST_LOG", "info");
    let mut svc = Launch::command(cmd).start();
    let url = format!("http://{}/readyz", svc.addr);
    poll_until("/readyz to answer 200", 30, || {
        if svc.proc.exited().is_some() {
            panic!("bgpsentry exited:\n{}", svc.proc.log());
        }
        matches!(http_get(&url), Some((200, _))).then_some(())
    });
    assert!(
        state.join("bgpsentry.db").is_file(),
        "the store is not in the state directory:\n{}",
        svc.proc.log()
    );
    svc.proc.terminate();
    let left: Vec<_> = std::fs::read_dir(&etc)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["bgpsentry.yml"],
        "the service wrote into its config folder"
    );
}

#[test]
fn an_unwritable_store_location_stops_start_up_naming_the_path_and_the_fix() {
    // The config folder is read-only to the service and nothing says where state goes.
    let setpriv = tool("setpriv", "util-linux");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mrt = dir.path().join("updates.mrt");
    std::fs::write(&mrt, scenario::full_replay()).unwrap();
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, scenario::config(&[&mrt])).unwrap();
    for file in [&mrt, &config] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started:\n{stderr}");
    let db = dir.path().join("bgpsentry.db");
    assert!(
        stderr.contains(&db.display().to_string())
            && stderr.contains("STATE_DIRECTORY")
            && stderr.contains("store.path"),
        "the error does not name the path and the fix:\n{stderr}"
    );
}

#[test]
fn healthcheck_subcommand_exits_0_while_the_service_answers_and_1_when_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mrt = dir.path().join("updates.mrt");
    std::fs::write(&mrt, scenario::full_replay()).unwrap();
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, scenario::config(&[&mrt])).unwrap();
    let mut svc = Service::start(&config);
    let check = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
            .args(["healthcheck", "--address", &svc.addr.to_string()])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(check(&[]).0, Some(0), "{:?}", check(&[]));
    // Ready once the MRT feed has read its file.
    poll_until("healthcheck --ready to pass", 30, || {
        (check(&["--ready"]).0 == Some(0)).then_some(())
    });
    let addr = svc.addr;
    svc.proc.terminate();
    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["healthcheck", "--address", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&addr.to_string()),
        "the failure names the address"
    );
}

#[test]
fn compose_services_have_healthchecks_and_grafana_has_no_default_password() {
    let compose = compose();
    for (name, svc) in compose["services"].as_object().unwrap() {
        let test = svc["healthcheck"]["test"]
            .as_array()
            .unwrap_or_else(|| panic!("compose service {name} has no healthcheck"));
        assert_eq!(test[0], "CMD", "{name}: exec form");
    }
    let bgp = &compose["services"]["bgpsentry"];
    let test: Vec<&str> = bgp["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(&test[1..3], ["/usr/local/bin/bgpsentry", "healthcheck"]);
    let port = bgp["ports"][0]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    assert!(
        test.contains(&format!("127.0.0.1:{port}").as_str()),
        "{test:?}"
    );
    let password = compose["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        .as_str()
        .unwrap();
    // ${VAR:?message}: compose refuses to start without it, saying so.
    assert!(
        password.starts_with("${GRAFANA_ADMIN_PASSWORD:?") && password.len() > 30,
        "{password}"
    );
    // The bgpsentry state volume is where the image keeps its store.
    let mounts: Vec<&str> = bgp["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        mounts.contains(&"bgpsentry-state:/var/lib/bgpsentry"),
        "{mounts:?}"
    );
}

#[test]
fn kubernetes_manifests_pass_the_schemas_and_keep_the_store_on_a_volume() {
    let validate = tool("kubernetes-validate", "kubernetes-validate (pip)");
    let m = manifests();
    let dir = deploy().join("kubernetes");
    let mut core = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let api = yaml(&path)["apiVersion"].as_str().unwrap_or("").to_string();
        // prometheus-operator's and kustomize's kinds have no schema in the package.
        if !api.contains("coreos.com") && !api.contains("kustomize") {
            core.push(path.display().to_string());
        }
    }
    let mut args = vec!["--strict"];
    args.extend(core.iter().map(String::as_str));
    let (ok, out) = run_tool(&validate, &args, &dir);
    assert!(ok && !out.contains("ERROR"), "kubernetes-validate:\n{out}");
    assert_eq!(
        out.matches("passed").count(),
        core.len(),
        "every manifest is checked:\n{out}"
    );

    let sts = &m["StatefulSet"];
    assert_eq!(sts["spec"]["serviceName"], m["Service"]["metadata"]["name"]);
    let pod = &sts["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    for v in pod["volumes"].as_array().unwrap() {
        assert!(v.get("emptyDir").is_none(), "an emptyDir volume: {v}");
    }
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    let claim_name = claim["metadata"]["name"].as_str().unwrap();
    let state_dir = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "STATE_DIRECTORY")
        .expect("the container sets STATE_DIRECTORY")["value"]
        .as_str()
        .unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    let state_mount = mounts
        .iter()
        .find(|v| v["name"] == claim_name)
        .expect("the claim is mounted");
    assert_eq!(state_mount["mountPath"], state_dir);
    assert_ne!(state_mount["readOnly"], true);
    // The config the args name is in the read-only ConfigMap mount; the probes and the
    // Service reach the port the args listen on.
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    let config_dir = Path::new(at("--config")).parent().unwrap();
    let config_mount = mounts
        .iter()
        .find(|v| v["mountPath"] == config_dir.to_str().unwrap())
        .expect("the config's folder is mounted");
    assert_eq!(config_mount["readOnly"], true);
    let port: u64 = at("--listen").rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(c["ports"][0]["containerPort"], port);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"]["port"], c["ports"][0]["name"],
            "{probe}"
        );
    }
    assert_eq!(m["Service"]["spec"]["ports"][0]["port"], port);
}
