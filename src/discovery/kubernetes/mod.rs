//! `kubernetes_sd_configs`: list and watch the API server's objects and
//! turn them into targets per role, with Prometheus' labels.
//!
//! A small client of our own (reqwest + serde types for the fields
//! Prometheus reads) rather than the `kube` and `k8s-openapi` crates:
//! the numbers behind that choice are in docs/benchmarks.md.

pub mod objects;
pub mod roles;
pub mod watch;

use super::config::{KubernetesSdConfig, Role};
use super::refresh::SdClient;
use super::ProviderCtx;
use crate::config::http::{Authorization, BasicAuth, HttpClientConfig, Secret, TlsConfig};
use roles::{Attach, State};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use watch::{Api, Kind, Scope};

/// Where a pod finds its service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub async fn run(cfg: KubernetesSdConfig, ctx: ProviderCtx) {
    let (api, own_ns) = match connect(&cfg, &ctx) {
        Ok(x) => x,
        Err(e) => {
            ctx.failed(&e);
            return;
        }
    };
    let api = Arc::new(api);
    let attach = Attach {
        node: cfg.attach_node,
        namespace: cfg.attach_namespace,
    };
    let mut namespaces: Vec<Option<String>> = cfg.namespaces.iter().cloned().map(Some).collect();
    if cfg.own_namespace {
        match own_ns {
            Some(ns) => namespaces.push(Some(ns)),
            None => {
                ctx.failed(&"namespaces.own_namespace: cannot read the pod's namespace");
                return;
            }
        }
    }
    if namespaces.is_empty() {
        namespaces.push(None);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watchers = tokio::task::JoinSet::new();
    for kind in State::kinds(cfg.role, attach) {
        let (label, field) = selectors(&cfg, kind);
        let cluster_scoped = matches!(kind, Kind::Node | Kind::Namespace);
        let scopes: Vec<Option<String>> = if cluster_scoped {
            vec![None]
        } else {
            namespaces.clone()
        };
        for ns in scopes {
            let scope = Scope {
                kind,
                namespace: ns,
                label_selector: label.clone(),
                field_selector: field.clone(),
            };
            watchers.spawn(watch::list_watch(
                api.clone(),
                scope,
                tx.clone(),
                ctx.clone(),
            ));
        }
    }
    drop(tx);
    let mut state = State::new(cfg.role, attach);
    while let Some((kind, change)) = rx.recv().await {
        state.apply(kind, change);
        // Take whatever else is queued so a burst becomes one update.
        while let Ok((kind, change)) = rx.try_recv() {
            state.apply(kind, change);
        }
        let groups = state.flush();
        if !groups.is_empty() {
            ctx.update(groups);
        }
    }
}

/// The label and field selectors of the entry for one resource.
fn selectors(cfg: &KubernetesSdConfig, kind: Kind) -> (String, String) {
    let role = match kind {
        Kind::Pod => Role::Pod,
        Kind::Service => Role::Service,
        Kind::Endpoints => Role::Endpoints,
        Kind::EndpointSlice => Role::EndpointSlice,
        Kind::Ingress => Role::Ingress,
        Kind::Node => Role::Node,
        Kind::Namespace => return (String::new(), String::new()),
    };
    cfg.selectors
        .iter()
        .find(|s| s.role == role)
        .map(|s| (s.label.clone(), s.field.clone()))
        .unwrap_or_default()
}

/// The API client and, in a cluster, the pod's own namespace.
fn connect(cfg: &KubernetesSdConfig, ctx: &ProviderCtx) -> Result<(Api, Option<String>), String> {
    let (base, http, own_ns) = if let Some(server) = &cfg.api_server {
        (server.clone(), cfg.http_client.clone(), None)
    } else if let Some(file) = &cfg.kubeconfig_file {
        let (base, http) = kubeconfig(file)?;
        (base, http, None)
    } else {
        in_cluster(Path::new(SERVICE_ACCOUNT_DIR))?
    };
    let client =
        SdClient::new(&http, None, ctx.opts.max_response_bytes).map_err(|e| e.to_string())?;
    let api = Api {
        client,
        base: base.trim_end_matches('/').to_string(),
        list_timeout: ctx.opts.request_timeout,
    };
    Ok((api, own_ns))
}

