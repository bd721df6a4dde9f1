//! HTTP: klaxon's own metrics, health endpoints and the Prometheus-compatible
//! API. Each handler is thin; the data comes from the stage that owns it.
//!
//! Every HTTP handler lives here; the stages export plain types and
//! functions. A handler takes only the part of [`AppState`] it uses
//! (`State<Arc<Ops>>`, `State<Arc<Registry>>`, ...: axum's `FromRef`
//! substates, implemented below).

pub mod admin;
pub mod alertmanager;
pub mod autoheal;
pub mod deliveries;
pub mod guard;
pub mod middleware;
pub mod ops;
pub mod otlp;
pub mod params;
pub mod probe;
pub mod prom;
pub mod query;
pub mod query_json;
pub mod remote_write;
pub mod rules;
pub mod runbooks;
pub mod serve;
pub mod targets;
pub mod tenants;
pub mod ui;
pub mod web;
pub mod webconfig;

use crate::metrics::{wants_openmetrics, Registry, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use crate::promql::Engine;
use crate::scrape::manager::Manager;
use crate::tsdb::Head;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Everything the handlers read.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub manager: Arc<Manager>,
    pub head: Arc<Head>,
    /// What queries read: the head and the persisted blocks, merged.
    pub storage: Arc<dyn crate::tsdb::Queryable>,
    /// The blocks, the head's deletions and (once the WAL is replayed)
    /// the compactor: the admin API and block retention.
    pub tsdb: Arc<crate::tsdb::admin::Tsdb>,
    /// The PromQL engine behind `/api/v1/query*` (its options are the
    /// server-wide limits; a request's `timeout` can only shorten them).
    pub engine: Engine,
    /// Concurrency gate and query log of the query endpoints.
    pub queries: Arc<query::QueryLimits>,
    /// Set once the config is applied and the scrape pools run.
    pub ready: AtomicBool,
    /// Command-line flags for `/api/v1/status/flags`, as displayed.
    pub flags: std::collections::BTreeMap<String, String>,
    /// `--web.enable-admin-api`: the TSDB admin endpoints answer.
    pub admin_api: bool,
    /// `--alerts.max`: alerts held from the API and rules together.
    pub alerts_max: usize,
    /// `--web.enable-remote-write-receiver`: the receiver behind
    /// `/api/v1/write` (`None`: off, 404).
    pub remote_write_receiver: Option<Arc<crate::remote::receive::Receiver>>,
    /// `--web.enable-otlp-receiver`: the receiver behind
    /// `/api/v1/otlp/v1/metrics` (`None`: off, 404).
    pub otlp_receiver: Option<Arc<crate::otlp::Receiver>>,
    pub start_time_ms: i64,
    pub retention: std::time::Duration,
    /// Loaded rule groups, for `/api/v1/rules` and `/api/v1/alerts`.
    pub rules: Arc<crate::rules::manager::RuleManager>,
    /// Built-in exporters, for `/metrics/host` and `/metrics/postgres`.
    pub exporters: Arc<crate::exporters::Exporters>,
    /// Operations: RBAC, maintenance, events, heartbeat state.
    pub ops: Arc<crate::ops::Ops>,
    /// Config reload (`/-/reload`, SIGHUP) and its last outcome.
    pub reload: crate::ops::ReloadHook,
    /// Modules served by `/probe` (shipped defaults plus the config's).
    pub probe_modules: Arc<crate::probe::Modules>,
    /// Alert routing: the Alertmanager v2 API reads and feeds it.
    pub dispatcher: Arc<crate::notify::dispatch::Dispatcher>,
    /// Notification outbox, for the delivery history API.
    pub outbox: Arc<crate::notify::outbox::Outbox>,
    /// External Alertmanagers (`alerting:`), for `/api/v1/alertmanagers`.
    pub notifier: Arc<crate::notifier::Notifier>,
    /// Turns `true` when the server stops: long-lived responses (the event
    /// stream) end, so graceful shutdown does not wait on them forever.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Scheduled probes' last results, for `/api/v1/probes`.
    pub probe_results: Arc<crate::probe::schedule::ProbeResults>,
    /// Auto-healing rules, their state and run history.
    pub autoheal: Arc<crate::ops::autoheal::engine::Engine>,
}

