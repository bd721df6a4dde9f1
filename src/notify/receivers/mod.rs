//! Receivers: their config (`pagerduty_configs`, `slack_configs`,
//! `email_configs`, `webhook_configs`), payload rendering and sending.
//!
//! Config is two steps like `src/config`: [`RawReceiver`] is the YAML as
//! written (positions kept), [`RawReceiver::resolve`] fills Alertmanager's
//! defaults from `global:` and reports every problem as `FILE:LINE:COL`.
//! Rendering turns a [`crate::notify::Notification`] into a stored
//! [`Payload`] once, before the first attempt, so retries and replays send
//! exactly the same bytes.

pub mod aws;
mod config;
pub mod discord;
pub mod email;
pub(crate) mod http;
pub mod incidentio;
pub mod jira;
pub mod mattermost;
pub mod msteams;
pub mod opsgenie;
pub mod pagerduty;
pub mod pushover;
pub mod rocketchat;
pub mod slack;
pub mod sns;
pub mod telegram;
pub mod victorops;
pub mod webex;
pub mod webhook;
pub mod wechat;

pub use config::{resolve_receivers, RawReceiver};
pub use discord::DiscordConfig;
pub use http::{
    build_client as http_client, go_time_json, Endpoint, HttpTarget, Payload, SendError,
    StoredRequest,
};
pub use incidentio::IncidentioConfig;
pub use jira::JiraConfig;
pub use mattermost::MattermostConfig;
pub use msteams::MsteamsConfig;
pub use opsgenie::OpsgenieConfig;
pub use pushover::PushoverConfig;
pub use rocketchat::RocketchatConfig;
pub use sns::SnsConfig;
pub use telegram::TelegramConfig;
pub use victorops::VictorOpsConfig;
pub use webex::WebexConfig;
pub use wechat::WechatConfig;

use crate::notify::template;
use crate::notify::Notification;
use crate::template::{TemplateSet, Value};

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
    if let (Integration::Slack(c), Payload::Requests { request_id, .. }) = (integ, payload) {
        let req = http::single_request(payload, "Slack")?;
        return slack::send(c, req, request_id.as_deref(), client, timeout).await;
    }
    match integ {
        Integration::Wechat(c) => return wechat::send(c, payload, client, timeout).await,
        Integration::Sns(c) => return sns::send(c, payload, client, timeout).await,
        Integration::Jira(c) => return jira::send(c, payload, client, timeout).await,
        _ => {}
    }
    if let Payload::Requests {
        requests,
        request_id,
    } = payload
    {
        let ep = integ
            .endpoint()
            .map_err(|e| SendError::permanent("config", e.to_string()))?
            .ok_or_else(|| {
                SendError::permanent("payload", "payload does not fit the integration")
            })?;
        let http = integ
            .http_parts()
            .map(|(h, _)| h)
            .ok_or_else(|| SendError::permanent("payload", "integration is not HTTP"))?;
        let timeout = match integ {
            Integration::Incidentio(c) => c.timeout.unwrap_or(timeout),
            _ => timeout,
        };
        return http::send_requests(client, &ep, http, requests, request_id.as_deref(), timeout)
            .await;
    }
    let Payload::Json {
        body,
        secret_field,
        request_id,
    } = payload
    else {
        return Err(SendError::permanent("payload", "payload is not JSON"));
    };
    let cfg_err = |e: SecretError| SendError::permanent("config", e.to_string());
    let (url, http, key, retry_codes, check) = match integ {
        Integration::PagerDuty(c) => {
            let key = match (secret_field.as_deref(), &c.routing_key, &c.service_key) {
                (Some("service_key"), _, Some(k)) => Some(k.read().map_err(cfg_err)?),
                (_, Some(k), _) => Some(k.read().map_err(cfg_err)?),
                (_, None, Some(k)) => Some(k.read().map_err(cfg_err)?),
                (_, None, None) => None,
            };
            // Alertmanager retries the Events API v1's 403 (rate limit) and
            // v2's 429.
            let codes: &'static [u16] = if secret_field.as_deref() == Some("service_key") {
                &[403]
            } else {
                &[429]
            };
            (
                c.url.clone(),
                &c.http_config,
                key,
                codes,
                http::BodyCheck::None,
            )
        }
        Integration::Slack(c) => (
            c.api_url.read().map_err(cfg_err)?.expose().to_string(),
            &c.http_config,
            None,
            &[][..],
            http::BodyCheck::OkField,
        ),
        Integration::Webhook(c) => (
            c.url.read().map_err(cfg_err)?.expose().to_string(),
            &c.http_config,
            None,
            &[][..],
            http::BodyCheck::None,
        ),
        _ => {
            return Err(SendError::permanent(
                "payload",
                "payload does not fit the integration",
            ))
        }
    };
    let timeout = match integ {
        Integration::Webhook(c) => c.timeout.unwrap_or(timeout),
        _ => timeout,
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
        retry_codes,
        check,
    )
    .await
}

