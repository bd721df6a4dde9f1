//! Alertmanager's webhook JSON (version "4"), field for field and in the
//! same order, so existing webhook consumers read klaxon's messages as-is.

use super::http::{go_time_json, Payload};
use super::WebhookConfig;
use crate::model::Labels;
use crate::notify::template::{alert_status, common, fingerprint_hex, group_status, quote_meta};
use crate::notify::Notification;
use serde::Serialize;
use std::collections::BTreeMap;

fn kv(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter()
        .map(|x| (x.name.as_str(), x.value.as_str()))
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WAlert<'a> {
    status: &'static str,
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    receiver: String,
    status: &'static str,
    alerts: Vec<WAlert<'a>>,
    group_labels: BTreeMap<&'a str, &'a str>,
    common_labels: BTreeMap<&'a str, &'a str>,
    common_annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
}

/// The webhook body for `n`, truncated to `max_alerts` (0 = all), or the
/// configured `payload` rendered.
pub fn render(
    cfg: &WebhookConfig,
    n: &Notification,
    set: &crate::template::TemplateSet,
) -> Result<Payload, super::RenderError> {
    if let Some(p) = &cfg.payload {
        let body = super::Render::new(n, set).value("payload", p)?;
        return Ok(Payload::Json {
            body: super::http::go_json(&body),
            secret_field: None,
            request_id: n.request_id().map(str::to_string),
        });
    }
    Ok(Payload::Json {
        body: message(n, cfg.max_alerts, "4"),
        secret_field: None,
        request_id: n.request_id().map(str::to_string),
    })
}

/// Alertmanager's webhook message (Go-encoded) for `n`, truncated to
/// `max_alerts` (0 = all); incident.io gets the same with version "1".
pub(super) fn message(n: &Notification, max_alerts: u64, version: &'static str) -> String {
    let labels: Vec<&Labels> = n.alerts.iter().map(|a| &a.labels).collect();
    let anns: Vec<&Labels> = n.alerts.iter().map(|a| &a.annotations).collect();
    let (cl, ca) = (common(&labels), common(&anns));
    let max = usize::try_from(max_alerts).unwrap_or(usize::MAX);
    let keep = if max == 0 {
        n.alerts.len()
    } else {
        n.alerts.len().min(max)
    };
    let alerts = n.alerts[..keep]
        .iter()
        .map(|a| WAlert {
            status: alert_status(a, n.created_at),
            labels: kv(&a.labels),
            annotations: kv(&a.annotations),
            starts_at: go_time_json(Some(a.starts_at)),
            ends_at: go_time_json(a.ends_at),
            generator_url: &a.generator_url,
            fingerprint: fingerprint_hex(a),
        })
        .collect();
    let msg = Message {
        receiver: quote_meta(&n.receiver),
        status: group_status(n),
        alerts,
        group_labels: kv(&n.group_labels),
        common_labels: kv(&cl),
        common_annotations: kv(&ca),
        external_url: &n.external_url,
        version,
        group_key: &n.group_key,
        truncated_alerts: (n.alerts.len() - keep) as u64,
    };
    super::http::go_json(&msg)
}
