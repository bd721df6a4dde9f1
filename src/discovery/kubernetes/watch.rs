//! List then watch one resource, as client-go's reflector does: list (in
//! pages), watch from the list's resourceVersion with bookmarks, resume a
//! watch that ended from the last version seen, list again on 410 Gone,
//! back off on errors.

use super::objects::{self, List, ListMeta, Status};
use crate::discovery::refresh::{read_limited, request_error, SdClient, SdError};
use crate::discovery::ProviderCtx;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::sync::mpsc;

/// The resources discovery reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
    Node,
    Namespace,
}

impl Kind {
    fn collection(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pod => ("/api/v1", "pods"),
            Kind::Service => ("/api/v1", "services"),
            Kind::Endpoints => ("/api/v1", "endpoints"),
            Kind::EndpointSlice => ("/apis/discovery.k8s.io/v1", "endpointslices"),
            Kind::Ingress => ("/apis/networking.k8s.io/v1", "ingresses"),
            Kind::Node => ("/api/v1", "nodes"),
            Kind::Namespace => ("/api/v1", "namespaces"),
        }
    }

    /// The collection's path, in one namespace or cluster-wide.
    pub fn path(self, namespace: Option<&str>) -> String {
        let (group, plural) = self.collection();
        match namespace {
            Some(ns) => format!("{group}/namespaces/{ns}/{plural}"),
            None => format!("{group}/{plural}"),
        }
    }

    pub fn name(self) -> &'static str {
        self.collection().1
    }
}

/// One decoded object.
#[derive(Clone, Debug)]
pub enum Obj {
    Pod(objects::Pod),
    Service(objects::Service),
    Endpoints(objects::Endpoints),
    EndpointSlice(objects::EndpointSlice),
    Ingress(objects::Ingress),
    Node(objects::Node),
    Namespace(objects::Namespace),
}

impl Obj {
    pub fn meta(&self) -> &objects::Meta {
        match self {
            Obj::Pod(o) => &o.metadata,
            Obj::Service(o) => &o.metadata,
            Obj::Endpoints(o) => &o.metadata,
            Obj::EndpointSlice(o) => &o.metadata,
            Obj::Ingress(o) => &o.metadata,
            Obj::Node(o) => &o.metadata,
            Obj::Namespace(o) => &o.metadata,
        }
    }
}

/// What a watcher reports to the role.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved, not stored in bulk
pub enum Change {
    Upsert(Obj),
    Delete(String),
    /// A complete list of the watcher's scope (one namespace or all):
    /// objects of that scope not in it are gone.
    Replace {
        namespace: Option<String>,
        items: Vec<Obj>,
    },
}

pub type Events = mpsc::UnboundedSender<(Kind, Change)>;

fn decode_value(kind: Kind, v: serde_json::Value) -> Result<Obj, serde_json::Error> {
    fn d<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, serde_json::Error> {
        serde_json::from_value(v)
    }
    Ok(match kind {
        Kind::Pod => Obj::Pod(d(v)?),
        Kind::Service => Obj::Service(d(v)?),
        Kind::Endpoints => Obj::Endpoints(d(v)?),
        Kind::EndpointSlice => Obj::EndpointSlice(d(v)?),
        Kind::Ingress => Obj::Ingress(d(v)?),
        Kind::Node => Obj::Node(d(v)?),
        Kind::Namespace => Obj::Namespace(d(v)?),
    })
}

fn decode_list(kind: Kind, body: &[u8]) -> Result<(ListMeta, Vec<Obj>), serde_json::Error> {
    fn d<T: DeserializeOwned>(
        body: &[u8],
        f: fn(T) -> Obj,
    ) -> Result<(ListMeta, Vec<Obj>), serde_json::Error> {
        let l: List<T> = serde_json::from_slice(body)?;
        Ok((l.metadata, l.items.into_iter().map(f).collect()))
    }
    match kind {
        Kind::Pod => d(body, Obj::Pod),
        Kind::Service => d(body, Obj::Service),
        Kind::Endpoints => d(body, Obj::Endpoints),
        Kind::EndpointSlice => d(body, Obj::EndpointSlice),
        Kind::Ingress => d(body, Obj::Ingress),
        Kind::Node => d(body, Obj::Node),
        Kind::Namespace => d(body, Obj::Namespace),
    }
}

/// Where and how to reach the API server.
pub struct Api {
    pub client: SdClient,
    pub base: String,
    pub list_timeout: Duration,
}

/// One watcher's scope and selectors.
#[derive(Clone, Debug)]
pub struct Scope {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
}

