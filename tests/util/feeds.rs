//! Fixtures shared by the live-feed tests: a WebSocket server and an HTTP live manager on
//! 127.0.0.1:0 speaking the feeds' wire formats, and the frames they send.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

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
