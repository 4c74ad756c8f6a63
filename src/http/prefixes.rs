//! `GET /api/prefixes` and `GET /api/prefixes/{prefix}`: what is known of each watched prefix
//! now, with its firing alerts.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use super::AppState;
use crate::alerts::{Alert, AlertFilter, AlertState};
use crate::engine::PrefixState;

/// One watched prefix as the API shows it: the engine's state and the firing alerts.
#[derive(Serialize)]
struct PrefixOut<'a> {
    #[serde(flatten)]
    state: &'a PrefixState,
    firing_alerts: Vec<&'a Alert>,
}

/// Firing alerts grouped by the watched prefix whose rules they break, newest first.
fn firing_by_prefix(alerts: Vec<&Alert>) -> HashMap<IpNet, Vec<&Alert>> {
    let mut by: HashMap<IpNet, Vec<&Alert>> = HashMap::new();
    for a in alerts {
        by.entry(a.watched_prefix).or_default().push(a);
    }
    by
}

fn firing_filter() -> AlertFilter {
    AlertFilter {
        state: Some(AlertState::Firing),
        ..AlertFilter::default()
    }
}

pub(super) async fn list_prefixes(State(state): State<AppState>) -> Response {
    let states = state.prefixes.all();
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let mut firing = firing_by_prefix(book.list(&firing_filter()));
    let prefixes: Vec<PrefixOut> = states
        .iter()
        .map(|s| PrefixOut {
            state: s,
            firing_alerts: firing.remove(&s.prefix).unwrap_or_default(),
        })
        .collect();
    Json(json!({
        "vantage_points_seen": state.prefixes.vantage_points(),
        "prefixes": prefixes,
    }))
    .into_response()
}

/// The prefix of a path tail: `202.134.148.0/22` or its URL-encoded form (decoded by the
/// router already).
pub(super) fn parse_prefix(raw: &str) -> Result<IpNet, String> {
    let s = raw.trim_matches('/');
    s.parse::<IpNet>().map_err(|_| {
        format!("`{s}` is not a prefix; ask for one like /api/prefixes/192.0.2.0%2F24 or /api/prefixes/192.0.2.0/24")
    })
}

pub(super) async fn get_prefix(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let prefix = match parse_prefix(&raw) {
        Ok(p) => p,
        Err(msg) => {
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response();
        }
    };
    let Some(s) = state.prefixes.get(&prefix) else {
        let hint = if prefix.trunc() != prefix {
            format!(
                " (host bits are set; the watched prefix may be {})",
                prefix.trunc()
            )
        } else {
            String::new()
        };
        return (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": format!("{prefix} is not a watched prefix{hint}; GET /api/prefixes lists them")
            })),
        )
            .into_response();
    };
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let firing_alerts = book
        .list(&firing_filter())
        .into_iter()
        .filter(|a| a.watched_prefix == prefix)
        .collect();
    Json(PrefixOut {
        state: &s,
        firing_alerts,
    })
    .into_response()
}
