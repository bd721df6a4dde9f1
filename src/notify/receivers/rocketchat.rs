//! Rocket.Chat `api/v1/chat.postMessage` (newer than Alertmanager 0.25;
//! shape from Alertmanager's notifier): one attachment, `X-Auth-Token` and
//! `X-User-Id` headers; a 200 with `"success": false` is a failure.

use super::config::Ctx;
use super::http::{go_json, BodyCheck, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;

const MAX_TITLE_RUNES: usize = 1024;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub title: Option<String>,
    pub value: Option<String>,
    pub short: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    pub url: Option<String>,
    pub msg: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRocketchat {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<S<String>>,
    pub token_id: Option<String>,
    pub token_id_file: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub channel: Option<S<String>>,
    pub color: Option<S<String>>,
    pub title: Option<S<String>>,
    pub title_link: Option<S<String>>,
    pub text: Option<S<String>>,
    pub fields: Option<Vec<RawField>>,
    pub short_fields: Option<bool>,
    pub emoji: Option<S<String>>,
    pub icon_url: Option<S<String>>,
    pub image_url: Option<S<String>>,
    pub thumb_url: Option<S<String>>,
    /// Accepted; Rocket.Chat's postMessage has no such field.
    #[serde(rename = "link_names")]
    pub _link_names: Option<bool>,
    pub actions: Option<Vec<RawAction>>,
}

/// `rocketchat_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct RocketchatConfig {
    pub send_resolved: bool,
    pub api_url: String,
    pub token_id: SecretSource,
    pub token: SecretSource,
    pub channel: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    pub text: String,
    /// `(title, value, short)`, `short` already defaulted from `short_fields`.
    pub fields: Vec<(String, String, bool)>,
    pub emoji: String,
    pub icon_url: String,
    pub image_url: String,
    pub thumb_url: String,
    /// `(text, url, msg)`.
    pub actions: Vec<(String, String, String)>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawRocketchat>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<RocketchatConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let token_id = ctx.secret_or_global(
        &r.token_id,
        &r.token_id_file,
        "token_id",
        "rocketchat_token_id",
        pos,
        sink,
    );
    if token_id.is_none() && !(r.token_id.is_some() && r.token_id_file.is_some()) {
        sink.push(
            pos,
            "no global Rocketchat TokenID set either inline or in a file",
        );
    }
    let token = ctx.secret_or_global(
        &r.token,
        &r.token_file,
        "token",
        "rocketchat_token",
        pos,
        sink,
    );
    if token.is_none() && !(r.token.is_some() && r.token_file.is_some()) {
        sink.push(
            pos,
            "no global Rocketchat Token set either inline or in a file",
        );
    }
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    let mut api_url = ctx.url_or_global(
        &r.api_url,
        "rocketchat_api_url",
        "https://open.rocket.chat/",
        sink,
    );
    if !api_url.ends_with('/') {
        api_url.push('/');
    }
    let short = r.short_fields.unwrap_or(false);
    Some(RocketchatConfig {
        send_resolved: r.send_resolved.unwrap_or(false),
        api_url,
        channel: t(&r.channel, "", "channel", sink),
        color: t(
            &r.color,
            "{{ if eq .Status \"firing\" }}red{{ else }}green{{ end }}",
            "color",
            sink,
        ),
        title: t(
            &r.title,
            "{{ template \"rocketchat.default.title\" . }}",
            "title",
            sink,
        ),
        title_link: t(
            &r.title_link,
            "{{ template \"rocketchat.default.titlelink\" . }}",
            "title_link",
            sink,
        ),
        text: t(
            &r.text,
            "{{ template \"rocketchat.default.text\" . }}",
            "text",
            sink,
        ),
        fields: r
            .fields
            .iter()
            .flatten()
            .map(|f| {
                (
                    f.title.clone().unwrap_or_default(),
                    f.value.clone().unwrap_or_default(),
                    f.short.unwrap_or(short),
                )
            })
            .collect(),
        emoji: t(
            &r.emoji,
            "{{ template \"rocketchat.default.emoji\" . }}",
            "emoji",
            sink,
        ),
        icon_url: t(
            &r.icon_url,
            "{{ template \"rocketchat.default.iconurl\" . }}",
            "icon_url",
            sink,
        ),
        image_url: t(&r.image_url, "", "image_url", sink),
        thumb_url: t(&r.thumb_url, "", "thumb_url", sink),
        actions: r
            .actions
            .iter()
            .flatten()
            .map(|a| {
                (
                    a.text.clone().unwrap_or_default(),
                    a.url.clone().unwrap_or_default(),
                    a.msg.clone().unwrap_or_default(),
                )
            })
            .collect(),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
        token_id: token_id?,
        token: token?,
    })
}

#[derive(Serialize)]
struct Field {
    short: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
}

#[derive(Serialize)]
struct Action {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    is_webview: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    msg: String,
    msg_in_chat_window: bool,
}

#[derive(Serialize)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
}

#[derive(Serialize)]
struct Body {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    avatar: String,
    attachments: Vec<Attachment>,
}

pub fn render(
    cfg: &RocketchatConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let mut fields = Vec::new();
    for (title, value, short) in &cfg.fields {
        fields.push(Field {
            short: *short,
            title: r.text("fields.title", title)?,
            value: r.text("fields.value", value)?,
        });
    }
    let mut actions = Vec::new();
    for (text, url, msg) in &cfg.actions {
        actions.push(Action {
            kind: "button",
            text: r.text("actions.text", text)?,
            url: r.text("actions.url", url)?,
            is_webview: false,
            msg: r.text("actions.msg", msg)?,
            msg_in_chat_window: false,
        });
    }
    let body = Body {
        channel: r.text("channel", &cfg.channel)?,
        emoji: r.text("emoji", &cfg.emoji)?,
        avatar: r.text("icon_url", &cfg.icon_url)?,
        attachments: vec![Attachment {
            title: super::truncate_runes(&r.text("title", &cfg.title)?, MAX_TITLE_RUNES),
            title_link: r.text("title_link", &cfg.title_link)?,
            text: r.text("text", &cfg.text)?,
            image_url: r.text("image_url", &cfg.image_url)?,
            thumb_url: r.text("thumb_url", &cfg.thumb_url)?,
            color: r.text("color", &cfg.color)?,
            fields,
            actions,
        }],
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            path: "api/v1/chat.postMessage".into(),
            ..StoredRequest::post_json(go_json(&body))
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &RocketchatConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint {
        base: cfg.api_url.clone(),
        headers: vec![
            ("X-Auth-Token", cfg.token.read()?.expose().to_string()),
            ("X-User-Id", cfg.token_id.read()?.expose().to_string()),
        ],
        query: vec![],
        retry_codes: &[],
        retry_all: false,
        check: BodyCheck::SuccessField,
    })
}
