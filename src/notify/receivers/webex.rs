//! Webex Messages API: `{"markdown": ..., "roomId": ...}` POSTed with the
//! bot's `http_config.authorization` (required).

use super::config::Ctx;
use super::http::{go_json, Endpoint, Payload, StoredRequest};
use super::Render;
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;

/// Webex' limit on a message, in bytes.
const MAX_MESSAGE_BYTES: usize = 7439;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebex {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<S<String>>,
    pub message: Option<S<String>>,
    pub room_id: Option<S<String>>,
}

/// `webex_configs` entry.
#[derive(Clone, Debug)]
pub struct WebexConfig {
    pub send_resolved: bool,
    pub api_url: String,
    pub message: String,
    pub room_id: String,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(c: &S<RawWebex>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<WebexConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let room_id = match &r.room_id {
        Some(id) if !id.value.is_empty() => id.value.clone(),
        _ => {
            sink.push(pos, "missing room_id on webex_config");
            return None;
        }
    };
    let has_auth = r
        .http_config
        .as_ref()
        .is_some_and(|h| h.authorization.is_some());
    if !has_auth {
        sink.push(pos, "missing webex_configs.http_config.authorization");
        return None;
    }
    Some(WebexConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_url: ctx.url_or_global(
            &r.api_url,
            "webex_api_url",
            "https://webexapis.com/v1/messages",
            sink,
        ),
        message: ctx.tmpl(
            &r.message,
            "{{ template \"webex.default.message\" . }}",
            "message",
            sink,
        ),
        room_id,
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

#[derive(Serialize)]
struct Body {
    markdown: String,
    #[serde(rename = "roomId", skip_serializing_if = "String::is_empty")]
    room_id: String,
}

pub fn render(
    cfg: &WebexConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let body = Body {
        markdown: super::truncate_bytes(&r.text("message", &cfg.message)?, MAX_MESSAGE_BYTES),
        room_id: cfg.room_id.clone(),
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&body))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &WebexConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint::at(cfg.api_url.clone()))
}
