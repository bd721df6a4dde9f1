//! Telegram Bot API `sendMessage`, as Alertmanager's client library sends
//! it: a JSON object of string parameters POSTed to
//! `<api_url>/bot<token>/sendMessage`. An answer with `"ok": false` is a
//! failure even when its status is 200.

use super::config::Ctx;
use super::http::{go_json, BodyCheck, Endpoint, Payload, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;

const MAX_MESSAGE_RUNES: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelegram {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<S<String>>,
    pub bot_token: Option<String>,
    pub bot_token_file: Option<String>,
    pub chat_id: Option<i64>,
    pub chat_id_file: Option<String>,
    pub message_thread_id: Option<i64>,
    pub message: Option<S<String>>,
    pub disable_notifications: Option<bool>,
    pub parse_mode: Option<S<String>>,
}

/// Where the chat id comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatId {
    Inline(i64),
    File(std::path::PathBuf),
}

/// `telegram_configs` entry.
#[derive(Clone, Debug)]
pub struct TelegramConfig {
    pub send_resolved: bool,
    pub api_url: String,
    pub bot_token: SecretSource,
    pub chat_id: ChatId,
    pub message_thread_id: Option<i64>,
    pub message: String,
    pub disable_notifications: bool,
    pub parse_mode: String,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawTelegram>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<TelegramConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let token = ctx.secret_or_global(
        &r.bot_token,
        &r.bot_token_file,
        "bot_token",
        "telegram_bot_token",
        pos,
        sink,
    );
    let chat_id = match (r.chat_id, &r.chat_id_file) {
        (Some(_), Some(_)) => {
            sink.push(
                pos,
                "at most one of chat_id & chat_id_file must be configured",
            );
            None
        }
        (Some(id), None) if id != 0 => Some(ChatId::Inline(id)),
        (_, Some(f)) => Some(ChatId::File(ctx.path(f))),
        _ => {
            sink.push(pos, "missing chat_id or chat_id_file on telegram_config");
            None
        }
    };
    let parse_mode = r
        .parse_mode
        .as_ref()
        .map_or("HTML".to_string(), |p| p.value.clone());
    if !["", "Markdown", "MarkdownV2", "HTML"].contains(&parse_mode.as_str()) {
        sink.push(
            r.parse_mode.as_ref().map_or(pos, Pos::of),
            "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string",
        );
    }
    let Some(bot_token) = token else {
        if r.bot_token.is_none() || r.bot_token_file.is_none() {
            sink.push(
                pos,
                "missing bot_token or bot_token_file on telegram_config",
            );
        }
        return None;
    };
    let api_url = ctx.url_or_global(
        &r.api_url,
        "telegram_api_url",
        "https://api.telegram.org",
        sink,
    );
    Some(TelegramConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_url,
        bot_token,
        chat_id: chat_id?,
        message_thread_id: r.message_thread_id.filter(|t| *t != 0),
        message: ctx.tmpl(
            &r.message,
            "{{ template \"telegram.default.message\" . }}",
            "message",
            sink,
        ),
        disable_notifications: r.disable_notifications.unwrap_or(false),
        parse_mode,
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

fn chat_id(c: &ChatId) -> Result<i64, super::RenderError> {
    match c {
        ChatId::Inline(i) => Ok(*i),
        ChatId::File(p) => {
            let s = std::fs::read_to_string(p).map_err(|source| super::SecretError {
                path: p.display().to_string(),
                source,
            })?;
            s.trim().parse().map_err(|e| {
                super::RenderError::Invalid(format!("chat_id_file {}: {e}", p.display()))
            })
        }
    }
}

pub fn render(
    cfg: &TelegramConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let text = if cfg.parse_mode == "HTML" {
        r.html("message", &cfg.message)?
    } else {
        r.text("message", &cfg.message)?
    };
    let mut p = BTreeMap::new();
    p.insert("chat_id", chat_id(&cfg.chat_id)?.to_string());
    p.insert("text", super::truncate_runes(&text, MAX_MESSAGE_RUNES));
    if !cfg.parse_mode.is_empty() {
        p.insert("parse_mode", cfg.parse_mode.clone());
    }
    p.insert("disable_web_page_preview", "true".into());
    if cfg.disable_notifications {
        p.insert("disable_notification", "true".into());
    }
    if let Some(t) = cfg.message_thread_id {
        p.insert("message_thread_id", t.to_string());
    }
    Ok(Payload::Requests {
        requests: vec![StoredRequest::post_json(go_json(&p))],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &TelegramConfig) -> Result<Endpoint, super::SecretError> {
    let token = cfg.bot_token.read()?;
    Ok(Endpoint {
        base: format!(
            "{}/bot{}/sendMessage",
            cfg.api_url.trim_end_matches('/'),
            token.expose()
        ),
        headers: vec![],
        query: vec![],
        retry_codes: &[],
        retry_all: true,
        check: BodyCheck::OkField,
    })
}
