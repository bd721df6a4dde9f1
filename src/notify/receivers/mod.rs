//! Receivers: their config (`pagerduty_configs`, `slack_configs`,
//! `email_configs`, `webhook_configs`), payload rendering and sending.
//!
//! Config is two steps like `src/config`: [`RawReceiver`] is the YAML as
//! written (positions kept), [`RawReceiver::resolve`] fills Alertmanager's
//! defaults from `global:` and reports every problem as `FILE:LINE:COL`.
//! Rendering turns a [`crate::notify::Notification`] into a stored
//! [`Payload`] once, before the first attempt, so retries and replays send
//! exactly the same bytes.

mod config;
pub mod email;
pub(crate) mod http;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

pub use config::{resolve_receivers, RawReceiver, UNSUPPORTED_INTEGRATIONS};
pub use http::{build_client as http_client, go_time_json, HttpTarget, Payload, SendError};

use std::time::Duration;

/// Sends a stored JSON payload to an HTTP integration, adding the
/// integration's secret key at send time (it is never stored).
/// `idempotency_key` is sent to webhooks as `Idempotency-Key` (the same for
/// every attempt of one stored notification, restarts included, so a
/// receiver can drop a repeat sent after a crash); PagerDuty's `dedup_key`
/// already plays that part and Slack has none.
pub async fn send_http(
    integ: &Integration,
    payload: &Payload,
    client: &reqwest::Client,
    timeout: Duration,
    idempotency_key: &str,
) -> Result<(), SendError> {
    let Payload::Json {
        body,
        secret_field,
        request_id,
    } = payload
    else {
        return Err(SendError::permanent("payload", "payload is not JSON"));
    };
    let cfg_err = |e: String| SendError::permanent("config", e);
    let (url, http, key) = match integ {
        Integration::PagerDuty(c) => {
            let key = match (secret_field.as_deref(), &c.routing_key, &c.service_key) {
                (Some("service_key"), _, Some(k)) => Some(k.read().map_err(cfg_err)?),
                (_, Some(k), _) => Some(k.read().map_err(cfg_err)?),
                (_, None, Some(k)) => Some(k.read().map_err(cfg_err)?),
                (_, None, None) => None,
            };
            (c.url.clone(), &c.http_config, key)
        }
        Integration::Slack(c) => (
            c.api_url.read().map_err(cfg_err)?.expose().to_string(),
            &c.http_config,
            None,
        ),
        Integration::Webhook(c) => (
            c.url.read().map_err(cfg_err)?.expose().to_string(),
            &c.http_config,
            None,
        ),
        Integration::Email(_) => {
            return Err(SendError::permanent(
                "payload",
                "e-mail is not sent over HTTP",
            ))
        }
    };
    let body = match (secret_field, key) {
        (Some(f), Some(k)) => http::with_secret_field(body, f, k.expose()),
        _ => body.clone(),
    };
    http::post_json(
        client,
        HttpTarget { url: &url, http },
        body,
        request_id.as_deref(),
        matches!(integ, Integration::Webhook(_)).then_some(idempotency_key),
        timeout,
    )
    .await
}

use crate::config::{HttpClientConfig, Secret, TlsConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A resolved receiver: a name and its integrations, in config order.
#[derive(Clone, Debug)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
}

/// One configured integration of a receiver.
#[derive(Clone, Debug)]
pub enum Integration {
    PagerDuty(PagerDutyConfig),
    Slack(SlackConfig),
    Email(EmailConfig),
    Webhook(WebhookConfig),
}

impl Integration {
    /// The integration's name in metrics, logs and the delivery log
    /// (Alertmanager's names).
    pub fn kind(&self) -> &'static str {
        match self {
            Integration::PagerDuty(_) => "pagerduty",
            Integration::Slack(_) => "slack",
            Integration::Email(_) => "email",
            Integration::Webhook(_) => "webhook",
        }
    }

    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::PagerDuty(c) => c.send_resolved,
            Integration::Slack(c) => c.send_resolved,
            Integration::Email(c) => c.send_resolved,
            Integration::Webhook(c) => c.send_resolved,
        }
    }
}

/// A secret given inline or as a file read at send time (so rotating the
/// file needs no reload, as in Alertmanager).
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource {
    Inline(Secret),
    File(PathBuf),
}

impl SecretSource {
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| format!("reading {}: {e}", p.display())),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PagerDutyLink {
    pub href: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PagerDutyImage {
    pub src: String,
    pub alt: String,
    pub href: String,
}

/// `pagerduty_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct PagerDutyConfig {
    pub send_resolved: bool,
    /// Events API v2 when set.
    pub routing_key: Option<SecretSource>,
    /// Events API v1 (`service_key`) when set.
    pub service_key: Option<SecretSource>,
    pub url: String,
    pub client: String,
    pub client_url: String,
    pub description: String,
    /// Template; its result is mapped onto PagerDuty's four severities.
    pub severity: String,
    pub class: String,
    pub component: String,
    pub group: String,
    pub source: String,
    pub details: BTreeMap<String, String>,
    pub links: Vec<PagerDutyLink>,
    pub images: Vec<PagerDutyImage>,
    pub http_config: HttpClientConfig,
    /// `http_config.proxy_url`.
    pub proxy_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlackAction {
    pub kind: String,
    pub text: String,
    pub url: String,
    pub style: String,
    pub name: String,
    pub value: String,
}

/// `slack_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub send_resolved: bool,
    pub api_url: SecretSource,
    pub channel: String,
    pub username: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    pub pretext: String,
    pub text: String,
    pub footer: String,
    pub fallback: String,
    pub callback_id: String,
    pub icon_emoji: String,
    pub icon_url: String,
    pub image_url: String,
    pub thumb_url: String,
    pub link_names: bool,
    pub short_fields: bool,
    pub mrkdwn_in: Vec<String>,
    pub fields: Vec<SlackField>,
    /// Empty means klaxon's default buttons (runbook, silence).
    pub actions: Vec<SlackAction>,
    pub http_config: HttpClientConfig,
    /// `http_config.proxy_url`.
    pub proxy_url: Option<String>,
}

/// `email_configs` entry. `to`, `from`, `html`, `text`, headers are templates.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    /// `host:port`; port 465 means implicit TLS.
    pub smarthost: String,
    pub auth_username: Option<String>,
    pub auth_password: Option<SecretSource>,
    pub auth_identity: Option<String>,
    pub require_tls: bool,
    pub tls_config: TlsConfig,
    pub html: String,
    pub text: String,
    pub headers: BTreeMap<String, String>,
}

/// `webhook_configs` entry.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    pub url: SecretSource,
    /// 0 = all alerts.
    pub max_alerts: u64,
    pub http_config: HttpClientConfig,
    /// `http_config.proxy_url`.
    pub proxy_url: Option<String>,
}
