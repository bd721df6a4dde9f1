//! Slack: an incoming webhook or, with `app_token`, the Web API
//! (`chat.postMessage`, and `chat.update` for `update_message`). The body
//! has one attachment with title, colour by status, fields, and buttons for
//! the runbook and a silence; with `blocks`, Block Kit blocks instead
//! (templated, or klaxon's default layout).

use super::http::{go_json, Payload, SendError, StoredRequest};
use super::{SlackBlocks, SlackConfig};
use crate::model::Labels;
use crate::notify::template::{self, common};
use crate::notify::Notification;
use crate::template::TemplateSet;
use parking_lot::Mutex;
use serde_json::{json, Map, Value as J};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

fn put(m: &mut Map<String, J>, k: &str, v: String) {
    // Go's `omitempty`: empty strings are left out.
    if !v.is_empty() {
        m.insert(k.into(), J::String(v));
    }
}

/// The runbook of the group: common annotation, else the first alert's.
fn runbook(n: &Notification) -> Option<String> {
    let anns: Vec<&Labels> = n.alerts.iter().map(|a| &a.annotations).collect();
    let ca = common(&anns);
    ["runbook_url", "runbook"].iter().find_map(|k| {
        ca.get(k)
            .or_else(|| n.alerts.first().and_then(|a| a.annotations.get(k)))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    })
}

pub fn render(
    cfg: &SlackConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let data = template::data(n);
    let r = |field: &str, text: &str| template::render(set, field, text, &data, false);
    let mut att = Map::new();
    put(&mut att, "title", r("title", &cfg.title)?);
    put(&mut att, "title_link", r("title_link", &cfg.title_link)?);
    put(&mut att, "pretext", r("pretext", &cfg.pretext)?);
    put(&mut att, "text", r("text", &cfg.text)?);
    put(&mut att, "fallback", r("fallback", &cfg.fallback)?);
    // Alertmanager sends these two even when empty.
    att.insert(
        "callback_id".into(),
        J::String(r("callback_id", &cfg.callback_id)?),
    );
    let mut fields = Vec::new();
    for f in &cfg.fields {
        fields.push(json!({
            "title": r("fields.title", &f.title)?,
            "value": r("fields.value", &f.value)?,
            "short": f.short.unwrap_or(cfg.short_fields),
        }));
    }
    if !fields.is_empty() {
        att.insert("fields".into(), J::Array(fields));
    }
    let mut actions = Vec::new();
    if cfg.actions.is_empty() {
        if let Some(rb) = runbook(n) {
            actions.push(
                json!({"type": "button", "text": "Runbook :book:", "url": rb, "style": "primary"}),
            );
        }
        let labels: Vec<&Labels> = n.alerts.iter().map(|a| &a.labels).collect();
        actions.push(json!({
            "type": "button",
            "text": "Silence :no_bell:",
            "url": template::silence_url(&n.external_url, &common(&labels)),
        }));
    } else {
        for a in &cfg.actions {
            let mut m = Map::new();
            put(&mut m, "type", r("actions.type", &a.kind)?);
            put(&mut m, "text", r("actions.text", &a.text)?);
            put(&mut m, "url", r("actions.url", &a.url)?);
            put(&mut m, "style", r("actions.style", &a.style)?);
            put(&mut m, "name", r("actions.name", &a.name)?);
            put(&mut m, "value", r("actions.value", &a.value)?);
            actions.push(J::Object(m));
        }
    }
    att.insert("actions".into(), J::Array(actions));
    put(&mut att, "image_url", r("image_url", &cfg.image_url)?);
    put(&mut att, "thumb_url", r("thumb_url", &cfg.thumb_url)?);
    att.insert("footer".into(), J::String(r("footer", &cfg.footer)?));
    put(&mut att, "color", r("color", &cfg.color)?);
    att.insert("mrkdwn_in".into(), json!(cfg.mrkdwn_in));
    let mut body = Map::new();
    put(&mut body, "channel", r("channel", &cfg.channel)?);
    put(&mut body, "username", r("username", &cfg.username)?);
    put(&mut body, "icon_emoji", r("icon_emoji", &cfg.icon_emoji)?);
    put(&mut body, "icon_url", r("icon_url", &cfg.icon_url)?);
    if cfg.link_names {
        body.insert("link_names".into(), J::Bool(true));
    }
    put(&mut body, "text", r("message_text", &cfg.message_text)?);
    match &cfg.blocks {
        None => {
            body.insert("attachments".into(), J::Array(vec![J::Object(att)]));
        }
        Some(b) => {
            let blocks = match b {
                SlackBlocks::Default => default_blocks(n, att.get("title"), att.get("color")),
                SlackBlocks::Templated(v) => super::Render::new(n, set).value("blocks", v)?,
            };
            body.insert("blocks".into(), blocks);
            // Notifications and clients without Block Kit show `text`.
            if !body.contains_key("text") {
                if let Some(t) = att.get("fallback").or(att.get("title")) {
                    body.insert("text".into(), t.clone());
                }
            }
        }
    }
    let thread = if cfg.update_message {
        n.group_key.clone()
    } else {
        String::new()
    };
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            thread,
            ..StoredRequest::post_json(go_json(&J::Object(body)))
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

/// Slack's limits: header text 150 characters, section text 3000, 50
/// blocks per message.
const MAX_HEADER: usize = 150;
const MAX_SECTION: usize = 3000;
const MAX_ALERT_SECTIONS: usize = 20;

fn plain(text: &str) -> J {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

/// klaxon's Block Kit layout: header (the title), status and severity,
/// one section per alert (summary, description, labels), and buttons for
/// the runbook, the source and a silence.
fn default_blocks(n: &Notification, title: Option<&J>, color: Option<&J>) -> J {
    let status = template::group_status(n);
    let title = title.and_then(J::as_str).unwrap_or(status);
    let labels: Vec<&Labels> = n.alerts.iter().map(|a| &a.labels).collect();
    let cl = common(&labels);
    let icon = if status == "firing" {
        ":red_circle:"
    } else {
        ":large_green_circle:"
    };
    let _ = color;
    let mut blocks = vec![
        json!({"type": "header", "text": plain(&super::truncate_runes(title, MAX_HEADER))}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Status:* {icon} {}", status.to_uppercase())},
            {"type": "mrkdwn", "text": format!("*Severity:* {}", cl.get("severity").unwrap_or("none"))},
        ]}),
    ];
    for a in n.alerts.iter().take(MAX_ALERT_SECTIONS) {
        let mut t = format!(
            "*{}* {}",
            template::alert_status(a, n.created_at).to_uppercase(),
            a.labels.get("alertname").unwrap_or("")
        );
        for k in ["summary", "description"] {
            if let Some(v) = a.annotations.get(k).filter(|v| !v.is_empty()) {
                t.push('\n');
                t.push_str(v);
            }
        }
        let pairs: Vec<String> = a
            .labels
            .iter()
            .filter(|l| cl.get(&l.name).is_none())
            .map(|l| format!("`{}={}`", l.name, l.value))
            .collect();
        if !pairs.is_empty() {
            t.push('\n');
            t.push_str(&pairs.join(" "));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": super::truncate_runes(&t, MAX_SECTION)}}));
    }
    if n.alerts.len() > MAX_ALERT_SECTIONS {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("and {} more", n.alerts.len() - MAX_ALERT_SECTIONS)}
        ]}));
    }
    let mut buttons = Vec::new();
    if let Some(rb) = runbook(n) {
        buttons.push(
            json!({"type": "button", "text": plain("Runbook"), "url": rb, "style": "primary"}),
        );
    }
    if let Some(src) = n
        .alerts
        .first()
        .map(|a| a.generator_url.as_str())
        .filter(|u| !u.is_empty())
    {
        buttons.push(json!({"type": "button", "text": plain("Source"), "url": src}));
    }
    buttons.push(json!({"type": "button", "text": plain("Silence"), "url": template::silence_url(&n.external_url, &cl)}));
    blocks.push(json!({"type": "actions", "elements": buttons}));
    J::Array(blocks)
}

