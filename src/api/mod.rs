//! HTTP: klaxon's own metrics, health endpoints and the Prometheus-compatible
//! API. Each handler is thin; the data comes from the stage that owns it.

pub mod admin;
pub mod alertmanager;
pub mod autoheal;
pub mod deliveries;
pub mod guard;
pub mod middleware;
pub mod ops;
pub mod params;
pub mod probe;
pub mod prom;
pub mod query;
pub mod query_json;
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
    /// Command-line flags for `/api/v1/status/flags`.
    pub flags: std::collections::BTreeMap<String, String>,
    pub start_time_ms: i64,
    pub retention: std::time::Duration,
    /// Loaded rule groups, for `/api/v1/rules` and `/api/v1/alerts`.
    pub rules: Arc<crate::rules::manager::RuleManager>,
    /// Built-in exporters, for `/metrics/host` and `/metrics/postgres`.
    pub exporters: Arc<crate::exporters::Exporters>,
    /// Operations: RBAC, maintenance, events, heartbeat state.
    pub ops: Arc<crate::ops::Ops>,
    /// Config reload (`/-/reload`, SIGHUP) and its last outcome.
    pub reload: Arc<crate::app::Reloader>,
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

impl deliveries::HasOutbox for Arc<AppState> {
    fn outbox(&self) -> &Arc<crate::notify::outbox::Outbox> {
        &self.outbox
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let r = Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/host", get(host_metrics))
        .route("/metrics/postgres", get(postgres_metrics))
        .route("/probe", get(probe::probe))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route(
            "/-/reload",
            axum::routing::post(crate::app::reload::http_reload)
                .put(crate::app::reload::http_reload),
        )
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
        .route("/api/v1/write", crate::remote::receive::route(&state))
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
        .with_state(state)
}

/// Auto-healing rules, runs and endpoint cooldowns (see `autoheal`).
fn autoheal_routes() -> Router<Arc<AppState>> {
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
fn alertmanager_routes() -> Router<Arc<AppState>> {
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

async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    negotiated(&headers, |om| s.registry.encode(om))
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
async fn host_metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // /proc and /sys reads block; keep them off the async workers.
    let opts = s.exporters.host.opts.clone();
    let families = tokio::task::spawn_blocking(move || crate::exporters::host::collect(&opts))
        .await
        .unwrap_or_default();
    negotiated(&headers, |om| crate::metrics::encode(&families, om))
}

/// The PostgreSQL exporter, a postgres_exporter drop-in (text format only,
/// as upstream: its counters are not all `_total`-suffixed).
async fn postgres_metrics(State(s): State<Arc<AppState>>) -> Response {
    match &s.exporters.postgres {
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

async fn ready(State(s): State<Arc<AppState>>) -> Response {
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
