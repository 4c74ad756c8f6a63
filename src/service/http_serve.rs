//! Serving the HTTP router: tokens and limits from the config, plain HTTP or HTTPS.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{Config, Secret, TlsConfig};
use crate::http::{Guard, Tokens};

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

/// Binds the listener (port 0 picks a free port, which is logged) and serves HTTP or HTTPS
/// until shutdown.
pub(super) async fn serve(
    app: axum::Router,
    listen: SocketAddr,
    tls: Option<&TlsConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e}; set http.listen to a free address")
    })?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let Some(tls) = tls else {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        info!(address = %bound, "listening on http://{bound}");
        return Ok(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await
        }));
    };
    // One crypto provider for the whole process (ring), whatever other crates enable.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config =
        axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot load the TLS certificate {} and key {}: {e}; check http.tls",
                    tls.cert_file.display(),
                    tls.key_file.display()
                )
            })?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let server = axum_server::from_tcp_rustls(listener, config)?.handle(handle);
    info!(address = %bound, "listening on https://{bound}");
    Ok(tokio::spawn(async move {
        server.serve(app.into_make_service()).await
    }))
}
