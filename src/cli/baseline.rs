//! `bgpsentry baseline list` and `bgpsentry baseline accept`: the baselines of a running
//! service, through its HTTP API (`GET /baselines`, `POST /baselines/{prefix}`).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::ConfigArg;

/// Arguments of `baseline`.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// What to do.
    #[command(subcommand)]
    action: BaselineAction,
    #[command(flatten)]
    service: ServiceArgs,
}

/// How to reach the running service (shared by the subcommands that talk to it).
#[derive(Debug, clap::Args)]
pub(super) struct ServiceArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Base URL of the running service; default: `http.listen` of the config (https when
    /// `http.tls` is set).
    #[arg(long, env = "BGPSENTRY_URL", global = true)]
    url: Option<String>,
    /// API token (one of `http.auth.tokens`); prefer the environment variable, which does not
    /// show in the process list.
    #[arg(long, env = "BGPSENTRY_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

/// The `baseline` subcommands.
#[derive(Debug, clap::Subcommand)]
enum BaselineAction {
    /// Show the allowed origins and upstreams of every watched prefix (configured, learned,
    /// accepted) and which prefixes are still learning.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Accept origins or upstreams into a prefix's baseline: the alerts they explain resolve,
    /// and the change is kept across restarts.
    Accept {
        /// The watched prefix, as in the config.
        prefix: String,
        /// An origin ASN to allow (repeatable).
        #[arg(long = "origin", value_name = "ASN")]
        origins: Vec<String>,
        /// An upstream ASN to allow (repeatable).
        #[arg(long = "upstream", value_name = "ASN")]
        upstreams: Vec<String>,
    },
}

pub(super) fn base_url(args: &ServiceArgs) -> Result<String, String> {
    if let Some(url) = &args.url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let cfg = args.config.load().map_err(|e| {
        format!("{e}\ncannot read the config to find the service's address; pass --url")
    })?;
    let mut addr = cfg.http.listen;
    // A service listening on every address is reached on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if cfg.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{addr}"))
}

/// An ASN as given on the command line: `65001` or `AS65001`.
fn parse_asn(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    match digits.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!(
            "`{s}` is not an ASN; give a number from 1 to 4294967295, like 65001 or AS65001"
        )),
        Ok(n) => Ok(n),
    }
}

fn list_text(body: &Value) -> String {
    let asns = |v: &Value| -> String {
        match v.as_array() {
            Some(a) if a.is_empty() => "-".into(),
            Some(a) => a
                .iter()
                .map(|x| format!("AS{x}"))
                .collect::<Vec<_>>()
                .join(","),
            None => "not checked".into(),
        }
    };
    let mut out = format!(
        "{:<20} {:<11} {:<32} {:<11} {:<32} {}\n",
        "PREFIX", "ORIGINS", "", "UPSTREAMS", "", "LEARNING UNTIL"
    );
    for b in body["baselines"].as_array().into_iter().flatten() {
        let accepted = |key: &str| match b[key].as_array() {
            Some(a) if !a.is_empty() => format!(" (accepted {})", asns(&b[key])),
            _ => String::new(),
        };
        out += &format!(
            "{:<20} {:<11} {:<32} {:<11} {:<32} {}\n",
            b["prefix"].as_str().unwrap_or_default(),
            b["origins_source"].as_str().unwrap_or_default(),
            asns(&b["origins"]) + &accepted("accepted_origins"),
            b["upstreams_source"].as_str().unwrap_or_default(),
            asns(&b["upstreams"]) + &accepted("accepted_upstreams"),
            b["learning_window_ends"].as_str().unwrap_or("-"),
        );
    }
    out
}

/// Calls the service's API: the JSON answer, or what went wrong in words.
pub(super) async fn call(
    args: &ServiceArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let base = base_url(args)?;
    let url = format!("{base}{path}");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut req = client.request(method, &url);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| {
        format!("cannot reach the service at {base}: {e}; is `bgpsentry run` up? (set --url)")
    })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        return Ok(value);
    }
    let msg = value["error"]
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string);
    let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
        " (pass a token with BGPSENTRY_TOKEN or --token)"
    } else {
        ""
    };
    Err(format!("the service answered {status}: {msg}{hint}"))
}

/// Runs `baseline`; exit 1 when the service refuses or cannot be reached.
pub fn baseline(args: BaselineArgs) -> ExitCode {
    let rt = match super::current_thread_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        match &args.action {
            BaselineAction::List { json } => {
                let body = call(&args.service, reqwest::Method::GET, "/baselines", None).await?;
                Ok(if *json {
                    format!("{body:#}\n")
                } else {
                    list_text(&body)
                })
            }
            BaselineAction::Accept {
                prefix,
                origins,
                upstreams,
            } => {
                let net: ipnet::IpNet = prefix.trim().parse().map_err(|_| {
                    format!(
                        "`{prefix}` is not a prefix; write it as in the config, like 192.0.2.0/24"
                    )
                })?;
                let origins = origins
                    .iter()
                    .map(|s| parse_asn(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let upstreams = upstreams
                    .iter()
                    .map(|s| parse_asn(s))
                    .collect::<Result<Vec<_>, _>>()?;
                if origins.is_empty() && upstreams.is_empty() {
                    return Err("give at least one --origin ASN or --upstream ASN".to_string());
                }
                let body = call(
                    &args.service,
                    reqwest::Method::POST,
                    &format!("/baselines/{net}"),
                    Some(json!({ "origins": origins, "upstreams": upstreams })),
                )
                .await?;
                Ok(format!(
                    "{net}: origins {}, upstreams {}; {} alerts resolved\n",
                    body["origins"], body["upstreams"], body["resolved_alerts"]
                ))
            }
        }
    });
    finish(result)
}

/// Prints what a command against the service answered, or its error, and the exit code.
pub(super) fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asns_are_numbers_or_as_names() {
        assert_eq!(parse_asn("AS65001"), Ok(65001));
        assert_eq!(parse_asn("174"), Ok(174));
        for bad in ["AS0", "ASX", "4294967296", ""] {
            assert!(parse_asn(bad).is_err(), "{bad}");
        }
    }
}
