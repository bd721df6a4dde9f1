//! `/api/v1/query`, `/api/v1/query_range` and `/api/v1/query_exemplars`:
//! Prometheus' query endpoints over [`crate::promql::Engine`], with its
//! parameter syntax, error wording, error types and status codes, so
//! promtool, Grafana and the client libraries cannot tell the difference.

use super::params::{bad_data, invalid_param, limit_param, time_param, ApiError, Params};
use super::query_json::{encode_success, encode_success_chunked};
use super::{api_error, AppState, HttpState};
use crate::model::time::parse_time;
use crate::promql::engine::{EngineOptions, ErrorKind, EvalError, Query, QueryResult, Value};
use crate::promql::{Engine, Expr, ValueType};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Prometheus' limit on points per series of a range query.
const MAX_POINTS: i128 = 11_000;

/// A required time parameter (`start`, `end` of a range query): absent is
/// the same error as unparseable, as in Prometheus.
fn required_time(p: &Params, name: &str) -> Result<i64, ApiError> {
    let s = p.get(name).unwrap_or("");
    parse_time(s).map_err(|e| invalid_param(name, e))
}

/// Parses a duration as Prometheus' API does: float seconds first, then the
/// duration syntax (`5m`). Nanoseconds, so sub-millisecond steps are still
/// seen as positive when checking them.
pub fn parse_api_duration(s: &str) -> Result<i128, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i128);
    }
    crate::config::duration::parse_duration(s)
        .map(|d| d.as_nanos() as i128)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// The `timeout` parameter, if given.
fn timeout_param(p: &Params) -> Result<Option<Duration>, ApiError> {
    match p.get("timeout") {
        None | Some("") => Ok(None),
        Some(s) => {
            let ns = parse_api_duration(s).map_err(|e| invalid_param("timeout", e))?;
            Ok(Some(Duration::from_nanos(ns.max(0) as u64)))
        }
    }
}

fn parse_query(p: &Params) -> Result<(Expr, String), ApiError> {
    let text = p.get("query").unwrap_or("").to_string();
    match crate::promql::parse(&text) {
        Ok(e) => Ok((e, text)),
        Err(e) => Err(invalid_param("query", e)),
    }
}

/// The engine for one request: the request's `timeout` only ever shortens
/// the engine's own limit, never extends it.
fn engine_for(base: &Engine, timeout: Option<Duration>) -> Engine {
    match timeout {
        Some(t) if t < base.options().timeout => Engine::new(EngineOptions {
            timeout: t,
            ..base.options().clone()
        }),
        _ => base.clone(),
    }
}

/// Prometheus' `returnAPIError` + `respondError` mapping.
fn eval_error(e: EvalError) -> Response {
    let code = match e.kind {
        ErrorKind::BadData => StatusCode::BAD_REQUEST,
        ErrorKind::Execution => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        // Prometheus' statusClientClosedConnection.
        ErrorKind::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
    };
    api_error(code, e.kind.as_str(), e.message)
}

/// Cuts vectors and matrices to `limit` series, as Prometheus 3.x does.
fn truncate(r: &mut QueryResult, limit: usize) {
    if limit == 0 {
        return;
    }
    let cut = match &mut r.value {
        Value::Vector(v) if v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if cut {
        r.warnings
            .push("results truncated due to limit".to_string());
    }
}

/// Server-wide limits of the query endpoints beyond the engine's own: how
/// many queries evaluate at once (`--query.max-concurrency`; the rest wait
/// their turn) and the query log (`global.query_log_file`).
pub struct QueryLimits {
    gate: tokio::sync::Semaphore,
    log: Option<QueryLog>,
    /// `klaxon_engine_queries`: queries evaluating or waiting now.
    queries: crate::metrics::Gauge,
    /// `klaxon_engine_queries_canceled_total`: stopped because the client
    /// went away.
    canceled: crate::metrics::Counter,
}

impl QueryLimits {
    pub fn new(
        max_concurrency: usize,
        log: Option<QueryLog>,
        registry: &crate::metrics::Registry,
    ) -> QueryLimits {
        let max = max_concurrency.max(1);
        registry
            .gauge(
                "klaxon_engine_queries_concurrent_max",
                "The maximum number of concurrent queries (--query.max-concurrency).",
            )
            .set(max as f64);
        QueryLimits {
            gate: tokio::sync::Semaphore::new(max),
            log,
            queries: registry.gauge(
                "klaxon_engine_queries",
                "The current number of queries being executed or waiting.",
            ),
            canceled: registry.counter(
                "klaxon_engine_queries_canceled",
                "Queries stopped because their client disconnected.",
            ),
        }
    }
}

/// Counts a query in `klaxon_engine_queries` while it lives.
struct InFlight<'a>(&'a crate::metrics::Gauge);

