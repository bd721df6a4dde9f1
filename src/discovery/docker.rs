//! `docker_sd_configs`: the Docker Engine API's containers and networks
//! every `refresh_interval`, one target per container network and TCP port
//! with Prometheus' `__meta_docker_*` labels. `host` is `unix:///path`,
//! `tcp://host:port` or an `http(s)://` URL.

use super::config::DockerSdConfig;
use super::refresh::{run_every, SdClient, SdError};
use super::{join_host_port, sanitize_label_name, ProviderCtx};
use crate::config::TargetGroup;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

const P: &str = "__meta_docker_";

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Container {
    id: String,
    names: Vec<String>,
    image: String,
    #[serde(rename = "ImageID")]
    image_id: String,
    labels: BTreeMap<String, String>,
    ports: Vec<Port>,
    host_config: HostConfig,
    network_settings: NetworkSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP")]
    ip: String,
    private_port: u16,
    public_port: u16,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, rename_all = "PascalCase")]
struct HostConfig {
    network_mode: String,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, rename_all = "PascalCase")]
struct NetworkSettings {
    networks: BTreeMap<String, Option<Endpoint>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, rename_all = "PascalCase")]
struct Endpoint {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Network {
    id: String,
    name: String,
    scope: String,
    internal: bool,
    ingress: bool,
    labels: BTreeMap<String, String>,
}

/// The API client and where to send requests.
pub struct Docker {
    client: SdClient,
    base: String,
}

impl Docker {
    pub fn new(cfg: &DockerSdConfig, ctx: &ProviderCtx) -> Result<Docker, SdError> {
        let limit = ctx.opts.max_response_bytes;
        let timeout = Some(ctx.opts.request_timeout);
        if let Some(path) = cfg.host.strip_prefix("unix://") {
            let client = SdClient::build(
                &cfg.http_client,
                timeout,
                limit,
                Some(std::path::Path::new(path)),
            )?;
            return Ok(Docker {
                client,
                base: "http://docker".into(),
            });
        }
        let base = match cfg.host.strip_prefix("tcp://") {
            Some(rest) => format!("http://{rest}"),
            None => cfg.host.clone(),
        };
        Ok(Docker {
            client: SdClient::new(&cfg.http_client, timeout, limit)?,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SdError> {
        let url = format!("{}{path}", self.base);
        let rb = self.client.get(&url)?;
        let (_, body) = self.client.send(&url, rb).await?;
        serde_json::from_slice(&body).map_err(|e| SdError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    /// The API version prefix the daemon announces on `/_ping` (`/v1.40`),
    /// or none.
    async fn version_prefix(&self) -> String {
        let url = format!("{}/_ping", self.base);
        let Ok(rb) = self.client.get(&url) else {
            return String::new();
        };
        match rb.send().await {
            Ok(r) => r
                .headers()
                .get("Api-Version")
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("/v{}", v.trim_matches('"')))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

pub async fn run(cfg: DockerSdConfig, ctx: ProviderCtx) {
    let docker = match Docker::new(&cfg, &ctx) {
        Ok(d) => d,
        Err(e) => {
            ctx.failed(&e);
            return;
        }
    };
    let interval = cfg.refresh_interval;
    run_every(ctx, interval, || refresh(&docker, &cfg)).await
}

/// One refresh: containers (with the entry's filters) and networks.
pub async fn refresh(docker: &Docker, cfg: &DockerSdConfig) -> Result<Vec<TargetGroup>, SdError> {
    let v = docker.version_prefix().await;
    let mut path = format!("{v}/containers/json");
    if !cfg.filters.is_empty() {
        let f: BTreeMap<&str, &Vec<String>> =
            cfg.filters.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let json = serde_json::to_string(&f).unwrap_or_default();
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("filters", &json)
            .finish();
        path = format!("{path}?{q}");
    }
    let containers: Vec<Container> = docker.get_json(&path).await?;
    let networks: Vec<Network> = docker.get_json(&format!("{v}/networks")).await?;
    Ok(targets(cfg, &containers, &networks))
}

fn network_labels(networks: &[Network]) -> HashMap<&str, BTreeMap<String, String>> {
    networks
        .iter()
        .map(|n| {
            let mut l = BTreeMap::new();
            l.insert(format!("{P}network_id"), n.id.clone());
            l.insert(format!("{P}network_name"), n.name.clone());
            l.insert(format!("{P}network_scope"), n.scope.clone());
            l.insert(format!("{P}network_internal"), n.internal.to_string());
            l.insert(format!("{P}network_ingress"), n.ingress.to_string());
            for (k, v) in &n.labels {
                l.insert(
                    format!("{P}network_label_{}", sanitize_label_name(k)),
                    v.clone(),
                );
            }
            (n.id.as_str(), l)
        })
        .collect()
}

fn targets(
    cfg: &DockerSdConfig,
    containers: &[Container],
    networks: &[Network],
) -> Vec<TargetGroup> {
    let net_labels = network_labels(networks);
    let by_id: HashMap<&str, &Container> = containers.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut out = Vec::new();
    let mut push = |labels: BTreeMap<String, String>, addr: String| {
        let n = out.len();
        out.push(TargetGroup {
            targets: vec![addr],
            labels,
            source: format!("Docker/{n}"),
            target_labels: Vec::new(),
        });
    };
    for c in containers {
        let Some(name) = c.names.first() else {
            continue;
        };
        let mut common = BTreeMap::new();
        common.insert(format!("{P}container_id"), c.id.clone());
        common.insert(format!("{P}container_name"), name.clone());
        common.insert(
            format!("{P}container_network_mode"),
            c.host_config.network_mode.clone(),
        );
        if !c.image.is_empty() {
            common.insert(format!("{P}container_image"), c.image.clone());
        }
        if !c.image_id.is_empty() {
            common.insert(format!("{P}container_image_id"), c.image_id.clone());
        }
        for (k, v) in &c.labels {
            common.insert(
                format!("{P}container_label_{}", sanitize_label_name(k)),
                v.clone(),
            );
        }
        // `container:<id>` network mode: the networks of that container.
        let mut nets: Vec<(String, Endpoint)> = c
            .network_settings
            .networks
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        let mut mode = c.host_config.network_mode.clone();
        let mut hops = 0;
        while nets.is_empty() && hops < 16 {
            hops += 1;
            let Some(other) = mode.strip_prefix("container:").and_then(|id| by_id.get(id)) else {
                break;
            };
            nets = other
                .network_settings
                .networks
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect();
            mode = other.host_config.network_mode.clone();
        }
        if cfg.match_first_network && nets.len() > 1 {
            nets.sort_by(|a, b| a.0.cmp(&b.0));
            nets.truncate(1);
        }
        for (_, n) in &nets {
            let ip = if !n.ip_address.is_empty() {
                n.ip_address.clone()
            } else {
                n.global_ipv6_address.clone()
            };
            let base = |mut l: BTreeMap<String, String>| {
                l.insert(format!("{P}network_ip"), ip.clone());
                l.extend(common.clone());
                if let Some(nl) = net_labels.get(n.network_id.as_str()) {
                    l.extend(nl.clone());
                }
                l
            };
            let mut added = false;
            for p in c.ports.iter().filter(|p| p.kind == "tcp") {
                let mut l = BTreeMap::new();
                l.insert(format!("{P}port_private"), p.private_port.to_string());
                if p.public_port > 0 {
                    l.insert(format!("{P}port_public"), p.public_port.to_string());
                    l.insert(format!("{P}port_public_ip"), p.ip.clone());
                }
                push(base(l), join_host_port(&ip, p.private_port));
                added = true;
            }
            if !added {
                let addr = if c.host_config.network_mode != "host" {
                    join_host_port(&ip, cfg.port)
                } else {
                    cfg.host_networking_host.clone()
                };
                push(base(BTreeMap::new()), addr);
            }
        }
    }
    out
}
