//! Idle and slow HTTP clients cannot take the service's file descriptors: the real binary,
//! under a low open file limit, is flooded with idle connections and half-sent headers; it
//! keeps answering `/healthz` and still delivers its webhook notifications.

use std::net::SocketAddr;
use std::time::Duration;

use crate::util::feeds::{WsServer, ris_announce};
use crate::util::notify::Receiver;
use crate::util::{Launch, poll_until_async};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The service's open file limit, soft and hard: with the reserve of 128 descriptors this
/// leaves it 128 HTTP connections.
const FILE_LIMIT: u32 = 256;
/// Connections that never send a byte: more than the whole file limit.
const IDLE: usize = 300;
/// Connections that send half a request header and stop.
const HALF_HEADER: usize = 30;
/// `http.header_timeout_seconds` of the test config.
const HEADER_TIMEOUT_SECONDS: u64 = 5;

fn config(ws: &SocketAddr, hook: &str) -> String {
    format!(
        "defaults:\n  min_vantage_points: 1\n  visibility_min_vantage_points: 0\n\
         prefixes:\n  - prefix: 10.1.0.0/16\n    origins: [100]\n    upstreams: []\n\
         feeds:\n  - kind: ris_live\n    url: ws://{ws}/v1/ws/\n    beacons: []\n    warm_start: false\n\
         http:\n  header_timeout_seconds: {HEADER_TIMEOUT_SECONDS}\n\
         notify:\n  group_window_seconds: 0\n  retry_initial_seconds: 0.2\n  channels:\n    \
         - name: hook\n      kind: webhook\n      url: {hook}\n"
    )
}

/// Opens a TCP connection; one the kernel does not complete soon (the service stopped
/// accepting and its backlog is full) counts as not opened.
async fn connect(addr: SocketAddr) -> Option<TcpStream> {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .ok()
        .and_then(Result::ok)
}

/// Waits until the service closes the connection (end of file or a reset); false if it is
/// still open after `secs` seconds.
async fn closed_within(mut stream: TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // The answer to a request sent earlier; the close comes after it.
            Ok(Ok(_)) => continue,
        }
    }
}

/// `GET /healthz` with a short client timeout; true on 200 `ok`.
async fn healthz(client: &reqwest::Client, base: &str) -> bool {
    match client.get(format!("{base}/healthz")).send().await {
        Ok(r) if r.status() == 200 => r.text().await.is_ok_and(|t| t.trim() == "ok"),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_cannot_starve_healthz_or_the_notifier() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    let mut ws = WsServer::start().await;
    let hook = Receiver::start(vec![]).await;
    let svc = Launch::yaml(&config(&ws.addr, &hook.url()))
        .log("bgpsentry=debug")
        .file_limit(FILE_LIMIT)
        .start_async()
        .await;
    let feed = ws.accept(30).await;
    let addr: SocketAddr = svc
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();

    // A kept-alive connection that goes idle after one answer is closed too.
    let mut kept_alive = TcpStream::connect(addr).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bgpsentry\r\n\r\n")
        .await
        .unwrap();

    // The flood: idle connections, then ones that stop half-way through a header.
    let mut flood = Vec::new();
    for _ in 0..IDLE {
        flood.push(tokio::spawn(connect(addr)));
    }
    for i in 0..HALF_HEADER {
        flood.push(tokio::spawn(async move {
            let mut s = connect(addr).await?;
            let half = format!("GET /healthz HTTP/1.1\r\nHost: bgpsentry\r\nX-Slow-{i}: ");
            // The service may already have closed an over-limit connection.
            let _ = s.write_all(half.as_bytes()).await;
            Some(s)
        }));
    }
    let mut opened = Vec::new();
    for f in flood {
        if let Some(s) = f.await.unwrap() {
            opened.push(s);
        }
    }

    // While the flood holds its connections, an alert still reaches the webhook: the service
    // kept file descriptors for its notifier.
    feed.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 666],
        "10.1.0.0/16",
        1_700_000_001.0,
    ));
    let got = poll_until_async("the webhook notification", 20, || async {
        let got = hook.got();
        (!got.is_empty()).then_some(got)
    })
    .await;
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert!(
        body.to_string().contains("10.1.0.0/16"),
        "webhook body: {body}"
    );

    // The service closes every flood connection: at once over the limit, after the header
    // timeout under it, so none is held for ever.
    let bound = HEADER_TIMEOUT_SECONDS * 4;
    let mut closing = Vec::new();
    for s in opened {
        closing.push(tokio::spawn(closed_within(s, bound)));
    }
    closing.push(tokio::spawn(closed_within(kept_alive, bound)));
    let mut still_open = 0;
    for c in closing {
        if !c.await.unwrap() {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "connections still open {bound} s after the flood"
    );

    // /healthz answers again.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    poll_until_async("/healthz to answer", 20, || async {
        healthz(&client, &svc.base).await.then_some(())
    })
    .await;

    // The limit was derived from the file limit and turned the excess away.
    assert_eq!(
        svc.metric("bgpsentry_http_connection_limit").await,
        Some(128.0)
    );
    let rejected = svc
        .metric("bgpsentry_http_connections_rejected_total")
        .await
        .unwrap_or(0.0);
    assert!(rejected > 0.0, "no connection was turned away");
    eprintln!(
        "{IDLE} idle and {HALF_HEADER} half-header connections; {rejected} turned away at once"
    );
    let log = svc.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
}