impl<'a> InFlight<'a> {
    fn new(g: &'a crate::metrics::Gauge) -> Self {
        g.add(1.0);
        InFlight(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.add(-1.0);
    }
}

/// The query log: one JSON object per query and line, Prometheus' format
/// (`params`, `stats.timings`, `ts`, and `httpRequest` for API queries).
pub struct QueryLog {
    path: std::path::PathBuf,
    file: parking_lot::Mutex<std::fs::File>,
}

impl QueryLog {
    /// Opens (creating, appending) the file, failing with its path.
    pub fn open(path: &std::path::Path) -> Result<QueryLog, std::io::Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(QueryLog {
            path: path.to_path_buf(),
            file: parking_lot::Mutex::new(file),
        })
    }

    fn write(&self, entry: &serde_json::Value) {
        use std::io::Write;
        let mut line = entry.to_string();
        line.push('\n');
        if let Err(e) = self.file.lock().write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), error = %e, "writing the query log");
        }
    }
}

/// What one API query asked for: the query log's `params` and the
/// `stats` parameter.
struct QueryRequest {
    text: String,
    /// `(start, end, step)` in milliseconds; an instant query has
    /// `start == end` and step 0.
    range: (i64, i64, i64),
    /// `stats` given (any value); `all` adds the per-step counts.
    stats: Option<bool>,
    client: String,
    path: &'static str,
    method: String,
    prepared_in: Duration,
}

/// Sets the cancellation flag when dropped before [`Disarm::disarm`]: the
/// handler's future is dropped when the client goes away, and the query
/// running on the blocking pool then stops at its next check.
struct CancelOnDrop(Option<Arc<std::sync::atomic::AtomicBool>>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Prometheus' `stats` object for an answer.
fn stats_json(r: &QueryResult, timings: &serde_json::Value, all: bool) -> String {
    let mut samples = serde_json::Map::new();
    if all {
        samples.insert(
            "totalQueryableSamplesPerStep".into(),
            serde_json::Value::Array(
                r.stats
                    .per_step
                    .iter()
                    .map(|(t, n)| serde_json::json!([*t as f64 / 1000.0, n]))
                    .collect(),
            ),
        );
    }
    samples.insert(
        "totalQueryableSamples".into(),
        r.stats.total_queryable_samples.into(),
    );
    samples.insert("peakSamples".into(), r.stats.peak_samples.into());
    serde_json::json!({"timings": timings, "samples": samples}).to_string()
}

/// Runs an evaluation on tokio's blocking pool, so a long query does not
/// hold a runtime worker the scrape loops need, and encodes the answer
/// there too (large results take real time to serialize). At most
/// `--query.max-concurrency` evaluate at once; a client that disconnects
/// cancels its query.
async fn run<F>(limits: Arc<QueryLimits>, req: QueryRequest, eval: F, limit: usize) -> Response
where
    F: FnOnce(Arc<std::sync::atomic::AtomicBool>) -> Result<QueryResult, EvalError>
        + Send
        + 'static,
{
    let queued = std::time::Instant::now();
    let _in_flight = InFlight::new(&limits.queries);
    let Ok(_permit) = limits.gate.acquire().await else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the query engine is shutting down",
        );
    };
    let queue_time = queued.elapsed();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut guard = CancelOnDrop(Some(flag.clone()));
    let lim = limits.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let t0 = std::time::Instant::now();
        let res = eval(flag);
        let eval_time = t0.elapsed();
        // Counted here: when the client is gone, nobody awaits the answer.
        if res.as_ref().is_err_and(|e| e.kind == ErrorKind::Canceled) {
            lim.canceled.inc();
        }
        let timings = serde_json::json!({
            "evalTotalTime": secs(eval_time),
            "resultSortTime": 0.0,
            "queryPreparationTime": secs(req.prepared_in),
            "innerEvalTime": secs(eval_time),
            "execQueueTime": secs(queue_time),
            "execTotalTime": secs(queue_time + eval_time),
        });
        if let Some(log) = &lim.log {
            let (start, end, step) = req.range;
            let rfc = crate::model::time::rfc3339_millis;
            log.write(&serde_json::json!({
                "httpRequest": {"clientIP": req.client, "method": req.method, "path": req.path},
                "params": {
                    "end": rfc(end),
                    "query": req.text,
                    "start": rfc(start),
                    "step": step / 1000,
                },
                "stats": {"timings": timings},
                "ts": rfc(crate::model::now_millis()),
            }));
        }
        res.map(|mut r| {
            truncate(&mut r, limit);
            let stats = req.stats.map(|all| stats_json(&r, &timings, all));
            (r, stats)
        })
    })
    .await;
    guard.disarm();
    match joined {
        Ok(Ok((r, stats))) => json_body(r, stats),
        Ok(Err(e)) => eval_error(e),
        Err(e) => {
            tracing::error!(error = %e, "query task failed");
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "query evaluation failed",
            )
        }
    }
}

