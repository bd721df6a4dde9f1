//! incident.io alert source (newer than Alertmanager 0.25; shape from
//! Alertmanager's notifier): the webhook message with version "1", the
//! alert source token as `Authorization: Bearer`, 429 retried. klaxon adds
//! `deduplication_key` (the SHA-256 of the group key), so a retried or
//! failed-over send lands on the same incident.io alert.

use super::config::Ctx;
use super::http::{go_json, BodyCheck, Endpoint, Payload, StoredRequest};
use super::{group_hash, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIncidentio {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub url: Option<S<String>>,
    pub url_file: Option<String>,
    pub alert_source_token: Option<String>,
    pub alert_source_token_file: Option<String>,
    pub max_alerts: Option<u64>,
    pub timeout: Option<S<String>>,
}

/// `incidentio_configs` entry.
#[derive(Clone, Debug)]
pub struct IncidentioConfig {
    pub send_resolved: bool,
    pub url: SecretSource,
    /// `None` when `http_config.authorization` carries the credentials.
    pub token: Option<SecretSource>,
    pub max_alerts: u64,
    pub timeout: Option<Duration>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawIncidentio>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<IncidentioConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let url = super::config::url_secret(&r.url, &r.url_file, "url", pos, ctx, sink)?;
    let has_token = r.alert_source_token.is_some() || r.alert_source_token_file.is_some();
    let has_auth = r
        .http_config
        .as_ref()
        .is_some_and(|h| h.authorization.is_some());
    if has_token && has_auth {
        sink.push(
            pos,
            "cannot specify alert_source_token or alert_source_token_file when using http_config.authorization",
        );
    } else if !has_token && !has_auth {
        sink.push(
            pos,
            "at least one of alert_source_token, alert_source_token_file or http_config.authorization must be configured",
        );
    }
    let token = super::config::secret(
        &r.alert_source_token,
        &r.alert_source_token_file,
        "alert_source_token",
        pos,
        ctx,
        sink,
    );
    Some(IncidentioConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        url,
        token,
        max_alerts: r.max_alerts.unwrap_or(0),
        timeout: super::config::timeout(&r.timeout, sink),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

pub fn render(cfg: &IncidentioConfig, n: &Notification) -> Result<Payload, super::RenderError> {
    let msg = super::webhook::message(n, cfg.max_alerts, "1");
    let mut v: serde_json::Value = serde_json::from_str(&msg)?;
    v["deduplication_key"] = serde_json::Value::String(group_hash(&n.group_key));
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&v))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &IncidentioConfig) -> Result<Endpoint, super::SecretError> {
    let mut headers = vec![];
    if let Some(t) = &cfg.token {
        headers.push(("Authorization", format!("Bearer {}", t.read()?.expose())));
    }
    Ok(Endpoint {
        base: cfg.url.read()?.expose().to_string(),
        headers,
        query: vec![],
        retry_codes: &[429],
        retry_all: false,
        check: BodyCheck::None,
    })
}
