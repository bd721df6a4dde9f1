//! Microsoft Teams (newer than Alertmanager 0.25; shapes from
//! Alertmanager's notifiers): `msteams_configs` posts a legacy connector
//! MessageCard, `msteamsv2_configs` an Adaptive Card for Workflows/Power
//! Automate webhooks. Colour by group status.

use super::config::Ctx;
use super::http::{go_json, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::template::group_status;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned as S;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMsteams {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub webhook_url: Option<S<String>>,
    pub webhook_url_file: Option<String>,
    pub title: Option<S<String>>,
    pub summary: Option<S<String>>,
    pub text: Option<S<String>>,
}

/// `msteams_configs` (`v2` false) or `msteamsv2_configs` entry.
#[derive(Clone, Debug)]
pub struct MsteamsConfig {
    pub v2: bool,
    pub send_resolved: bool,
    pub webhook_url: SecretSource,
    pub title: String,
    pub summary: String,
    pub text: String,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawMsteams>,
    v2: bool,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<MsteamsConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    if v2 && r.summary.is_some() {
        sink.push(pos, "msteamsv2_configs: unknown field `summary`");
    }
    let webhook_url = super::config::url_secret(
        &r.webhook_url,
        &r.webhook_url_file,
        "webhook_url",
        pos,
        ctx,
        sink,
    )?;
    let p = if v2 { "msteamsv2" } else { "msteams" };
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    Some(MsteamsConfig {
        v2,
        send_resolved: r.send_resolved.unwrap_or(true),
        webhook_url,
        title: t(
            &r.title,
            &format!("{{{{ template \"{p}.default.title\" . }}}}"),
            "title",
            sink,
        ),
        summary: t(
            &r.summary,
            "{{ template \"msteams.default.summary\" . }}",
            "summary",
            sink,
        ),
        text: t(
            &r.text,
            &format!("{{{{ template \"{p}.default.text\" . }}}}"),
            "text",
            sink,
        ),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

pub fn render(
    cfg: &MsteamsConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let firing = group_status(n) == "firing";
    let title = r.text("title", &cfg.title)?;
    let text = r.text("text", &cfg.text)?;
    let body = if cfg.v2 {
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [
                        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
                         "wrap": true, "style": "heading", "color": if firing { "Attention" } else { "Good" }},
                        {"type": "TextBlock", "text": text, "wrap": true},
                    ],
                    "msteams": {"width": "full"},
                },
            }],
        })
    } else {
        json!({
            "@context": "http://schema.org/extensions",
            "type": "MessageCard",
            "title": title,
            "summary": r.text("summary", &cfg.summary)?,
            "text": text,
            "themeColor": if firing { "8C1A1A" } else { "2DC72D" },
        })
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&body))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &MsteamsConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint::at(cfg.webhook_url.read()?.expose().to_string()))
}