/// Points above which an answer is streamed rather than encoded whole.
const STREAM_POINTS: usize = 8192;
/// Size of the streamed answer's chunks.
const STREAM_CHUNK: usize = 64 << 10;

/// The success answer. A large one is encoded on the blocking pool while
/// it is sent, a chunk at a time through a short channel, so the encoded
/// body never exists whole (Prometheus streams its encoder's output too);
/// a client that goes away stops the encoding.
fn json_body(r: QueryResult, stats: Option<String>) -> Response {
    let points = match &r.value {
        Value::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
        Value::Vector(v) => v.len(),
        _ => 0,
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    if points <= STREAM_POINTS {
        return (json, encode_success(r, stats.as_deref())).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(4);
    let _encoder = tokio::task::spawn_blocking(move || {
        let _span = tracing::debug_span!("encode").entered();
        encode_success_chunked(r, stats.as_deref(), STREAM_CHUNK, |c| {
            tx.blocking_send(Ok(Bytes::from(c))).is_ok()
        });
    });
    let chunks =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (json, axum::body::Body::from_stream(chunks)).into_response()
}

/// The `stats` parameter: absent, given (`Some(false)`), or `all`.
fn stats_param(p: &Params) -> Option<bool> {
    match p.get("stats") {
        None | Some("") => None,
        Some(v) => Some(v == "all"),
    }
}

/// The caller's address for the query log, when the connection info is
/// there (absent in router-only tests).
fn client_ip(ext: &axum::http::Extensions) -> String {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// For a tenant-scoped caller: the tenant matcher ANDed into every
/// selector of `expr`, and storage that adds it to every lookup. Others
/// get the expression and storage unchanged.
fn scope_query(
    s: &AppState,
    ext: &axum::http::Extensions,
    expr: &mut Expr,
) -> Arc<dyn crate::tsdb::Queryable> {
    let scope = crate::ops::tenants::of_request(ext);
    if let Some(sc) = &scope {
        sc.inject(expr);
    }
    crate::ops::tenants::scoped(&s.storage, scope.as_ref())
}

/// `GET|POST /api/v1/query`.
pub async fn query(
    State(s): State<HttpState>,
    method: axum::http::Method,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t0 = std::time::Instant::now();
    let p = Params::from_request(&uri, &headers, &body);
    let prepared = (|| {
        let limit = limit_param(&p)?;
        let t = time_param(&p, "time", crate::model::now_millis())?;
        let timeout = timeout_param(&p)?;
        let (expr, text) = parse_query(&p)?;
        Ok::<_, ApiError>((limit, t, timeout, expr, text))
    })();
    let (limit, t, timeout, mut expr, text) = match prepared {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let engine = engine_for(&s.engine, timeout);
    let head = scope_query(&s, &ext, &mut expr);
    tracing::debug!(query = %text, t, "instant query");
    let req = QueryRequest {
        text: text.clone(),
        range: (t, t, 0),
        stats: stats_param(&p),
        client: client_ip(&ext),
        path: "/api/v1/query",
        method: method.to_string(),
        prepared_in: t0.elapsed(),
    };
    run(
        s.queries.clone(),
        req,
        move |cancel| {
            engine
                .cancellable(cancel)
                .instant(&head, Query::Parsed(&expr, Some(&text)), t)
        },
        limit,
    )
    .await
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(s): State<HttpState>,
    method: axum::http::Method,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t0 = std::time::Instant::now();
    let p = Params::from_request(&uri, &headers, &body);
    let prepared = (|| {
        let limit = limit_param(&p)?;
        let start = required_time(&p, "start")?;
        let end = required_time(&p, "end")?;
        if end < start {
            return Err(invalid_param(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step_ns = parse_api_duration(p.get("step").unwrap_or(""))
            .map_err(|e| invalid_param("step", e))?;
        if step_ns <= 0 {
            return Err(invalid_param(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end as i128 - start as i128) * 1_000_000 / step_ns > MAX_POINTS {
            return Err(bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let timeout = timeout_param(&p)?;
        let (expr, text) = parse_query(&p)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::InstantVector => {}
            other => {
                return Err(invalid_param(
                    "query",
                    format!("invalid expression type \"{other}\" for range query, must be Scalar or instant Vector"),
                ))
            }
        }
        // The engine works in milliseconds; a sub-millisecond step that
        // passed the checks above is one millisecond.
        let step = i64::try_from(step_ns / 1_000_000)
            .unwrap_or(i64::MAX)
            .max(1);
        Ok::<_, ApiError>((limit, start, end, step, timeout, expr, text))
    })();
    let (limit, start, end, step, timeout, mut expr, text) = match prepared {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let engine = engine_for(&s.engine, timeout);
    let head = scope_query(&s, &ext, &mut expr);
    tracing::debug!(query = %text, start, end, step, "range query");
    let req = QueryRequest {
        text: text.clone(),
        range: (start, end, step),
        stats: stats_param(&p),
        client: client_ip(&ext),
        path: "/api/v1/query_range",
        method: method.to_string(),
        prepared_in: t0.elapsed(),
    };
    run(
        s.queries.clone(),
        req,
        move |cancel| {
            engine.cancellable(cancel).range(
                &head,
                Query::Parsed(&expr, Some(&text)),
                start,
                end,
                step,
            )
        },
        limit,
    )
    .await
}

/// `GET|POST /api/v1/query_exemplars`: the stored exemplars of the series
/// the query's selectors match (tenant-scoped like queries), in
/// Prometheus' shape and bytes: `[{seriesLabels, exemplars: [{labels,
/// value, timestamp}]}]` (see [`super::query_json::encode_exemplars`]).
pub async fn query_exemplars(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let start = match time_param(&p, "start", i64::MIN) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let end = match time_param(&p, "end", i64::MAX) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if end < start {
        return bad_data("end timestamp must not be before start timestamp").into_response();
    }
    let mut expr = match crate::promql::parse(p.get("query").unwrap_or("")) {
        Ok(e) => e,
        Err(e) => return bad_data(e.to_string()).into_response(),
    };
    if let Some(sc) = crate::ops::tenants::of_request(&ext) {
        sc.inject(&mut expr);
    }
    let mut selectors = Vec::new();
    collect_selectors(&expr, &mut selectors);
    // No selector (`1 + 1`): Prometheus answers 204 with no body.
    if selectors.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let found = s.head.exemplars().select(start, end, &selectors);
    let json = [(header::CONTENT_TYPE, "application/json")];
    (json, super::query_json::encode_exemplars(&found)).into_response()
}

/// The matchers of every vector and matrix selector of `e`.
fn collect_selectors(e: &Expr, out: &mut Vec<Vec<crate::model::Matcher>>) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => out.push(vs.matchers.clone()),
        Expr::MatrixSelector(ms) => out.push(ms.selector.matchers.clone()),
        Expr::SubqueryExpr(s) => collect_selectors(&s.expr, out),
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Call(c) => c.args.iter().for_each(|a| collect_selectors(a, out)),
        Expr::Aggregate(a) => {
            collect_selectors(&a.expr, out);
            if let Some(p) = &a.param {
                collect_selectors(p, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_durations() {
        assert_eq!(parse_api_duration("15"), Ok(15_000_000_000));
        assert_eq!(parse_api_duration("0.5"), Ok(500_000_000));
        assert_eq!(parse_api_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_api_duration("-1"), Ok(-1_000_000_000));
        assert_eq!(
            parse_api_duration("x"),
            Err("cannot parse \"x\" to a valid duration".to_string())
        );
        assert!(parse_api_duration("1e20")
            .unwrap_err()
            .contains("overflows"));
    }
}
