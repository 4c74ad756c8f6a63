//! Acknowledging and silencing over HTTP: the JSON API (`POST`/`DELETE /alerts/{id}/ack`,
//! `GET`/`POST /silences`, `DELETE /silences/{id}`) and the form posts of the pages
//! (`POST /ui/...`), which answer with a redirect back to the page.
//!
//! Both need a configured API token (the router's guards): without one, the server answers
//! 403, as anyone who reaches the port could otherwise mute the alerts. The JSON endpoints take
//! only `application/json` bodies (or none), which a page elsewhere cannot send without the
//! browser asking first; the form posts, which a browser sends with its saved Basic
//! credentials from anywhere, are taken only from this server's own pages
//! ([`same_origin`]).

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use super::AppState;
use crate::alerts::{Alert, AlertState};
use crate::event::Timestamp;
use crate::triage::input::{AsnInput, MatcherInput};
use crate::triage::{Ack, AckRequest, Silence, SilenceRequest, Triage, TriageError};

/// An alert as the API shows it: its fields, who acknowledged it, which silences hold it.
#[derive(Debug, Serialize)]
pub(super) struct AlertOut<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    /// `{by, comment, at}`, or `null`.
    acknowledged: Option<Ack>,
    /// Ids of the active silences that match it.
    silenced_by: Vec<String>,
}

impl<'a> AlertOut<'a> {
    pub(super) fn new(alert: &'a Alert, triage: &Triage, now: Timestamp) -> Self {
        AlertOut {
            alert,
            acknowledged: triage.ack_of(&alert.id),
            silenced_by: triage.silenced_by(alert, now),
        }
    }

    /// Many alerts: the silences in force are looked up once.
    pub(super) fn all(alerts: Vec<&'a Alert>, triage: &Triage, now: Timestamp) -> Vec<Self> {
        let active = triage.active_silences(now);
        alerts
            .into_iter()
            .map(|alert| AlertOut {
                alert,
                acknowledged: triage.ack_of(&alert.id),
                silenced_by: active
                    .iter()
                    .filter(|s| s.matchers.matches(alert))
                    .map(|s| s.id.clone())
                    .collect(),
            })
            .collect()
    }
}

/// A silence as the API shows it.
#[derive(Debug, Serialize)]
struct SilenceOut {
    #[serde(flatten)]
    silence: Silence,
    /// `active` or `expired`.
    state: &'static str,
    /// Firing alerts it matches now.
    matching_firing_alerts: usize,
}

fn silence_out(state: &AppState, s: Silence, now: Timestamp) -> SilenceOut {
    let active = s.active(now);
    let matching = if active {
        let book = state.book.read().unwrap_or_else(|p| p.into_inner());
        book.list(&crate::alerts::AlertFilter {
            state: Some(AlertState::Firing),
            ..Default::default()
        })
        .into_iter()
        .filter(|a| s.matchers.matches(a))
        .count()
    } else {
        0
    };
    SilenceOut {
        silence: s,
        state: if active { "active" } else { "expired" },
        matching_firing_alerts: matching,
    }
}

/// Why a request failed: the status and what to tell the client.
struct Fail(StatusCode, String);

impl Fail {
    fn json(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }

    /// For a form post: a plain page saying what went wrong and how to go back.
    fn page(self) -> Response {
        (
            self.0,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            format!("{}\nGo back, correct it and send again.\n", self.1),
        )
            .into_response()
    }
}

