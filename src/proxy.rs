//! Outbound connections through an HTTP proxy: the feeds' WebSockets, the warm start's and the
//! notifier's HTTP requests.
//!
//! The proxy is the config's `proxy:` when set, else `HTTPS_PROXY` (for `https`/`wss`) or
//! `HTTP_PROXY` (for `http`/`ws`), else `ALL_PROXY` (upper or lower case); a host listed in
//! `NO_PROXY` (or `proxy.no_proxy`) is reached directly. HTTP clients get it through reqwest's
//! own proxy support; a WebSocket is opened through a `CONNECT` tunnel made here.

use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{ProxyConfig, redact_url};

/// The proxy set in the config, for every connection made after it was set.
static CONFIGURED: RwLock<Option<Configured>> = RwLock::new(None);

#[derive(Debug, Clone)]
struct Configured {
    url: String,
    no_proxy: Vec<String>,
}

/// Takes the config's `proxy:` (or its absence) for the connections made from now on.
pub fn configure(cfg: Option<&ProxyConfig>) {
    let new = cfg.map(|c| Configured {
        url: c.url.value.clone(),
        no_proxy: c.no_proxy.clone(),
    });
    *CONFIGURED.write().unwrap_or_else(|p| p.into_inner()) = new;
}

fn configured() -> Option<Configured> {
    CONFIGURED.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// The `NO_PROXY` list: the environment's and the config's.
fn no_proxy_list() -> Vec<String> {
    let mut list: Vec<String> = env(&["NO_PROXY", "no_proxy"])
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    if let Some(c) = configured() {
        list.extend(c.no_proxy);
    }
    list.retain(|s| !s.is_empty());
    list
}

/// Whether `host` is to be reached directly by this `NO_PROXY` list: `*`, an IP address or
/// network, or a domain (with or without a leading dot) that is the host or a parent of it.
pub fn bypasses(list: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.iter().any(|entry| {
        let entry = entry.trim();
        if entry == "*" {
            return true;
        }
        if let Some(ip) = host_ip {
            if let Ok(net) = entry.parse::<IpNet>() {
                return net.contains(&ip);
            }
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            return bare.parse::<IpAddr>().is_ok_and(|e| e == ip);
        }
        // A port after a name is ignored (`example.com:8080`).
        let name = entry
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(entry, |(n, _)| n);
        let name = name.trim_start_matches('.').to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
    })
}

/// The proxy to use for `url` (`https`, `http`, `wss`, `ws`), or `None` to connect directly.
pub fn proxy_for(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    if bypasses(&no_proxy_list(), host) {
        return None;
    }
    if let Some(c) = configured() {
        return Some(c.url);
    }
    let secure = matches!(parsed.scheme(), "https" | "wss");
    let by_scheme = if secure {
        env(&["HTTPS_PROXY", "https_proxy"])
    } else {
        env(&["HTTP_PROXY", "http_proxy"])
    };
    by_scheme.or_else(|| env(&["ALL_PROXY", "all_proxy"]))
}

/// A reqwest client builder that uses the configured proxy (reqwest itself reads
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` when none is configured).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    let Some(c) = configured() else {
        return builder;
    };
    match reqwest::Proxy::all(&c.url) {
        Ok(p) => {
            let list = no_proxy_list().join(",");
            builder.proxy(p.no_proxy(reqwest::NoProxy::from_string(&list)))
        }
        // The config check refuses such a URL; keep the environment's behaviour then.
        Err(_) => builder,
    }
}

/// Largest proxy answer to a `CONNECT` read before giving up (headers only).
const MAX_CONNECT_ANSWER: usize = 16 * 1024;

/// Opens a TCP connection to `host:port` through the HTTP proxy at `proxy` with `CONNECT`.
/// Errors name the proxy (redacted) and what it answered.
pub async fn tunnel(
    proxy: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let shown = redact_url(proxy);
    let url = reqwest::Url::parse(proxy).map_err(|e| format!("bad proxy URL {shown}: {e}"))?;
    let proxy_host = url
        .host_str()
        .ok_or_else(|| format!("the proxy URL {shown} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let proxy_port = url.port_or_known_default().unwrap_or(3128);
    let auth = (!url.username().is_empty()).then(|| {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    });
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let work = async {
        let mut tcp = TcpStream::connect((proxy_host.as_str(), proxy_port))
            .await
            .map_err(|e| format!("cannot reach the proxy {shown}: {e}"))?;
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(a) = auth {
            request.push_str(&format!("Proxy-Authorization: Basic {a}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send CONNECT to the proxy {shown}: {e}"))?;
        // Read byte by byte up to the blank line: nothing after it may be consumed, it
        // belongs to the tunnelled connection.
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            if answer.len() >= MAX_CONNECT_ANSWER {
                return Err(format!(
                    "the proxy {shown} answered CONNECT with over {MAX_CONNECT_ANSWER} bytes of headers"
                ));
            }
            let n = tcp
                .read(&mut byte)
                .await
                .map_err(|e| format!("the proxy {shown} dropped the CONNECT: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "the proxy {shown} closed the connection before answering CONNECT"
                ));
            }
            answer.push(byte[0]);
        }
        let status_line = String::from_utf8_lossy(&answer);
        let status_line = status_line.lines().next().unwrap_or("").trim().to_string();
        let code = status_line.split_whitespace().nth(1).unwrap_or("");
        if !code.starts_with('2') || !status_line.starts_with("HTTP/1.") {
            let shown_line: String = status_line.chars().take(200).collect();
            return Err(format!(
                "the proxy {shown} refused CONNECT {target}: `{shown_line}`"
            ));
        }
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the proxy {shown} did not open a tunnel to {target} within {timeout:?}"
        )),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn no_proxy_matches_names_addresses_and_networks() {
        let list: Vec<String> = ["example.com", ".corp.test", "10.0.0.0/8", "::1", "h:8080"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(bypasses(&list, "example.com"));
        assert!(bypasses(&list, "api.example.com"));
        assert!(!bypasses(&list, "notexample.com"));
        assert!(bypasses(&list, "a.corp.test"));
        assert!(bypasses(&list, "10.1.2.3"));
        assert!(!bypasses(&list, "11.1.2.3"));
        assert!(bypasses(&list, "[::1]"));
        assert!(bypasses(&list, "h"));
        assert!(!bypasses(&list, "stat.ripe.net"));
        assert!(bypasses(&["*".to_string()], "anything"));
        assert!(!bypasses(&[], "anything"));
    }

    #[test]
    fn credentials_are_decoded() {
        assert_eq!(percent_decode("a%40b%3Ac"), "a@b:c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    /// A proxy that answers `answer` to the first request and then echoes.
    async fn fake_proxy(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                if s.read(&mut b).await.unwrap() == 0 {
                    break;
                }
                req.push(b[0]);
            }
            s.write_all(answer.as_bytes()).await.unwrap();
            let mut rest = [0u8; 5];
            if answer.starts_with("HTTP/1.1 200") {
                s.read_exact(&mut rest).await.unwrap();
                s.write_all(&rest).await.unwrap();
            }
            String::from_utf8_lossy(&req).into_owned()
        });
        (format!("http://user:p%40ss@{addr}"), task)
    }

    #[tokio::test]
    async fn a_tunnel_sends_connect_with_credentials_and_carries_bytes_after_it() {
        let (proxy, task) = fake_proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let mut s = tunnel(&proxy, "ris-live.ripe.net", 443, Duration::from_secs(5))
            .await
            .unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        let req = task.await.unwrap();
        assert!(
            req.starts_with("CONNECT ris-live.ripe.net:443 HTTP/1.1\r\n"),
            "{req}"
        );
        let creds = base64::engine::general_purpose::STANDARD.encode("user:p@ss");
        assert!(
            req.contains(&format!("Proxy-Authorization: Basic {creds}")),
            "{req}"
        );
    }

    #[tokio::test]
    async fn a_refused_tunnel_says_what_the_proxy_answered_without_credentials() {
        let (proxy, _task) = fake_proxy("HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let e = tunnel(&proxy, "2001:db8::1", 443, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("403 Forbidden"), "{e}");
        assert!(e.contains("[2001:db8::1]:443"), "{e}");
        assert!(!e.contains("p%40ss"), "{e}");
    }

    #[tokio::test]
    async fn a_proxy_that_talks_garbage_or_closes_is_an_error() {
        let (proxy, _task) = fake_proxy("SSH-2.0-nope\r\n\r\n").await;
        assert!(
            tunnel(&proxy, "h", 1, Duration::from_secs(5))
                .await
                .is_err()
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            drop(s);
        });
        let e = tunnel(&format!("http://{addr}"), "h", 1, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("closed") || e.contains("dropped"), "{e}");
    }
}
