//! End to end through the real Prometheus stack: bgpsentry is fed a hijack, a real Prometheus
//! scrapes it and evaluates the shipped rules, a real Alertmanager delivers the alert to a
//! webhook receiver in this test; then the hijack is withdrawn and the resolution arrives the
//! same way.
//!
//! The BGP data reaches bgpsentry through its `mrt` feed reading a named pipe that this test
//! writes, so one bgpsentry process holds the hijack for as long as the test wants and sees
//! the withdrawal later, like a live feed. [`PipeFeed`] is the only part that knows this; a
//! live-feed fixture server can take its place without touching the rest.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::promkit::*;
use crate::util::{Service, poll_until};
use serde_json::Value;

/// Feeds bgpsentry MRT records through a named pipe that stays open between writes.
struct PipeFeed {
    path: PathBuf,
    writer: Option<File>,
}

impl PipeFeed {
    fn create(dir: &Path) -> PipeFeed {
        let path = dir.join("updates.pipe");
        let status = Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success(), "mkfifo failed");
        PipeFeed { path, writer: None }
    }

    /// The feed's config entry points at the pipe.
    fn config(&self) -> String {
        scenario::config(&[&self.path])
    }

    /// Opens the pipe for writing; it opens once bgpsentry opens it for reading.
    fn connect(&mut self, svc: &mut Service) {
        let (tx, rx) = mpsc::channel();
        let path = self.path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(File::options().write(true).open(path));
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(file) = rx.recv_timeout(Duration::from_millis(100)) {
                self.writer = Some(file.unwrap());
                return;
            }
            if let Some(status) = svc.proc.exited() {
                panic!("bgpsentry exited ({status}):\n{}", svc.proc.log());
            }
            assert!(
                Instant::now() < deadline,
                "bgpsentry did not open the MRT pipe"
            );
        }
    }

    /// Writes records, then enough filler for the feed to hand them to the engine now.
    fn send(&mut self, records: &[u8], t: u32) {
        let w = self.writer.as_mut().unwrap();
        w.write_all(records).unwrap();
        w.write_all(&scenario::batch_filler(t)).unwrap();
        w.flush().unwrap();
    }

    fn legitimate_routes(&mut self) {
        self.send(&scenario::steady(1_700_000_000), 1_700_000_001);
    }

    fn hijack(&mut self) {
        self.send(&scenario::hijack(1_700_000_060), 1_700_000_061);
    }

    fn withdraw_hijack(&mut self) {
        self.send(&scenario::hijack_withdrawn(1_700_000_120), 1_700_000_121);
    }

    /// Ends the stream (the feed then reports itself done).
    fn close(&mut self) {
        self.writer = None;
    }
}

/// Alertmanager's webhook posts, as JSON, from an HTTP server on a loopback port.
struct WebhookReceiver {
    url: String,
    posts: mpsc::Receiver<Value>,
    _runtime: tokio::runtime::Runtime,
}

