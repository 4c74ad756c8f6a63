//! The HTTP API: `/alerts`, `/alerts/{id}`, `/alerts/{id}/ack`, `/silences`,
//! `/api/prefixes`, `/api/prefixes/{prefix}`, `/baselines`, `/baselines/{prefix}`, `/metrics`,
//! `/healthz`, `/readyz`, the status page at `/` and its form posts under `/ui/`.

mod alert_page;
mod baselines;
mod prefixes;
mod status;
mod triage;

mod auth;

#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use crate::alerts::{AlertBook, AlertFilter, AlertState, Rule, Severity};
use crate::engine::SharedPrefixStates;
use crate::health::Health;
use crate::metrics::Metrics;

pub use auth::Tokens;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// Firing and resolved alerts.
    pub book: Arc<RwLock<AlertBook>>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Feed health.
    pub health: Health,
    /// What the engine knows of each watched prefix, published after each batch.
    pub prefixes: SharedPrefixStates,
    /// Requests to the engine thread (accepting baselines); `None` without an engine.
    pub engine_commands: Option<tokio::sync::mpsc::Sender<crate::engine::AcceptRequest>>,
    /// Acknowledgements and silences.
    pub triage: crate::triage::Triage,
    /// `http.external_url`: the origin of the pages behind a proxy (checked on form posts).
    pub external_url: Option<String>,
}

/// How the server guards itself.
#[derive(Clone)]
pub struct Guard {
    /// Accepted API tokens (none: open).
    pub tokens: Tokens,
    /// Whether `/metrics` needs a token too.
    pub protect_metrics: bool,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Time limit per request.
    pub request_timeout: Duration,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            tokens: Tokens::default(),
            protect_metrics: false,
            max_request_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The router with every endpoint. Health endpoints are always open (probes carry no
/// credentials); everything else needs a token when tokens are configured. Acknowledging,
/// silencing and accepting baselines need a token always: without any configured they answer 403.
pub fn router(state: AppState, guard: Guard) -> Router {
    let auth = axum::middleware::from_fn_with_state(guard.tokens.clone(), auth::require_token);
    let configured =
        axum::middleware::from_fn_with_state(guard.tokens.clone(), auth::require_configured_tokens);
    let triage_writes = Router::new()
        .route(
            "/alerts/{id}/ack",
            post(triage::ack_alert).delete(triage::unack_alert),
        )
        .route("/silences", post(triage::add_silence))
        .route("/silences/{id}", delete(triage::remove_silence))
        .route("/ui/alerts/{id}/ack", post(triage::form_ack))
        .route("/ui/alerts/{id}/unack", post(triage::form_unack))
        .route("/ui/silences", post(triage::form_silence))
        .route(
            "/ui/silences/{id}/remove",
            post(triage::form_remove_silence),
        )
        .route("/baselines/{*prefix}", post(baselines::accept_baseline))
        .route_layer(configured);
    let mut protected = Router::new()
        .route("/", get(status::status_page))
        .route("/api/prefixes", get(prefixes::list_prefixes))
        .route("/api/prefixes/{*prefix}", get(prefixes::get_prefix))
        .route("/baselines", get(baselines::list_baselines))
        .route("/alerts", get(list_alerts))
        .route("/alerts/{id}", get(get_alert))
        .route("/silences", get(triage::list_silences))
        .merge(triage_writes);
    let mut open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if guard.protect_metrics {
        protected = protected.route("/metrics", get(metrics));
    } else {
        open = open.route("/metrics", get(metrics));
    }
    open.merge(protected.route_layer(auth))
        .layer(axum::extract::DefaultBodyLimit::max(
            guard.max_request_bytes,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            guard.max_request_bytes,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            guard.request_timeout,
        ))
        .with_state(state)
}

/// Query parameters of `GET /alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `firing` (default), `resolved` or `all`.
    state: Option<String>,
    /// A watched or affected prefix.
    prefix: Option<String>,
    /// A rule name.
    rule: Option<String>,
    /// `critical`, `warning` or `info`.
    severity: Option<String>,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn parse_filter(q: AlertQuery) -> Result<AlertFilter, String> {
    let state = match q.state.as_deref() {
        None | Some("firing") => Some(AlertState::Firing),
        Some("resolved") => Some(AlertState::Resolved),
        Some("all") => None,
        Some(other) => {
            return Err(format!(
                "state `{other}` is not one of firing, resolved, all"
            ));
        }
    };
    let prefix = q
        .prefix
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| format!("prefix `{p}` is not a prefix like 192.0.2.0/24"))
        })
        .transpose()?;
    let rule = q
        .rule
        .map(|r| {
            Rule::parse(&r).ok_or_else(|| {
                let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
                format!("rule `{r}` is not one of {}", names.join(", "))
            })
        })
        .transpose()?;
    let severity = q
        .severity
        .map(|s| {
            Severity::parse(&s)
                .ok_or_else(|| format!("severity `{s}` is not one of critical, warning, info"))
        })
        .transpose()?;
    Ok(AlertFilter {
        state,
        prefix,
        rule,
        severity,
    })
}

async fn list_alerts(
    State(state): State<AppState>,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad_request(e.body_text()),
    };
    let filter = match parse_filter(query) {
        Ok(f) => f,
        Err(msg) => return bad_request(msg),
    };
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let now = crate::event::Timestamp::now();
    let alerts = triage::AlertOut::all(book.list(&filter), &state.triage, now);
    Json(json!({ "alerts": alerts })).into_response()
}

/// One alert: a page for a browser, JSON for everyone else (see [`alert_page::prefers_html`]).
async fn get_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let html = alert_page::prefers_html(&headers);
    let mut response = match (book.get(&id), html) {
        (Some(alert), true) => alert_page::page(alert, &status::triage_block(alert, &state)),
        (Some(alert), false) => Json(triage::AlertOut::new(
            alert,
            &state.triage,
            crate::event::Timestamp::now(),
        ))
        .into_response(),
        (None, true) => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            format!(
                "No alert with id {id}: it may have been pruned from the store. The status page at / lists the current ones.\n"
            ),
        )
            .into_response(),
        (None, false) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no alert with id {id}") })),
        )
            .into_response(),
    };
    // Caches must keep the page and the JSON apart.
    response
        .headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    {
        let book = state.book.read().unwrap_or_else(|p| p.into_inner());
        let firing = book.list(&AlertFilter {
            state: Some(AlertState::Firing),
            ..AlertFilter::default()
        });
        state.triage.observe(firing, crate::event::Timestamp::now());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let feeds = state.health.snapshot();
    let ready = state.health.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "feeds": feeds }))).into_response()
}
