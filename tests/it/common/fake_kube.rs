//! A fake Kubernetes API server: lists (with resourceVersion) and watches
//! (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR 410) of JSON objects kept per
//! collection path (`/api/v1/pods`), namespaced paths filtered.
#![allow(dead_code)]

use super::fake_http::{Action, FakeHttp, Req};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

struct Watcher {
    collection: String,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// collection -> key (ns/name) -> object
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    watchers: Vec<Watcher>,
    /// Answer the next watch request with HTTP 410.
    gone_next_watch: bool,
    /// Answer lists with this instead (status, body).
    list_override: Option<(u16, String)>,
    /// Every list and watch request's path and query.
    lists: Vec<String>,
    watches: Vec<String>,
    /// Every event sent: (resourceVersion, collection, namespace, line),
    /// replayed to a watch that starts from an older version.
    log: Vec<(u64, String, Option<String>, String)>,
}

#[derive(Clone)]
pub struct FakeKube {
    inner: Arc<Mutex<Inner>>,
    pub http: Arc<FakeHttp>,
}

/// `/api/v1/namespaces/ns/pods` -> (`/api/v1/pods`, Some(ns)).
fn split(path: &str) -> (String, Option<String>) {
    if let Some(i) = path.find("/namespaces/") {
        let rest = &path[i + "/namespaces/".len()..];
        if let Some((ns, plural)) = rest.split_once('/') {
            return (format!("{}/{plural}", &path[..i]), Some(ns.to_string()));
        }
    }
    (path.to_string(), None)
}

fn key_of(o: &Value) -> String {
    let m = &o["metadata"];
    let ns = m["namespace"].as_str().unwrap_or("");
    let name = m["name"].as_str().unwrap_or("");
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn ns_of(o: &Value) -> Option<String> {
    o["metadata"]["namespace"].as_str().map(String::from)
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let i2 = inner.clone();
        let http = FakeHttp::start(move |r: &Req| handle(&i2, r)).await;
        FakeKube {
            inner,
            http: Arc::new(http),
        }
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    fn emit(&self, collection: &str, kind: &str, o: &Value) {
        let mut g = self.inner.lock().unwrap();
        let line = format!("{}\n", json!({"type": kind, "object": o}));
        let ns = ns_of(o);
        let rv = g.rv;
        g.log
            .push((rv, collection.to_string(), ns.clone(), line.clone()));
        g.watchers.retain(|w| {
            if w.collection != collection {
                return true;
            }
            if w.namespace.is_some() && w.namespace != ns {
                return true;
            }
            w.tx.send(line.clone().into_bytes()).is_ok()
        });
    }

    fn stamp(&self, mut o: Value) -> Value {
        let mut g = self.inner.lock().unwrap();
        g.rv += 1;
        o["metadata"]["resourceVersion"] = json!(g.rv.to_string());
        o
    }

    /// Adds or replaces an object; watchers see ADDED or MODIFIED.
    pub fn put(&self, collection: &str, o: Value) {
        let o = self.stamp(o);
        let key = key_of(&o);
        let existed = {
            let mut g = self.inner.lock().unwrap();
            g.objects
                .entry(collection.to_string())
                .or_default()
                .insert(key, o.clone())
                .is_some()
        };
        self.emit(collection, if existed { "MODIFIED" } else { "ADDED" }, &o);
    }

    /// Adds or replaces an object without telling watchers (it is seen on
    /// the next list only).
    pub fn put_quietly(&self, collection: &str, o: Value) {
        let o = self.stamp(o);
        let mut g = self.inner.lock().unwrap();
        g.objects
            .entry(collection.to_string())
            .or_default()
            .insert(key_of(&o), o);
    }

    pub fn delete(&self, collection: &str, key: &str) {
        let o = {
            let mut g = self.inner.lock().unwrap();
            g.objects.get_mut(collection).and_then(|m| m.remove(key))
        };
        if let Some(o) = o {
            let o = self.stamp(o);
            self.emit(collection, "DELETED", &o);
        }
    }

    pub fn delete_quietly(&self, collection: &str, key: &str) {
        let mut g = self.inner.lock().unwrap();
        if let Some(m) = g.objects.get_mut(collection) {
            m.remove(key);
        }
    }

    pub fn bookmark(&self, collection: &str) {
        let rv = {
            let mut g = self.inner.lock().unwrap();
            g.rv += 1;
            g.rv
        };
        let o = json!({"kind": "Pod", "metadata": {"resourceVersion": rv.to_string()}});
        self.emit(collection, "BOOKMARK", &o);
    }

    /// Every open watch gets `ERROR 410 Expired` (and is closed).
    pub fn expire_watches(&self) {
        let mut g = self.inner.lock().unwrap();
        let line = format!(
            "{}\n",
            json!({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}})
        );
        for w in g.watchers.drain(..) {
            let _ = w.tx.send(line.clone().into_bytes());
        }
    }

    /// Closes every open watch (as the server's timeout would).
    pub fn close_watches(&self) {
        self.inner.lock().unwrap().watchers.clear();
    }

    pub fn gone_next_watch(&self) {
        self.inner.lock().unwrap().gone_next_watch = true;
    }

    pub fn override_lists(&self, v: Option<(u16, String)>) {
        self.inner.lock().unwrap().list_override = v;
    }

    pub fn lists(&self) -> Vec<String> {
        self.inner.lock().unwrap().lists.clone()
    }

    pub fn watches(&self) -> Vec<String> {
        self.inner.lock().unwrap().watches.clone()
    }

    pub fn open_watches(&self) -> usize {
        let mut g = self.inner.lock().unwrap();
        g.watchers.retain(|w| !w.tx.is_closed());
        g.watchers.len()
    }
}

fn handle(inner: &Arc<Mutex<Inner>>, r: &Req) -> Action {
    let (collection, ns) = split(r.path());
    let mut g = inner.lock().unwrap();
    if r.query("watch").as_deref() == Some("1") {
        g.watches.push(r.target.clone());
        if std::mem::take(&mut g.gone_next_watch) {
            return Action::json(
                410,
                json!({"kind": "Status", "code": 410, "reason": "Gone"}).to_string(),
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let from: u64 = r
            .query("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for (rv, c, ens, line) in &g.log {
            if *rv > from && *c == collection && (ns.is_none() || *ens == ns) {
                let _ = tx.send(line.clone().into_bytes());
            }
        }
        g.watchers.push(Watcher {
            collection,
            namespace: ns,
            tx,
        });
        return Action::Stream {
            content_type: "application/json".into(),
            chunks: rx,
        };
    }
    g.lists.push(r.target.clone());
    if let Some((status, body)) = &g.list_override {
        return Action::json(*status, body.clone());
    }
    let items: Vec<Value> = g
        .objects
        .get(&collection)
        .map(|m| {
            m.values()
                .filter(|o| ns.is_none() || ns_of(o) == ns)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Action::json(
        200,
        json!({"kind": "List", "metadata": {"resourceVersion": g.rv.to_string()}, "items": items})
            .to_string(),
    )
}