/// The router's state: the [`AppState`] shared by every handler; a
/// handler takes it whole (`State<HttpState>`) or only its part
/// (`State<Arc<Head>>`, ... through `FromRef`, implemented below).
#[derive(Clone)]
pub struct HttpState(pub Arc<AppState>);

impl std::ops::Deref for HttpState {
    type Target = Arc<AppState>;
    fn deref(&self) -> &Arc<AppState> {
        &self.0
    }
}

impl deliveries::HasOutbox for HttpState {
    fn outbox(&self) -> &Arc<crate::notify::outbox::Outbox> {
        &self.outbox
    }
}

/// The parts of [`AppState`] a handler may take alone
/// (`State<Arc<Registry>>`, ...).
macro_rules! substate {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl axum::extract::FromRef<HttpState> for $ty {
            fn from_ref(s: &HttpState) -> $ty {
                s.$field.clone()
            }
        }
    )*};
}

substate! {
    registry: Arc<Registry>,
    head: Arc<Head>,
    ops: Arc<crate::ops::Ops>,
    exporters: Arc<crate::exporters::Exporters>,
    dispatcher: Arc<crate::notify::dispatch::Dispatcher>,
    notifier: Arc<crate::notifier::Notifier>,
    reload: crate::ops::ReloadHook,
    rules: Arc<crate::rules::manager::RuleManager>,
    probe_results: Arc<crate::probe::schedule::ProbeResults>,
    autoheal: Arc<crate::ops::autoheal::engine::Engine>,
    manager: Arc<Manager>,
    probe_modules: Arc<crate::probe::Modules>,
}

pub fn router(state: Arc<AppState>) -> Router {
    let r = Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/host", get(host_metrics))
        .route("/metrics/postgres", get(postgres_metrics))
        .route("/probe", get(probe::probe))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/api/v1/targets", get(targets::targets))
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/api/v1/query_exemplars",
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route(
            "/api/v1/labels",
            get(prom::label_names).post(prom::label_names),
        )
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route(
            "/api/v1/format_query",
            get(prom::format_query).post(prom::format_query),
        )
        .route("/api/v1/metadata", get(prom::metadata))
        .route(
            "/api/v1/write",
            remote_write::route(state.remote_write_receiver.clone()),
        )
        .route(
            "/api/v1/otlp/v1/metrics",
            otlp::route(state.otlp_receiver.clone()),
        )
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/alertmanagers", get(prom::alertmanagers))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/v1/status/config", get(prom::config))
        .route("/api/v1/status/flags", get(prom::flags))
        .route("/api/v1/status/runtimeinfo", get(prom::runtimeinfo))
        .route("/api/v1/status/tsdb", get(prom::tsdb_status))
        .merge(admin::routes())
        .route("/runbooks/", get(runbooks::index))
        .route("/runbooks/{name}", get(runbooks::runbook))
        .route("/healthz", get(ops::healthz))
        .route("/meta", get(ops::meta))
        .route("/api/v1/events/stream", get(ops::stream))
        .route("/api/v1/auth/whoami", get(ops::whoami))
        .route("/api/v1/probes", get(probe::results))
        .route("/api/v1/tenants/summary", get(tenants::summary))
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/graph", get(web::classic_graph))
        .route("/api/v1/events/audit", get(ops::audit_list))
        .route("/internal/commands/kill-switch", post(ops::command))
        .route("/internal/commands/resume", post(ops::command))
        .route("/internal/commands/reload", post(ops::command))
        .route("/internal/commands/refresh", post(ops::command))
        .merge(alertmanager_routes())
        .merge(autoheal_routes());
    deliveries::mount(r)
        // After every route (and before with_state): applies to all of them
        // and to the fallback.
        .layer(axum::middleware::from_fn_with_state(
            state.ops.clone(),
            middleware::layer,
        ))
        .with_state(HttpState(state))
}

