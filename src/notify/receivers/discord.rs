//! Discord webhook: one embed whose colour follows the group's status,
//! plus the optional `content`, `username` and `avatar_url`.

use super::config::Ctx;
use super::http::{go_json, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::template::group_status;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;

const MAX_TITLE_RUNES: usize = 256;
const MAX_DESCRIPTION_RUNES: usize = 4096;
const MAX_CONTENT_RUNES: usize = 2000;
const COLOR_RED: u32 = 0x992D22;
const COLOR_GREEN: u32 = 0x2ECC71;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiscord {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub webhook_url: Option<S<String>>,
    pub webhook_url_file: Option<String>,
    pub content: Option<S<String>>,
    pub title: Option<S<String>>,
    pub message: Option<S<String>>,
    pub username: Option<S<String>>,
    pub avatar_url: Option<S<String>>,
}

/// `discord_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    pub send_resolved: bool,
    pub webhook_url: SecretSource,
    pub content: String,
    pub title: String,
    pub message: String,
    pub username: String,
    pub avatar_url: String,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(c: &S<RawDiscord>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<DiscordConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let webhook_url = super::config::url_secret(
        &r.webhook_url,
        &r.webhook_url_file,
        "webhook_url",
        pos,
        ctx,
        sink,
    )?;
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    Some(DiscordConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        webhook_url,
        content: t(&r.content, "", "content", sink),
        title: t(
            &r.title,
            "{{ template \"discord.default.title\" . }}",
            "title",
            sink,
        ),
        message: t(
            &r.message,
            "{{ template \"discord.default.message\" . }}",
            "message",
            sink,
        ),
        username: t(&r.username, "", "username", sink),
        avatar_url: t(&r.avatar_url, "", "avatar_url", sink),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

#[derive(Serialize)]
struct Embed {
    title: String,
    description: String,
    color: u32,
}

#[derive(Serialize)]
struct Body {
    content: String,
    embeds: Vec<Embed>,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    avatar_url: String,
}

pub fn render(
    cfg: &DiscordConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let color = if group_status(n) == "firing" {
        COLOR_RED
    } else {
        COLOR_GREEN
    };
    let body = Body {
        content: super::truncate_runes(&r.text("content", &cfg.content)?, MAX_CONTENT_RUNES),
        embeds: vec![Embed {
            title: super::truncate_runes(&r.text("title", &cfg.title)?, MAX_TITLE_RUNES),
            description: super::truncate_runes(
                &r.text("message", &cfg.message)?,
                MAX_DESCRIPTION_RUNES,
            ),
            color,
        }],
        username: r.text("username", &cfg.username)?,
        avatar_url: r.text("avatar_url", &cfg.avatar_url)?,
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&body))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &DiscordConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint::at(cfg.webhook_url.read()?.expose().to_string()))
}
