//! PagerDuty Events API v2 (`routing_key`) and v1 (`service_key`) bodies.
//!
//! The dedup key is a hash of the group key only, so the same group maps
//! to the same PagerDuty incident across flushes and klaxon restarts, and a
//! resolve closes what the trigger opened.

use super::http::Payload;
use super::PagerDutyConfig;
use crate::notify::template::{self, common, group_status};
use crate::notify::Notification;
use crate::template::{TemplateSet, Value};
use serde_json::{json, Map};

/// PagerDuty's limit on `payload.summary` / v1 `description`.
pub const MAX_SUMMARY: usize = 1024;

/// Alertmanager's key for a group's incident: the lowercase hex SHA-256 of
/// the group key. Equal to Alertmanager's, so an incident opened by an
/// Alertmanager is resolved by klaxon after a switch (and the other way).
pub fn dedup_key(group_key: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(group_key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// PagerDuty accepts exactly these severities; common spellings of
/// `severity` labels are mapped onto them, anything else is `error`.
pub fn map_severity(s: &str) -> &'static str {
    match s.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "page" | "fatal" | "emergency" | "high" => "critical",
        "warning" | "warn" | "minor" | "medium" => "warning",
        "info" | "informational" | "low" | "none" | "notice" => "info",
        _ => "error",
    }
}

/// Truncates to `max` characters, ending with `…` when cut (as Alertmanager).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn link(href: &str, text: &str) -> serde_json::Value {
    json!({"href": href, "text": text})
}

/// Links in the order a responder needs them: runbook, dashboard, source,
/// silence, then the configured ones.
fn links(
    cfg: &PagerDutyConfig,
    n: &Notification,
    set: &TemplateSet,
    data: &Value,
) -> Result<Vec<serde_json::Value>, super::RenderError> {
    let mut out = Vec::new();
    let anns: Vec<&crate::model::Labels> = n.alerts.iter().map(|a| &a.annotations).collect();
    let ca = common(&anns);
    let first = n.alerts.first();
    let pick = |keys: &[&str]| -> Option<String> {
        keys.iter()
            .find_map(|k| {
                ca.get(k)
                    .or_else(|| first.and_then(|a| a.annotations.get(k)))
            })
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(r) = pick(&["runbook_url", "runbook"]) {
        out.push(link(&r, "Runbook"));
    }
    if let Some(d) = pick(&["dashboard_url", "dashboard"]) {
        out.push(link(&d, "Dashboard"));
    }
    if let Some(a) = first.filter(|a| !a.generator_url.is_empty()) {
        out.push(link(&a.generator_url, "Source"));
    }
    let labels: Vec<&crate::model::Labels> = n.alerts.iter().map(|a| &a.labels).collect();
    out.push(link(
        &template::silence_url(&n.external_url, &common(&labels)),
        "Silence",
    ));
    for l in &cfg.links {
        out.push(link(
            &template::render(set, "links.href", &l.href, data, false)?,
            &template::render(set, "links.text", &l.text, data, false)?,
        ));
    }
    Ok(out)
}

/// The body for `n` (without the key, which is added at send time).
pub fn render(
    cfg: &PagerDutyConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let data = template::data(n);
    let r = |field: &str, text: &str| template::render(set, field, text, &data, false);
    let resolved = group_status(n) == "resolved";
    let key = dedup_key(&n.group_key);
    let description = truncate(&r("description", &cfg.description)?, MAX_SUMMARY);
    let client = r("client", &cfg.client)?;
    let client_url = r("client_url", &cfg.client_url)?;
    let mut details = Map::new();
    for (k, v) in &cfg.details {
        details.insert(k.clone(), json!(r(&format!("details.{k}"), v)?));
    }
    if cfg.service_key.is_some() && cfg.routing_key.is_none() {
        let body = json!({
            "event_type": if resolved { "resolve" } else { "trigger" },
            "incident_key": key,
            "description": description,
            "client": client,
            "client_url": client_url,
            "details": details,
        });
        return Ok(Payload::Json {
            body: body.to_string(),
            secret_field: Some("service_key".into()),
            request_id: n.request_id().map(str::to_string),
        });
    }
    let labels: Vec<&crate::model::Labels> = n.alerts.iter().map(|a| &a.labels).collect();
    let anns: Vec<&crate::model::Labels> = n.alerts.iter().map(|a| &a.annotations).collect();
    details.insert("common_labels".into(), labels_json(&common(&labels)));
    details.insert("common_annotations".into(), labels_json(&common(&anns)));
    let source = match r("source", &cfg.source)? {
        s if s.is_empty() => client.clone(),
        s => s,
    };
    let mut payload = Map::new();
    payload.insert("summary".into(), json!(description));
    payload.insert("source".into(), json!(source));
    payload.insert(
        "severity".into(),
        json!(map_severity(&r("severity", &cfg.severity)?)),
    );
    for (name, text) in [
        ("class", &cfg.class),
        ("component", &cfg.component),
        ("group", &cfg.group),
    ] {
        let v = r(name, text)?;
        if !v.is_empty() {
            payload.insert(name.into(), json!(v));
        }
    }
    if let Some(id) = n.request_id() {
        details.insert("request_id".into(), json!(id));
    }
    payload.insert("custom_details".into(), serde_json::Value::Object(details));
    let mut images = Vec::new();
    for i in &cfg.images {
        images.push(json!({
            "src": r("images.src", &i.src)?,
            "alt": r("images.alt", &i.alt)?,
            "href": r("images.href", &i.href)?,
        }));
    }
    let mut body = Map::new();
    body.insert(
        "event_action".into(),
        json!(if resolved { "resolve" } else { "trigger" }),
    );
    body.insert("dedup_key".into(), json!(key));
    body.insert("payload".into(), serde_json::Value::Object(payload));
    if !images.is_empty() {
        body.insert("images".into(), json!(images));
    }
    body.insert("links".into(), json!(links(cfg, n, set, &data)?));
    body.insert("client".into(), json!(client));
    body.insert("client_url".into(), json!(client_url));
    Ok(Payload::Json {
        body: serde_json::Value::Object(body).to_string(),
        secret_field: Some("routing_key".into()),
        request_id: n.request_id().map(str::to_string),
    })
}

fn labels_json(l: &crate::model::Labels) -> serde_json::Value {
    l.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_onto_pagerduty_values() {
        assert_eq!(map_severity("Critical"), "critical");
        assert_eq!(map_severity("page"), "critical");
        assert_eq!(map_severity("warning"), "warning");
        assert_eq!(map_severity("info"), "info");
        assert_eq!(map_severity(""), "error");
        assert_eq!(map_severity("weird"), "error");
    }

    #[test]
    fn dedup_key_is_stable_and_distinct() {
        assert_eq!(dedup_key("{}:{a=\"b\"}"), dedup_key("{}:{a=\"b\"}"));
        assert_ne!(dedup_key("{}:{a=\"b\"}"), dedup_key("{}:{a=\"c\"}"));
        // `printf '%s' '{}:{alertname="DiskFull"}' | sha256sum`
        assert_eq!(
            dedup_key("{}:{alertname=\"DiskFull\"}"),
            "17c4e445d234645c9e547ff6d32a864af0ebdadcd1902771c24c8d366637ff41"
        );
    }

    #[test]
    fn truncation_counts_chars() {
        let s = "é".repeat(2000);
        let t = truncate(&s, MAX_SUMMARY);
        assert_eq!(t.chars().count(), MAX_SUMMARY);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", MAX_SUMMARY), "short");
    }
}
