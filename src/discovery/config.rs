//! Service discovery entries of a scrape job (or an Alertmanager set), as
//! Prometheus 3.x names them and with its defaults and checks.
//!
//! The raw shapes are embedded in [`crate::config::raw::RawScrapeConfig`];
//! another config block that takes SD entries (`alerting.alertmanagers`)
//! adds the same fields and calls [`resolve_sd_fields`] with
//! [`sd_fields!`].

use crate::config::common::{opt_duration, FileSdConfig};
use crate::config::errors::{Pos, Sink};
use crate::config::file_sd::TargetGroup;
use crate::config::http::Secret;
use crate::config::http::{resolve_http_fields, HttpClientConfig};
use crate::config::join_dir;
use crate::config::raw::{SpannedMap, S};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One SD entry of a set, resolved.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per config load
pub enum SdConfig {
    Static(Vec<TargetGroup>),
    File(FileSdConfig),
    Http(HttpSdConfig),
    Dns(DnsSdConfig),
    Consul(ConsulSdConfig),
    Docker(DockerSdConfig),
    Kubernetes(KubernetesSdConfig),
}

impl SdConfig {
    /// The mechanism's name, as Prometheus' `mechanism` label has it.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SdConfig::Static(_) => "static",
            SdConfig::File(_) => "file",
            SdConfig::Http(_) => "http",
            SdConfig::Dns(_) => "dns",
            SdConfig::Consul(_) => "consul",
            SdConfig::Docker(_) => "docker",
            SdConfig::Kubernetes(_) => "kubernetes",
        }
    }

    /// The config field the entry came from.
    pub fn field(&self) -> &'static str {
        match self {
            SdConfig::Static(_) => "static_configs",
            SdConfig::File(_) => "file_sd_configs",
            SdConfig::Http(_) => "http_sd_configs",
            SdConfig::Dns(_) => "dns_sd_configs",
            SdConfig::Consul(_) => "consul_sd_configs",
            SdConfig::Docker(_) => "docker_sd_configs",
            SdConfig::Kubernetes(_) => "kubernetes_sd_configs",
        }
    }
}

pub use crate::config::common::{
    is_valid_file_sd_name, unsupported_message, SUPPORTED_FIELDS, UNSUPPORTED_FIELDS,
};

