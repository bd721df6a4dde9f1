//! WeChat Work: an access token from `<api_url>gettoken` (cached for two
//! hours, dropped when WeChat says it expired), then the message POSTed to
//! `<api_url>message/send?access_token=...`. WeChat answers 200 with an
//! `errcode`: anything but 0 is a failure.

use super::config::Ctx;
use super::http::{go_json, go_query, request_error, Payload, SendError, StoredRequest};
use super::{Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::Notification;
use crate::template::TemplateSet;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a token is reused (Alertmanager's refresh interval).
const TOKEN_TTL: Duration = Duration::from_secs(7200);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWechat {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_secret: Option<String>,
    pub api_secret_file: Option<String>,
    pub corp_id: Option<S<String>>,
    pub message: Option<S<String>>,
    pub api_url: Option<S<String>>,
    pub to_user: Option<S<String>>,
    pub to_party: Option<S<String>>,
    pub to_tag: Option<S<String>>,
    pub agent_id: Option<S<String>>,
    pub message_type: Option<S<String>>,
}

/// `wechat_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct WechatConfig {
    pub send_resolved: bool,
    pub api_secret: SecretSource,
    pub corp_id: String,
    pub message: String,
    pub api_url: String,
    pub to_user: String,
    pub to_party: String,
    pub to_tag: String,
    pub agent_id: String,
    pub message_type: String,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(c: &S<RawWechat>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<WechatConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let message_type = r
        .message_type
        .as_ref()
        .map_or("text".to_string(), |m| m.value.clone());
    if !["text", "markdown"].contains(&message_type.as_str()) {
        sink.push(
            r.message_type.as_ref().map_or(pos, Pos::of),
            format!(
                "weChat message type {message_type:?} does not match valid options text|markdown"
            ),
        );
    }
    let secret = ctx.secret_or_global(
        &r.api_secret,
        &r.api_secret_file,
        "api_secret",
        "wechat_api_secret",
        pos,
        sink,
    );
    let Some(api_secret) = secret else {
        if r.api_secret.is_none() || r.api_secret_file.is_none() {
            sink.push(
                pos,
                "no global Wechat Api Secret set either inline or in a file",
            );
        }
        return None;
    };
    let corp_id = match &r.corp_id {
        Some(c) => c.value.clone(),
        None => match ctx.global_str("wechat_api_corp_id") {
            Some(c) => c.to_string(),
            None => {
                sink.push(pos, "no global Wechat CorpID set");
                return None;
            }
        },
    };
    let mut api_url = ctx.url_or_global(
        &r.api_url,
        "wechat_api_url",
        "https://qyapi.weixin.qq.com/cgi-bin/",
        sink,
    );
    if !api_url.ends_with('/') {
        api_url.push('/');
    }
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    Some(WechatConfig {
        send_resolved: r.send_resolved.unwrap_or(false),
        api_secret,
        corp_id,
        message: t(
            &r.message,
            "{{ template \"wechat.default.message\" . }}",
            "message",
            sink,
        ),
        api_url,
        to_user: t(
            &r.to_user,
            "{{ template \"wechat.default.to_user\" . }}",
            "to_user",
            sink,
        ),
        to_party: t(
            &r.to_party,
            "{{ template \"wechat.default.to_party\" . }}",
            "to_party",
            sink,
        ),
        to_tag: t(
            &r.to_tag,
            "{{ template \"wechat.default.to_tag\" . }}",
            "to_tag",
            sink,
        ),
        agent_id: t(
            &r.agent_id,
            "{{ template \"wechat.default.agent_id\" . }}",
            "agent_id",
            sink,
        ),
        message_type,
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

#[derive(Serialize, Default)]
struct Content {
    content: String,
}

#[derive(Serialize)]
struct Message {
    text: Content,
    #[serde(skip_serializing_if = "String::is_empty")]
    touser: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    toparty: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    totag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    agentid: String,
    safe: &'static str,
    msgtype: String,
    markdown: Content,
}

pub fn render(
    cfg: &WechatConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let content = Content {
        content: r.text("message", &cfg.message)?,
    };
    let (text, markdown) = if cfg.message_type == "markdown" {
        (Content::default(), content)
    } else {
        (content, Content::default())
    };
    let msg = Message {
        text,
        touser: r.text("to_user", &cfg.to_user)?,
        toparty: r.text("to_party", &cfg.to_party)?,
        totag: r.text("to_tag", &cfg.to_tag)?,
        agentid: r.text("agent_id", &cfg.agent_id)?,
        safe: "0",
        msgtype: cfg.message_type.clone(),
        markdown,
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            path: "message/send".into(),
            ..StoredRequest::post_json(go_json(&msg))
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

type TokenCache = Mutex<HashMap<(String, String), (String, Instant)>>;

fn tokens() -> &'static TokenCache {
    static T: OnceLock<TokenCache> = OnceLock::new();
    T.get_or_init(Default::default)
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

async fn token(
    cfg: &WechatConfig,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<String, SendError> {
    let key = (cfg.api_url.clone(), cfg.corp_id.clone());
    if let Some((t, at)) = tokens().lock().get(&key) {
        if at.elapsed() < TOKEN_TTL {
            return Ok(t.clone());
        }
    }
    let secret = cfg
        .api_secret
        .read()
        .map_err(|e| SendError::permanent("config", e.to_string()))?;
    let q = go_query(&[
        ("corpsecret".into(), secret.expose().to_string()),
        ("corpid".into(), cfg.corp_id.clone()),
    ]);
    let resp = client
        .get(format!("{}gettoken?{q}", cfg.api_url))
        .timeout(timeout)
        .send()
        .await
        .map_err(request_error)?;
    let text = resp.text().await.map_err(request_error)?;
    let a: Answer = serde_json::from_str(&text)
        .map_err(|e| SendError::permanent("error_body", format!("gettoken answer: {e}")))?;
    if a.access_token.is_empty() {
        return Err(SendError::permanent(
            "error_body",
            format!("invalid APISecret for CorpID: {}", cfg.corp_id),
        ));
    }
    tokens()
        .lock()
        .insert(key, (a.access_token.clone(), Instant::now()));
    Ok(a.access_token)
}

/// Sends a stored WeChat message (token first, when none is cached).
pub async fn send(
    cfg: &WechatConfig,
    payload: &Payload,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), SendError> {
    let req = super::http::single_request(payload, "WeChat")?;
    let tok = token(cfg, client, timeout).await?;
    let q = go_query(&[("access_token".into(), tok)]);
    let resp = client
        .post(format!("{}{}?{q}", cfg.api_url, req.path))
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(req.body.clone())
        .send()
        .await
        .map_err(request_error)?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(SendError::transient(
            if status >= 500 {
                "http_5xx"
            } else {
                "http_4xx"
            },
            format!("unexpected status code {status}"),
        ));
    }
    let text = resp.text().await.map_err(request_error)?;
    let a: Answer = serde_json::from_str(&text)
        .map_err(|e| SendError::transient("error_body", format!("answer is not JSON: {e}")))?;
    match a.errcode {
        0 => Ok(()),
        42001 => {
            // The token expired: fetch a new one on the retry.
            tokens()
                .lock()
                .remove(&(cfg.api_url.clone(), cfg.corp_id.clone()));
            Err(SendError::transient("error_body", a.errmsg))
        }
        _ => Err(SendError::permanent(
            "error_body",
            format!("errcode {}: {}", a.errcode, a.errmsg),
        )),
    }
}
