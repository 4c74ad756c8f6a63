//! Bearer-token authentication for the API, compared in constant time.
//!
//! Browsers cannot send a bearer token from the address bar, so HTTP Basic with the token as the
//! password (any user name) is accepted too, and a 401 asks for it.

use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The accepted tokens, kept only as SHA-256 digests so comparisons take the same time
/// whatever the length or content of the guess. Clones share one set, which a config reload
/// replaces ([`Tokens::replace`]) under the running server.
#[derive(Clone, Default)]
pub struct Tokens(Arc<RwLock<Arc<Vec<[u8; 32]>>>>);

fn digests(secrets: &[Secret]) -> Arc<Vec<[u8; 32]>> {
    Arc::new(
        secrets
            .iter()
            .map(|s| digest(s.expose().as_bytes()))
            .collect(),
    )
}

impl Tokens {
    /// Tokens from secrets.
    pub fn new(secrets: &[Secret]) -> Self {
        Tokens(Arc::new(RwLock::new(digests(secrets))))
    }

    /// Replaces the accepted tokens, for every clone; requests checked from now on see them.
    pub fn replace(&self, secrets: &[Secret]) {
        let new = digests(secrets);
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = new;
    }

    fn current(&self) -> Arc<Vec<[u8; 32]>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when no token is configured (authentication off).
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// True when the Authorization header carries one of the tokens.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        accepts_in(&self.current(), authorization)
    }
}

fn accepts_in(set: &[[u8; 32]], authorization: Option<&HeaderValue>) -> bool {
    let Some(candidate) = authorization.and_then(presented_token) else {
        return false;
    };
    let d = digest(&candidate);
    // Check every token, so the time does not tell which one matched.
    set.iter()
        .fold(subtle::Choice::from(0), |acc, t| acc | t.ct_eq(&d))
        .into()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The token of `Bearer TOKEN` or of `Basic base64(user:TOKEN)`.
fn presented_token(value: &HeaderValue) -> Option<Vec<u8>> {
    let value = value.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// Middleware: 401 unless a token is presented (when tokens are configured).
pub async fn require_token(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    // One look at the set, so a reload between the two checks cannot mix old and new.
    let set = tokens.current();
    if set.is_empty() || accepts_in(&set, req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let mut challenges = axum::http::HeaderMap::new();
    challenges.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"bgpsentry\""),
    );
    challenges.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"bgpsentry\""),
    );
    (
        StatusCode::UNAUTHORIZED,
        challenges,
        axum::Json(serde_json::json!({
            "error": "a valid token is required: send `Authorization: Bearer TOKEN`"
        })),
    )
        .into_response()
}

/// Middleware for acknowledging, silencing and accepting baselines: 403 when no token is
/// configured. Without a token anyone who reaches the port could mute the alerts (or make a
/// hijacker's origin expected); reading stays as open as the rest
/// of the API. (With tokens, [`require_token`] has already checked the request's.)
pub async fn require_configured_tokens(
    State(tokens): State<Tokens>,
    req: Request,
    next: Next,
) -> Response {
    if !tokens.is_empty() {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": "acknowledging, silencing and accepting baselines need an API token, and \
                      none is configured: set http.auth.tokens (see the configuration \
                      reference) and send it as `Authorization: Bearer TOKEN`"
        })),
    )
        .into_response()
}

/// The user name of HTTP Basic credentials, if the request has them: the pages offer it as
/// the name of who acknowledges or silences.
pub fn basic_user(authorization: Option<&HeaderValue>) -> Option<String> {
    let value = authorization?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    let user = user.trim();
    (!user.is_empty() && !user.chars().any(char::is_control)).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn bearer_and_basic() {
        let t = Tokens::new(&[Secret::new("alpha"), Secret::new("beta")]);
        assert!(t.accepts(Some(&hv("Bearer alpha"))));
        assert!(t.accepts(Some(&hv("bearer beta"))));
        assert!(!t.accepts(Some(&hv("Bearer alph"))));
        assert!(!t.accepts(Some(&hv("Bearer alphaa"))));
        assert!(!t.accepts(Some(&hv("Bearer "))));
        assert!(!t.accepts(None));
        let basic = base64::engine::general_purpose::STANDARD.encode("ops:beta");
        assert!(t.accepts(Some(&hv(&format!("Basic {basic}")))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("beta:ops");
        assert!(!t.accepts(Some(&hv(&format!("Basic {wrong}")))));
        assert!(!t.accepts(Some(&hv("Basic !!notbase64"))));
        assert!(!t.accepts(Some(&hv("Token alpha"))));
    }

    #[test]
    fn replaced_tokens_apply_to_every_clone() {
        let t = Tokens::new(&[Secret::new("alpha")]);
        let served = t.clone();
        t.replace(&[Secret::new("gamma")]);
        assert!(!served.accepts(Some(&hv("Bearer alpha"))));
        assert!(served.accepts(Some(&hv("Bearer gamma"))));
        t.replace(&[]);
        assert!(served.is_empty());
    }
}