/// The message posted per (URL, group key), for `update_message`; kept in
/// memory (a restart posts a new message, as a lost Alertmanager nflog).
type Threads = Mutex<HashMap<(String, String), (String, String)>>;

fn threads() -> &'static Threads {
    static T: OnceLock<Threads> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Sends a stored Slack message: bearer token for the Web API, and
/// `chat.update` of the group's earlier message with `update_message`.
pub async fn send(
    cfg: &SlackConfig,
    req: &StoredRequest,
    request_id: Option<&str>,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), SendError> {
    let cfg_err = |e: super::SecretError| SendError::permanent("config", e.to_string());
    let post_url = cfg.api_url.read().map_err(cfg_err)?.expose().to_string();
    let key = (post_url.clone(), req.thread.clone());
    let mut url = post_url.clone();
    let mut body = req.body.clone();
    let earlier = (cfg.update_message && !req.thread.is_empty())
        .then(|| threads().lock().get(&key).cloned())
        .flatten();
    if let Some((channel, ts)) = earlier {
        url = match post_url.strip_suffix("chat.postMessage") {
            Some(base) => format!("{base}chat.update"),
            None => post_url.clone(),
        };
        if let Ok(J::Object(mut m)) = serde_json::from_str::<J>(&body) {
            m.insert("channel".into(), J::String(channel));
            m.insert("ts".into(), J::String(ts));
            body = go_json(&J::Object(m));
        }
    }
    let mut rb = client
        .post(&url)
        .timeout(cfg.timeout.unwrap_or(timeout))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(id) = request_id {
        rb = rb.header("X-Request-ID", id);
    }
    match &cfg.app_token {
        Some(t) => {
            let t = t.read().map_err(cfg_err)?;
            rb = rb.header(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", t.expose()),
            );
        }
        None => match crate::config::client::authorization_header(&cfg.http_config) {
            Ok(Some(h)) => rb = rb.header(reqwest::header::AUTHORIZATION, h),
            Ok(None) => {}
            Err(e) => return Err(SendError::transient("config", e)),
        },
    }
    let resp = rb.send().await.map_err(super::http::request_error)?;
    let status = resp.status();
    let retry_after = super::http::retry_after_of(&resp);
    let text = resp.text().await.unwrap_or_default();
    super::http::classify(
        status,
        retry_after,
        &text,
        &[],
        super::http::BodyCheck::OkField,
    )?;
    if cfg.update_message && !req.thread.is_empty() {
        if let Ok(J::Object(m)) = serde_json::from_str::<J>(&text) {
            if let (Some(J::String(c)), Some(J::String(ts))) = (m.get("channel"), m.get("ts")) {
                threads().lock().insert(key, (c.clone(), ts.clone()));
            }
        }
    }
    Ok(())
}
