//! Opsgenie Alert API v2: create (`POST v2/alerts`), close on resolve
//! (`POST v2/alerts/<alias>/close?identifierType=alias`) and, with
//! `update_alerts`, message and description updates, as Alertmanager sends
//! them. The alias is the SHA-256 of the group key (Alertmanager's
//! `Key.Hash`): the same group maps to one Opsgenie alert across retries,
//! restarts, an HA failover and a migration from Alertmanager.

use super::config::Ctx;
use super::http::{go_json, Endpoint, Payload, StoredRequest};
use super::{group_hash, Render, SecretSource};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::notify::template::group_status;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;

const MAX_MESSAGE_RUNES: usize = 130;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponder {
    pub id: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpsgenie {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_key: Option<String>,
    pub api_key_file: Option<String>,
    pub api_url: Option<S<String>>,
    pub message: Option<S<String>>,
    pub description: Option<S<String>>,
    pub source: Option<S<String>>,
    pub details: Option<BTreeMap<String, String>>,
    pub entity: Option<S<String>>,
    pub responders: Option<Vec<S<RawResponder>>>,
    pub actions: Option<S<String>>,
    pub tags: Option<S<String>>,
    pub note: Option<S<String>>,
    pub priority: Option<S<String>>,
    pub update_alerts: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Responder {
    pub id: String,
    pub name: String,
    pub username: String,
    pub kind: String,
}

/// `opsgenie_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct OpsgenieConfig {
    pub send_resolved: bool,
    pub api_key: SecretSource,
    pub api_url: String,
    pub message: String,
    pub description: String,
    pub source: String,
    pub details: BTreeMap<String, String>,
    pub entity: String,
    pub responders: Vec<Responder>,
    pub actions: String,
    pub tags: String,
    pub note: String,
    pub priority: String,
    pub update_alerts: bool,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(
    c: &S<RawOpsgenie>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<OpsgenieConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let key = ctx.secret_or_global(
        &r.api_key,
        &r.api_key_file,
        "api_key",
        "opsgenie_api_key",
        pos,
        sink,
    );
    let mut responders = Vec::new();
    for rs in r.responders.iter().flatten() {
        let v = &rs.value;
        let get = |o: &Option<String>| o.clone().unwrap_or_default();
        let resp = Responder {
            id: get(&v.id),
            name: get(&v.name),
            username: get(&v.username),
            kind: get(&v.kind),
        };
        if resp.id.is_empty() && resp.name.is_empty() && resp.username.is_empty() {
            sink.push(
                Pos::of(rs),
                "opsGenieConfig responder has to have at least one of id, username or name specified",
            );
        }
        let k = resp.kind.to_ascii_lowercase();
        if !resp.kind.contains("{{")
            && !["team", "teams", "user", "escalation", "schedule"].contains(&k.as_str())
        {
            sink.push(
                Pos::of(rs),
                format!(
                    "opsGenieConfig responder type {:?} does not match valid options ^(team|teams|user|escalation|schedule)$",
                    resp.kind
                ),
            );
        }
        responders.push(resp);
    }
    let Some(api_key) = key else {
        sink.push(
            pos,
            "no global OpsGenie API Key set either inline or in a file",
        );
        return None;
    };
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    let mut api_url = ctx.url_or_global(
        &r.api_url,
        "opsgenie_api_url",
        "https://api.opsgenie.com/",
        sink,
    );
    if !api_url.ends_with('/') {
        api_url.push('/');
    }
    Some(OpsgenieConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_key,
        api_url,
        message: t(
            &r.message,
            "{{ template \"opsgenie.default.message\" . }}",
            "message",
            sink,
        ),
        description: t(
            &r.description,
            "{{ template \"opsgenie.default.description\" . }}",
            "description",
            sink,
        ),
        source: t(
            &r.source,
            "{{ template \"opsgenie.default.source\" . }}",
            "source",
            sink,
        ),
        details: r.details.clone().unwrap_or_default(),
        entity: t(&r.entity, "", "entity", sink),
        responders,
        actions: t(&r.actions, "", "actions", sink),
        tags: t(&r.tags, "", "tags", sink),
        note: t(&r.note, "", "note", sink),
        priority: t(&r.priority, "", "priority", sink),
        update_alerts: r.update_alerts.unwrap_or(false),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

#[derive(Serialize, PartialEq, Default)]
struct OgResponder {
    #[serde(skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize)]
struct Create {
    alias: String,
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    details: BTreeMap<String, String>,
    source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    responders: Vec<OgResponder>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    note: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    priority: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    entity: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
}

/// Splits on `sep` and drops empty parts (Alertmanager's `safeSplit`).
fn safe_split(s: &str, sep: char) -> Vec<String> {
    s.trim()
        .split(sep)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn alias_query() -> Vec<(String, String)> {
    vec![("identifierType".into(), "alias".into())]
}

fn json_req(
    method: &str,
    path: String,
    query: Vec<(String, String)>,
    body: String,
) -> StoredRequest {
    StoredRequest {
        method: method.into(),
        path,
        query,
        content_type: "application/json".into(),
        body,
        thread: String::new(),
    }
}

pub fn render(
    cfg: &OpsgenieConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let alias = group_hash(&n.group_key);
    let mut requests = Vec::new();
    if group_status(n) == "resolved" {
        let body = go_json(&serde_json::json!({"source": r.text("source", &cfg.source)?}));
        requests.push(json_req(
            "POST",
            format!("v2/alerts/{alias}/close"),
            alias_query(),
            body,
        ));
    } else {
        let mut details: BTreeMap<String, String> = r.common_labels();
        for (k, v) in &cfg.details {
            details.insert(k.clone(), r.text(&format!("details.{k}"), v)?);
        }
        let mut responders = Vec::new();
        for x in &cfg.responders {
            let resp = OgResponder {
                id: r.text("responders.id", &x.id)?,
                name: r.text("responders.name", &x.name)?,
                username: r.text("responders.username", &x.username)?,
                kind: r.text("responders.type", &x.kind)?,
            };
            if resp == OgResponder::default() {
                continue;
            }
            if resp.kind == "teams" {
                for team in safe_split(&resp.name, ',') {
                    responders.push(OgResponder {
                        name: r.text("responders.name", &team)?,
                        kind: "team".into(),
                        ..Default::default()
                    });
                }
                continue;
            }
            responders.push(resp);
        }
        let msg = Create {
            alias: alias.clone(),
            message: super::truncate_runes(&r.text("message", &cfg.message)?, MAX_MESSAGE_RUNES),
            description: r.text("description", &cfg.description)?,
            details,
            source: r.text("source", &cfg.source)?,
            responders,
            tags: safe_split(&r.text("tags", &cfg.tags)?, ','),
            note: r.text("note", &cfg.note)?,
            priority: r.text("priority", &cfg.priority)?,
            entity: r.text("entity", &cfg.entity)?,
            actions: safe_split(&r.text("actions", &cfg.actions)?, ','),
        };
        requests.push(json_req("POST", "v2/alerts".into(), vec![], go_json(&msg)));
        if cfg.update_alerts {
            let m = if msg.message.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({"message": msg.message})
            };
            requests.push(json_req(
                "PUT",
                format!("v2/alerts/{alias}/message"),
                alias_query(),
                go_json(&m),
            ));
            let d = if msg.description.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({"description": msg.description})
            };
            requests.push(json_req(
                "PUT",
                format!("v2/alerts/{alias}/description"),
                alias_query(),
                go_json(&d),
            ));
        }
    }
    Ok(Payload::Requests {
        requests,
        request_id: n.request_id().map(str::to_string),
    })
}

pub fn endpoint(cfg: &OpsgenieConfig) -> Result<Endpoint, super::SecretError> {
    let key = cfg.api_key.read()?;
    Ok(Endpoint {
        base: cfg.api_url.clone(),
        headers: vec![("Authorization", format!("GenieKey {}", key.expose()))],
        query: vec![],
        retry_codes: &[429],
        retry_all: false,
        check: super::http::BodyCheck::None,
    })
}
