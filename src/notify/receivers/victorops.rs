//! VictorOps (Splunk On-Call) REST endpoint: one JSON object POSTed to
//! `<api_url><api_key>/<routing_key>`, with Alertmanager's fields; the
//! entity id is the group key's hash, so a resolve closes the incident
//! the trigger opened.

use super::config::Ctx;
use super::http::{go_json, BodyCheck, Endpoint, Payload, StoredRequest};
use super::{group_hash, Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::template::group_status;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;

const MAX_MESSAGE_RUNES: usize = 20480;
/// Fields Alertmanager sets itself; `custom_fields` may not override them.
const RESERVED: &[&str] = &[
    "routing_key",
    "message_type",
    "state_message",
    "entity_display_name",
    "monitoring_tool",
    "entity_id",
    "entity_state",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVictorOps {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_key: Option<String>,
    pub api_key_file: Option<String>,
    pub api_url: Option<S<String>>,
    pub routing_key: Option<S<String>>,
    pub message_type: Option<S<String>>,
    pub state_message: Option<S<String>>,
    pub entity_display_name: Option<S<String>>,
    pub monitoring_tool: Option<S<String>>,
    pub custom_fields: Option<S<BTreeMap<String, String>>>,
}

/// `victorops_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct VictorOpsConfig {
    pub send_resolved: bool,
    pub api_key: SecretSource,
    pub api_url: String,
    pub routing_key: String,
    pub message_type: String,
    pub state_message: String,
    pub entity_display_name: String,
    pub monitoring_tool: String,
    pub custom_fields: BTreeMap<String, String>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawVictorOps>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<VictorOpsConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let routing_key = match &r.routing_key {
        Some(k) if !k.value.is_empty() => ctx.tmpl(&r.routing_key, "", "routing_key", sink),
        _ => {
            sink.push(pos, "missing Routing key in VictorOps config");
            return None;
        }
    };
    if let Some(cf) = &r.custom_fields {
        for k in cf.value.keys() {
            if RESERVED.contains(&k.as_str()) {
                sink.push(
                    Pos::of(cf),
                    format!("victorOps config contains custom field {k} which cannot be used as it conflicts with the fixed/static fields"),
                );
            }
        }
    }
    let Some(api_key) = ctx.secret_or_global(
        &r.api_key,
        &r.api_key_file,
        "api_key",
        "victorops_api_key",
        pos,
        sink,
    ) else {
        sink.push(pos, "no global VictorOps API Key set");
        return None;
    };
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    let mut api_url = ctx.url_or_global(
        &r.api_url,
        "victorops_api_url",
        "https://alert.victorops.com/integrations/generic/20131114/alert/",
        sink,
    );
    if !api_url.ends_with('/') {
        api_url.push('/');
    }
    Some(VictorOpsConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_key,
        api_url,
        routing_key,
        message_type: t(&r.message_type, "CRITICAL", "message_type", sink),
        state_message: t(
            &r.state_message,
            "{{ template \"victorops.default.state_message\" . }}",
            "state_message",
            sink,
        ),
        entity_display_name: t(
            &r.entity_display_name,
            "{{ template \"victorops.default.entity_display_name\" . }}",
            "entity_display_name",
            sink,
        ),
        monitoring_tool: t(
            &r.monitoring_tool,
            "{{ template \"victorops.default.monitoring_tool\" . }}",
            "monitoring_tool",
            sink,
        ),
        custom_fields: r
            .custom_fields
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_default(),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

pub fn render(
    cfg: &VictorOpsConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let mut message_type = r.text("message_type", &cfg.message_type)?;
    if group_status(n) == "resolved" {
        message_type = "RECOVERY".into();
    } else if !["INFO", "WARNING", "CRITICAL"].contains(&message_type.as_str()) {
        message_type = "CRITICAL".into();
    }
    let mut msg = BTreeMap::new();
    msg.insert("message_type".to_string(), message_type);
    msg.insert("entity_id".into(), group_hash(&n.group_key));
    msg.insert(
        "entity_display_name".into(),
        r.text("entity_display_name", &cfg.entity_display_name)?,
    );
    msg.insert(
        "state_message".into(),
        super::truncate_runes(
            &r.text("state_message", &cfg.state_message)?,
            MAX_MESSAGE_RUNES,
        ),
    );
    msg.insert(
        "monitoring_tool".into(),
        r.text("monitoring_tool", &cfg.monitoring_tool)?,
    );
    for (k, v) in &cfg.custom_fields {
        msg.insert(k.clone(), r.text(&format!("custom_fields.{k}"), v)?);
    }
    let routing_key = r.text("routing_key", &cfg.routing_key)?;
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            path: super::go_path_escape(&routing_key),
            ..StoredRequest::post_json(go_json(&msg))
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &VictorOpsConfig) -> Result<Endpoint, super::SecretError> {
    let key = cfg.api_key.read()?;
    Ok(Endpoint {
        base: format!("{}{}/", cfg.api_url, super::go_path_escape(key.expose())),
        headers: vec![],
        query: vec![],
        retry_codes: &[],
        retry_all: false,
        check: BodyCheck::None,
    })
}
