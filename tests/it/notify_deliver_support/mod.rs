//! Shared helpers of the delivery tests: a scripted HTTP receiver on
//! 127.0.0.1 that records every request, receiver configs from YAML, and
//! notifications to send.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use klaxon::metrics::Registry;
use klaxon::model::Labels;
use klaxon::notify::config::GlobalConfig;
use klaxon::notify::outbox::{Outbox, OutboxOptions};
use klaxon::notify::receivers::{resolve_receivers, RawReceiver, Receiver};
use klaxon::notify::{Alert, Notification};
use klaxon::store::Store;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Req {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

impl Req {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

/// A scripted reply: status and headers.
pub type Reply = (u16, Vec<(&'static str, &'static str)>);

#[derive(Default)]
pub struct MockState {
    pub reqs: Mutex<Vec<Req>>,
    /// Replies to give, in order; 200 when exhausted.
    pub script: Mutex<VecDeque<Reply>>,
}

pub struct Mock {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(s): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.reqs.lock().push(Req {
        path: uri.path().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let (code, hdrs) = s.script.lock().pop_front().unwrap_or((200, vec![]));
    let mut r = (StatusCode::from_u16(code).unwrap(), "{}").into_response();
    for (k, v) in hdrs {
        let k: &'static str = k;
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

impl Mock {
    pub async fn start(script: Vec<Reply>) -> Mock {
        Self::start_on("127.0.0.1:0", script).await
    }

    pub async fn start_on(addr: &str, script: Vec<Reply>) -> Mock {
        let state = Arc::new(MockState {
            reqs: Mutex::new(vec![]),
            script: Mutex::new(script.into()),
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn reqs(&self) -> Vec<Req> {
        self.state.reqs.lock().clone()
    }

    pub async fn wait_reqs(&self, n: usize, within: Duration) -> Vec<Req> {
        let end = Instant::now() + within;
        loop {
            let r = self.reqs();
            if r.len() >= n || Instant::now() > end {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Resolves a `receivers:` YAML list.
pub fn receivers(yaml: &str, global: &GlobalConfig) -> Vec<Receiver> {
    let raw: Vec<serde_saphyr::Spanned<RawReceiver>> =
        serde_saphyr::from_str(yaml).expect("receivers YAML");
    resolve_receivers(&raw, global, "test.yml", None).expect("receivers resolve")
}

pub fn fast_options() -> OutboxOptions {
    OutboxOptions {
        timeout: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        deadline: Duration::from_secs(60),
        ..Default::default()
    }
}

pub fn outbox(store: Arc<Store>, recv: Vec<Receiver>, registry: &Registry) -> Arc<Outbox> {
    let set = klaxon::notify::template::template_set(&[]).unwrap();
    Outbox::start_with(store, recv, set, registry, fast_options()).unwrap()
}

pub const RUNBOOK: &str = "https://runbooks.example.org/disk-full?team=storage&x=1";

pub fn alert(name: &str, instance: &str, resolved: bool, now: i64) -> Alert {
    Alert {
        labels: Labels::from_pairs([
            ("alertname", name),
            ("instance", instance),
            ("severity", "critical"),
        ]),
        annotations: Labels::from_pairs([
            ("summary", "Disk almost full"),
            ("description", "Only 3% left on /var"),
            ("runbook_url", RUNBOOK),
            ("dashboard_url", "https://grafana.example.org/d/disk"),
        ]),
        starts_at: now - 60_000,
        ends_at: if resolved { Some(now - 1000) } else { None },
        generator_url: "http://prometheus:9090/graph?g0.expr=disk".into(),
        request_id: None,
        updated_at: now,
    }
}

pub fn notification(receiver: &str, alerts: Vec<Alert>, now: i64) -> Notification {
    Notification {
        receiver: receiver.into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
        group_labels: Labels::from_pairs([("alertname", "DiskFull")]),
        alerts,
        external_url: "http://klaxon.example.org:9090".into(),
        created_at: now,
    }
}

/// Polls until `f` is true or `within` passes.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// One request a [`FnMock`] received.
#[derive(Clone, Debug)]
pub struct FnReq {
    pub method: axum::http::Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl FnReq {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

/// Decides a [`FnMock`]'s answer (status, body) to a request.
pub type Answer = Arc<dyn Fn(&FnReq) -> (u16, String) + Send + Sync>;

/// A mock API on 127.0.0.1 whose answers (status and body) come from a
/// function of the request; records every request.
pub struct FnMock {
    pub addr: SocketAddr,
    pub reqs: Arc<Mutex<Vec<FnReq>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FnMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FnMock {
    pub async fn start(answer: Answer) -> FnMock {
        let reqs: Arc<Mutex<Vec<FnReq>>> = Arc::default();
        let state = (reqs.clone(), answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(
                |State((reqs, answer)): State<(Arc<Mutex<Vec<FnReq>>>, Answer)>,
                 method: axum::http::Method,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let r = FnReq {
                        method,
                        path: uri.path().to_string(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let (code, body) = answer(&r);
                    reqs.lock().push(r);
                    (StatusCode::from_u16(code).unwrap(), body).into_response()
                },
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FnMock { addr, reqs, task }
    }

    /// Answers from `script` in order, `200 {}` once it is used up.
    pub async fn scripted(script: Vec<(u16, String)>) -> FnMock {
        let script = Mutex::new(VecDeque::from(script));
        Self::start(Arc::new(move |_: &FnReq| {
            script.lock().pop_front().unwrap_or((200, "{}".into()))
        }))
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn reqs(&self) -> Vec<FnReq> {
        self.reqs.lock().clone()
    }
}
