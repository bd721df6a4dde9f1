//! Mattermost incoming webhook (newer than Alertmanager 0.25; shape from
//! Alertmanager's notifier): `text`, `channel`, `username`, icons, one
//! attachment (or the configured `attachments`), `props.card`, `priority`.

use super::config::Ctx;
use super::http::{go_json, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::{HttpClientConfig, Secret};
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;

const MAX_TEXT_RUNES: usize = 16383;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MattermostField {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// One attachment; as configured (templates) and as sent.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MattermostAttachment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<MattermostField>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MattermostPriority {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requested_ack: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub persistent_notifications: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MattermostProps {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub card: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMattermost {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub webhook_url: Option<S<String>>,
    pub webhook_url_file: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub text: Option<S<String>>,
    pub fallback: Option<String>,
    pub color: Option<String>,
    pub pretext: Option<String>,
    pub author_name: Option<String>,
    pub author_link: Option<String>,
    pub author_icon: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub fields: Option<Vec<MattermostField>>,
    pub thumb_url: Option<String>,
    pub footer: Option<String>,
    pub footer_icon: Option<String>,
    pub image_url: Option<String>,
    pub icon_url: Option<String>,
    pub icon_emoji: Option<String>,
    pub attachments: Option<Vec<MattermostAttachment>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub props: Option<MattermostProps>,
    pub priority: Option<MattermostPriority>,
}

/// `mattermost_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct MattermostConfig {
    pub send_resolved: bool,
    pub webhook_url: SecretSource,
    pub channel: String,
    pub username: String,
    pub text: String,
    /// The single attachment used when `attachments` is empty.
    pub att: MattermostAttachment,
    pub icon_url: String,
    pub icon_emoji: String,
    pub attachments: Vec<MattermostAttachment>,
    pub kind: String,
    pub props: Option<MattermostProps>,
    pub priority: Option<MattermostPriority>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawMattermost>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<MattermostConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let webhook_url = if r.webhook_url.is_none() && r.webhook_url_file.is_none() {
        match (
            ctx.global_str("mattermost_webhook_url"),
            ctx.global_str("mattermost_webhook_url_file"),
        ) {
            (Some(u), _) => SecretSource::Inline(Secret::new(u)),
            (None, Some(f)) => SecretSource::File(f.into()),
            (None, None) => {
                sink.push(
                    pos,
                    "missing webhook_url or webhook_url_file on mattermost_config",
                );
                return None;
            }
        }
    } else {
        super::config::url_secret(
            &r.webhook_url,
            &r.webhook_url_file,
            "webhook_url",
            pos,
            ctx,
            sink,
        )?
    };
    let g = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut att = MattermostAttachment {
        fallback: g(&r.fallback),
        color: g(&r.color),
        pretext: g(&r.pretext),
        text: String::new(),
        author_name: g(&r.author_name),
        author_link: g(&r.author_link),
        author_icon: g(&r.author_icon),
        title: g(&r.title),
        title_link: g(&r.title_link),
        fields: r.fields.clone().unwrap_or_default(),
        thumb_url: g(&r.thumb_url),
        footer: g(&r.footer),
        footer_icon: g(&r.footer_icon),
        image_url: g(&r.image_url),
    };
    for f in r
        .attachments
        .iter()
        .flatten()
        .flat_map(|a| &a.fields)
        .chain(&att.fields)
    {
        if f.title.is_empty() {
            sink.push(pos, "missing title in Mattermost field configuration");
        }
        if f.value.is_empty() {
            sink.push(pos, "missing value in Mattermost field configuration");
        }
    }
    let or = |v: &mut String, d: &str| {
        if v.is_empty() {
            *v = d.to_string();
        }
    };
    or(
        &mut att.color,
        "{{ if eq .Status \"firing\" }}danger{{ else }}good{{ end }}",
    );
    or(&mut att.title, "{{ template \"__subject\" . }}");
    or(
        &mut att.title_link,
        "{{ template \"slack.default.titlelink\" . }}",
    );
    or(&mut att.fallback, "{{ template \"__subject\" . }}");
    Some(MattermostConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        webhook_url,
        channel: r.channel.clone().unwrap_or_default(),
        username: r
            .username
            .clone()
            .unwrap_or_else(|| "{{ template \"__alertmanager\" . }}".into()),
        text: ctx.tmpl(
            &r.text,
            "{{ template \"mattermost.default.text\" . }}",
            "text",
            sink,
        ),
        att,
        icon_url: r.icon_url.clone().unwrap_or_default(),
        icon_emoji: r.icon_emoji.clone().unwrap_or_default(),
        attachments: r.attachments.clone().unwrap_or_default(),
        kind: r.kind.clone().unwrap_or_default(),
        props: r.props.clone().filter(|p| !p.card.is_empty()),
        priority: r.priority.clone().filter(|p| !p.priority.is_empty()),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

#[derive(Serialize)]
struct Body {
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<MattermostAttachment>,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    props: Option<MattermostProps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<MattermostPriority>,
}

fn render_att(
    r: &Render<'_>,
    a: &MattermostAttachment,
    text: &str,
) -> Result<MattermostAttachment, super::RenderError> {
    let t = |f: &str, v: &str| r.text(f, v);
    let mut fields = Vec::new();
    for f in &a.fields {
        fields.push(MattermostField {
            title: t("fields.title", &f.title)?,
            value: t("fields.value", &f.value)?,
            short: f.short,
        });
    }
    Ok(MattermostAttachment {
        fallback: t("fallback", &a.fallback)?,
        color: t("color", &a.color)?,
        pretext: t("pretext", &a.pretext)?,
        text: if text.is_empty() {
            t("attachments.text", &a.text)?
        } else {
            text.to_string()
        },
        author_name: t("author_name", &a.author_name)?,
        author_link: t("author_link", &a.author_link)?,
        author_icon: t("author_icon", &a.author_icon)?,
        title: t("title", &a.title)?,
        title_link: t("title_link", &a.title_link)?,
        fields,
        thumb_url: t("thumb_url", &a.thumb_url)?,
        footer: t("footer", &a.footer)?,
        footer_icon: t("footer_icon", &a.footer_icon)?,
        image_url: t("image_url", &a.image_url)?,
    })
}

pub fn render(
    cfg: &MattermostConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let text = super::truncate_runes(&r.text("text", &cfg.text)?, MAX_TEXT_RUNES);
    let (top_text, attachments) = if cfg.attachments.is_empty() {
        // The text goes into the single attachment.
        (String::new(), vec![render_att(&r, &cfg.att, &text)?])
    } else {
        let mut v = Vec::new();
        for a in &cfg.attachments {
            v.push(render_att(&r, a, "")?);
        }
        (text, v)
    };
    let body = Body {
        text: top_text,
        channel: r.text("channel", &cfg.channel)?,
        username: r.text("username", &cfg.username)?,
        icon_url: r.text("icon_url", &cfg.icon_url)?,
        icon_emoji: r.text("icon_emoji", &cfg.icon_emoji)?,
        attachments,
        kind: r.text("type", &cfg.kind)?,
        props: match &cfg.props {
            Some(p) => Some(MattermostProps {
                card: r.text("props.card", &p.card)?,
            }),
            None => None,
        },
        priority: match &cfg.priority {
            Some(p) => Some(MattermostPriority {
                priority: r.text("priority.priority", &p.priority)?,
                ..p.clone()
            }),
            None => None,
        },
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&body))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &MattermostConfig) -> Result<Endpoint, super::SecretError> {
    Ok(Endpoint::at(cfg.webhook_url.read()?.expose().to_string()))
}
