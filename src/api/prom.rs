//! The metadata side of Prometheus' HTTP API: series, label names and values,
//! status pages and `format_query`. Queries themselves live beside the engine.

use super::params::{bad_data, invalid_param, limit_param, time_param, ApiError, Params};
use super::{labels_json, success, AppState, HttpState};
use crate::model::time::rfc3339_millis;
use crate::model::Matcher;
use crate::tsdb::Queryable;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Prometheus' defaults for an absent `start`/`end`: the whole time range.
pub(crate) const MIN_TIME: i64 = i64::MIN / 2;
pub(crate) const MAX_TIME: i64 = i64::MAX / 2;

/// Parses each `match[]` selector into matchers.
pub(crate) fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut out = Vec::new();
    for s in p.get_all("match[]") {
        match crate::promql::parse(s) {
            Ok(crate::promql::Expr::VectorSelector(vs)) => out.push(vs.matchers.clone()),
            Ok(_) => {
                return Err(invalid_param(
                    "match[]",
                    format!("1:1: parse error: expected vector selector, got {s:?}"),
                ))
            }
            Err(e) => return Err(invalid_param("match[]", e)),
        }
    }
    Ok(out)
}

/// `match[]`, `start`, `end` and `limit`: what the series and label
/// endpoints share.
struct SeriesParams {
    selectors: Vec<Vec<Matcher>>,
    start: i64,
    end: i64,
    limit: usize,
}

fn series_params(p: &Params) -> Result<SeriesParams, ApiError> {
    Ok(SeriesParams {
        selectors: selectors(p)?,
        start: time_param(p, "start", MIN_TIME)?,
        end: time_param(p, "end", MAX_TIME)?,
        limit: limit_param(p)?,
    })
}

/// Prometheus adds a warning when `limit` cuts the answer.
fn limited(mut v: Vec<Value>, limit: usize) -> Response {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        return axum::Json(json!({
            "status": "success",
            "data": v,
            "warnings": ["results truncated due to limit"],
        }))
        .into_response();
    }
    success(Value::Array(v))
}

pub async fn series(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let q = match series_params(&p) {
        Ok(q) if q.selectors.is_empty() => {
            return bad_data("no match[] parameter provided").into_response()
        }
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    // Index lookups over many series: off the async workers.
    let head = storage_for(&s, &ext);
    off_workers(move || {
        let mut all: Vec<crate::model::Labels> = Vec::new();
        let querier = head.querier(q.start, q.end);
        for m in &q.selectors {
            all.extend(querier.series(m));
        }
        all.sort();
        all.dedup();
        if q.limit > 0 {
            // One more than the limit still tells `limited` to warn.
            all.truncate(q.limit + 1);
        }
        limited(all.iter().map(labels_json).collect(), q.limit)
    })
    .await
}

/// The storage as the caller may read it: a tenant-scoped caller's every
/// lookup (each `match[]`, or all series when none is given) has its
/// tenant matcher ANDed.
fn storage_for(s: &AppState, ext: &axum::http::Extensions) -> Arc<dyn Queryable> {
    crate::ops::tenants::scoped(&s.storage, crate::ops::tenants::of_request(ext).as_ref())
}

/// Runs a handler's heavy part on the blocking pool.
async fn off_workers(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "API handler panicked");
        super::api_error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

/// Label names (`name` None) or one label's values over the series the
/// selectors pick (all series when there are none), sorted and deduplicated.
async fn label_answer(
    s: &AppState,
    ext: &axum::http::Extensions,
    p: &Params,
    name: Option<String>,
) -> Response {
    let q = match series_params(p) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let head = storage_for(s, ext);
    off_workers(move || {
        let querier = head.querier(q.start, q.end);
        let lookup = |m: &[Matcher]| match &name {
            None => querier.label_names(m),
            Some(n) => querier.label_values(n, m),
        };
        let mut out: Vec<String> = if q.selectors.is_empty() {
            lookup(&[])
        } else {
            q.selectors.iter().flat_map(|m| lookup(m)).collect()
        };
        out.sort();
        out.dedup();
        limited(out.into_iter().map(Value::String).collect(), q.limit)
    })
    .await
}

pub async fn label_names(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    label_answer(&s, &ext, &Params::from_request(&uri, &headers, &body), None).await
}

pub async fn label_values(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // As Prometheus 3: a name that is not a legacy label name can be given
    // in the path escaped by the values scheme (`U__my_2e_label`).
    let name = if name.starts_with("U__") {
        use crate::config::names::{unescape_name, NameEscaping};
        unescape_name(&name, NameEscaping::Values).into_owned()
    } else {
        name
    };
    if name.is_empty() {
        return bad_data(format!("invalid label name: {name:?}")).into_response();
    }
    label_answer(
        &s,
        &ext,
        &Params::from_request(&uri, &headers, &body),
        Some(name),
    )
    .await
}

pub async fn format_query(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let Some(q) = p.get("query") else {
        return invalid_param("query", "query is empty").into_response();
    };
    match crate::promql::parse(q) {
        Ok(e) => success(Value::String(e.to_string())),
        Err(e) => invalid_param("query", e).into_response(),
    }
}

pub async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("KLAXON_GIT_REVISION").unwrap_or("unknown"),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": concat!("rust (klaxon ", env!("CARGO_PKG_VERSION"), ")"),
    }))
}

