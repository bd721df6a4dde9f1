//! `consul_sd_configs`: Consul's catalog watched with blocking queries
//! (`index` + `wait`), one blocking health query per service, Prometheus'
//! `__meta_consul_*` labels. As Prometheus: a service list is asked for at
//! most once per `refresh_interval`, a failed query waits before the next
//! one and keeps the targets.

use super::config::ConsulSdConfig;
use super::refresh::{request_error, SdClient, SdError};
use super::{join_host_port, sanitize_label_name, ProviderCtx};
use crate::config::TargetGroup;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const P: &str = "__meta_consul_";
/// How long the server may hold a blocking query.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(120);
const RETRY: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ServiceEntry {
    node: Node,
    service: Service,
    checks: Vec<Check>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Node {
    node: String,
    address: String,
    tagged_addresses: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Service {
    #[serde(rename = "ID")]
    id: String,
    tags: Vec<String>,
    address: String,
    port: i64,
    meta: BTreeMap<String, String>,
    namespace: String,
    partition: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Check {
    #[serde(rename = "CheckID")]
    check_id: String,
    status: String,
}

/// Consul's aggregate of a service instance's checks.
fn aggregated_status(checks: &[Check]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for c in checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            "critical" => critical = true,
            "warning" => warning = true,
            _ => {}
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        "passing"
    }
}

struct Consul {
    client: SdClient,
    cfg: ConsulSdConfig,
    base: String,
    datacenter: String,
    /// Per service: how many per-target groups were sent last.
    sent: Mutex<HashMap<String, usize>>,
}

impl Consul {
    /// A blocking GET; returns the body and `X-Consul-Index`.
    async fn get(
        &self,
        path: &str,
        index: u64,
        extra: &[(&str, &str)],
    ) -> Result<(Vec<u8>, u64), SdError> {
        let url = self.url(path, index, extra);
        let mut rb = self.client.get(&url)?;
        if let Some(t) = &self.cfg.token {
            rb = rb.header("X-Consul-Token", t.expose());
        }
        let resp = rb.send().await.map_err(|e| request_error(&url, &e))?;
        if !resp.status().is_success() {
            return Err(SdError::Status {
                url,
                status: resp.status().to_string(),
            });
        }
        let idx = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = super::refresh::read_limited(&url, resp, self.client.limit()).await?;
        Ok((body, idx))
    }

    fn url(&self, path: &str, index: u64, extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.datacenter.is_empty() {
            q.append_pair("dc", &self.datacenter);
        }
        if self.cfg.allow_stale {
            q.append_pair("stale", "");
        }
        if !self.cfg.namespace.is_empty() {
            q.append_pair("ns", &self.cfg.namespace);
        }
        if !self.cfg.partition.is_empty() {
            q.append_pair("partition", &self.cfg.partition);
        }
        for (k, v) in &self.cfg.node_meta {
            q.append_pair("node-meta", &format!("{k}:{v}"));
        }
        if !self.cfg.filter.is_empty() {
            q.append_pair("filter", &self.cfg.filter);
        }
        if index > 0 {
            q.append_pair("index", &index.to_string());
            q.append_pair("wait", &format!("{}ms", WATCH_TIMEOUT.as_millis()));
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        format!("{}{path}?{}", self.base, q.finish())
    }

    fn should_watch(&self, name: &str, tags: &[String]) -> bool {
        (self.cfg.services.is_empty() || self.cfg.services.iter().any(|s| s == name))
            && self.cfg.tags.iter().all(|t| tags.contains(t))
    }

    /// Groups of one service's instances, replacing what was sent before.
    fn groups(&self, name: &str, entries: &[ServiceEntry]) -> Vec<TargetGroup> {
        let sep = &self.cfg.tag_separator;
        let mut out = Vec::new();
        for e in entries {
            let s = &e.service;
            let host = if s.address.is_empty() {
                &e.node.address
            } else {
                &s.address
            };
            let mut l = BTreeMap::new();
            l.insert(format!("{P}service"), name.to_string());
            l.insert(format!("{P}dc"), self.datacenter.clone());
            l.insert(format!("{P}address"), e.node.address.clone());
            l.insert(format!("{P}node"), e.node.node.clone());
            l.insert(format!("{P}namespace"), s.namespace.clone());
            l.insert(format!("{P}partition"), s.partition.clone());
            l.insert(
                format!("{P}tags"),
                format!("{sep}{}{sep}", s.tags.join(sep)),
            );
            l.insert(format!("{P}service_address"), s.address.clone());
            l.insert(format!("{P}service_port"), s.port.to_string());
            l.insert(format!("{P}service_id"), s.id.clone());
            l.insert(
                format!("{P}health"),
                aggregated_status(&e.checks).to_string(),
            );
            for (k, v) in &e.node.meta {
                l.insert(format!("{P}metadata_{}", sanitize_label_name(k)), v.clone());
            }
            for (k, v) in &s.meta {
                l.insert(
                    format!("{P}service_metadata_{}", sanitize_label_name(k)),
                    v.clone(),
                );
            }
            for (k, v) in &e.node.tagged_addresses {
                l.insert(
                    format!("{P}tagged_address_{}", sanitize_label_name(k)),
                    v.clone(),
                );
            }
            out.push(TargetGroup {
                targets: vec![join_host_port(host, s.port)],
                labels: l,
                source: format!("{name}/{}", out.len()),
                target_labels: Vec::new(),
            });
        }
        self.with_removals(name, out)
    }

    /// Adds empty groups for the service's targets that went away.
    fn with_removals(&self, name: &str, mut out: Vec<TargetGroup>) -> Vec<TargetGroup> {
        let n = out.len();
        let before = self.sent.lock().insert(name.to_string(), n).unwrap_or(0);
        for i in n..before {
            out.push(TargetGroup {
                targets: Vec::new(),
                labels: BTreeMap::new(),
                source: format!("{name}/{i}"),
                target_labels: Vec::new(),
            });
        }
        out
    }
}

pub async fn run(cfg: ConsulSdConfig, ctx: ProviderCtx) {
    let client = match SdClient::new(
        &cfg.http_client,
        Some(WATCH_TIMEOUT + Duration::from_secs(15)),
        ctx.opts.max_response_bytes,
    ) {
        Ok(c) => c,
        Err(e) => {
            ctx.failed(&e);
            return;
        }
    };
    let base = format!(
        "{}://{}{}",
        cfg.scheme,
        cfg.server.trim_end_matches('/'),
        cfg.path_prefix.trim_end_matches('/')
    );
    let retry = RETRY.min(cfg.refresh_interval);
    let mut consul = Consul {
        client,
        datacenter: cfg.datacenter.clone(),
        cfg,
        base,
        sent: Mutex::new(HashMap::new()),
    };
    // The agent's datacenter when none is configured (it is a label).
    while consul.datacenter.is_empty() {
        #[derive(Deserialize)]
        struct AgentSelf {
            #[serde(rename = "Config")]
            config: AgentConfig,
        }
        #[derive(Deserialize)]
        struct AgentConfig {
            #[serde(rename = "Datacenter")]
            datacenter: String,
        }
        let r = consul
            .get("/v1/agent/self", 0, &[])
            .await
            .and_then(|(b, _)| {
                serde_json::from_slice::<AgentSelf>(&b).map_err(|e| SdError::Decode {
                    url: "/v1/agent/self".into(),
                    detail: e.to_string(),
                })
            });
        match r {
            Ok(a) => consul.datacenter = a.config.datacenter,
            Err(e) => {
                ctx.failed(&e);
                tokio::time::sleep(retry).await;
            }
        }
    }
    let consul = Arc::new(consul);
    let mut watchers = Watchers::default();
    let watchers = &mut watchers.0;
    let c = &consul.cfg;
    if !c.services.is_empty() && c.tags.is_empty() && c.filter.is_empty() {
        for name in c.services.clone() {
            watchers.insert(
                name.clone(),
                tokio::spawn(watch_service(consul.clone(), ctx.clone(), name, retry)),
            );
        }
        std::future::pending::<()>().await;
    }
    let mut index = 0u64;
    loop {
        let started = tokio::time::Instant::now();
        match consul
            .get("/v1/catalog/services", index, &[])
            .await
            .and_then(|(b, i)| {
                let s: BTreeMap<String, Vec<String>> =
                    serde_json::from_slice(&b).map_err(|e| SdError::Decode {
                        url: "/v1/catalog/services".into(),
                        detail: e.to_string(),
                    })?;
                Ok((s, i))
            }) {
            Err(e) => {
                ctx.failed(&e);
                tokio::time::sleep(retry).await;
                continue;
            }
            Ok((_, i)) if i == index && index != 0 => {}
            Ok((services, i)) => {
                index = i;
                for (name, tags) in &services {
                    if !consul.should_watch(name, tags) || watchers.contains_key(name) {
                        continue;
                    }
                    watchers.insert(
                        name.clone(),
                        tokio::spawn(watch_service(
                            consul.clone(),
                            ctx.clone(),
                            name.clone(),
                            retry,
                        )),
                    );
                }
                let gone: Vec<String> = watchers
                    .keys()
                    .filter(|n| !services.contains_key(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(h) = watchers.remove(&name) {
                        h.abort();
                    }
                    ctx.update(consul.with_removals(&name, Vec::new()));
                }
            }
        }
        let next = started + consul.cfg.refresh_interval;
        tokio::time::sleep_until(next).await;
    }
}

/// The service watchers; aborted when the provider stops.
#[derive(Default)]
struct Watchers(HashMap<String, tokio::task::JoinHandle<()>>);

impl Drop for Watchers {
    fn drop(&mut self) {
        for h in self.0.values() {
            h.abort();
        }
    }
}

async fn watch_service(consul: Arc<Consul>, ctx: ProviderCtx, name: String, retry: Duration) {
    let mut index = 0u64;
    let path = format!(
        "/v1/health/service/{}",
        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    let tags: Vec<(&str, &str)> = consul
        .cfg
        .tags
        .iter()
        .map(|t| ("tag", t.as_str()))
        .collect();
    loop {
        let started = tokio::time::Instant::now();
        match consul.get(&path, index, &tags).await.and_then(|(b, i)| {
            let e: Vec<ServiceEntry> = serde_json::from_slice(&b).map_err(|e| SdError::Decode {
                url: path.clone(),
                detail: e.to_string(),
            })?;
            Ok((e, i))
        }) {
            Err(e) => {
                ctx.failed(&format!("service {name:?}: {e}"));
                tokio::time::sleep(retry).await;
                continue;
            }
            Ok((_, i)) if i == index && index != 0 => {}
            Ok((entries, i)) => {
                index = i;
                ctx.update(consul.groups(&name, &entries));
            }
        }
        tokio::time::sleep_until(started + consul.cfg.refresh_interval).await;
    }
}