impl Scope {
    fn url(&self, api: &Api, extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.label_selector.is_empty() {
            q.append_pair("labelSelector", &self.label_selector);
        }
        if !self.field_selector.is_empty() {
            q.append_pair("fieldSelector", &self.field_selector);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        format!(
            "{}{}?{}",
            api.base,
            self.kind.path(self.namespace.as_deref()),
            q.finish()
        )
    }
}

const PAGE: &str = "500";
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

enum WatchEnd {
    /// The server closed the stream (its timeout): watch again.
    Closed,
    /// The version is too old: list again.
    Gone,
}

/// Runs until the role stops listening.
pub async fn list_watch(api: std::sync::Arc<Api>, scope: Scope, tx: Events, ctx: ProviderCtx) {
    let mut backoff = MIN_BACKOFF;
    'list: loop {
        let rv = match list(&api, &scope).await {
            Ok((rv, items)) => {
                let change = Change::Replace {
                    namespace: scope.namespace.clone(),
                    items,
                };
                if tx.send((scope.kind, change)).is_err() {
                    return;
                }
                backoff = MIN_BACKOFF;
                rv
            }
            Err(e) => {
                ctx.failed(&format!("listing {}: {e}", scope.kind.name()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut rv = rv;
        loop {
            match watch(&api, &scope, &mut rv, &tx).await {
                Ok(WatchEnd::Closed) => {
                    if tx.is_closed() {
                        return;
                    }
                    backoff = MIN_BACKOFF;
                }
                Ok(WatchEnd::Gone) => {
                    tracing::debug!(job = %ctx.set, sd = %ctx.entry, resource = scope.kind.name(), "watch: resource version too old, listing again");
                    continue 'list;
                }
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    ctx.failed(&format!("watching {}: {e}", scope.kind.name()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Lists every page; returns the list's resourceVersion and the objects.
async fn list(api: &Api, scope: &Scope) -> Result<(String, Vec<Obj>), SdError> {
    let mut items = Vec::new();
    let mut cont = String::new();
    loop {
        let mut extra = vec![("limit", PAGE)];
        if !cont.is_empty() {
            extra.push(("continue", cont.as_str()));
        }
        let url = scope.url(api, &extra);
        let rb = api.client.get(&url)?.timeout(api.list_timeout);
        let (_, body) = api.client.send(&url, rb).await?;
        let (meta, page) = decode_list(scope.kind, &body).map_err(|e| SdError::Decode {
            url: url.clone(),
            detail: format!("decoding the {} list: {e}", scope.kind.name()),
        })?;
        items.extend(page);
        if meta.cont.is_empty() {
            return Ok((meta.resource_version, items));
        }
        cont = meta.cont;
    }
}

/// Random-ish watch timeout in [5min, 10min), as client-go spreads them.
fn watch_timeout() -> u64 {
    300 + u64::from(crate::net::dns::rand_id()) % 300
}

#[derive(serde::Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

async fn watch(
    api: &Api,
    scope: &Scope,
    rv: &mut String,
    tx: &Events,
) -> Result<WatchEnd, SdError> {
    let timeout = watch_timeout();
    let secs = timeout.to_string();
    let url = scope.url(
        api,
        &[
            ("watch", "1"),
            ("resourceVersion", rv.as_str()),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", &secs),
        ],
    );
    // A server that stops talking must not hold the watch forever.
    let rb = api
        .client
        .get(&url)?
        .timeout(Duration::from_secs(timeout + 30));
    let mut resp = rb.send().await.map_err(|e| request_error(&url, &e))?;
    if resp.status() == reqwest::StatusCode::GONE {
        return Ok(WatchEnd::Gone);
    }
    if !resp.status().is_success() {
        let status = resp.status().to_string();
        let _ = read_limited(&url, resp, 64 << 10).await;
        return Err(SdError::Status { url, status });
    }
    let limit = api.client.limit();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(WatchEnd::Closed),
            Err(e) => return Err(request_error(&url, &e)),
        };
        buf.extend_from_slice(&chunk);
        while let Some(nl) = memchr::memchr(b'\n', &buf) {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            if let Some(end) = handle_line(scope.kind, line, rv, tx, &url)? {
                return Ok(end);
            }
        }
        if buf.len() > limit {
            return Err(SdError::TooLarge { url, limit });
        }
    }
}

fn handle_line(
    kind: Kind,
    line: &[u8],
    rv: &mut String,
    tx: &Events,
    url: &str,
) -> Result<Option<WatchEnd>, SdError> {
    let decode_err = |e: serde_json::Error| SdError::Decode {
        url: url.to_string(),
        detail: format!("decoding a watch event: {e}"),
    };
    let ev: WatchEvent = serde_json::from_slice(line).map_err(decode_err)?;
    let change = match ev.kind.as_str() {
        "ADDED" | "MODIFIED" => {
            let o = decode_value(kind, ev.object).map_err(decode_err)?;
            *rv = o.meta().resource_version.clone();
            Change::Upsert(o)
        }
        "DELETED" => {
            let o = decode_value(kind, ev.object).map_err(decode_err)?;
            *rv = o.meta().resource_version.clone();
            Change::Delete(o.meta().key())
        }
        "BOOKMARK" => {
            let m: objects::Namespace = serde_json::from_value(ev.object).map_err(decode_err)?;
            *rv = m.metadata.resource_version;
            return Ok(None);
        }
        "ERROR" => {
            let s: Status = serde_json::from_value(ev.object).unwrap_or_default();
            if s.code == 410 {
                return Ok(Some(WatchEnd::Gone));
            }
            return Err(SdError::Decode {
                url: url.to_string(),
                detail: format!("watch error {} {}: {}", s.code, s.reason, s.message),
            });
        }
        other => {
            return Err(SdError::Decode {
                url: url.to_string(),
                detail: format!("unknown watch event type {other:?}"),
            })
        }
    };
    if tx.send((kind, change)).is_err() {
        return Ok(Some(WatchEnd::Closed));
    }
    Ok(None)
}
