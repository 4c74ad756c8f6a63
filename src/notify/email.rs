//! Email over SMTP (lettre, rustls): plain, STARTTLS or implicit TLS, optional login.
//! One message per group of events; its Message-ID is derived from the delivery id, so a
//! retried message is recognisably the same message.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::NotifyEvent;
use super::error::{ChannelError, SendError};
use super::secret::read_secret;
use super::template::{Context, DEFAULT_BODY, DEFAULT_SUBJECT, Templates};
use crate::config::{EmailSettings, SmtpTls};

/// A configured email channel.
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    templates: Templates,
    base_url: String,
}

impl EmailChannel {
    /// Builds from config, reading the password.
    pub fn new(
        cfg: &EmailSettings,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let host = cfg
            .smtp_host
            .as_ref()
            .map(|h| h.trim().to_string())
            .ok_or("no `smtp_host` configured")?;
        let tls = cfg.smtp_tls.unwrap_or_default();
        let mut builder = match tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .map_err(|e| format!("cannot set up STARTTLS to {host}: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| format!("cannot set up TLS to {host}: {e}"))?,
        };
        let port = cfg.smtp_port.unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        });
        if let Some(ca) = &cfg.smtp_ca_file {
            let path = ca;
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read smtp_ca_file {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "smtp_ca_file {} holds no PEM certificate: {e}",
                    path.display()
                )
            })?;
            let params = TlsParameters::builder(host.clone())
                .add_root_certificate(cert)
                .build()
                .map_err(|e| format!("cannot set up TLS to {host}: {e}"))?;
            builder = builder.tls(match tls {
                SmtpTls::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        builder = builder.port(port).timeout(Some(timeout));
        if let Some(user) = &cfg.username {
            let password = read_secret(
                cfg.password_env.as_deref(),
                cfg.password_file.as_deref(),
                "SMTP password",
            )?
            .ok_or("`username` is set but no `password_env` or `password_file`")?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from = cfg
            .from
            .as_ref()
            .ok_or("no `from` configured")?
            .parse::<Mailbox>()
            .map_err(|e| format!("`from` is not an email address: {e}"))?;
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>()
                    .map_err(|e| format!("`{t}` is not an email address: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let subject = cfg.subject.as_deref().unwrap_or(DEFAULT_SUBJECT);
        let body = cfg.body.as_deref().unwrap_or(DEFAULT_BODY);
        let mut sources = vec![("subject", subject), ("body", body)];
        if let Some(h) = &cfg.html_body {
            sources.push(("body.html", h.as_str()));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            server: format!("{host}:{port}"),
            from,
            to,
            templates: Templates::new(&sources)?,
            base_url: base_url.to_string(),
        })
    }

    /// Renders the message for a group of events.
    pub fn message(
        &self,
        channel: &str,
        delivery_id: &str,
        events: &[NotifyEvent],
    ) -> Result<Message, SendError> {
        let ctx = Context::new(events, &self.base_url, delivery_id, channel);
        let subject = self
            .templates
            .render("subject", &ctx)
            .map_err(|e| SendError(e.to_string()))?;
        // A header must be one line, whatever the template or the alert text hold.
        let subject: String = subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string();
        let text = self
            .templates
            .render("body", &ctx)
            .map_err(|e| SendError(e.to_string()))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .date_now()
            .message_id(Some(format!("<{delivery_id}@bgpsentry>")));
        for t in &self.to {
            b = b.to(t.clone());
        }
        let built = if self.templates.has("body.html") {
            let html = self
                .templates
                .render("body.html", &ctx)
                .map_err(|e| SendError(e.to_string()))?;
            b.multipart(MultiPart::alternative_plain_html(text, html))
        } else {
            b.header(ContentType::TEXT_PLAIN).body(text)
        };
        let mut msg = built.map_err(|e| SendError(format!("cannot build the message: {e}")))?;
        msg.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Bgpsentry-Delivery"),
            delivery_id.to_string(),
        ));
        Ok(msg)
    }

    /// Sends one message for the events.
    pub async fn send(
        &self,
        channel: &str,
        delivery_id: &str,
        events: &[NotifyEvent],
    ) -> Result<(), SendError> {
        let msg = self.message(channel, delivery_id, events)?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| SendError(format!("SMTP {}: {e}", self.server)))
    }
}