/// The payload of `n` for one integration, rendered once before the
/// first attempt.
pub fn render(
    integ: &Integration,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, RenderError> {
    match integ {
        Integration::PagerDuty(c) => pagerduty::render(c, n, set),
        Integration::Slack(c) => slack::render(c, n, set),
        Integration::Email(c) => email::render(c, n, set),
        Integration::Webhook(c) => webhook::render(c, n, set),
        Integration::Opsgenie(c) => opsgenie::render(c, n, set),
        Integration::VictorOps(c) => victorops::render(c, n, set),
        Integration::Telegram(c) => telegram::render(c, n, set),
        Integration::Discord(c) => discord::render(c, n, set),
        Integration::Webex(c) => webex::render(c, n, set),
        Integration::Pushover(c) => pushover::render(c, n, set),
        Integration::Wechat(c) => wechat::render(c, n, set),
        Integration::Sns(c) => sns::render(c, n, set),
        Integration::Mattermost(c) => mattermost::render(c, n, set),
        Integration::Rocketchat(c) => rocketchat::render(c, n, set),
        Integration::Incidentio(c) => incidentio::render(c, n),
        Integration::Msteams(c) => msteams::render(c, n, set),
        Integration::Jira(c) => jira::render(c, n, set),
    }
}

/// Renders config fields for one notification (the data is built once).
pub(crate) struct Render<'a> {
    set: &'a TemplateSet,
    data: Value,
    n: &'a Notification,
}

impl<'a> Render<'a> {
    pub fn new(n: &'a Notification, set: &'a TemplateSet) -> Self {
        Render {
            set,
            data: template::data(n),
            n,
        }
    }

    pub fn text(&self, field: &str, text: &str) -> Result<String, RenderError> {
        Ok(template::render(self.set, field, text, &self.data, false)?)
    }

    /// Rendered as Go's html/template would (values escaped).
    pub fn html(&self, field: &str, text: &str) -> Result<String, RenderError> {
        Ok(template::render(self.set, field, text, &self.data, true)?)
    }

