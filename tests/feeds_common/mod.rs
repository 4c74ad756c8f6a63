//! Fixtures shared by the live-feed tests: a WebSocket server and an HTTP live manager on
//! 127.0.0.1:0 speaking the feeds' wire formats, and the real `bgpsentry run` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Polls `f` every 20 ms until it returns `Some`, failing after `secs` seconds.
pub async fn poll<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the test tells a connection to do.
pub enum Cmd {
    /// Send a text frame.
    Text(String),
    /// Send a binary frame.
    Binary(Vec<u8>),
    /// Close the WebSocket properly.
    Close,
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Keep the connection open but stop reading it: pings go unanswered.
    Freeze,
}

/// One accepted WebSocket connection.
pub struct Conn {
    /// The request path and query of the handshake.
    pub uri: String,
    /// Text frames the client sent.
    pub from_client: mpsc::UnboundedReceiver<String>,
    /// Commands to the server side.
    pub to_client: mpsc::UnboundedSender<Cmd>,
    /// When the handshake completed.
    pub accepted_at: Instant,
}

impl Conn {
    /// Sends a text frame.
    pub fn send(&self, text: &str) {
        self.to_client.send(Cmd::Text(text.to_string())).unwrap();
    }

    /// Receives the next client frame (or fails after 10 s).
    pub async fn recv(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.from_client.recv())
            .await
            .expect("client frame within 10 s")
            .expect("connection open")
    }
}

/// A WebSocket server; each accepted connection is handed to the test.
pub struct WsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl WsServer {
    /// Starts listening on 127.0.0.1:0.
    pub async fn start() -> WsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let uri = Arc::new(Mutex::new(String::new()));
                    let u = uri.clone();
                    // The callback's signature is fixed by the WebSocket library.
                    #[allow(clippy::result_large_err)]
                    let cb = move |req: &Request, resp: Response| {
                        *u.lock().unwrap() = req.uri().to_string();
                        Ok(resp)
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                        return;
                    };
                    let (mut sink, mut stream) = ws.split();
                    let (in_tx, from_client) = mpsc::unbounded_channel();
                    let (to_client, mut cmd_rx) = mpsc::unbounded_channel();
                    let conn = Conn {
                        uri: uri.lock().unwrap().clone(),
                        from_client,
                        to_client,
                        accepted_at: Instant::now(),
                    };
                    if tx.send(conn).is_err() {
                        return;
                    }
                    // Reading answers the client's pings; frames go to the test.
                    let mut reader = tokio::spawn(async move {
                        while let Some(Ok(m)) = stream.next().await {
                            if let Message::Text(t) = m {
                                let _ = in_tx.send(t.to_string());
                            }
                        }
                    });
                    while let Some(cmd) = cmd_rx.recv().await {
                        match cmd {
                            Cmd::Text(t) => {
                                if sink.send(Message::text(t)).await.is_err() {
                                    break;
                                }
                            }
                            Cmd::Binary(b) => {
                                if sink.send(Message::binary(b)).await.is_err() {
                                    break;
                                }
                            }
                            Cmd::Close => {
                                let _ = sink.close().await;
                                break;
                            }
                            Cmd::Drop => break,
                            Cmd::Freeze => {
                                reader.abort();
                                let _ = (&mut reader).await;
                                // Hold the socket open until the test ends.
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                    reader.abort();
                });
            }
        });
        WsServer { addr, conns }
    }

    /// The next accepted connection (or fails after `secs` seconds).
    pub async fn accept(&mut self, secs: u64) -> Conn {
        tokio::time::timeout(Duration::from_secs(secs), self.conns.recv())
            .await
            .expect("a connection in time")
            .expect("server running")
    }

    /// A connection if one is waiting, without blocking.
    pub fn try_accept(&mut self) -> Option<Conn> {
        self.conns.try_recv().ok()
    }
}

/// The running service.
pub struct Service {
    child: Child,
    /// Base URL of its HTTP server.
    pub base: String,
    /// Its stderr lines so far.
    pub log: Arc<Mutex<Vec<String>>>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `bgpsentry run` with this config and environment; waits until it listens.
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Service {
        Self::start_with(config, env, None).await
    }

