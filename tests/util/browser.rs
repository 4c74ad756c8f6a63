//! Headless Chromium for the tests that look at pages as a browser does.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::poll_until;

/// Headless Chromium, which tests/run-all.sh installs; its absence is a failure, not a skip.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        }
    }
    panic!("chromium is not installed; tests/run-all.sh installs it (apt-get install chromium)");
}

/// Runs headless Chromium with `args` (a throw-away profile under `profile`) and returns its
/// stdout; fails the test if it fails or takes over two minutes.
pub fn run_chromium(profile: &Path, args: &[&str]) -> String {
    let out_file = profile.join("stdout.txt");
    let err_file = profile.join("stderr.txt");
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    // A browser that hangs must fail the test, not stall it, and not outlive it.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(child);
    let status = match poll_until("chromium to finish", 120, || child.0.try_wait().unwrap()) {
        status if status.success() => status,
        status => panic!(
            "chromium failed ({status}): {}",
            std::fs::read_to_string(&err_file).unwrap_or_default()
        ),
    };
    assert!(status.success());
    std::fs::read_to_string(&out_file).unwrap()
}

/// Headless Chromium driven over the DevTools protocol, for tests that use a page as a person
/// does: fill in a form and submit it. The page's own Content-Security-Policy still applies
/// (DevTools evaluations stand for the person's typing and clicking, not for page script).
pub struct DevTools {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    child: std::process::Child,
    _profile: tempfile::TempDir,
}

impl DevTools {
    /// Starts Chromium with remote debugging on a free loopback port and connects to its page.
    pub async fn launch() -> DevTools {
        let profile = tempfile::tempdir().unwrap();
        let data = profile.path().join("profile");
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", data.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        // Chromium writes the port it picked to DevToolsActivePort.
        let port_file = data.join("DevToolsActivePort");
        let port: u16 = super::poll_until_async("chromium's DevTools port", 60, async || {
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        })
        .await;
        let list = format!("http://127.0.0.1:{port}/json/list");
        let ws_url = super::poll_until_async("chromium's page target", 60, async || {
            let targets: serde_json::Value = reqwest::get(&list).await.ok()?.json().await.ok()?;
            targets
                .as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
        })
        .await;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("a DevTools connection");
        DevTools {
            ws,
            next_id: 0,
            child,
            _profile: profile,
        }
    }

    /// Calls a DevTools method and returns its result; fails the test on an error.
    pub async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("a DevTools request sent");
        loop {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} within 60 s"))
                .expect("the DevTools connection open")
                .expect("a DevTools frame");
            let Message::Text(text) = frame else { continue };
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates an expression in the page and returns its value.
    pub async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression} threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Sends this `Authorization` header with every request of the page from now on, as a
    /// browser does once the person has typed Basic credentials.
    pub async fn authorize(&mut self, authorization: &str) {
        self.call("Network.enable", serde_json::json!({})).await;
        self.call(
            "Network.setExtraHTTPHeaders",
            serde_json::json!({ "headers": { "Authorization": authorization } }),
        )
        .await;
    }

    /// Opens a URL and waits until the page has loaded.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({ "url": url }))
            .await;
        self.wait_until(
            &format!("{url} to load"),
            &format!(
                "document.readyState === 'complete' && location.href === {}",
                serde_json::Value::String(url.to_string())
            ),
        )
        .await;
    }

    /// Waits until a JavaScript condition on the page holds (polling; a page that is loading
    /// answers false).
    pub async fn wait_until(&mut self, what: &str, condition: &str) {
        let expr = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let r = self
                .call(
                    "Runtime.evaluate",
                    serde_json::json!({ "expression": expr, "returnByValue": true }),
                )
                .await;
            if r["result"]["value"] == true {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DevTools {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