pub async fn config(State(reload): State<crate::ops::ReloadHook>) -> Response {
    success(json!({"yaml": crate::config::redact_secrets(&reload.running_yaml())}))
}

pub async fn flags(State(s): State<HttpState>) -> Response {
    let mut m = Map::new();
    for (k, v) in &s.flags {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    success(Value::Object(m))
}

/// `GET /api/v1/alertmanagers`: the external Alertmanagers alerts go to
/// and the ones relabeling dropped, by URL, as Prometheus lists them.
pub async fn alertmanagers(State(notifier): State<Arc<crate::notifier::Notifier>>) -> Response {
    let (active, dropped) = notifier.alertmanagers();
    let urls = |v: Vec<crate::notifier::DiscoveredAlertmanager>| -> Vec<Value> {
        v.into_iter().map(|a| json!({"url": a.url})).collect()
    };
    success(json!({
        "activeAlertmanagers": urls(active),
        "droppedAlertmanagers": urls(dropped),
    }))
}

pub async fn runtimeinfo(State(s): State<HttpState>) -> Response {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    success(json!({
        "startTime": rfc3339_millis(s.start_time_ms),
        "CWD": cwd,
        "reloadConfigSuccess": s.reload.status().success,
        "lastConfigTime": rfc3339_millis(s.reload.status().last_success_ms),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": crate::config::format_duration(s.retention),
    }))
}

pub async fn tsdb_status(
    State(head): State<std::sync::Arc<crate::tsdb::Head>>,
    ext: axum::http::Extensions,
    uri: Uri,
) -> Response {
    // Cardinality over every tenant's series: not for a scoped caller.
    if crate::ops::tenants::of_request(&ext).is_some() {
        return super::api_error(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "the TSDB status covers all tenants; a tenant-scoped token cannot read it",
        );
    }
    let p = Params::from_request(&uri, &HeaderMap::new(), &Bytes::new());
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(x) => match x.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return bad_data("limit must be a positive number").into_response(),
        },
    };
    let st = head.stats();
    let card = head.cardinality(limit);
    let pairs = |v: Vec<(String, u64)>| -> Value {
        Value::Array(
            v.into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect(),
        )
    };
    success(json!({
        "headStats": {
            "numSeries": st.num_series,
            "numLabelPairs": card.num_label_pairs,
            "chunkCount": st.chunks,
            "minTime": st.min_time,
            "maxTime": st.max_time,
            // klaxon's additions (the web UI's status page): samples stored
            // since start and the head's estimated memory.
            "samplesAppended": st.samples_appended,
            "memoryBytes": st.memory_bytes,
        },
        "seriesCountByMetricName": pairs(card.series_by_metric_name),
        "labelValueCountByLabelName": pairs(card.label_value_count_by_name),
        "memoryInBytesByLabelName": pairs(card.memory_by_label_name),
        "seriesCountByLabelValuePair": pairs(card.series_by_label_pair),
    }))
}

/// `GET /api/v1/metadata`: family → distinct metadata across targets.
pub async fn metadata(
    State(manager): State<std::sync::Arc<crate::scrape::manager::Manager>>,
    ext: axum::http::Extensions,
    uri: Uri,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    let p = Params::from_request(&uri, &HeaderMap::new(), &Bytes::new());
    let parse_limit = |name: &str| -> Result<Option<usize>, ApiError> {
        match p.get(name) {
            None | Some("") => Ok(None),
            Some(x) => x
                .parse::<i64>()
                .map(|n| usize::try_from(n).ok().filter(|n| *n > 0))
                .map_err(|_| invalid_param(name, format!("{x:?} is not a number"))),
        }
    };
    let (limit, per_metric) = match (parse_limit("limit"), parse_limit("limit_per_metric")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let only = p.get("metric").filter(|m| !m.is_empty());
    let mut all: std::collections::BTreeMap<String, Vec<crate::scrape::target::Metadata>> =
        Default::default();
    for pool in manager.targets() {
        for t in &pool.active {
            // A tenant-scoped caller: metadata of its tenants' targets.
            if scope.as_ref().is_some_and(|sc| !sc.allows(&t.labels)) {
                continue;
            }
            for (family, md) in t.metadata() {
                if only.is_some_and(|m| m != family) {
                    continue;
                }
                let list = all.entry(family).or_default();
                if !list.contains(&md) {
                    list.push(md);
                }
            }
        }
    }
    let mut out = Map::new();
    for (family, list) in all {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let take = per_metric.unwrap_or(usize::MAX);
        out.insert(
            family,
            Value::Array(
                list.into_iter()
                    .take(take)
                    .map(|m| json!({"type": m.kind, "help": m.help, "unit": m.unit}))
                    .collect(),
            ),
        );
    }
    success(Value::Object(out))
}