#[derive(Clone, Debug, PartialEq)]
pub struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Duration,
    pub http_client: HttpClientConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsType {
    Srv,
    A,
    Aaaa,
    Mx,
    Ns,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DnsSdConfig {
    pub names: Vec<String>,
    pub kind: DnsType,
    pub port: u16,
    pub refresh_interval: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsulSdConfig {
    pub server: String,
    pub path_prefix: String,
    pub token: Option<Secret>,
    pub datacenter: String,
    pub namespace: String,
    pub partition: String,
    pub scheme: String,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub tag_separator: String,
    pub allow_stale: bool,
    pub refresh_interval: Duration,
    pub filter: String,
    pub http_client: HttpClientConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DockerSdConfig {
    pub host: String,
    pub port: u16,
    pub host_networking_host: String,
    pub match_first_network: bool,
    pub filters: Vec<(String, Vec<String>)>,
    pub refresh_interval: Duration,
    pub http_client: HttpClientConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Pod,
        Role::Service,
        Role::Endpoints,
        Role::EndpointSlice,
        Role::Node,
        Role::Ingress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Pod => "pod",
            Role::Service => "service",
            Role::Endpoints => "endpoints",
            Role::EndpointSlice => "endpointslice",
            Role::Ingress => "ingress",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Which selector roles a discovery role reads (Prometheus' table).
    fn allowed_selectors(self) -> &'static [Role] {
        match self {
            Role::Endpoints => &[Role::Pod, Role::Service, Role::Endpoints],
            Role::EndpointSlice => &[Role::Pod, Role::Service, Role::EndpointSlice],
            Role::Ingress => &[Role::Ingress],
            Role::Node => &[Role::Node],
            Role::Pod => &[Role::Pod, Role::Node],
            Role::Service => &[Role::Service],
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub role: Role,
    pub label: String,
    pub field: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KubernetesSdConfig {
    pub role: Role,
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    pub namespaces: Vec<String>,
    pub own_namespace: bool,
    pub selectors: Vec<Selector>,
    pub attach_node: bool,
    pub attach_namespace: bool,
    pub http_client: HttpClientConfig,
}

/// Declares a raw SD struct with the inline HTTP client settings (the
/// kit's list, the unsupported proxy keys and `http_headers`).
macro_rules! raw_with_http {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty,)* }) => {
        crate::config::raw::raw_http_client_struct! {
            unsupported;
            $(#[$m])*
            pub(crate) struct $name {
                $($(#[$fm])* $f: $t,)*
                http_headers: Option<S<IgnoredAny>>,
            }
        }
    };
}

raw_with_http!(RawHttpSdConfig {
    url: Option<S<String>>,
    refresh_interval: Option<S<String>>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsSdConfig {
    pub names: Option<Vec<S<String>>>,
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    pub port: Option<S<u16>>,
    pub refresh_interval: Option<S<String>>,
}

raw_with_http!(RawConsulSdConfig {
    server: Option<S<String>>,
    path_prefix: Option<String>,
    token: Option<S<String>>,
    datacenter: Option<String>,
    namespace: Option<String>,
    partition: Option<String>,
    scheme: Option<S<String>>,
    username: Option<S<String>>,
    password: Option<S<String>>,
    services: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    node_meta: Option<SpannedMap>,
    tag_separator: Option<String>,
    allow_stale: Option<bool>,
    refresh_interval: Option<S<String>>,
    filter: Option<String>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDockerFilter {
    pub name: Option<String>,
    pub values: Option<Vec<String>>,
}

raw_with_http!(RawDockerSdConfig {
    host: Option<S<String>>,
    port: Option<u16>,
    host_networking_host: Option<String>,
    match_first_network: Option<bool>,
    filters: Option<Vec<S<RawDockerFilter>>>,
    refresh_interval: Option<S<String>>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamespaces {
    pub names: Option<Vec<String>>,
    pub own_namespace: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSelector {
    pub role: Option<S<String>>,
    pub label: Option<S<String>>,
    pub field: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAttachMetadata {
    pub node: Option<bool>,
    pub namespace: Option<bool>,
}

raw_with_http!(RawKubernetesSdConfig {
    role: Option<S<String>>,
    api_server: Option<S<String>>,
    kubeconfig_file: Option<S<String>>,
    namespaces: Option<S<RawNamespaces>>,
    selectors: Option<Vec<S<RawSelector>>>,
    attach_metadata: Option<RawAttachMetadata>,
});

/// The SD fields of one config block, borrowed from its raw struct.
pub(crate) struct SdFields<'a> {
    pub static_configs: Option<&'a Vec<S<crate::config::raw::RawStaticConfig>>>,
    pub file_sd_configs: Option<&'a Vec<S<crate::config::raw::RawFileSdConfig>>>,
    pub http_sd_configs: Option<&'a Vec<S<RawHttpSdConfig>>>,
    pub dns_sd_configs: Option<&'a Vec<S<RawDnsSdConfig>>>,
    pub consul_sd_configs: Option<&'a Vec<S<RawConsulSdConfig>>>,
    pub docker_sd_configs: Option<&'a Vec<S<RawDockerSdConfig>>>,
    pub kubernetes_sd_configs: Option<&'a Vec<S<RawKubernetesSdConfig>>>,
}

/// [`SdFields`] of a raw block that has the SD fields under their
/// upstream names.
macro_rules! sd_fields {
    ($r:expr) => {
        $crate::discovery::config::SdFields {
            static_configs: $r.static_configs.as_ref(),
            file_sd_configs: $r.file_sd_configs.as_ref(),
            http_sd_configs: $r.http_sd_configs.as_ref(),
            dns_sd_configs: $r.dns_sd_configs.as_ref(),
            consul_sd_configs: $r.consul_sd_configs.as_ref(),
            docker_sd_configs: $r.docker_sd_configs.as_ref(),
            kubernetes_sd_configs: $r.kubernetes_sd_configs.as_ref(),
        }
    };
}
pub(crate) use sd_fields;

/// Resolves every SD entry of one block, in field order (static, file,
/// http, dns, consul, docker, kubernetes); an entry with errors is left
/// out (its errors are in `sink`).
/// `check_hosts`: static targets must be `host:port` (no relabeling that
/// could repair them).
pub(crate) fn resolve_sd_fields(
    f: SdFields<'_>,
    dir: Option<&Path>,
    check_hosts: bool,
    sink: &mut Sink,
) -> Vec<SdConfig> {
    let statics = f.static_configs.map(|v| v.as_slice()).unwrap_or(&[]);
    let mut out: Vec<SdConfig> =
        crate::config::common::resolve_static_configs(statics, check_hosts, sink)
            .into_iter()
            .map(|g| SdConfig::Static(vec![g]))
            .collect();
    let files = f.file_sd_configs.map(|v| v.as_slice()).unwrap_or(&[]);
    for c in crate::config::common::resolve_file_sd_configs(files, dir, sink) {
        out.push(SdConfig::File(c));
    }
    for r in f.http_sd_configs.into_iter().flatten() {
        out.extend(resolve_http(r, dir, sink).map(SdConfig::Http));
    }
    for r in f.dns_sd_configs.into_iter().flatten() {
        out.extend(resolve_dns(r, sink).map(SdConfig::Dns));
    }
    for r in f.consul_sd_configs.into_iter().flatten() {
        out.extend(resolve_consul(r, dir, sink).map(SdConfig::Consul));
    }
    for r in f.docker_sd_configs.into_iter().flatten() {
        out.extend(resolve_docker(r, dir, sink).map(SdConfig::Docker));
    }
    for r in f.kubernetes_sd_configs.into_iter().flatten() {
        out.extend(resolve_kubernetes(r, dir, sink).map(SdConfig::Kubernetes));
    }
    out
}

/// A block's entries as the config structs keep them: the static groups,
/// the file_sd entries, and the other mechanisms in field order.
pub(crate) fn split_sd(sds: Vec<SdConfig>) -> (Vec<TargetGroup>, Vec<FileSdConfig>, Vec<SdConfig>) {
    let (mut statics, mut files, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for sd in sds {
        match sd {
            SdConfig::Static(g) => statics.extend(g),
            SdConfig::File(f) => files.push(f),
            other => others.push(other),
        }
    }
    (statics, files, others)
}

/// The reverse of [`split_sd`]: every entry of a block for the discovery
/// manager, one static entry per group, then file_sd, then the others.
pub fn join_sd(
    statics: &[TargetGroup],
    files: &[FileSdConfig],
    others: &[SdConfig],
) -> Vec<SdConfig> {
    let mut out: Vec<SdConfig> = statics
        .iter()
        .map(|g| SdConfig::Static(vec![g.clone()]))
        .collect();
    out.extend(files.iter().cloned().map(SdConfig::File));
    out.extend(others.iter().cloned());
    out
}

/// The inline HTTP client settings of an SD entry; `proxy_*`, `oauth2` and
/// `http_headers` are reported as not supported.
macro_rules! sd_http_client {
    ($r:expr, $dir:expr, $sink:expr) => {{
        let r = $r;
        crate::config::http::reject_unsupported(
            &[
                ("proxy_url", &r.proxy_url),
                ("no_proxy", &r.no_proxy),
                ("proxy_from_environment", &r.proxy_from_environment),
                ("proxy_connect_header", &r.proxy_connect_header),
                ("oauth2", &r.oauth2),
                ("http_headers", &r.http_headers),
            ],
            $sink,
        );
        resolve_http_fields(crate::config::http::http_fields!(r), $dir, $sink)
    }};
}

/// Checks an HTTP(S) URL as Prometheus' SD configs do.
fn check_http_url(u: &str) -> Result<(), &'static str> {
    if u.is_empty() {
        return Err("URL is missing");
    }
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err("URL scheme must be 'http' or 'https'");
    };
    if scheme != "http" && scheme != "https" {
        return Err("URL scheme must be 'http' or 'https'");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err("host is missing in URL");
    }
    reqwest::Url::parse(u)
        .map(|_| ())
        .map_err(|_| "invalid URL")
}

fn refresh(v: &Option<S<String>>, default_secs: u64, sink: &mut Sink) -> Duration {
    opt_duration(v, sink).unwrap_or(Duration::from_secs(default_secs))
}

fn resolve_http(
    raw: &S<RawHttpSdConfig>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<HttpSdConfig> {
    let r = &raw.value;
    let before = sink.len();
    let url = r.url.as_ref().map(|u| u.value.clone()).unwrap_or_default();
    if let Err(e) = check_http_url(&url) {
        sink.push(r.url.as_ref().map(Pos::of).unwrap_or(Pos::of(raw)), e);
    }
    let refresh_interval = refresh(&r.refresh_interval, 60, sink);
    let http_client = sd_http_client!(r, dir, sink);
    (sink.len() == before).then_some(HttpSdConfig {
        url,
        refresh_interval,
        http_client,
    })
}

fn resolve_dns(raw: &S<RawDnsSdConfig>, sink: &mut Sink) -> Option<DnsSdConfig> {
    let r = &raw.value;
    let at = Pos::of(raw);
    let before = sink.len();
    let names: Vec<String> = r.names.iter().flatten().map(|n| n.value.clone()).collect();
    if names.is_empty() {
        sink.push(
            at,
            "DNS-SD config must contain at least one SRV record name",
        );
    }
    let port = r.port.as_ref().map(|p| p.value).unwrap_or(0);
    let type_str = r
        .kind
        .as_ref()
        .map(|k| k.value.to_uppercase())
        .unwrap_or_default();
    let kind = match type_str.as_str() {
        "" | "SRV" => Some(DnsType::Srv),
        "A" => Some(DnsType::A),
        "AAAA" => Some(DnsType::Aaaa),
        "MX" => Some(DnsType::Mx),
        "NS" => Some(DnsType::Ns),
        _ => None,
    };
    match kind {
        None => sink.push(
            r.kind.as_ref().map(Pos::of).unwrap_or(at),
            format!("invalid DNS-SD records type {}", type_str),
        ),
        Some(DnsType::Srv) => {}
        Some(_) if port == 0 => sink.push(
            at,
            "a port is required in DNS-SD configs for all record types except SRV",
        ),
        Some(_) => {}
    }
    let refresh_interval = refresh(&r.refresh_interval, 30, sink);
    (sink.len() == before).then(|| DnsSdConfig {
        names,
        kind: kind.unwrap_or(DnsType::Srv),
        port,
        refresh_interval,
    })
}

fn resolve_consul(
    raw: &S<RawConsulSdConfig>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<ConsulSdConfig> {
    let r = &raw.value;
    let at = Pos::of(raw);
    let before = sink.len();
    let server = r
        .server
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "localhost:8500".to_string());
    if server.trim().is_empty() {
        sink.push(
            r.server.as_ref().map(Pos::of).unwrap_or(at),
            "consul SD configuration requires a server address",
        );
    }
    let mut http_client = sd_http_client!(r, dir, sink);
    let user = r.username.as_ref().filter(|u| !u.value.is_empty());
    let pass = r.password.as_ref().filter(|u| !u.value.is_empty());
    if user.is_some() || pass.is_some() {
        if http_client.basic_auth.is_some() {
            sink.push(
                at,
                "at most one of consul SD configuration username and password and basic auth can be configured",
            );
        } else {
            http_client.basic_auth = Some(crate::config::http::BasicAuth {
                username: user.map(|u| u.value.clone()).unwrap_or_default(),
                username_file: None,
                password: pass.map(|p| Secret::new(p.value.clone())),
                password_file: None,
            });
        }
    }
    let token = r.token.as_ref().filter(|t| !t.value.is_empty());
    if token.is_some() && http_client.authorization.is_some() {
        sink.push(
            at,
            "at most one of consul SD token, authorization, or oauth2 can be configured",
        );
    }
    let scheme = r
        .scheme
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "http".to_string());
    if scheme != "http" && scheme != "https" {
        sink.push(
            r.scheme.as_ref().map(Pos::of).unwrap_or(at),
            format!("invalid scheme {scheme:?}: must be \"http\" or \"https\""),
        );
    }
    let node_meta = r
        .node_meta
        .as_ref()
        .map(|m| {
            m.0.iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let refresh_interval = refresh(&r.refresh_interval, 30, sink);
    (sink.len() == before).then(|| ConsulSdConfig {
        server,
        path_prefix: r.path_prefix.clone().unwrap_or_default(),
        token: token.map(|t| Secret::new(t.value.clone())),
        datacenter: r.datacenter.clone().unwrap_or_default(),
        namespace: r.namespace.clone().unwrap_or_default(),
        partition: r.partition.clone().unwrap_or_default(),
        scheme,
        services: r.services.clone().unwrap_or_default(),
        tags: r.tags.clone().unwrap_or_default(),
        node_meta,
        tag_separator: r.tag_separator.clone().unwrap_or_else(|| ",".to_string()),
        allow_stale: r.allow_stale.unwrap_or(true),
        refresh_interval,
        filter: r.filter.clone().unwrap_or_default(),
        http_client,
    })
}

fn resolve_docker(
    raw: &S<RawDockerSdConfig>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<DockerSdConfig> {
    let r = &raw.value;
    let at = Pos::of(raw);
    let before = sink.len();
    let host = r.host.as_ref().map(|h| h.value.clone()).unwrap_or_default();
    if host.is_empty() {
        sink.push(at, "host missing");
    } else if !(host.starts_with("unix://")
        || host.starts_with("tcp://")
        || host.starts_with("http://")
        || host.starts_with("https://"))
    {
        sink.push(
            r.host.as_ref().map(Pos::of).unwrap_or(at),
            format!("unsupported docker host {host:?}: use unix://, tcp://, http:// or https://"),
        );
    }
    let mut filters = Vec::new();
    for f in r.filters.iter().flatten() {
        let name = f.value.name.clone().unwrap_or_default();
        if name.is_empty() {
            sink.push(
                Pos::of(f),
                "docker SD configuration filter name cannot be empty",
            );
        }
        let values = f.value.values.clone().unwrap_or_default();
        if values.is_empty() {
            sink.push(
                Pos::of(f),
                "docker SD configuration filter values cannot be empty",
            );
        }
        filters.push((name, values));
    }
    let http_client = sd_http_client!(r, dir, sink);
    let refresh_interval = refresh(&r.refresh_interval, 60, sink);
    (sink.len() == before).then(|| DockerSdConfig {
        host,
        port: r.port.unwrap_or(80),
        host_networking_host: r
            .host_networking_host
            .clone()
            .unwrap_or_else(|| "localhost".to_string()),
        match_first_network: r.match_first_network.unwrap_or(true),
        filters,
        refresh_interval,
        http_client,
    })
}

/// Field selectors: comma-separated `key=value`, `key==value`, `key!=value`.
fn check_field_selector(s: &str) -> Result<(), String> {
    for term in s.split(',').filter(|t| !t.trim().is_empty()) {
        if !term.contains('=') {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        }
    }
    Ok(())
}

/// Label selectors: comma-separated requirements outside parentheses;
/// each must name a key (`k`, `!k`, `k=v`, `k!=v`, `k in (..)`, ...).
fn check_label_selector(s: &str) -> Result<(), String> {
    let mut depth = 0i32;
    let mut term = String::new();
    let mut terms = Vec::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut term));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!(
                "unable to parse requirement: unmatched ')' in '{s}'"
            ));
        }
        term.push(c);
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unclosed '(' in '{s}'"
        ));
    }
    terms.push(term);
    for t in terms {
        let t = t.trim();
        if t.is_empty() && s.trim().is_empty() {
            continue;
        }
        let key = t.trim_start_matches('!');
        let key_end = key.find(['=', '!', ' ']).unwrap_or(key.len());
        if key[..key_end].is_empty() {
            return Err(format!(
                "unable to parse requirement: found '{t}', expected: identifier"
            ));
        }
    }
    Ok(())
}

fn resolve_kubernetes(
    raw: &S<RawKubernetesSdConfig>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<KubernetesSdConfig> {
    let r = &raw.value;
    let at = Pos::of(raw);
    let before = sink.len();
    let role = match &r.role {
        None => {
            sink.push(
                at,
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
            );
            None
        }
        Some(s) => {
            let role = Role::parse(&s.value);
            if role.is_none() {
                sink.push(
                    Pos::of(s),
                    format!("unknown Kubernetes SD role {:?}", s.value),
                );
            }
            role
        }
    };
    let http_client = sd_http_client!(r, dir, sink);
    let custom_http = http_client != HttpClientConfig::default();
    let api_server = r.api_server.as_ref().filter(|s| !s.value.is_empty());
    let kubeconfig = r.kubeconfig_file.as_ref().filter(|s| !s.value.is_empty());
    if api_server.is_none() && kubeconfig.is_none() && custom_http {
        sink.push(
            at,
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly",
        );
    }
    if let (Some(_), Some(k)) = (api_server, kubeconfig) {
        sink.push(
            Pos::of(k),
            "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
        );
    }
    if let (Some(k), true) = (kubeconfig, custom_http) {
        sink.push(
            Pos::of(k),
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
        );
    }
    let own_namespace = r
        .namespaces
        .as_ref()
        .and_then(|n| n.value.own_namespace)
        .unwrap_or(false);
    if own_namespace {
        let p = r.namespaces.as_ref().map(Pos::of).unwrap_or(at);
        if api_server.is_some() {
            sink.push(
                p,
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
            );
        }
        if kubeconfig.is_some() {
            sink.push(
                p,
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
            );
        }
    }
    if let Some(a) = api_server {
        if let Err(e) = reqwest::Url::parse(&a.value) {
            sink.push(
                Pos::of(a),
                format!("invalid api_server URL {:?}: {e}", a.value),
            );
        }
    }
    let mut selectors: Vec<Selector> = Vec::new();
    for s in r.selectors.iter().flatten() {
        let sp = Pos::of(s);
        let srole_str = s
            .value
            .role
            .as_ref()
            .map(|r| r.value.as_str())
            .unwrap_or("");
        let Some(srole) = Role::parse(srole_str) else {
            sink.push(sp, format!("unknown Kubernetes SD role {srole_str:?}"));
            continue;
        };
        if selectors.iter().any(|x| x.role == srole) {
            sink.push(sp, format!("duplicated selector role: {}", srole.as_str()));
            continue;
        }
        if let Some(role) = role {
            let allowed = role.allowed_selectors();
            if !allowed.contains(&srole) {
                let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
                sink.push(
                    sp,
                    format!(
                        "{} role supports only {} selectors",
                        role.as_str(),
                        names.join(", ")
                    ),
                );
                continue;
            }
        }
        let label = s
            .value
            .label
            .as_ref()
            .map(|l| l.value.clone())
            .unwrap_or_default();
        let field = s
            .value
            .field
            .as_ref()
            .map(|l| l.value.clone())
            .unwrap_or_default();
        if let Err(e) = check_label_selector(&label) {
            sink.push(s.value.label.as_ref().map(Pos::of).unwrap_or(sp), e);
        }
        if let Err(e) = check_field_selector(&field) {
            sink.push(s.value.field.as_ref().map(Pos::of).unwrap_or(sp), e);
        }
        selectors.push(Selector {
            role: srole,
            label,
            field,
        });
    }
    let attach = r.attach_metadata.as_ref();
    (sink.len() == before).then(|| KubernetesSdConfig {
        role: role.unwrap_or(Role::Pod),
        api_server: api_server.map(|a| a.value.clone()),
        kubeconfig_file: kubeconfig.map(|k| PathBuf::from(join_dir(dir, &k.value))),
        namespaces: r
            .namespaces
            .as_ref()
            .and_then(|n| n.value.names.clone())
            .unwrap_or_default(),
        own_namespace,
        selectors,
        attach_node: attach.and_then(|a| a.node).unwrap_or(false),
        attach_namespace: attach.and_then(|a| a.namespace).unwrap_or(false),
        http_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        assert_eq!(
            check_http_url("invalid"),
            Err("URL scheme must be 'http' or 'https'")
        );
        assert_eq!(
            check_http_url("ftp://x"),
            Err("URL scheme must be 'http' or 'https'")
        );
        assert_eq!(check_http_url("http://"), Err("host is missing in URL"));
        assert_eq!(check_http_url("http://a:1/sd?x=1"), Ok(()));
    }

    #[test]
    fn selectors() {
        assert!(check_field_selector("metadata.status=Running").is_ok());
        assert_eq!(
            check_field_selector("metadata.status-Running").unwrap_err(),
            "invalid selector: 'metadata.status-Running'; can't understand 'metadata.status-Running'"
        );
        assert!(check_label_selector("foo in (bar,baz)").is_ok());
        assert!(check_label_selector("foo=bar,!x").is_ok());
        assert!(check_label_selector("").is_ok());
        assert!(check_label_selector("=x").is_err());
        assert!(check_label_selector("a in (b").is_err());
    }
}
