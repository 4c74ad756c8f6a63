//! Serving the HTTP router: tokens and limits from the config, plain HTTP or HTTPS.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, trace, warn};

use crate::config::{Config, HttpConfig, Secret, TlsConfig};
use crate::http::{Guard, Tokens};
use crate::metrics::Metrics;

/// Reads the API tokens' secrets; the error names the variable or file, never a value.
pub(super) fn read_tokens(cfg: &Config) -> anyhow::Result<Vec<Secret>> {
    let mut secrets = Vec::new();
    for token in &cfg.http.auth.tokens {
        secrets.push(token.value.read().map_err(|e| {
            anyhow::anyhow!("http.auth.tokens (line {}): {e}", token.referenced.line())
        })?);
    }
    Ok(secrets)
}

/// Reads the API tokens and limits from the config; a missing token secret stops start-up.
pub(super) fn guard(cfg: &Config) -> anyhow::Result<Guard> {
    let secrets = read_tokens(cfg)?;
    Ok(Guard {
        tokens: Tokens::new(&secrets),
        protect_metrics: cfg.http.auth.protect_metrics,
        max_request_bytes: cfg.http.max_request_bytes,
        request_timeout: Duration::from_secs(cfg.http.request_timeout_seconds.max(1)),
    })
}

/// File descriptors always kept out of the HTTP server's reach, for the store, the notifier's
/// sends and the feeds' connections: this many, or a quarter of the file limit if that is more.
pub const FD_RESERVE_MIN: u64 = 128;

/// The fewest HTTP connections served, however low the file limit.
const MIN_HTTP_CONNECTIONS: u64 = 16;

/// A file limit beyond any connection count worth allowing (Linux's default `nr_open`);
/// an unlimited limit counts as this.
const NOFILE_CEILING: u64 = 1 << 20;

/// How long a graceful stop waits for open HTTP connections before closing them.
const HTTP_STOP_GRACE: Duration = Duration::from_secs(10);

/// Raises the soft file limit to the hard one (the soft default of 1,024 is far below what a
/// server needs, and only the hard limit is the operator's choice) and returns the soft limit
/// in force afterwards.
pub(super) fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(NOFILE_CEILING).min(NOFILE_CEILING);
    let hard = limit.maximum.unwrap_or(NOFILE_CEILING).min(NOFILE_CEILING);
    if hard <= soft {
        return soft;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            info!(
                from = soft,
                to = hard,
                "raised the open file limit to its hard limit"
            );
            hard
        }
        Err(e) => {
            warn!(
                soft,
                hard, "cannot raise the open file limit to its hard limit: {e}"
            );
            soft
        }
    }
}

/// The most HTTP connections served at once under a file limit of `nofile`: the limit less a
/// reserve of a quarter of it, at least [`FD_RESERVE_MIN`].
pub fn http_connection_limit(nofile: u64) -> usize {
    let reserve = (nofile / 4).max(FD_RESERVE_MIN);
    let limit = nofile.saturating_sub(reserve).max(MIN_HTTP_CONNECTIONS);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// Closes connections over the limit as soon as they are accepted, so that idle or slow
/// clients can never take the file descriptors the rest of the service needs.
#[derive(Clone)]
struct LimitAcceptor {
    slots: Arc<Semaphore>,
    open: IntGauge,
    rejected: IntCounter,
    /// When the limit was last reported in the log, so that a flood logs once a minute.
    last_warned: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How often a connection limit that keeps being reached is logged.
const LIMIT_WARN_INTERVAL: Duration = Duration::from_secs(60);

impl LimitAcceptor {
    fn warn_limit_reached(&self) {
        let Ok(mut last) = self.last_warned.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < LIMIT_WARN_INTERVAL) {
            return;
        }
        *last = Some(std::time::Instant::now());
        warn!(
            max_connections = self.open.get(),
            "HTTP connection limit reached: further connections are closed at once until some \
             end (see bgpsentry_http_connections_rejected_total; at most one such line a minute)"
        );
    }
}

impl<S> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = LimitedStream;
    type Service = S;
    type Future = std::future::Ready<io::Result<(LimitedStream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.rejected.inc();
            debug!(?peer, "HTTP connection over the limit closed");
            self.warn_limit_reached();
            // Dropping the stream closes it now.
            return std::future::ready(Err(io::Error::other("HTTP connection limit reached")));
        };
        self.open.inc();
        trace!(?peer, "HTTP connection accepted");
        std::future::ready(Ok((
            LimitedStream {
                inner: stream,
                _slot: slot,
                open: self.open.clone(),
            },
            service,
        )))
    }
}

/// A connection holding one of the limited slots until it is closed.
struct LimitedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binds the listener (port 0 picks a free port, which is logged) and serves HTTP or HTTPS
/// until shutdown, at most `max_connections` at once, each bounded by the header timeout.
pub(super) async fn serve(
    app: axum::Router,
    listen: SocketAddr,
    http: &HttpConfig,
    max_connections: usize,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<io::Result<()>>> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e}; set http.listen to a free address")
    })?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    metrics
        .http_connection_limit
        .set(i64::try_from(max_connections).unwrap_or(i64::MAX));
    let limit = LimitAcceptor {
        slots: Arc::new(Semaphore::new(max_connections)),
        open: metrics.http_connections.clone(),
        rejected: metrics.http_connections_rejected.clone(),
        last_warned: Arc::default(),
    };
    let header_timeout = Duration::from_secs(http.header_timeout_seconds.max(1));
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        stopper.graceful_shutdown(Some(HTTP_STOP_GRACE));
    });
    let mut server = axum_server::from_tcp(listener)?
        // Until the first request: protocol detection is not covered by hyper's timers.
        .first_request_timeout(header_timeout)
        .handle(handle);
    let builder = server.http_builder();
    // HTTP/1: the header timer also runs while a kept-alive connection waits for its next
    // request, so it is the idle timeout too.
    builder.http1().header_read_timeout(header_timeout);
    // HTTP/2: a peer that stops answering pings is dropped.
    builder
        .http2()
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    info!(
        max_connections,
        header_timeout_seconds = header_timeout.as_secs(),
        "HTTP connection limits"
    );
    let Some(tls) = &http.tls else {
        info!(address = %bound, "listening on http://{bound}");
        let server = server.acceptor(limit);
        return Ok(tokio::spawn(async move {
            server.serve(app.into_make_service()).await
        }));
    };
    let config = load_tls(tls).await?;
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .handshake_timeout(header_timeout)
        .acceptor(limit);
    let server = server.acceptor(acceptor);
    info!(address = %bound, "listening on https://{bound}");
    Ok(tokio::spawn(async move {
        server.serve(app.into_make_service()).await
    }))
}

/// Loads the certificate and key of `http.tls`.
async fn load_tls(tls: &TlsConfig) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    // One crypto provider for the whole process (ring), whatever other crates enable.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot load the TLS certificate {} and key {}: {e}; check http.tls",
                tls.cert_file.display(),
                tls.key_file.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_keeps_a_reserve_of_file_descriptors() {
        assert_eq!(http_connection_limit(1024), 768);
        assert_eq!(http_connection_limit(256), 128);
        assert_eq!(http_connection_limit(65536), 49152);
        // Never none at all, even under a tiny limit.
        assert_eq!(http_connection_limit(100), 16);
    }
}
