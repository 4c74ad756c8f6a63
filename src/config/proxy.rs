//! The `proxy:` section: an HTTP proxy for every outbound connection (feeds, warm start,
//! notifier), instead of or besides `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Located, redact_url};

/// `proxy:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The proxy, `http://HOST:PORT` (credentials as `http://USER:PASS@HOST:PORT`).
    pub url: Spanned<String>,
    /// Hosts reached directly: names (a leading dot or none matches subdomains too), IP
    /// addresses and networks (`10.0.0.0/8`), or `*`. Added to `NO_PROXY` from the environment.
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// Checks the URL.
    pub fn validate(&self, errors: &mut Vec<Located>) {
        let ok = reqwest::Url::parse(&self.url.value)
            .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some());
        if !ok {
            errors.push(Located::at(
                &self.url.referenced,
                format!(
                    "`proxy.url` must be an http:// URL with a host, like http://proxy.example:3128; got `{}`",
                    redact_url(&self.url.value)
                ),
            ));
        }
    }
}
