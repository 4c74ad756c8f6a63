//! Shared helpers of the notifier tests: real servers on loopback (aiosmtpd, an axum
//! receiver, Alertmanager) and the hijack fixture they are fed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

pub use super::{metric, poll_until_async, root};

/// Upper bound on any wait in seconds; reaching it fails the test (it is not a sleep).
pub const WAIT_SECS: u64 = 60;

/// [`WAIT_SECS`] as a duration.
pub const WAIT: Duration = Duration::from_secs(WAIT_SECS);

/// The small real-data fixture: AS58678 hijacks 202.134.148.0/24 16:00:06–16:00:56 (two VPs
/// show it from 16:00:20).
pub fn hijack_fixture() -> PathBuf {
    root().join("tests/fixtures/hijack-202.134.148.0_24.20160811.1600.mrt.gz")
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
}

/// How the receiver answers the next requests (then 200).
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
    /// Answers 500 with a body that never ends.
    Endless,
}

#[derive(Default)]
struct RxState {
    plan: Vec<Answer>,
    got: Vec<Received>,
}

/// An HTTP receiver on 127.0.0.1:0 that records every POST.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<RxState>>,
}

async fn receive(
    State(state): State<Arc<Mutex<RxState>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let answer = {
        let mut s = state.lock().unwrap();
        let a = if s.plan.is_empty() {
            Answer::Status(200)
        } else {
            s.plan.remove(0)
        };
        let status = match a {
            Answer::Status(c) => c,
            Answer::Hang => 0,
            Answer::Endless => 500,
        };
        s.got.push(Received {
            path: uri.path().to_string(),
            headers,
            body,
            status,
        });
        a
    };
    match answer {
        Answer::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Answer::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        Answer::Endless => {
            let chunks = futures_util::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
            });
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::body::Body::from_stream(chunks),
            )
                .into_response()
        }
    }
}

impl Receiver {
    /// Starts a receiver answering by `plan`, then 200.
    pub async fn start(plan: Vec<Answer>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, plan)
    }

    /// A port that is bound but not listening: connections to it are refused until
    /// [`Receiver::start_on`] starts serving on it.
    pub fn reserve() -> (tokio::net::TcpSocket, SocketAddr) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    /// Starts serving on a reserved socket.
    pub fn start_on(socket: tokio::net::TcpSocket, plan: Vec<Answer>) -> Receiver {
        Self::serve(socket.listen(128).unwrap(), plan)
    }

    fn serve(listener: tokio::net::TcpListener, plan: Vec<Answer>) -> Receiver {
        let state = Arc::new(Mutex::new(RxState {
            plan,
            got: Vec::new(),
        }));
        let app = Router::new()
            .fallback(post(receive))
            .with_state(state.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, state }
    }

    /// Everything received so far.
    pub fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_count(&self, n: usize) -> Vec<Received> {
        poll_until_async(
            &format!("{n} requests at the receiver"),
            WAIT_SECS,
            async || {
                let g = self.got();
                (g.len() >= n).then_some(g)
            },
        )
        .await
    }

    /// The URL of the receiver.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

/// The aiosmtpd server from `smtp_server.py`.
pub struct Smtp {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    pub mails: Vec<serde_json::Value>,
}

impl Smtp {
    /// Starts it; `down` keeps connections refused until [`Smtp::up`].
    pub fn start(down: bool, auth: Option<&str>) -> Smtp {
        Self::start_with(down, auth, &[])
    }

