//! `bgpsentry stream`: the reference client's output format, byte for byte, on known input.

use std::process::{Command, Stdio};

use crate::util::feeds::{Cmd, LiveManager, WsServer};

const KEY: &str = "stream-test-key-42";

/// Runs `bgpsentry stream ARGS` while `serve` feeds the server; returns (exit ok, stdout, stderr).
async fn run_stream(args: Vec<String>, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bgpsentry"));
    cmd.arg("stream")
        .args(args)
        .env_remove("BGP_API_KEY")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn finish(child: std::process::Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const BGP_FRAMES: [&str; 6] = [
    r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000000,"Usec":123456,"prefixes":"192.0.2.0/24","as-path":"3333 1299 64500","communities":"1299:30000 3333:100","nexthop":"193.0.0.56","origin":"IGP"}"#,
    r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000001,"prefixes":"192.0.2.0/24,2001:db8::/32","as-path":"3333 64500","nexthop":"193.0.0.56","origin":"INCOMPLETE"}"#,
    r#"{"record_type":"stats","whatever":1}"#,
    r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000002,"Usec":0,"withdrawals":"192.0.2.0/24"}"#,
    "not json at all",
    r#"{"record_type":"bmp_update","vp":"65000_10.0.0.1","bmp_peer":"64502_2001:db8::2","sec":1700000003,"Usec":500000,"prefixes":"2001:db8::/32","as-path":"64502 64500","nexthop":"2001:db8::2","origin":"IGP"}"#,
];

const BGP_EXPECTED: &str = "\
1700000000.123456|U|3333|193.0.0.56|192.0.2.0/24|3333 1299 64500|1299:30000 3333:100|IGP|193.0.0.56
1700000001|U|3333|193.0.0.56|192.0.2.0/24,2001:db8::/32|3333 64500||INCOMPLETE|193.0.0.56
1700000002.0|W|3333|193.0.0.56|192.0.2.0/24|||None|None
1700000003.5|U|64502|2001:db8::2|2001:db8::/32|64502 64500||IGP|2001:db8::2|65000|10.0.0.1
";

async fn bgproutes_stream(extra: &[&str]) -> (bool, String, String, Vec<(String, String)>) {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let mut args: Vec<String> = [
        "--feed",
        "bgproutes",
        "--prefixes",
        "192.0.2.0/24,2001:db8::/32",
        "--url",
        &format!("ws://{}", server.addr),
        "--live-manager-url",
        &manager.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = run_stream(args, &[("BGP_API_KEY", KEY)]).await;
    let conn = server.accept(20).await;
    for f in BGP_FRAMES {
        conn.send(f);
    }
    conn.to_client.send(Cmd::Close).unwrap();
    let (ok, out, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .unwrap();
    let reqs = manager.requests.lock().unwrap().clone();
    (ok, out, err, reqs)
}

#[tokio::test(flavor = "multi_thread")]
async fn bgproutes_pipe_format_byte_for_byte() {
    let (ok, out, err, reqs) = bgproutes_stream(&[]).await;
    assert_eq!(out, BGP_EXPECTED);
    assert_eq!(
        reqs,
        [(KEY.to_string(), "192.0.2.0/24,2001:db8::/32".to_string())]
    );
    // Like the reference client it does not reconnect: a cut connection is an error.
    assert!(!ok);
    assert!(err.contains("bgproutes connection error"), "{err}");
    assert!(!err.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn bgproutes_json_lines_and_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let log_arg = log.to_str().unwrap().to_string();
    let (_, out, err, _) = bgproutes_stream(&["--json", "-vv", "--log-file", &log_arg]).await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["type"], "U");
    assert_eq!(lines[0]["vp_asn"], 3333);
    assert_eq!(lines[0]["sec"], 1700000000);
    assert_eq!(lines[0]["usec"], 123456);
    assert_eq!(lines[1]["prefixes"][1], "2001:db8::/32");
    assert_eq!(lines[2]["type"], "W");
    assert_eq!(lines[3]["exporter"][0], 65000);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("prefixes associated"), "{logged}");
    assert!(logged.contains("skipping record type stats"), "{logged}");
    assert!(!logged.contains(KEY));
    // The log went to the file, not to stderr.
    assert!(!err.contains("prefixes associated"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ris_live_stream_prints_the_same_format() {
    let mut server = WsServer::start().await;
    let args: Vec<String> = [
        "--feed",
        "ris_live",
        "--prefixes",
        "2a12::/16,2806::/16",
        "--url",
        &format!("ws://{}/v1/ws/", server.addr),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = run_stream(args, &[]).await;
    let mut conn = server.accept(20).await;
    assert!(conn.uri.contains("client=bgpsentry"), "{}", conn.uri);
    for _ in 0..2 {
        let sub: serde_json::Value = serde_json::from_str(&conn.recv().await).unwrap();
        assert_eq!(sub["type"], "ris_subscribe");
    }
    let frames =
        std::fs::read_to_string(crate::util::root().join("tests/fixtures/ris-live-frames.jsonl"))
            .unwrap();
    for f in frames.lines().take(4) {
        conn.send(f);
    }
    conn.to_client.send(Cmd::Close).unwrap();
    let (ok, out, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("RIS Live connection error"), "{err}");
    let expected = "\
1789019601.67|U|207841|2001:7f8:4::3:2be1:1|2a12:3fc6::/48|207841 6939 216211 206069 204211 57330 57330 57330||IGP|2001:7f8:4::3:2be1:1
1789019606.21|U|13030|2001:7f8:1::a501:3030:1|2806:320:340::/42|13030 2914 32098 28438|2914:410 2914:1004 2914:2000 2914:3000 32098:4007 32098:6100 32098:17031 13030:51502|IGP|2001:7f8:1::a501:3030:1
1789019606.21|W|13030|2001:7f8:1::a501:3030:1|2a12:ca42::/32,2a12:ca45::/32,2a12:ca46::/32,2a12:ca47::/32,2a12:ca43::/32,2a12:ca40::/32,2a12:ca40::/29,2a12:ca41::/32,2a12:ca44::/32|||None|None
1789019601.67|U|207841|2001:7f8:4::3:2be1:1|2806:202::/32|207841 28458|8714:65010 8714:65012|IGP|2001:7f8:4::6f2a:1
";
    assert_eq!(out, expected);
}

#[test]
fn bad_arguments_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["stream", "--feed", "ris_live", "--prefixes", "192.0.2.0/33"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a prefix"));
    let eleven: Vec<String> = (0..11).map(|i| format!("10.{i}.0.0/16")).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args([
            "stream",
            "--feed",
            "bgproutes",
            "--prefixes",
            &eleven.join(","),
        ])
        .env("BGP_API_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 10"));
    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["stream", "--feed", "bgproutes", "--prefixes", "10.0.0.0/8"])
        .env_remove("BGP_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set the environment variable BGP_API_KEY")
    );
}
