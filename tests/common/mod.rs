//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bgpsentry"))
}

/// A file of the shared real BGP data beside the checkout.
pub fn shared_data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: the real BGP data set must sit beside the checkout in ../shared/data",
        p.display()
    );
    p
}

/// A file in tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Writes a config into a temp dir and returns its path (the dir lives as long as the guard).
pub fn write_config(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgpsentry.yml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

/// One alert transition as `replay --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub event: String,
    pub rule: String,
    pub prefix: String,
    pub watched_prefix: String,
    pub origin: Option<u64>,
    pub upstream: Option<u64>,
    pub first_seen: String,
    pub fired_at: String,
    pub resolved_at: Option<String>,
    pub json: serde_json::Value,
}

/// Output of a replay: transitions, and stderr.
pub struct Replay {
    pub lines: Vec<Line>,
    pub stderr: String,
    pub success: bool,
}

/// Runs `bgpsentry replay --json` with a config text.
pub fn replay(yaml: &str, files: &[&Path], extra: &[&str]) -> Replay {
    let (_dir, cfg) = write_config(yaml);
    let out = Command::new(bin())
        .arg("replay")
        .arg("--json")
        .arg("--config")
        .arg(&cfg)
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let a = &v["alert"];
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            Line {
                event: v["event"].as_str().unwrap().to_string(),
                rule: s("rule"),
                prefix: s("prefix"),
                watched_prefix: s("watched_prefix"),
                origin: a["origin"].as_u64(),
                upstream: a["upstream"].as_u64(),
                first_seen: s("first_seen"),
                fired_at: s("fired_at"),
                resolved_at: a["resolved_at"].as_str().map(str::to_string),
                json: v.clone(),
            }
        })
        .collect();
    Replay {
        lines,
        stderr: String::from_utf8(out.stderr).unwrap(),
        success: out.status.success(),
    }
}

/// A running `bgpsentry run`, killed on drop.
pub struct Service {
    pub child: Child,
    pub addr: String,
    pub stderr_lines: mpsc::Receiver<String>,
    /// The log lines read while waiting for the address.
    pub startup_lines: Vec<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bgpsentry run` on a free loopback port and waits for its address in the log.
pub fn start_service(config: &Path, envs: &[(&str, &str)]) -> Service {
    let mut child = Command::new(bin())
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[bgpsentry] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Owned by the guard from here on, so a failed start still reaps the process.
    let mut svc = Service {
        child,
        addr: String::new(),
        stderr_lines: rx,
        startup_lines: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = svc
            .stderr_lines
            .recv_timeout(left)
            .expect("bgpsentry did not report its listening address in time");
        svc.startup_lines.push(line.clone());
        if let Some(pos) = line
            .find("://")
            .filter(|_| line.contains("listening on http"))
        {
            svc.addr = line[pos + "://".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            return svc;
        }
    }
}

/// Polls `check` every 20 ms until it returns Some, or panics after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking HTTP GET on loopback: (status, content-type, body); None if it cannot connect.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(&format!("http://{addr}{path}")).call().ok()?;
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.body_mut().read_to_string().ok()?;
    Some((status, ctype, body))
}