/// Auto-healing rules, runs and endpoint cooldowns (see `autoheal`).
fn autoheal_routes() -> Router<HttpState> {
    use axum::routing::put;
    Router::new()
        .route(
            "/api/v1/autoheal/rules",
            get(autoheal::list).post(autoheal::create),
        )
        .route(
            "/api/v1/autoheal/rules/{name}",
            get(autoheal::get_one)
                .merge(put(autoheal::replace))
                .delete(autoheal::delete),
        )
        .route("/api/v1/autoheal/runs", get(autoheal::runs))
        .route(
            "/api/v1/autoheal/clear_endpoint_cooldown",
            post(autoheal::clear_endpoint_cooldown),
        )
        .route_layer(axum::middleware::from_fn(autoheal::unscoped_only))
}

/// Alertmanager API v2 (see `alertmanager`).
fn alertmanager_routes() -> Router<HttpState> {
    use alertmanager as am;
    Router::new()
        .route("/api/v2/alerts", get(am::get_alerts).post(am::post_alerts))
        .route("/api/v2/alerts/groups", get(am::alert_groups))
        .route(
            "/api/v2/silences",
            get(am::get_silences).post(am::post_silence),
        )
        .route(
            "/api/v2/silence/{id}",
            get(am::get_silence).delete(am::delete_silence),
        )
        .route("/api/v2/status", get(am::status))
        .route("/api/v2/receivers", get(am::receivers))
}

async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    negotiated(&headers, |om| registry.encode(om))
}

/// `POST`/`PUT /-/reload`, as Prometheus (with `--web.enable-lifecycle`):
/// 200 and an empty body, or 500 with the error. Goes through `ops` so the
/// reload is published as an event like SIGHUP and signed commands.
async fn reload(State(ops): State<Arc<crate::ops::Ops>>) -> Response {
    let failed = |e: &dyn std::fmt::Display| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response()
    };
    match tokio::task::spawn_blocking(move || ops.reload("http")).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&e),
    }
}

/// Text 0.0.4 or OpenMetrics, as the `Accept` header asks.
fn negotiated(headers: &HeaderMap, encode: impl FnOnce(bool) -> String) -> Response {
    let om = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(wants_openmetrics);
    let ct = if om {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    ([(header::CONTENT_TYPE, ct)], encode(om)).into_response()
}

/// The host exporter, under node_exporter's names, on its own path so an
/// existing Prometheus can scrape it as a node_exporter drop-in.
async fn host_metrics(
    State(exporters): State<Arc<crate::exporters::Exporters>>,
    headers: HeaderMap,
) -> Response {
    // /proc and /sys reads block; keep them off the async workers.
    let opts = exporters.host.opts.clone();
    let families = tokio::task::spawn_blocking(move || crate::exporters::host::collect(&opts))
        .await
        .unwrap_or_default();
    negotiated(&headers, |om| crate::metrics::encode(&families, om))
}

/// The PostgreSQL exporter, a postgres_exporter drop-in (text format only,
/// as upstream: its counters are not all `_total`-suffixed).
async fn postgres_metrics(State(exporters): State<Arc<crate::exporters::Exporters>>) -> Response {
    match &exporters.postgres {
        Some(pg) => (
            [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
            pg.render().await,
        )
            .into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            "PostgreSQL exporter not configured (exporters.postgres or DATA_SOURCE_NAME)\n",
        )
            .into_response(),
    }
}

async fn healthy() -> &'static str {
    "Klaxon is Healthy.\n"
}

async fn ready(State(s): State<HttpState>) -> Response {
    if let Some(r) = ops::maintenance_unready(&s) {
        return r;
    }
    // A store that cannot write loses notifications and alert state: not
    // ready until a probe write commits again (read from memory, so a
    // stalled disk does not stall this answer).
    if let Some(e) = s.outbox.store().health().failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Store failing: {e}\n"),
        )
            .into_response();
    }
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Klaxon is Ready.\n").into_response()
    } else if s.head.replaying() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: replaying WAL\n",
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// A label set as the JSON object Prometheus' API uses: `{"name": "value"}`.
pub fn labels_json(l: &crate::model::Labels) -> serde_json::Value {
    l.to_json()
}

/// `{"status":"success","data":...}`, Prometheus' envelope.
pub fn success(data: serde_json::Value) -> Response {
    axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

/// Prometheus' error envelope with its status code.
pub fn api_error(code: StatusCode, error_type: &str, msg: impl Into<String>) -> Response {
    (
        code,
        axum::Json(serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": msg.into(),
        })),
    )
        .into_response()
}
