//! Slack incoming-webhook body: one attachment with title, colour by
//! status, fields, and buttons for the runbook and a silence.

use super::http::Payload;
use super::SlackConfig;
use crate::model::Labels;
use crate::notify::template::{self, common};
use crate::notify::Notification;
use crate::rules::template::TemplateSet;
use serde_json::{json, Map, Value as J};

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

pub fn render(cfg: &SlackConfig, n: &Notification, set: &TemplateSet) -> Result<Payload, String> {
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
    body.insert("attachments".into(), J::Array(vec![J::Object(att)]));
    Ok(Payload::Json {
        body: J::Object(body).to_string(),
        secret_field: None,
        request_id: n.request_id().map(str::to_string),
    })
}