impl From<TriageError> for Fail {
    fn from(e: TriageError) -> Self {
        tracing::error!("{e}");
        Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// Runs a blocking triage write off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TriageError> + Send + 'static,
) -> Result<T, Fail> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Fail::from),
        Err(e) => Err(Fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn acknowledge(state: &AppState, id: &str, req: AckRequest) -> Result<Ack, Fail> {
    {
        let book = state.book.read().unwrap_or_else(|p| p.into_inner());
        match book.get(id) {
            None => {
                return Err(Fail(
                    StatusCode::NOT_FOUND,
                    format!("no alert with id {id}"),
                ));
            }
            Some(a) if a.state == AlertState::Resolved => {
                return Err(Fail(
                    StatusCode::CONFLICT,
                    format!("alert {id} has resolved; only a firing alert can be acknowledged"),
                ));
            }
            Some(_) => {}
        }
    }
    let ack = req
        .validate(Timestamp::now())
        .map_err(|e| Fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (triage, alert_id, copy) = (state.triage.clone(), id.to_string(), ack.clone());
    blocking(move || triage.acknowledge(&alert_id, copy)).await?;
    info!(alert_id = %id, by = %ack.by, comment = %ack.comment, "alert {id} acknowledged by {}", ack.by);
    Ok(ack)
}

async fn unacknowledge(state: &AppState, id: &str) -> Result<(), Fail> {
    let (triage, alert_id) = (state.triage.clone(), id.to_string());
    if blocking(move || triage.unacknowledge(&alert_id)).await? {
        info!(alert_id = %id, "alert {id} no longer acknowledged");
        Ok(())
    } else {
        Err(Fail(
            StatusCode::NOT_FOUND,
            format!("alert {id} is not acknowledged (or there is no such alert)"),
        ))
    }
}

async fn add(state: &AppState, req: SilenceRequest) -> Result<Silence, Fail> {
    let silence = req
        .validate(Timestamp::now())
        .map_err(|e| Fail(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (triage, copy) = (state.triage.clone(), silence.clone());
    blocking(move || triage.add_silence(copy)).await?;
    info!(
        silence = %silence.id,
        matchers = %silence.matchers.describe(),
        by = %silence.created_by,
        until = %silence.expires_at,
        comment = %silence.comment,
        "silence {} added: {} until {}",
        silence.id,
        silence.matchers.describe(),
        silence.expires_at
    );
    Ok(silence)
}

async fn remove(state: &AppState, id: &str) -> Result<(), Fail> {
    let (triage, silence) = (state.triage.clone(), id.to_string());
    if blocking(move || triage.remove_silence(&silence)).await? {
        info!(silence = %id, "silence {id} removed");
        Ok(())
    } else {
        Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no silence with id {id}"),
        ))
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Fail> {
    body.map(|Json(b)| b).map_err(|e| {
        // A body that does not fit (422 in axum) is a bad request like any other bad field;
        // a missing JSON content type stays 415.
        let status = match e.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        Fail(
            status,
            format!(
                "{}; send a JSON object with `Content-Type: application/json`",
                e.body_text()
            ),
        )
    })
}

/// `POST /alerts/{id}/ack` with `{"by": "...", "comment": "..."}`.
pub(super) async fn ack_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Response {
    let result = match json_body(body) {
        Ok(req) => acknowledge(&state, &id, req).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(ack) => Json(json!({ "alert_id": id, "acknowledged": ack })).into_response(),
        Err(f) => f.json(),
    }
}

/// `DELETE /alerts/{id}/ack`.
pub(super) async fn unack_alert(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match unacknowledge(&state, &id).await {
        Ok(()) => Json(json!({ "alert_id": id, "acknowledged": null })).into_response(),
        Err(f) => f.json(),
    }
}

/// Query of `GET /silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SilenceQuery {
    /// `active` (default), `expired` or `all`.
    state: Option<String>,
}

/// `GET /silences`.
pub(super) async fn list_silences(
    State(state): State<AppState>,
    query: Result<Query<SilenceQuery>, QueryRejection>,
) -> Response {
    let want = match query.map(|Query(q)| q.state) {
        Ok(s) => s,
        Err(e) => return Fail(StatusCode::BAD_REQUEST, e.body_text()).json(),
    };
    let now = Timestamp::now();
    let keep: fn(&Silence, Timestamp) -> bool = match want.as_deref() {
        None | Some("active") => |s, now| s.active(now),
        Some("expired") => |s, now| !s.active(now),
        Some("all") => |_, _| true,
        Some(other) => {
            return Fail(
                StatusCode::BAD_REQUEST,
                format!("state `{other}` is not one of active, expired, all"),
            )
            .json();
        }
    };
    let silences: Vec<SilenceOut> = state
        .triage
        .silences(now)
        .into_iter()
        .filter(|s| keep(s, now))
        .map(|s| silence_out(&state, s, now))
        .collect();
    Json(json!({ "silences": silences })).into_response()
}

/// `POST /silences`: answers 201 with the silence.
pub(super) async fn add_silence(
    State(state): State<AppState>,
    body: Result<Json<SilenceRequest>, JsonRejection>,
) -> Response {
    let result = match json_body(body) {
        Ok(req) => add(&state, req).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(s) => {
            let out = silence_out(&state, s, Timestamp::now());
            (StatusCode::CREATED, Json(out)).into_response()
        }
        Err(f) => f.json(),
    }
}

/// `DELETE /silences/{id}`.
pub(super) async fn remove_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    match remove(&state, &id).await {
        Ok(()) => Json(json!({ "removed": id })).into_response(),
        Err(f) => f.json(),
    }
}

/// Whether a form post comes from this server's own pages. A browser sends saved Basic
/// credentials with a form posted from any site, so the credentials alone do not show that the
/// operator meant it. `Sec-Fetch-Site` (every current browser) must say `same-origin`; without
/// it, `Origin` must name this server (its `Host`, or `http.external_url` behind a proxy).
/// A request with neither is refused: the API is the way for scripts.
fn same_origin(headers: &HeaderMap, external_url: Option<&str>) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let Some(origin) = get("origin") else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let host_matches = get("host").is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    });
    let external_matches = external_url.is_some_and(|u| {
        let u = u.trim_end_matches('/');
        // The origin of the external URL: scheme and authority, without a path.
        let end = u
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| u[start..].find('/').map(|j| start + j))
            .unwrap_or(u.len());
        u[..end].eq_ignore_ascii_case(origin)
    });
    host_matches || external_matches
}

