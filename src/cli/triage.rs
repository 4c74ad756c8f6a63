//! `bgpsentry ack` and `bgpsentry silence add|list|rm`: acknowledging alerts and silencing
//! them on a running service, through its HTTP API (`POST`/`DELETE /alerts/{id}/ack`,
//! `GET`/`POST /silences`, `DELETE /silences/{id}`). The service needs an API token for these
//! (`http.auth.tokens`), given with `BGPSENTRY_TOKEN` or `--token`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::baseline::{ServiceArgs, call, finish};

/// Arguments of `ack`.
#[derive(Debug, clap::Args)]
pub struct AckArgs {
    /// The alert's id (from `/alerts`, the status page or a notification).
    id: String,
    /// Who acknowledges; default: the user name ($USER).
    #[arg(long, env = "BGPSENTRY_OPERATOR")]
    by: Option<String>,
    /// What is being done about it.
    #[arg(long, default_value = "")]
    comment: String,
    /// Withdraw the acknowledgement instead (reminders start again).
    #[arg(long, conflicts_with_all = ["by", "comment"])]
    remove: bool,
    #[command(flatten)]
    service: ServiceArgs,
}

/// Arguments of `silence`.
#[derive(Debug, clap::Args)]
pub struct SilenceArgs {
    /// What to do.
    #[command(subcommand)]
    action: SilenceAction,
    #[command(flatten)]
    service: ServiceArgs,
}

/// The `silence` subcommands.
#[derive(Debug, clap::Subcommand)]
enum SilenceAction {
    /// Silence the alerts that match every matcher given (at least one) for a while: they
    /// still show, but no channel is told until the silence ends.
    Add {
        /// A rule, like origin_hijack.
        #[arg(long)]
        rule: Option<String>,
        /// A watched prefix, exactly as in the config.
        #[arg(long)]
        watched_prefix: Option<String>,
        /// An affected prefix: it and every prefix inside it.
        #[arg(long)]
        prefix: Option<String>,
        /// The offending origin ASN (65001 or AS65001).
        #[arg(long)]
        origin: Option<String>,
        /// A notification group of the watched prefix.
        #[arg(long)]
        group: Option<String>,
        /// How long: 90m, 2h, 7d, 1h30m.
        #[arg(long, required_unless_present = "until", conflicts_with = "until")]
        duration: Option<String>,
        /// Until when, RFC 3339 (2026-12-01T18:00:00Z).
        #[arg(long)]
        until: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// Who adds it; default: the user name ($USER).
        #[arg(long, env = "BGPSENTRY_OPERATOR")]
        by: Option<String>,
    },
    /// List the silences in force (with --all, the expired ones too).
    List {
        /// Expired silences too.
        #[arg(long)]
        all: bool,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a silence: what it held back and still fires is notified.
    Rm {
        /// The silence's id (from `silence list`).
        id: String,
    },
}

/// Who acts: `--by`, else the login name.
fn operator(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

fn silences_text(body: &Value) -> String {
    let list = body["silences"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no silences\n".into();
    }
    let mut out = format!(
        "{:<16}  {:<7}  {:<20}  {:<8}  {:<12}  {}\n",
        "ID", "STATE", "UNTIL", "MATCHING", "BY", "MATCHERS / COMMENT"
    );
    for s in list {
        let m = &s["matchers"];
        let matchers = ["rule", "watched_prefix", "prefix", "origin", "group"]
            .iter()
            .filter_map(|k| match &m[*k] {
                Value::Null => None,
                Value::String(v) => Some(format!("{k}={v}")),
                v => Some(format!("{k}={v}")),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let until = s["expires_at"].as_str().unwrap_or_default();
        let until = until.split('.').next().unwrap_or(until).replace('T', " ");
        out += &format!(
            "{:<16}  {:<7}  {:<20}  {:<8}  {:<12}  {}{}\n",
            s["id"].as_str().unwrap_or_default(),
            s["state"].as_str().unwrap_or_default(),
            until,
            s["matching_firing_alerts"],
            s["created_by"].as_str().unwrap_or_default(),
            matchers,
            match s["comment"].as_str() {
                Some(c) if !c.is_empty() => format!(" \"{c}\""),
                _ => String::new(),
            }
        );
    }
    out
}

/// Runs `ack`; exit 1 when the service refuses or cannot be reached.
pub fn ack(args: AckArgs) -> ExitCode {
    let rt = match super::current_thread_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let path = format!("/alerts/{}/ack", args.id.trim());
    finish(rt.block_on(async {
        if args.remove {
            call(&args.service, reqwest::Method::DELETE, &path, None).await?;
            return Ok(format!(
                "alert {} is no longer acknowledged\n",
                args.id.trim()
            ));
        }
        let body = json!({ "by": operator(&args.by), "comment": args.comment });
        let answer = call(&args.service, reqwest::Method::POST, &path, Some(body)).await?;
        Ok(format!(
            "alert {} acknowledged by {}\n",
            args.id.trim(),
            answer["acknowledged"]["by"].as_str().unwrap_or_default()
        ))
    }))
}

/// Runs `silence`; exit 1 when the service refuses or cannot be reached.
pub fn silence(args: SilenceArgs) -> ExitCode {
    let rt = match super::current_thread_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    finish(rt.block_on(async {
        match &args.action {
            SilenceAction::Add {
                rule,
                watched_prefix,
                prefix,
                origin,
                group,
                duration,
                until,
                comment,
                by,
            } => {
                let body = json!({
                    "matchers": {
                        "rule": rule,
                        "watched_prefix": watched_prefix,
                        "prefix": prefix,
                        "origin": origin,
                        "group": group,
                    },
                    "duration": duration,
                    "expires_at": until,
                    "comment": comment,
                    "created_by": operator(by),
                });
                let s = call(
                    &args.service,
                    reqwest::Method::POST,
                    "/silences",
                    Some(body),
                )
                .await?;
                Ok(format!(
                    "silence {} added until {}; it matches {} firing alerts now\n",
                    s["id"].as_str().unwrap_or_default(),
                    s["expires_at"].as_str().unwrap_or_default(),
                    s["matching_firing_alerts"]
                ))
            }
            SilenceAction::List { all, json } => {
                let path = if *all {
                    "/silences?state=all"
                } else {
                    "/silences"
                };
                let body = call(&args.service, reqwest::Method::GET, path, None).await?;
                Ok(if *json {
                    format!("{body:#}\n")
                } else {
                    silences_text(&body)
                })
            }
            SilenceAction::Rm { id } => {
                call(
                    &args.service,
                    reqwest::Method::DELETE,
                    &format!("/silences/{}", id.trim()),
                    None,
                )
                .await?;
                Ok(format!("silence {} removed\n", id.trim()))
            }
        }
    }))
}
