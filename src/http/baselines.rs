//! `GET /baselines` and `POST /baselines/{prefix}`: the origins and upstreams each watched
//! prefix allows (configured, learned, accepted), and accepting new ones without editing the
//! config. An accept is a command to the engine thread, which owns the engine: this module
//! only reads the published prefix views and sends requests.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use crate::engine::{AcceptError, AcceptRequest, PrefixState};
use crate::event::Timestamp;

/// One prefix's baseline as the API shows it.
#[derive(Debug, Serialize)]
pub struct BaselineOut {
    /// The watched prefix.
    pub prefix: IpNet,
    /// Allowed origins.
    pub origins: Vec<u32>,
    /// `configured` or `learned`.
    pub origins_source: &'static str,
    /// Origins an operator accepted (also in `origins`).
    pub accepted_origins: Vec<u32>,
    /// Allowed upstreams; `None` when upstreams are not checked.
    pub upstreams: Option<Vec<u32>>,
    /// `configured`, `learned`, or `not_checked`.
    pub upstreams_source: &'static str,
    /// Upstreams an operator accepted (also in `upstreams`).
    pub accepted_upstreams: Vec<u32>,
    /// While learning: when the window ends.
    pub learning_window_ends: Option<Timestamp>,
}

fn source(learned: bool) -> &'static str {
    if learned { "learned" } else { "configured" }
}

impl From<&PrefixState> for BaselineOut {
    fn from(s: &PrefixState) -> Self {
        BaselineOut {
            prefix: s.prefix,
            origins: s.expected_origins.clone(),
            origins_source: source(s.origins_learned),
            accepted_origins: s.accepted_origins.clone(),
            upstreams: s.expected_upstreams.clone(),
            upstreams_source: match &s.expected_upstreams {
                None => "not_checked",
                Some(_) => source(s.upstreams_learned),
            },
            accepted_upstreams: s.accepted_upstreams.clone(),
            learning_window_ends: s.learning_window_ends,
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(super) async fn list_baselines(State(state): State<AppState>) -> Response {
    let baselines: Vec<BaselineOut> = state
        .prefixes
        .all()
        .iter()
        .map(|s| BaselineOut::from(&**s))
        .collect();
    Json(json!({ "baselines": baselines })).into_response()
}

/// An ASN as JSON: a number, or a string like `"AS65001"` or `"65001"`.
fn parse_asn(v: &Value) -> Result<u32, String> {
    let bad = || {
        format!(
            "{v} is not an ASN; give a number from 1 to 4294967295 or a string like \"AS65001\""
        )
    };
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad),
        Value::String(s) => {
            let t = s.trim();
            let digits = t
                .strip_prefix("AS")
                .or_else(|| t.strip_prefix("as"))
                .unwrap_or(t);
            digits.parse::<u32>().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn asn_list(body: &Value, key: &str) -> Result<Vec<u32>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| parse_asn(v).map_err(|e| format!("`{key}`: {e}")))
            .collect(),
        Some(other) => Err(format!("`{key}` must be a list of ASNs, not {other}")),
    }
}

/// Reads `{"origins": [...], "upstreams": [...]}`; other keys are refused, so a typo does not
/// pass for an empty request.
fn parse_body(body: &[u8]) -> Result<(Vec<u32>, Vec<u32>), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON ({e}); send {{\"origins\": [ASN, ...]}} and/or {{\"upstreams\": [ASN, ...]}}")
    })?;
    let Some(obj) = value.as_object() else {
        return Err("the body must be a JSON object with `origins` and/or `upstreams`".into());
    };
    if let Some(k) = obj.keys().find(|k| *k != "origins" && *k != "upstreams") {
        return Err(format!(
            "unknown key `{k}`; only `origins` and `upstreams` are accepted"
        ));
    }
    Ok((asn_list(&value, "origins")?, asn_list(&value, "upstreams")?))
}

pub(super) async fn accept_baseline(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let prefix = match super::prefixes::parse_prefix(&raw) {
        Ok(p) => p,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let (origins, upstreams) = match parse_body(&body) {
        Ok(v) => v,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let Some(commands) = &state.engine_commands else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server has no engine to change; run `bgpsentry run`",
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = AcceptRequest {
        prefix,
        origins,
        upstreams,
        reply,
    };
    let unavailable = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not running (shutting down?); try again once the service is up",
        )
    };
    if commands.send(request).await.is_err() {
        return unavailable();
    }
    match answer.await {
        Ok(Ok(accepted)) => Json(accepted).into_response(),
        Ok(Err(e @ AcceptError::NotWatched(_))) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(_) => unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_what_is_wrong() {
        assert_eq!(
            parse_body(br#"{"origins":[65001,"AS65002"],"upstreams":["174"]}"#),
            Ok((vec![65001, 65002], vec![174]))
        );
        for (body, needle) in [
            (
                &br#"{"origins":["ASX"]}"#[..],
                "`origins`: \"ASX\" is not an ASN",
            ),
            (br#"{"origins":[4294967296]}"#, "is not an ASN"),
            (br#"{"origins":-1}"#, "must be a list"),
            (br#"{"origin":[1]}"#, "unknown key `origin`"),
            (br#"[1]"#, "JSON object"),
            (b"not json", "not JSON"),
        ] {
            let err = parse_body(body).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
