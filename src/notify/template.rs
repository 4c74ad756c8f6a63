//! Message templates (Jinja syntax, rendered by minijinja) and the values they see.
//!
//! Every template gets `events` (each an alert's fields plus `event` and `link`), the counts
//! `count`, `fired`, `resolved`, `reminders`, and `delivery_id` and `channel`.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::{EventKind, NotifyEvent};
use crate::alerts::Alert;
use crate::config::{Config, ConfigErrors, Located};

/// Default email subject.
pub const DEFAULT_SUBJECT: &str = "[bgpsentry] \
{%- if count == 1 %} {{ events[0].event|upper }}: {{ events[0].summary }}\
{%- else %} {{ count }} alerts ({{ fired }} fired, {{ resolved }} resolved\
{%- if reminders %}, {{ reminders }} still firing{% endif %}): \
{{ events[0].rule }} {{ events[0].prefix }} and {{ count - 1 }} more{% endif %}";

/// Default email text body.
pub const DEFAULT_BODY: &str = "\
{% for e in events %}
{{ e.event|upper }}  {{ e.summary }}

  Rule:             {{ e.rule }} ({{ e.severity }})
  Prefix:           {{ e.prefix }}
  Watched prefix:   {{ e.watched_prefix }}{% if e.description %} ({{ e.description }}){% endif %}

{% if e.origin %}
  Origin:           AS{{ e.origin }}
{% endif %}
  Expected origins: {{ e.expected_origins_text }}
{% if e.upstream %}
  Upstream:         AS{{ e.upstream }}
  Expected upstreams: {{ e.expected_upstreams_text }}
{% endif %}
{% if e.acknowledged %}
  Acknowledged by:  {{ e.acknowledged.by }} at {{ e.acknowledged.at }}{% if e.acknowledged.comment %}: {{ e.acknowledged.comment }}{% endif %}

{% endif %}
  Vantage points:   {{ e.vantage_points }} (peak {{ e.peak_vantage_points }})
  First seen:       {{ e.first_seen }}
  Last seen:        {{ e.last_seen }}
{% if e.resolved_at %}
  Resolved at:      {{ e.resolved_at }}
{% endif %}
{% if e.groups %}
  Groups:           {{ e.groups|join(', ') }}
{% endif %}
  Sample AS paths:
{% for s in e.sample %}
    {{ s.vantage_point }}: {{ s.as_path }}
{% endfor %}
  Details:          {{ e.link }}

{% endfor %}
-- 
bgpsentry (delivery {{ delivery_id }})
";

/// Default chat message for Slack (its own link syntax).
pub const DEFAULT_SLACK_TEXT: &str = "\
{% for e in events %}
*{{ e.event|upper }}* {{ e.summary|slack_escape }} ({{ e.vantage_points }} vantage points){% if e.acknowledged %}, acknowledged by {{ e.acknowledged.by|slack_escape }}{% endif %} <{{ e.link }}|details>
{% endfor %}";

/// Default chat message for Mattermost, Discord and Teams (Markdown links).
pub const DEFAULT_MARKDOWN_TEXT: &str = "\
{% for e in events %}
**{{ e.event|upper }}** {{ e.summary }} ({{ e.vantage_points }} vantage points){% if e.acknowledged %}, acknowledged by {{ e.acknowledged.by }}{% endif %} [details]({{ e.link }})
{% endfor %}";

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter("slack_escape", slack_escape);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Escapes the three characters Slack's message format gives meaning to.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A template that does not compile or render; the text says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl From<TemplateError> for super::error::ChannelError {
    fn from(e: TemplateError) -> Self {
        super::error::ChannelError::new(e.0)
    }
}

/// Checks that a template compiles.
pub fn check(source: &str) -> Result<(), TemplateError> {
    let env = environment();
    env.template_from_str(source)
        .map(|_| ())
        .map_err(|e| TemplateError(e.to_string()))
}

