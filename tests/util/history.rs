//! Loopback stand-ins for the feeds' history services (RIPEstat, the bgproutes.io REST API)
//! and for an HTTP proxy: real HTTP/1.1 on 127.0.0.1:0, every request recorded, answers
//! computed by the test (including broken ones: cut short, oversized, wrong status).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query, as sent (an absolute-form target is cut to its path).
    pub target: String,
    /// Header names lower-cased, with values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| decode(v))
        })
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (Content-Length still says all), then close.
    pub cut_after: Option<usize>,
}

impl Answer {
    /// 200 with a JSON body.
    pub fn json(body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            cut_after: None,
        }
    }

    /// A status with a text body.
    pub fn status(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            cut_after: None,
        }
    }
}

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

/// An HTTP server answering with `handler`.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    release: watch::Sender<bool>,
}

impl HttpServer {
    /// Starts answering at once.
    pub async fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> HttpServer {
        let s = HttpServer::start_held(handler).await;
        s.release();
        s
    }

    /// Starts, but holds every answer back until [`HttpServer::release`].
    pub async fn start_held(
        handler: impl Fn(&Request) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (release, released) = watch::channel(false);
        let handler: Handler = Arc::new(handler);
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (handler, recorded, mut released) =
                    (handler.clone(), recorded.clone(), released.clone());
                tokio::spawn(async move {
                    let _ = serve(tcp, handler, recorded, &mut released).await;
                });
            }
        });
        HttpServer {
            addr,
            requests,
            release,
        }
    }

    /// Lets held answers go.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads a request head up to the blank line.
async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut b).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn serve(
    mut tcp: TcpStream,
    handler: Handler,
    recorded: Arc<Mutex<Vec<Request>>>,
    released: &mut watch::Receiver<bool>,
) -> Option<()> {
    let head = read_head(&mut tcp).await?;
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let mut target = first.next()?.to_string();
    if let Some(rest) = target.strip_prefix("http://") {
        target = rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string());
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await.ok()?;
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    recorded.lock().unwrap().push(req.clone());
    let _ = released.wait_for(|r| *r).await;
    let a = handler(&req);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        a.status,
        a.body.len()
    );
    for (n, v) in &a.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    tcp.write_all(out.as_bytes()).await.ok()?;
    let n = a.cut_after.unwrap_or(a.body.len()).min(a.body.len());
    tcp.write_all(&a.body[..n]).await.ok()?;
    tcp.flush().await.ok()?;
    Some(())
}

/// An HTTP proxy on loopback: tunnels `CONNECT` and forwards absolute-form requests, and
/// records the first line of each request it got.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts one on 127.0.0.1:0.
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut client).await else {
                        return;
                    };
                    let first = head.lines().next().unwrap_or("").to_string();
                    log.lock().unwrap().push(first.clone());
                    let mut parts = first.split_whitespace();
                    let method = parts.next().unwrap_or("");
                    let target = parts.next().unwrap_or("");
                    if method == "CONNECT" {
                        let Ok(mut upstream) = TcpStream::connect(target).await else {
                            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                            return;
                        };
                        let _ = client
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    } else if let Some(rest) = target.strip_prefix("http://") {
                        let host = rest.split('/').next().unwrap_or("");
                        let Ok(mut upstream) = TcpStream::connect(host).await else {
                            return;
                        };
                        let _ = upstream.write_all(head.as_bytes()).await;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Proxy { addr, seen }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// First lines of the requests so far (`CONNECT host:port HTTP/1.1`, `GET http://… HTTP/1.1`).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}
