//! API tokens, request limits and HTTPS on a running service.

use std::time::Duration;

use crate::util::{Launch, Service, http_agent, http_get, poll_until, write_config};

const TOKEN: &str = "tok-7f3a9c1e-secret";

fn status(req: ureq::RequestBuilder<ureq::typestate::WithoutBody>) -> u16 {
    req.call().unwrap().status().as_u16()
}

#[test]
fn tokens_guard_the_api_and_never_leak() {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("second-token");
    std::fs::write(&token_file, "another-token\n").unwrap();
    let (_dir, cfg) = write_config(&format!(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nhttp:\n  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\n      - file: {}\n",
        token_file.display()
    ));
    // Everything logged, at the most verbose level, is searched for the tokens below.
    let mut svc = Launch::config(&cfg)
        .envs(&[("BGPSENTRY_TEST_TOKEN", TOKEN), ("RUST_LOG", "trace")])
        .start();
    let base = format!("http://{}", svc.addr);
    let a = http_agent();

    let resp = a.get(format!("{base}/alerts")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenges: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );

    let wrong = format!("Bearer {TOKEN}x");
    assert_eq!(
        status(
            a.get(format!("{base}/alerts"))
                .header("Authorization", &wrong)
        ),
        401
    );
    let right = format!("Bearer {TOKEN}");
    assert_eq!(
        status(
            a.get(format!("{base}/alerts"))
                .header("Authorization", &right)
        ),
        200
    );
    assert_eq!(
        status(
            a.get(format!("{base}/alerts/abc"))
                .header("Authorization", "Bearer another-token")
        ),
        404
    );
    assert_eq!(status(a.get(format!("{base}/alerts/abc"))), 401);
    // Probes and metrics stay open.
    assert_eq!(status(a.get(format!("{base}/healthz"))), 200);
    let (code, _, metrics) = http_get(&svc.addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(!metrics.contains(TOKEN) && !metrics.contains("another-token"));

    // A client announcing a huge body is refused before it sends it (a raw socket, since a
    // well-behaved client library would not do this).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&svc.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /alerts HTTP/1.1\r\nHost: x\r\nAuthorization: {right}\r\nContent-Length: 100000000\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }

    // Nothing logged carries a token.
    svc.proc.kill9();
    let logs = svc.proc.lines();
    assert!(logs.len() > 5, "{logs:?}");
    for line in &logs {
        assert!(
            !line.contains(TOKEN) && !line.contains("another-token"),
            "{line}"
        );
    }
}

#[test]
fn metrics_can_be_protected_too() {
    let (_dir, cfg) = write_config(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nhttp:\n  auth:\n    protect_metrics: true\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\n",
    );
    let svc = Launch::config(&cfg)
        .envs(&[("BGPSENTRY_TEST_TOKEN", TOKEN)])
        .start();
    let base = format!("http://{}", svc.addr);
    let a = http_agent();
    assert_eq!(status(a.get(format!("{base}/metrics"))), 401);
    assert_eq!(
        status(
            a.get(format!("{base}/metrics"))
                .header("Authorization", format!("Bearer {TOKEN}"))
        ),
        200
    );
    assert_eq!(status(a.get(format!("{base}/readyz"))), 200);
}

#[test]
fn a_missing_token_secret_stops_start_up_with_a_clear_error() {
    let (_dir, cfg) = write_config(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nhttp:\n  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_UNSET_TOKEN_VARIABLE\n",
    );
    let out = std::process::Command::new(crate::util::bin())
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .env_remove("BGPSENTRY_TEST_UNSET_TOKEN_VARIABLE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BGPSENTRY_TEST_UNSET_TOKEN_VARIABLE is not set"),
        "{err}"
    );
    // A token entry must name exactly one source.
    let (_dir, cfg) = write_config("http:\n  auth:\n    tokens:\n      - {}\n");
    let out = crate::util::check_config(&cfg);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4:9: http.auth.tokens: give `env: VARIABLE` or `file: PATH`"),
        "{err}"
    );
}

#[test]
fn https_with_a_certificate_from_files() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let (_d, cfg) = write_config(&format!(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nhttp:\n  tls:\n    cert_file: {}\n    key_file: {}\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    ));
    let svc = Service::start(&cfg);
    let port = svc.addr.rsplit(':').next().unwrap().to_string();
    let root = ureq::tls::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
                .build(),
        )
        .build()
        .into();
    let body = poll_until("HTTPS answer", 20, || {
        let mut resp = a
            .get(format!("https://localhost:{port}/healthz"))
            .call()
            .ok()?;
        resp.body_mut().read_to_string().ok()
    });
    assert_eq!(body, "ok\n");
    // Plain HTTP to the HTTPS port gets no API answer.
    assert!(http_get(&svc.addr, "/healthz").is_none_or(|(code, _, _)| code != 200));
}
