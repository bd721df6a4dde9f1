//! E-mail over SMTP with `lettre`: implicit TLS on port 465, STARTTLS when
//! `require_tls` (Alertmanager's default), plain otherwise; optional auth.
//! The message is multipart/alternative, text and HTML.

use super::http::{Payload, SendError};
use super::EmailConfig;
use crate::notify::template;
use crate::notify::Notification;
use crate::template::TemplateSet;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Renders addresses, headers and both bodies.
pub fn render(
    cfg: &EmailConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let data = template::data(n);
    let r = |field: &str, text: &str, html: bool| template::render(set, field, text, &data, html);
    let to = r("to", &cfg.to, false)?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut headers = Vec::new();
    for (k, v) in &cfg.headers {
        headers.push((k.clone(), r(&format!("headers.{k}"), v, false)?));
    }
    Ok(Payload::Email {
        from: r("from", &cfg.from, false)?,
        to,
        headers,
        text: r("text", &cfg.text, false)?,
        html: r("html", &cfg.html, true)?,
    })
}

fn mailbox(s: &str, what: &str) -> Result<Mailbox, SendError> {
    s.parse::<Mailbox>()
        .map_err(|e| SendError::permanent("config", format!("parsing {what} address {s:?}: {e}")))
}

/// Builds the MIME message from a stored payload.
pub fn message(p: &Payload) -> Result<Message, SendError> {
    let Payload::Email {
        from,
        to,
        headers,
        text,
        html,
    } = p
    else {
        return Err(SendError::permanent("config", "payload is not an e-mail"));
    };
    let mut b = Message::builder().from(mailbox(from, "from")?);
    for t in to {
        b = b.to(mailbox(t, "to")?);
    }
    for (k, v) in headers {
        match k.as_str() {
            // Set above from the rendered addresses.
            "To" | "From" => {}
            "Subject" => b = b.subject(v.clone()),
            _ => {
                let name = HeaderName::new_from_ascii(k.clone()).map_err(|e| {
                    SendError::permanent("config", format!("header name {k:?}: {e}"))
                })?;
                b = b.raw_header(HeaderValue::new(name, v.clone()));
            }
        }
    }
    b.multipart(MultiPart::alternative_plain_html(
        text.clone(),
        html.clone(),
    ))
    .map_err(|e| SendError::permanent("config", format!("building message: {e}")))
}

/// Sends over SMTP; 5xx replies are permanent, the rest is retried.
pub async fn send(cfg: &EmailConfig, p: &Payload, timeout: Duration) -> Result<(), SendError> {
    let msg = message(p)?;
    let (host, port) = cfg
        .smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
        .ok_or_else(|| SendError::permanent("config", "smarthost must be host:port"))?;
    let tls_params = || -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(host.to_string())
            .dangerous_accept_invalid_certs(cfg.tls_config.insecure_skip_verify);
        if let Some(p) = &cfg.tls_config.ca_file {
            let pem = std::fs::read(p).map_err(|e| {
                SendError::permanent("config", format!("reading CA file {}: {e}", p.display()))
            })?;
            let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
                .map_err(|e| SendError::permanent("config", format!("CA file: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| SendError::permanent("config", format!("TLS setup: {e}")))
    };
    let tls = if port == 465 {
        Tls::Wrapper(tls_params()?)
    } else if cfg.require_tls {
        Tls::Required(tls_params()?)
    } else {
        Tls::None
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(timeout))
        .hello_name(ClientId::Domain(cfg.hello.clone()));
    if let Some(user) = cfg.auth_username.as_ref().filter(|u| !u.is_empty()) {
        let pass =
            match &cfg.auth_password {
                Some(s) => s.read().map_err(|e| {
                    SendError::permanent("config", format!("auth_password_file: {e}"))
                })?,
                None if cfg.auth_secret => return Err(SendError::permanent(
                    "config",
                    "auth_secret needs CRAM-MD5, which klaxon does not support: set auth_password",
                )),
                None => crate::config::Secret::new(""),
            };
        t = t.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    let transport = t.build();
    match transport.send(msg).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(SendError::permanent("smtp_5xx", e.to_string())),
        Err(e) if e.is_timeout() => Err(SendError::transient("timeout", e.to_string())),
        Err(e) => Err(SendError::transient("smtp", e.to_string())),
    }
}
