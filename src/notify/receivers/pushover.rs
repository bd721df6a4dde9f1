//! Pushover Messages API: Alertmanager POSTs every parameter in the query
//! string (`text/plain`, empty body); token and user key are added at
//! send time.

use super::config::Ctx;
use super::http::{BodyCheck, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::time::Duration;

/// Pushover's API (not configurable in Alertmanager).
pub const API_URL: &str = "https://api.pushover.net/1/messages.json";
const MAX_TITLE_RUNES: usize = 250;
const MAX_MESSAGE_RUNES: usize = 1024;
const MAX_URL_RUNES: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPushover {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub user_key: Option<String>,
    pub user_key_file: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub title: Option<S<String>>,
    pub message: Option<S<String>>,
    pub url: Option<S<String>>,
    pub url_title: Option<S<String>>,
    pub device: Option<S<String>>,
    pub sound: Option<S<String>>,
    pub priority: Option<S<String>>,
    pub retry: Option<S<String>>,
    pub expire: Option<S<String>>,
    pub ttl: Option<S<String>>,
    pub html: Option<bool>,
    pub monospace: Option<bool>,
}

/// `pushover_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct PushoverConfig {
    pub send_resolved: bool,
    pub user_key: SecretSource,
    pub token: SecretSource,
    pub title: String,
    pub message: String,
    pub url: String,
    pub url_title: String,
    pub device: String,
    pub sound: String,
    pub priority: String,
    pub retry: Duration,
    pub expire: Duration,
    pub ttl: Duration,
    pub html: bool,
    pub monospace: bool,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
    /// Where to send; [`API_URL`] except in tests.
    pub api_url: String,
}

fn dur(v: &Option<S<String>>, default: Duration, field: &str, sink: &mut Sink) -> Duration {
    match v {
        None => default,
        Some(s) => crate::config::parse_duration(&s.value).unwrap_or_else(|e| {
            sink.push(Pos::of(s), format!("{field}: {e}"));
            default
        }),
    }
}

pub(super) fn resolve(
    c: &S<RawPushover>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<PushoverConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let user_key = super::config::secret(&r.user_key, &r.user_key_file, "user_key", pos, ctx, sink);
    if r.user_key.is_none() && r.user_key_file.is_none() {
        sink.push(pos, "one of user_key or user_key_file must be configured");
    }
    let token = super::config::secret(&r.token, &r.token_file, "token", pos, ctx, sink);
    if r.token.is_none() && r.token_file.is_none() {
        sink.push(pos, "one of token or token_file must be configured");
    }
    if r.html == Some(true) && r.monospace == Some(true) {
        sink.push(pos, "at most one of monospace & html must be configured");
    }
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    Some(PushoverConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        title: t(
            &r.title,
            "{{ template \"pushover.default.title\" . }}",
            "title",
            sink,
        ),
        message: t(
            &r.message,
            "{{ template \"pushover.default.message\" . }}",
            "message",
            sink,
        ),
        url: t(
            &r.url,
            "{{ template \"pushover.default.url\" . }}",
            "url",
            sink,
        ),
        url_title: t(&r.url_title, "", "url_title", sink),
        device: t(&r.device, "", "device", sink),
        sound: t(&r.sound, "", "sound", sink),
        priority: t(
            &r.priority,
            "{{ if eq .Status \"firing\" }}2{{ else }}0{{ end }}",
            "priority",
            sink,
        ),
        retry: dur(&r.retry, Duration::from_secs(60), "retry", sink),
        expire: dur(&r.expire, Duration::from_secs(3600), "expire", sink),
        ttl: dur(&r.ttl, Duration::ZERO, "ttl", sink),
        html: r.html.unwrap_or(false),
        monospace: r.monospace.unwrap_or(false),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
        api_url: API_URL.into(),
        user_key: user_key?,
        token: token?,
    })
}

pub fn render(
    cfg: &PushoverConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let mut q: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| q.push((k.to_string(), v));
    add(
        "title",
        super::truncate_runes(&r.text("title", &cfg.title)?, MAX_TITLE_RUNES),
    );
    let message = if cfg.html {
        add("html", "1".into());
        r.html("message", &cfg.message)?
    } else {
        if cfg.monospace {
            add("monospace", "1".into());
        }
        r.text("message", &cfg.message)?
    };
    let mut message = super::truncate_runes(&message, MAX_MESSAGE_RUNES)
        .trim()
        .to_string();
    if message.is_empty() {
        // Pushover rejects empty messages.
        message = "(no details)".into();
    }
    add("message", message);
    add(
        "url",
        super::truncate_runes(&r.text("url", &cfg.url)?, MAX_URL_RUNES),
    );
    add("url_title", r.text("url_title", &cfg.url_title)?);
    let device = r.text("device", &cfg.device)?;
    if !device.is_empty() {
        add("device", device);
    }
    add("priority", r.text("priority", &cfg.priority)?);
    add("retry", cfg.retry.as_secs().to_string());
    add("expire", cfg.expire.as_secs().to_string());
    if !cfg.ttl.is_zero() {
        add("ttl", cfg.ttl.as_secs().to_string());
    }
    add("sound", r.text("sound", &cfg.sound)?);
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            method: "POST".into(),
            path: String::new(),
            query: q,
            content_type: "text/plain".into(),
            body: String::new(),
            thread: String::new(),
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &PushoverConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint {
        base: cfg.api_url.clone(),
        headers: vec![],
        query: vec![
            ("token".into(), cfg.token.read()?.expose().to_string()),
            ("user".into(), cfg.user_key.read()?.expose().to_string()),
        ],
        retry_codes: &[],
        retry_all: false,
        check: BodyCheck::None,
    })
}