fn cross_site() -> Response {
    Fail(
        StatusCode::FORBIDDEN,
        "this form post does not come from bgpsentry's own pages (Sec-Fetch-Site or Origin); \
         post from the status page, or use the JSON API (POST /alerts/{id}/ack, POST /silences)"
            .into(),
    )
    .page()
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// Where a form sends the browser back to: the alert's page, or the status page in triage
/// view. Only these two, so the field cannot redirect anywhere else.
fn back(to: Option<&str>, alert_id: Option<&str>) -> String {
    match (to, alert_id) {
        (Some("alert"), Some(id)) => format!("/alerts/{id}"),
        _ => "/?triage=1".into(),
    }
}

/// Fields of the acknowledge form.
#[derive(Debug, Deserialize)]
pub(super) struct AckForm {
    #[serde(default)]
    by: String,
    #[serde(default)]
    comment: String,
    /// `alert` to come back to the alert page; else the status page.
    back: Option<String>,
}

/// Fields of the forms that only go back somewhere.
#[derive(Debug, Deserialize)]
pub(super) struct BackForm {
    back: Option<String>,
}

fn form_body<T>(body: Result<Form<T>, FormRejection>) -> Result<T, Fail> {
    body.map(|Form(b)| b)
        .map_err(|e| Fail(StatusCode::BAD_REQUEST, e.body_text()))
}

/// `POST /ui/alerts/{id}/ack` (form).
pub(super) async fn form_ack(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Form<AckForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers, state.external_url.as_deref()) {
        return cross_site();
    }
    let form = match form_body(body) {
        Ok(f) => f,
        Err(f) => return f.page(),
    };
    let req = AckRequest {
        by: form.by,
        comment: form.comment,
    };
    match acknowledge(&state, &id, req).await {
        Ok(_) => see_other(&back(form.back.as_deref(), Some(&id))),
        Err(f) => f.page(),
    }
}

/// `POST /ui/alerts/{id}/unack` (form).
pub(super) async fn form_unack(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Form<BackForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers, state.external_url.as_deref()) {
        return cross_site();
    }
    let to = body.ok().and_then(|Form(f)| f.back);
    match unacknowledge(&state, &id).await {
        Ok(()) => see_other(&back(to.as_deref(), Some(&id))),
        Err(f) => f.page(),
    }
}

/// Fields of the silence form: empty fields are "any".
#[derive(Debug, Default, Deserialize)]
pub(super) struct SilenceForm {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    watched_prefix: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    by: String,
}

/// `POST /ui/silences` (form).
pub(super) async fn form_silence(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<SilenceForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers, state.external_url.as_deref()) {
        return cross_site();
    }
    let f = match form_body(body) {
        Ok(f) => f,
        Err(f) => return f.page(),
    };
    let req = SilenceRequest {
        matchers: MatcherInput {
            rule: Some(f.rule),
            watched_prefix: Some(f.watched_prefix),
            prefix: Some(f.prefix),
            origin: Some(AsnInput::Text(f.origin)),
            group: Some(f.group),
        },
        comment: f.comment,
        created_by: f.by,
        expires_at: None,
        duration: Some(f.duration),
    };
    match add(&state, req).await {
        Ok(_) => see_other(&back(None, None)),
        Err(f) => f.page(),
    }
}

/// `POST /ui/silences/{id}/remove` (form).
pub(super) async fn form_remove_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers, state.external_url.as_deref()) {
        return cross_site();
    }
    match remove(&state, &id).await {
        Ok(()) => see_other(&back(None, None)),
        Err(f) => f.page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn form_posts_are_taken_from_this_server_only() {
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            None
        ));
        for site in ["cross-site", "same-site", "none"] {
            assert!(
                !same_origin(&headers(&[("sec-fetch-site", site)]), None),
                "{site}"
            );
        }
        // Sec-Fetch-Site wins over an Origin that would pass.
        assert!(!same_origin(
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:9179"),
                ("host", "127.0.0.1:9179")
            ]),
            None
        ));
        let host = ("host", "127.0.0.1:9179");
        assert!(same_origin(
            &headers(&[("origin", "http://127.0.0.1:9179"), host]),
            None
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://evil.example"), host]),
            None
        ));
        assert!(!same_origin(&headers(&[("origin", "null"), host]), None));
        assert!(!same_origin(&headers(&[host]), None));
        // Behind a proxy the Host is the backend's; the external URL names the origin.
        let proxied = headers(&[("origin", "https://bgp.example.net"), host]);
        assert!(same_origin(
            &proxied,
            Some("https://bgp.example.net/sentry/")
        ));
        assert!(!same_origin(&proxied, Some("https://other.example.net")));
    }

    #[test]
    fn forms_only_go_back_to_known_pages() {
        assert_eq!(back(Some("alert"), Some("abc")), "/alerts/abc");
        assert_eq!(
            back(Some("https://evil.example"), Some("abc")),
            "/?triage=1"
        );
        assert_eq!(back(None, None), "/?triage=1");
    }
}