/// Checks every template of the config's channels, for `bgpsentry check` (a start or a
/// reload compiles them when it builds the channels, and refuses the config as well). Each
/// error is located at its channel's entry.
pub fn check_config(cfg: &Config) -> Result<(), ConfigErrors> {
    let mut problems = Vec::new();
    for ch in &cfg.notify.channels {
        for (key, source) in ch.templates() {
            if let Err(e) = check(source) {
                problems.push(Located::at(
                    &ch.location,
                    format!(
                        "channel `{}`: the `{key}` template does not compile: {e}",
                        ch.name()
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors::new(&cfg.source, problems))
    }
}

/// A set of named templates, compiled once.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles `(name, source)` pairs; names ending in `.html` are HTML-escaped.
    pub fn new(sources: &[(&str, &str)]) -> Result<Self, TemplateError> {
        let mut env = environment();
        for (name, source) in sources {
            env.add_template_owned(name.to_string(), source.to_string())
                .map_err(|e| TemplateError(format!("template `{name}` does not compile: {e}")))?;
        }
        Ok(Templates { env })
    }

    /// Whether a template of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Renders one template with a context.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError(format!("template `{name}`: {e}")))?;
        t.render(minijinja::value::Serde(ctx))
            .map_err(|e| TemplateError(format!("template `{name}` failed to render: {e}")))
    }
}

/// One event as templates see it: the alert's fields, flattened, plus helpers.
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    /// `fired`, `resolved` or `reminder`.
    pub event: EventKind,
    /// The alert.
    #[serde(flatten)]
    pub alert: &'a Alert,
    /// One line for humans.
    pub summary: String,
    /// `AS1, AS2` or `none`.
    pub expected_origins_text: String,
    /// `AS1, AS2` or `none`.
    pub expected_upstreams_text: String,
    /// `{external_url}/alerts/{id}`.
    pub link: String,
    /// Who acknowledged the alert (`by`, `comment`, `at`), or none.
    pub acknowledged: Option<&'a crate::triage::Ack>,
}

/// Everything a template sees.
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    /// The events, in order.
    pub events: Vec<EventView<'a>>,
    /// Number of events.
    pub count: usize,
    /// Events that are alerts firing for the first time.
    pub fired: usize,
    /// Events that are resolutions.
    pub resolved: usize,
    /// Events that are reminders of alerts still firing.
    pub reminders: usize,
    /// The notification's delivery id.
    pub delivery_id: &'a str,
    /// The channel's name.
    pub channel: &'a str,
}

fn asns(list: &[u32]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|a| format!("AS{a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The link to an alert in the HTTP API.
pub fn alert_link(base: &str, id: &str) -> String {
    format!("{}/alerts/{id}", base.trim_end_matches('/'))
}

impl<'a> Context<'a> {
    /// Builds the context of a notification.
    pub fn new(
        events: &'a [NotifyEvent],
        base_url: &str,
        delivery_id: &'a str,
        channel: &'a str,
    ) -> Self {
        let count = |k: EventKind| events.iter().filter(|e| e.event == k).count();
        Context {
            events: events
                .iter()
                .map(|e| EventView {
                    event: e.event,
                    alert: &e.alert,
                    summary: e.alert.summary(),
                    expected_origins_text: asns(&e.alert.expected_origins),
                    expected_upstreams_text: asns(&e.alert.expected_upstreams),
                    link: alert_link(base_url, &e.alert.id),
                    acknowledged: e.acknowledged.as_ref(),
                })
                .collect(),
            count: events.len(),
            fired: count(EventKind::Fired),
            resolved: count(EventKind::Resolved),
            reminders: count(EventKind::Reminder),
            delivery_id,
            channel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_escape_and_html_escape() {
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
        let t = Templates::new(&[("x.html", "{{ v }}"), ("x", "{{ v }} {{ v|slack_escape }}")])
            .unwrap();
        let render = |name: &str| {
            t.env
                .get_template(name)
                .unwrap()
                .render(minijinja::context! { v => "<b>&" })
                .unwrap()
        };
        assert_eq!(render("x.html"), "&lt;b&gt;&amp;");
        assert_eq!(render("x"), "<b>& &lt;b&gt;&amp;");
    }

    #[test]
    fn broken_templates_are_reported() {
        assert!(check("{% if %}").is_err());
        assert!(check("{{ unclosed").is_err());
        assert!(check("{{ events|length }}").is_ok());
        assert!(Templates::new(&[("body", "{% for e in events %}")]).is_err());
    }

    #[test]
    fn the_templates_of_a_config_are_checked_at_their_channel() {
        let parse = |yaml: &str| {
            crate::config::Config::parse(yaml, std::path::Path::new("c.yml"))
                .expect("the config itself is valid")
        };
        let cfg = parse(
            "notify:\n  channels:\n    - name: ok\n      kind: slack\n      url: http://a\n      text: \"{{ events|length }}\"\n    - name: chat\n      kind: slack\n      url: http://a\n      text: \"{% for %}\"\n",
        );
        let e = check_config(&cfg)
            .expect_err("a broken template")
            .to_string();
        assert!(
            e.starts_with("c.yml:7:7: channel `chat`: the `text` template does not compile"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        let cfg = parse(
            "notify:\n  channels:\n    - name: mail\n      kind: email\n      smtp_host: mx\n      from: a@b.c\n      to: [d@e.f]\n      html_body: \"{{ unclosed\"\n",
        );
        let e = check_config(&cfg)
            .expect_err("a broken template")
            .to_string();
        assert!(
            e.contains("the `html_body` template does not compile"),
            "{e}"
        );
    }
}