    /// Starts it with extra arguments (`--starttls CERT KEY`, `--tls CERT KEY`).
    pub fn start_with(down: bool, auth: Option<&str>, extra: &[&str]) -> Smtp {
        let script = root().join("tests/util/smtp_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script);
        if down {
            cmd.arg("--down");
        }
        if let Some(a) = auth {
            cmd.args(["--auth", a]);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed (tests/run-all.sh installs it with aiosmtpd)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let first: serde_json::Value = rx.recv_timeout(WAIT).expect(
            "the SMTP test server did not start; is aiosmtpd installed (pip install aiosmtpd)?",
        );
        let port = first["port"].as_u64().expect("port line") as u16;
        let stdin = child.stdin.take();
        let mut s = Smtp {
            child,
            stdin,
            port,
            lines: rx,
            mails: Vec::new(),
        };
        if !down {
            s.expect_up();
        }
        s
    }

    fn expect_up(&mut self) {
        let v = self.lines.recv_timeout(WAIT).expect("SMTP server up");
        assert_eq!(v["up"], true, "unexpected line {v}");
    }

    /// Starts accepting connections.
    pub fn up(&mut self) {
        let mut stdin = self.stdin.take().expect("server was started down");
        stdin.write_all(b"up\n").unwrap();
        stdin.flush().unwrap();
        self.expect_up();
    }

    /// Collects messages received so far.
    pub fn poll(&mut self) -> &[serde_json::Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.mails.push(v);
        }
        &self.mails
    }

    /// Waits until `n` messages have arrived.
    pub async fn wait_mails(&mut self, n: usize) -> Vec<serde_json::Value> {
        poll_until_async(&format!("{n} mails"), WAIT_SECS, async || {
            (self.poll().len() >= n).then(|| self.mails.clone())
        })
        .await
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config watching 202.134.148.0/24 (origin AS18196), replaying the hijack fixture, with
/// `notify` given as YAML text (indented two spaces under `notify:`).
pub fn hijack_config(dir: &Path, store: &str, notify: &str, with_feed: bool) -> PathBuf {
    let feed = if with_feed {
        format!(
            "feeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
            hijack_fixture().display()
        )
    } else {
        String::new()
    };
    let text = format!(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    description: test network\n    origins: [18196]\n    visibility_min_vantage_points: 0\n    groups: [noc]\n\
         {feed}http:\n  external_url: https://bgpsentry.example.net/\nstore:\n  path: {store}\nnotify:\n{notify}"
    );
    let path = dir.join(format!("{store}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Every transition of the hijack fixture, replayed in-process through the real engine.
pub fn hijack_transitions() -> Vec<bgpsentry::alerts::AlertTransition> {
    struct Collect(Vec<bgpsentry::alerts::AlertTransition>);
    impl bgpsentry::replay::ReplaySink for Collect {
        fn transition(&mut self, t: &bgpsentry::alerts::AlertTransition) {
            self.0.push(t.clone());
        }
        fn bad_record(&mut self, bad: &bgpsentry::feeds::mrt::BadRecord) {
            panic!("bad record in fixture: {bad}");
        }
    }
    let cfg = bgpsentry::config::Config::parse(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    visibility_min_vantage_points: 0\n    groups: [noc]\n",
        Path::new("test.yml"),
    )
    .unwrap();
    let mut sink = Collect(Vec::new());
    bgpsentry::replay::replay(&cfg.prefixes, None, &[hijack_fixture()], &mut sink).unwrap();
    sink.0
}

/// A notifier running in this process, on an outbox in a temp dir.
pub struct InProcess {
    pub notifier: Option<bgpsentry::notify::Notifier>,
    pub sink: bgpsentry::notify::NotifierSink,
    pub registry: prometheus::Registry,
    pub dir: tempfile::TempDir,
}

impl InProcess {
    /// Starts a notifier from a config's text (`{dir}` is replaced by the temp dir).
    pub fn start(yaml: &str) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let yaml = yaml.replace("{dir}", &dir.path().display().to_string());
        let cfg = bgpsentry::config::Config::parse(&yaml, Path::new("test.yml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let registry = prometheus::Registry::new();
        let notifier = bgpsentry::notify::Notifier::start(&cfg, &registry)
            .unwrap()
            .expect("channels configured");
        let sink = notifier.sink();
        InProcess {
            notifier: Some(notifier),
            sink,
            registry,
            dir,
        }
    }

    /// Hands a transition to the notifier.
    pub fn deliver(&mut self, t: &bgpsentry::alerts::AlertTransition) {
        use bgpsentry::alerts::AlertSink;
        self.sink.deliver(t);
    }

    /// The registry in text format.
    pub fn metrics(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap()
    }

    /// Waits until a series reaches at least `v`.
    pub async fn wait_metric(&self, series: &str, v: f64) {
        poll_until_async(&format!("{series} >= {v}"), WAIT_SECS, async || {
            (metric(&self.metrics(), series).unwrap_or(0.0) >= v).then_some(())
        })
        .await
    }
}

/// A real Alertmanager (Debian package `prometheus-alertmanager`) on 127.0.0.1, sending
/// every notification to `webhook`.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it with one route (no grouping labels, 1 s waits) to a webhook receiver.
    pub fn start(webhook: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(
            &cfg,
            format!(
                "route:\n  receiver: hook\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let bin = "/usr/bin/prometheus-alertmanager";
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin} ({e}); install the Debian package prometheus-alertmanager"
                )
            });
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("msg=\"Listening on\"")
                    && let Some(a) = line.split("address=").nth(1)
                {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("Alertmanager did not report its address");
        Alertmanager {
            child,
            url: format!("http://{addr}"),
            _dir: dir,
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with the `openssl`
/// command: (ca.pem, cert.pem, key.pem).
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command must be installed (tests/run-all.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bgpsentry test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}