    /// Like [`Service::start`], under an open file limit (soft and hard, so that the service
    /// cannot raise it) of `file_limit` when given.
    pub async fn start_with(
        config: &str,
        env: &[(&str, &str)],
        file_limit: Option<u32>,
    ) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgpsentry.yml");
        std::fs::write(&path, config).unwrap();
        let bin = env!("CARGO_BIN_EXE_bgpsentry");
        let mut cmd = match file_limit {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["run", "--config"])
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("BGP_API_KEY")
            .env("RUST_LOG", "bgpsentry=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        let l = log.clone();
        let base = poll("the service to listen", 30, || {
            let l = l.clone();
            async move {
                l.lock().unwrap().iter().find_map(|line| {
                    line.split("listening on ")
                        .nth(1)
                        .and_then(|u| u.split_whitespace().next())
                        .map(str::to_string)
                })
            }
        })
        .await;
        Service {
            child,
            base,
            log,
            config: path,
            _dir: dir,
        }
    }

    /// The config file it runs with (rewrite it to reload).
    pub fn config_path(&self) -> PathBuf {
        self.config.clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak resident memory so far in KiB (`VmHWM` of `/proc/PID/status`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Sends it a signal (`HUP`, `TERM`…) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} {} failed", self.pid());
    }

    /// Kills it with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit, failing after `secs` seconds.
    pub async fn terminate(mut self, secs: u64) -> std::process::ExitStatus {
        self.signal("TERM");
        let child = &mut self.child;
        poll("the service to exit after SIGTERM", secs, || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }

    /// GET a path; status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// GET a path with `Authorization: Bearer TOKEN`; status and body.
    pub async fn get_with_token(&self, path: &str, token: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// GET a JSON document.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path).await.1).unwrap()
    }

    /// The value of one sample in `/metrics` (exact name with labels), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let body = self.get("/metrics").await.1;
        body.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// Waits until a metric reaches at least `min`.
    pub async fn wait_metric(&self, series: &str, min: f64) -> f64 {
        poll(&format!("{series} >= {min}"), 20, || async {
            self.metric(series).await.filter(|v| *v >= min)
        })
        .await
    }

    /// Firing alerts.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        self.json("/alerts").await["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// All log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A failing test shows what the service logged.
        if std::thread::panicking() {
            for line in self.log.lock().map(|l| l.clone()).unwrap_or_default() {
                eprintln!("service: {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The crate root (for fixture paths).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A RIS Live UPDATE frame announcing `prefix` from peer `peer` (AS `peer_asn`) with `path`.
pub fn ris_announce(peer: &str, peer_asn: u32, path: &[u32], prefix: &str, ts: f64) -> String {
    serde_json::json!({
        "type": "ris_message",
        "data": {
            "timestamp": ts, "peer": peer, "peer_asn": peer_asn.to_string(),
            "id": "x", "host": "rrc00.ripe.net", "type": "UPDATE",
            "path": path, "community": [], "origin": "IGP",
            "announcements": [{"next_hop": peer, "prefixes": [prefix]}],
            "withdrawals": []
        }
    })
    .to_string()
}

/// A bgproutes `update` record announcing `prefixes` from `vp` (`ASN_IP`) with `path`.
pub fn bgp_announce(vp: &str, path: &str, prefixes: &str, sec: i64) -> String {
    serde_json::json!({
        "record_type": "update", "vp": vp, "sec": sec, "Usec": 0,
        "prefixes": prefixes, "as-path": path, "communities": "",
        "nexthop": vp.split('_').nth(1).unwrap(), "origin": "IGP"
    })
    .to_string()
}

/// One request the live manager received: (api_key, new_pfxs).
pub type Association = (String, String);

/// An HTTP live manager (`GET /update_live_prefixes?api_key=..&new_pfxs=..`) answering with a
/// fixed status and body, recording every request.
pub struct LiveManager {
    /// Base URL.
    pub url: String,
    /// Requests so far.
    pub requests: Arc<Mutex<Vec<Association>>>,
}

impl LiveManager {
    /// Starts one on 127.0.0.1:0.
    pub async fn start(status: u16, body: &'static str) -> LiveManager {
        use axum::extract::{Query, State};
        use std::collections::HashMap;
        let requests: Arc<Mutex<Vec<Association>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/update_live_prefixes",
                axum::routing::get(
                    move |State(r): State<Arc<Mutex<Vec<Association>>>>,
                          Query(q): Query<HashMap<String, String>>| async move {
                        r.lock().unwrap().push((
                            q.get("api_key").cloned().unwrap_or_default(),
                            q.get("new_pfxs").cloned().unwrap_or_default(),
                        ));
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            body.to_string(),
                        )
                    },
                ),
            )
            .with_state(requests.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LiveManager { url, requests }
    }

    /// Number of association requests so far.
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}
