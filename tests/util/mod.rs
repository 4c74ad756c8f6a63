//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod browser;
pub mod daemons;
pub mod feeds;
pub mod history;
pub mod kafka;
pub mod notify;
pub mod promkit;
pub mod scale_out;
pub mod service;

pub use service::{Launch, Proc, Service};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The crate root: the deploy kit, fixtures and docs are found from here.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bgpsentry"))
}

/// A file of the shared real BGP data beside the checkout.
pub fn shared_data(rel: &str) -> PathBuf {
    let p = root().join("../shared/data").join(rel);
    assert!(
        p.exists(),
        "{} is missing: the real BGP data set must sit beside the checkout in ../shared/data",
        p.display()
    );
    p
}

/// A file in tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// Runs `bgpsentry check --config CONFIG` to its end.
pub fn check_config(config: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("bgpsentry check runs")
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

impl Line {
    /// When the transition happened: the resolve time of a `resolved`, else the fire time.
    pub fn at(&self) -> &str {
        if self.event == "resolved" {
            self.resolved_at
                .as_deref()
                .expect("a resolved transition has resolved_at")
        } else {
            &self.fired_at
        }
    }
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

/// Polls `check` every 20 ms until it returns `Some`, failing the test after `secs` seconds
/// with `what` (a bound on the wait, never a sleep).
pub fn poll_until<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL_EVERY);
    }
}

/// [`poll_until`] for async tests: the wait yields to the runtime.
pub async fn poll_until_async<T>(
    what: &str,
    secs: u64,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The lines a child process writes to `out`, as they come, read on a thread of their own.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// How often a poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The value of one sample in Prometheus text format (`name{labels}` exactly as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Held by the tests that load the machine (alert storms, the soak, the noise budget): they
/// ran alone in their own test binary before and keep their time bounds only one at a time.
/// Other tests still run beside them.
pub fn heavy() -> HeavyGuard {
    let (lock, freed) = &HEAVY;
    let mut busy = lock.lock().unwrap_or_else(|e| e.into_inner());
    while *busy {
        busy = freed.wait(busy).unwrap_or_else(|e| e.into_inner());
    }
    *busy = true;
    HeavyGuard(())
}

static HEAVY: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Lets the next heavy test run when dropped (also when its test fails). Unlike a mutex
/// guard it may be held across `.await`.
pub struct HeavyGuard(());

impl Drop for HeavyGuard {
    fn drop(&mut self) {
        let (lock, freed) = &HEAVY;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = false;
        freed.notify_one();
    }
}

/// A small deterministic generator (SplitMix64) for the tests that draw kill points, faults
/// and junk: the same seed draws the same run, and the sequence is fixed by this file alone.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `len` characters of hostname-like text.
    pub fn text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-.";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    /// A random subset of `items`, at least one when `items` is not empty.
    pub fn some<T: Clone>(&mut self, items: &[T]) -> Vec<T> {
        let mut picked: Vec<T> = items
            .iter()
            .filter(|_| self.next().is_multiple_of(2))
            .cloned()
            .collect();
        if picked.is_empty() && !items.is_empty() {
            picked.push(items[self.below(items.len() as u64) as usize].clone());
        }
        picked
    }
}

/// The largest response body the tests read (`/alerts` with thousands of alerts).
pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// A blocking HTTP client for loopback: every status is an answer, not an error; 10 s at most.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A blocking HTTP GET on loopback: (status, content-type, body); None if it cannot connect.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String, String)> {
    let mut resp = http_agent()
        .get(&format!("http://{addr}{path}"))
        .call()
        .ok()?;
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // ureq stops at 10 MB by default; `/alerts` under an alert storm is larger.
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .ok()?;
    Some((status, ctype, body))
}