impl WebhookReceiver {
    fn start() -> WebhookReceiver {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (tx, posts) = mpsc::channel::<Value>();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body);
                    "ok"
                }
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver {
            url: format!("http://{addr}/hook"),
            posts,
            _runtime: runtime,
        }
    }

    /// Waits for a post that carries `alertname` on `prefix` in `status`; returns that alert.
    /// Every post seen is kept in `seen` for failure messages.
    fn wait_for(
        &self,
        alertname: &str,
        status: &str,
        seen: &mut Vec<Value>,
        procs: &mut [&mut Proc],
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(post) = self.posts.recv_timeout(Duration::from_millis(200)) {
                seen.push(post.clone());
                let found = post["alerts"].as_array().into_iter().flatten().find(|a| {
                    a["labels"]["alertname"] == alertname
                        && a["labels"]["prefix"] == scenario::PREFIX
                        && a["status"] == status
                });
                if let Some(a) = found {
                    return a.clone();
                }
            }
            for p in procs.iter_mut() {
                if let Some(s) = p.exited() {
                    panic!("{} exited ({s}):\n{}", p.name, p.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {status} {alertname} reached the webhook within 120 s; posts: {seen:#?}\n{}",
                procs
                    .iter()
                    .map(|p| format!("--- {} ---\n{}", p.name, p.log()))
                    .collect::<String>()
            );
        }
    }
}

/// Starts a program that must be told its port: picks a free one and retries with another
/// if the program exits (the port was taken in between) before `/-/ready` answers.
fn start_on_free_port(name: &str, make: impl Fn(u16) -> Command) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut proc = Proc::spawn(name, make(port));
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(http_get(&ready), Some((200, _))) {
                return (proc, port);
            }
            if proc.exited().is_some() {
                eprintln!("{name} exited on port {port}; retrying:\n{}", proc.log());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready within 60 s:\n{}",
                proc.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{name} did not start on any of 5 ports");
}

/// Runs an instant query; returns the result vector.
fn query(prometheus: u16, q: &str) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{prometheus}/api/v1/query");
    let Some((200, body)) = http_get_query(&url, &[("query", q)]) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn hijack_alert_fires_and_resolves_through_prometheus_and_alertmanager() {
    let prometheus_bin = tool("prometheus", "prometheus");
    let alertmanager_bin = tool("prometheus-alertmanager", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    let webhook = WebhookReceiver::start();

    // bgpsentry, fed the legitimate routes first.
    let mut feed = PipeFeed::create(dir.path());
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, feed.config()).unwrap();
    let mut svc = Service::start(&config);
    feed.connect(&mut svc);
    feed.legitimate_routes();

    // Alertmanager, delivering to the webhook receiver.
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: test\n  group_by: [alertname, prefix]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            webhook.url
        ),
    )
    .unwrap();
    let am_dir = dir.path().join("alertmanager-data");
    let (mut am, am_port) = start_on_free_port("alertmanager", |port| {
        let mut c = Command::new(&alertmanager_bin);
        c.arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", am_dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        c
    });

    // Prometheus, scraping bgpsentry every second with the shipped rules.
    let rules = root().join("rules/bgpsentry.rules.yml");
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: bgpsentry\n    static_configs:\n      - targets: ['{}']\n",
            rules.display().to_string(),
            svc.addr
        ),
    )
    .unwrap();
    let tsdb = dir.path().join("prometheus-data");
    let (mut prom, prom_port) = start_on_free_port("prometheus", |port| {
        let mut c = Command::new(&prometheus_bin);
        c.arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        c
    });

    // With only legitimate routes, Prometheus sees all three vantage points and no hijack.
    let vps = format!(
        "bgpsentry_prefix_vantage_points{{prefix=\"{}\"}} == 3",
        scenario::PREFIX
    );
    poll_until("Prometheus to scrape the legitimate routes", 60, || {
        (!query(prom_port, &vps).is_empty()).then_some(())
    });
    // One more evaluation of the routing rules after that scrape: the alert must not be there.
    let scraped_at = chrono::Utc::now();
    poll_until("an evaluation of the routing rules", 30, || {
        let (_, body) = http_get(&format!("http://127.0.0.1:{prom_port}/api/v1/rules"))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let group = v["data"]["groups"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == "bgpsentry.routing")?
            .clone();
        let last = chrono::DateTime::parse_from_rfc3339(group["lastEvaluation"].as_str()?).ok()?;
        (last > scraped_at).then_some(())
    });
    assert!(
        query(
            prom_port,
            "ALERTS{alertname=~\"Bgpsentry.*Hijack|BgpsentryNewUpstream\"}"
        )
        .is_empty(),
        "a routing alert is up before any hijack"
    );

    let mut seen = Vec::new();
    feed.hijack();
    let fired = webhook.wait_for(
        "BgpsentryOriginHijack",
        "firing",
        &mut seen,
        &mut [&mut svc.proc, &mut prom, &mut am],
    );
    assert_eq!(fired["labels"]["severity"], "critical", "{fired:#}");
    assert_eq!(fired["labels"]["job"], "bgpsentry", "{fired:#}");
    assert!(
        fired["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("docs/src/runbook.md#bgpsentryoriginhijack"),
        "{fired:#}"
    );
    assert!(
        fired["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains(scenario::PREFIX),
        "{fired:#}"
    );
    // bgpsentry itself agrees, with the hijacker named.
    let (_, alerts) = http_get(&format!("http://{}/alerts", svc.addr)).unwrap();
    let alerts: Value = serde_json::from_str(&alerts).unwrap();
    assert_eq!(
        alerts["alerts"][0]["origin"],
        scenario::HIJACKER,
        "{alerts:#}"
    );

    feed.withdraw_hijack();
    let resolved = webhook.wait_for(
        "BgpsentryOriginHijack",
        "resolved",
        &mut seen,
        &mut [&mut svc.proc, &mut prom, &mut am],
    );
    assert_eq!(resolved["labels"]["severity"], "critical");
    // The resolution came from bgpsentry, still running and scraped: not from a lost target.
    assert!(svc.proc.exited().is_none());
    assert!(
        !query(prom_port, "up{job=\"bgpsentry\"} == 1").is_empty(),
        "bgpsentry is not being scraped"
    );
    let (_, resolved_alerts) =
        http_get(&format!("http://{}/alerts?state=resolved", svc.addr)).unwrap();
    assert!(
        resolved_alerts.contains("origin_hijack"),
        "{resolved_alerts}"
    );

    feed.close();
    svc.proc.terminate();
    prom.terminate();
    am.terminate();
}
