//! `bgpsentry healthcheck`: probes a running service's `/healthz` or `/readyz`, for container
//! health checks in images without a shell or curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `healthcheck`.
#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The service's HTTP address (its `http.listen` or `--listen`); an unspecified address
    /// such as 0.0.0.0 is probed on loopback.
    #[arg(long, default_value = "127.0.0.1:9179")]
    address: SocketAddr,
    /// Probe `/readyz` (every feed connected) instead of `/healthz` (the process serves
    /// requests).
    #[arg(long)]
    ready: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    timeout_seconds: u64,
}

/// The probed address: the listen address itself, or loopback for a wildcard one.
fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Exit 0 when the endpoint answers 200, else 1 with the reason on stderr.
pub fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let url = format!("http://{}{path}", probe_address(args.address));
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout_seconds))
            .build()?;
        let resp = client.get(&url).send().await?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    });
    match result {
        Ok((status, _)) if status == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok((status, body)) => {
            eprintln!("unhealthy: {url} answered {status}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "unhealthy: cannot reach {url}: {e}; is bgpsentry running and listening there (--address)?"
            );
            ExitCode::FAILURE
        }
    }
}