    /// `v` with every string rendered as a template (Alertmanager's
    /// `DeepCopyWithTemplate`, used for webhook `payload` and Slack `blocks`).
    pub fn value(
        &self,
        field: &str,
        v: &serde_json::Value,
    ) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as J;
        Ok(match v {
            J::String(s) => J::String(self.text(field, s)?),
            J::Array(a) => J::Array(
                a.iter()
                    .map(|x| self.value(field, x))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(m) => J::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.value(field, x)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Alertmanager's `DeepCopyWithTemplate` (Jira `fields`): like
    /// [`Render::value`], and a rendered string that reads as YAML other
    /// than a string (a number, a boolean, a list, a map; nothing: null)
    /// becomes that value. Map keys are templates too.
    pub fn value_reparsed(
        &self,
        field: &str,
        v: &serde_json::Value,
    ) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as J;
        Ok(match v {
            J::String(s) => {
                let out = self.text(field, s)?;
                if out.trim().is_empty() {
                    J::Null
                } else {
                    match serde_saphyr::from_str::<J>(&out) {
                        Ok(J::String(_)) | Err(_) => J::String(out),
                        Ok(parsed) => parsed,
                    }
                }
            }
            J::Array(a) => J::Array(
                a.iter()
                    .map(|x| self.value_reparsed(field, x))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(m) => J::Object(
                m.iter()
                    .map(|(k, x)| Ok((self.text(field, k)?, self.value_reparsed(field, x)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// The group's common labels as a sorted map.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        let labels: Vec<&crate::model::Labels> = self.n.alerts.iter().map(|a| &a.labels).collect();
        template::common(&labels)
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    }
}

/// Alertmanager's `Key.Hash()`: hex SHA-256 of the group key. Used where
/// Alertmanager uses it (Opsgenie alias, VictorOps entity id), so a group
/// keeps its incident across retries, restarts and an HA failover.
pub fn group_hash(group_key: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(group_key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Alertmanager's `TruncateInRunes`: at most `n` characters, the last
/// one `…` when cut.
pub fn truncate_runes(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    if n <= 3 {
        return s.chars().take(n).collect();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// Alertmanager's `TruncateInBytes`: at most `n` bytes, ending in `…`
/// (3 bytes) when cut, never inside a character.
pub fn truncate_bytes(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    if n <= 3 {
        return if n == 3 { "…".into() } else { ".".repeat(n) };
    }
    let mut end = n - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Go's URL path escaping (`url.URL.EscapedPath` for a path segment).
pub fn go_path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
    Opsgenie(OpsgenieConfig),
    VictorOps(VictorOpsConfig),
    Telegram(TelegramConfig),
    Discord(DiscordConfig),
    Webex(WebexConfig),
    Pushover(PushoverConfig),
    Wechat(WechatConfig),
    Sns(SnsConfig),
    Mattermost(MattermostConfig),
    Rocketchat(RocketchatConfig),
    Incidentio(IncidentioConfig),
    /// `msteams_configs` and `msteamsv2_configs`.
    Msteams(MsteamsConfig),
    Jira(JiraConfig),
}

/// Calls `$e` with the integration's config bound to `$c`, for fields
/// every integration has.
macro_rules! each {
    ($i:expr, $c:ident => $e:expr) => {
        match $i {
            Integration::PagerDuty($c) => $e,
            Integration::Slack($c) => $e,
            Integration::Email($c) => $e,
            Integration::Webhook($c) => $e,
            Integration::Opsgenie($c) => $e,
            Integration::VictorOps($c) => $e,
            Integration::Telegram($c) => $e,
            Integration::Discord($c) => $e,
            Integration::Webex($c) => $e,
            Integration::Pushover($c) => $e,
            Integration::Wechat($c) => $e,
            Integration::Sns($c) => $e,
            Integration::Mattermost($c) => $e,
            Integration::Rocketchat($c) => $e,
            Integration::Incidentio($c) => $e,
            Integration::Msteams($c) => $e,
            Integration::Jira($c) => $e,
        }
    };
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
            Integration::Opsgenie(_) => "opsgenie",
            Integration::VictorOps(_) => "victorops",
            Integration::Telegram(_) => "telegram",
            Integration::Discord(_) => "discord",
            Integration::Webex(_) => "webex",
            Integration::Pushover(_) => "pushover",
            Integration::Wechat(_) => "wechat",
            Integration::Sns(_) => "sns",
            Integration::Mattermost(_) => "mattermost",
            Integration::Rocketchat(_) => "rocketchat",
            Integration::Incidentio(_) => "incidentio",
            Integration::Msteams(c) if c.v2 => "msteamsv2",
            Integration::Msteams(_) => "msteams",
            Integration::Jira(_) => "jira",
        }
    }

    pub fn send_resolved(&self) -> bool {
        each!(self, c => c.send_resolved)
    }

    /// `http_config` and `http_config.proxy_url`; `None` for e-mail.
    pub fn http_parts(&self) -> Option<(&HttpClientConfig, Option<&str>)> {
        match self {
            Integration::Email(_) => None,
            Integration::PagerDuty(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Slack(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Webhook(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Opsgenie(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::VictorOps(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Telegram(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Discord(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Webex(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Pushover(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Wechat(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Sns(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Mattermost(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Rocketchat(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Incidentio(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Msteams(c) => Some((&c.http_config, c.proxy_url.as_deref())),
            Integration::Jira(c) => Some((&c.http_config, c.proxy_url.as_deref())),
        }
    }

    /// Where a [`Payload::Requests`] of this integration goes, with its
    /// secrets read now (`None` for integrations with their own payload).
    pub fn endpoint(&self) -> Result<Option<Endpoint>, SecretError> {
        Ok(Some(match self {
            Integration::Opsgenie(c) => opsgenie::endpoint(c)?,
            Integration::VictorOps(c) => victorops::endpoint(c)?,
            Integration::Telegram(c) => telegram::endpoint(c)?,
            Integration::Discord(c) => discord::endpoint(c)?,
            Integration::Webex(c) => webex::endpoint(c)?,
            Integration::Pushover(c) => pushover::endpoint(c)?,
            Integration::Mattermost(c) => mattermost::endpoint(c)?,
            Integration::Rocketchat(c) => rocketchat::endpoint(c)?,
            Integration::Incidentio(c) => incidentio::endpoint(c)?,
            Integration::Msteams(c) => msteams::endpoint(c)?,
            _ => return Ok(None),
        }))
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
    pub fn read(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim()))
                .map_err(|source| SecretError {
                    path: p.display().to_string(),
                    source,
                }),
        }
    }
}

/// A secret file (`*_file`) that could not be read at send time.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct SecretError {
    pub path: String,
    pub source: std::io::Error,
}

/// Why a notification could not be rendered for an integration: the
/// delivery row is stored as failed with this text.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A config field's template failed.
    #[error(transparent)]
    Template(#[from] template::FieldError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A payload that does not encode as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The rendered payload is not what the integration accepts.
    #[error("{0}")]
    Invalid(String),
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

/// Block Kit `blocks` of a Slack message (klaxon's addition).
#[derive(Clone, Debug, PartialEq)]
pub enum SlackBlocks {
    /// klaxon's layout: header, status and severity, one section per alert,
    /// runbook, source and silence buttons.
    Default,
    /// The configured blocks, every string a template.
    Templated(serde_json::Value),
}

/// `slack_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    pub send_resolved: bool,
    /// The incoming webhook, or with `app_token` the Web API method URL.
    pub api_url: SecretSource,
    /// Bot token, sent as `Authorization: Bearer`.
    pub app_token: Option<SecretSource>,
    /// Edit the group's first message (`chat.update`) instead of posting anew.
    pub update_message: bool,
    /// Top-level `text` (Alertmanager 0.28+).
    pub message_text: String,
    pub timeout: Option<Duration>,
    pub blocks: Option<SlackBlocks>,
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
    /// `auth_secret(_file)` is set: CRAM-MD5, which klaxon cannot do.
    pub auth_secret: bool,
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
    /// Per-attempt timeout; `None`: the outbox's.
    pub timeout: Option<Duration>,
    /// A custom body whose strings are templates; `None`: Alertmanager's message.
    pub payload: Option<serde_json::Value>,
    pub http_config: HttpClientConfig,
    /// `http_config.proxy_url`.
    pub proxy_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::http::{go_json, request_url, BodyCheck, Endpoint, StoredRequest};
    use super::*;

    #[test]
    fn go_json_escapes_html_and_ends_with_newline() {
        assert_eq!(
            go_json(&serde_json::json!({"a": "<b>&\u{2028}"})),
            "{\"a\":\"\\u003cb\\u003e\\u0026\\u2028\"}\n"
        );
    }

    #[test]
    fn truncation_as_alertmanager() {
        assert_eq!(truncate_runes("abcdef", 4), "abc…");
        assert_eq!(truncate_runes("abc", 4), "abc");
        assert_eq!(truncate_bytes("ééééé", 7), "éé…");
        assert_eq!(truncate_bytes("abc", 3), "abc");
    }

    #[test]
    fn group_hash_is_sha256_hex() {
        assert_eq!(
            group_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn query_merges_secret_params_sorted() {
        let ep = Endpoint {
            base: "https://api.pushover.net/1/messages.json".into(),
            headers: vec![],
            query: vec![("token".into(), "t k".into()), ("user".into(), "u".into())],
            retry_codes: &[],
            retry_all: false,
            check: BodyCheck::None,
        };
        let req = StoredRequest {
            method: "POST".into(),
            path: String::new(),
            query: vec![
                ("title".into(), "a&b".into()),
                ("message".into(), "m".into()),
            ],
            content_type: "text/plain".into(),
            body: String::new(),
            thread: String::new(),
        };
        assert_eq!(
            request_url(&ep, &req),
            "https://api.pushover.net/1/messages.json?message=m&title=a%26b&token=t+k&user=u"
        );
    }
}