/// In-cluster access: the service's address from the environment, the
/// service account's token (re-read at every request, so rotation needs
/// nothing) and CA.
pub fn in_cluster(dir: &Path) -> Result<(String, HttpClientConfig, Option<String>), String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_default();
    if host.is_empty() || port.is_empty() {
        return Err("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined".into());
    }
    let http = HttpClientConfig {
        authorization: Some(Authorization {
            kind: "Bearer".into(),
            credentials: None,
            credentials_file: Some(dir.join("token")),
        }),
        tls_config: TlsConfig {
            ca_file: Some(dir.join("ca.crt")),
            ..TlsConfig::default()
        },
        ..HttpClientConfig::default()
    };
    let ns = std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|s| s.trim().to_string());
    let base = format!("https://{}", super::join_host_port(&host, &port));
    Ok((base, http, ns))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct KubeConfig {
    clusters: Vec<Named<KubeCluster>>,
    users: Vec<Named<KubeUser>>,
    contexts: Vec<Named<KubeContext>>,
    #[serde(rename = "current-context")]
    current_context: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Named<T: Default> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct KubeCluster {
    server: String,
    certificate_authority: String,
    certificate_authority_data: String,
    insecure_skip_tls_verify: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct KubeUser {
    token: String,
    #[serde(rename = "tokenFile")]
    token_file: String,
    client_certificate: String,
    client_certificate_data: String,
    client_key: String,
    client_key_data: String,
    username: String,
    password: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct KubeContext {
    cluster: String,
    user: String,
}

/// The current context of a kubeconfig file as a base URL and client
/// settings (token, client certificate or basic auth; CA or
/// insecure-skip-tls-verify). Relative paths are relative to the file.
pub fn kubeconfig(path: &Path) -> Result<(String, HttpClientConfig), String> {
    let where_ = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading kubeconfig {where_}: {e}"))?;
    let kc: KubeConfig =
        serde_saphyr::from_str(&text).map_err(|e| format!("parsing kubeconfig {where_}: {e}"))?;
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == kc.current_context)
        .ok_or_else(|| {
            format!(
                "kubeconfig {where_}: current context {:?} not found",
                kc.current_context
            )
        })?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.value.cluster)
        .ok_or_else(|| {
            format!(
                "kubeconfig {where_}: cluster {:?} not found",
                ctx.value.cluster
            )
        })?;
    let user = kc.users.iter().find(|u| u.name == ctx.value.user);
    let dir = path.parent().unwrap_or(Path::new("."));
    let rel = |p: &str| -> Option<PathBuf> { (!p.is_empty()).then(|| dir.join(p)) };
    let b64 = |s: &str, what: &str| -> Result<Option<String>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| format!("kubeconfig {where_}: {what}: {e}"))?;
        Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
    };
    let c = &cluster.value;
    let mut tls = TlsConfig {
        ca: b64(&c.certificate_authority_data, "certificate-authority-data")?,
        ca_file: rel(&c.certificate_authority),
        insecure_skip_verify: c.insecure_skip_tls_verify,
        ..TlsConfig::default()
    };
    let mut http = HttpClientConfig::default();
    if let Some(u) = user.map(|u| &u.value) {
        tls.cert = b64(&u.client_certificate_data, "client-certificate-data")?;
        tls.cert_file = rel(&u.client_certificate);
        tls.key = b64(&u.client_key_data, "client-key-data")?.map(Secret::new);
        tls.key_file = rel(&u.client_key);
        if !u.token.is_empty() || !u.token_file.is_empty() {
            http.authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: (!u.token.is_empty()).then(|| Secret::new(u.token.clone())),
                credentials_file: rel(&u.token_file),
            });
        } else if !u.username.is_empty() {
            http.basic_auth = Some(BasicAuth {
                username: u.username.clone(),
                username_file: None,
                password: Some(Secret::new(u.password.clone())),
                password_file: None,
            });
        }
    }
    http.tls_config = tls;
    if c.server.is_empty() {
        return Err(format!(
            "kubeconfig {where_}: cluster {:?} has no server",
            cluster.name
        ));
    }
    Ok((c.server.clone(), http))
}
