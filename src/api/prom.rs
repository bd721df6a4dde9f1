//! The metadata side of Prometheus' HTTP API: series, label names and values,
//! status pages and `format_query`. Queries themselves live beside the engine.

use super::params::Params;
use super::{api_error, success, AppState};
use crate::model::time::{parse_time, rfc3339_millis};
use crate::model::Matcher;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Prometheus' defaults for an absent `start`/`end`: the whole time range.
const MIN_TIME: i64 = i64::MIN / 2;
const MAX_TIME: i64 = i64::MAX / 2;

fn bad_data(msg: impl Into<String>) -> Response {
    api_error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, Response> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| bad_data(format!("invalid parameter {name:?}: {e}"))),
    }
}

/// Parses each `match[]` selector into matchers.
fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, Response> {
    let mut out = Vec::new();
    for s in p.get_all("match[]") {
        match crate::promql::parse(s) {
            Ok(crate::promql::Expr::VectorSelector(vs)) => out.push(vs.matchers.clone()),
            Ok(_) => {
                return Err(bad_data(format!(
                    "invalid parameter \"match[]\": 1:1: parse error: expected vector selector, got {s:?}"
                )))
            }
            Err(e) => return Err(bad_data(format!("invalid parameter \"match[]\": {e}"))),
        }
    }
    Ok(out)
}

fn labels_object(l: &crate::model::Labels) -> Value {
    let mut m = Map::new();
    for x in l {
        m.insert(x.name.clone(), Value::String(x.value.clone()));
    }
    Value::Object(m)
}

/// The `limit` parameter (0 or absent: no limit); Prometheus adds a warning
/// when it cuts the answer.
fn limit_param(p: &Params) -> Result<usize, Response> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => s.parse::<usize>().map_err(|_| {
            bad_data(format!(
                "invalid parameter \"limit\": cannot parse {s:?} to a valid limit"
            ))
        }),
    }
}

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
    State(s): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let sels = match selectors(&p) {
        Ok(v) if v.is_empty() => return bad_data("no match[] parameter provided"),
        Ok(v) => v,
        Err(r) => return r,
    };
    let (start, end, limit) = match (
        time_param(&p, "start", MIN_TIME),
        time_param(&p, "end", MAX_TIME),
        limit_param(&p),
    ) {
        (Ok(a), Ok(b), Ok(l)) => (a, b, l),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let mut all: Vec<crate::model::Labels> = Vec::new();
    for m in &sels {
        all.extend(s.head.select(m, start, end).into_iter().map(|sd| sd.labels));
    }
    all.sort();
    all.dedup();
    limited(all.iter().map(labels_object).collect(), limit)
}

pub async fn label_names(
    State(s): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let (sels, start, end, limit) = match (
        selectors(&p),
        time_param(&p, "start", MIN_TIME),
        time_param(&p, "end", MAX_TIME),
        limit_param(&p),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r,
    };
    let mut names: Vec<String> = if sels.is_empty() {
        s.head.label_names(&[], start, end)
    } else {
        sels.iter()
            .flat_map(|m| s.head.label_names(m, start, end))
            .collect()
    };
    names.sort();
    names.dedup();
    limited(names.into_iter().map(Value::String).collect(), limit)
}

pub async fn label_values(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Prometheus 3 accepts `U__`-escaped UTF-8 names; plain names are the common case.
    if name.is_empty() {
        return bad_data(format!("invalid label name: {name:?}"));
    }
    let p = Params::from_request(&uri, &headers, &body);
    let (sels, start, end, limit) = match (
        selectors(&p),
        time_param(&p, "start", MIN_TIME),
        time_param(&p, "end", MAX_TIME),
        limit_param(&p),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r,
    };
    let mut values: Vec<String> = if sels.is_empty() {
        s.head.label_values(&name, &[], start, end)
    } else {
        sels.iter()
            .flat_map(|m| s.head.label_values(&name, m, start, end))
            .collect()
    };
    values.sort();
    values.dedup();
    limited(values.into_iter().map(Value::String).collect(), limit)
}

pub async fn format_query(uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::from_request(&uri, &headers, &body);
    let Some(q) = p.get("query") else {
        return bad_data("invalid parameter \"query\": query is empty");
    };
    match crate::promql::parse(q) {
        Ok(e) => success(Value::String(e.to_string())),
        Err(e) => bad_data(format!("invalid parameter \"query\": {e}")),
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

pub async fn config(State(s): State<Arc<AppState>>) -> Response {
    success(json!({"yaml": crate::config::redact_secrets(&s.config_yaml)}))
}

pub async fn flags(State(s): State<Arc<AppState>>) -> Response {
    let mut m = Map::new();
    for (k, v) in &s.flags {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    success(Value::Object(m))
}

pub async fn runtimeinfo(State(s): State<Arc<AppState>>) -> Response {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    success(json!({
        "startTime": rfc3339_millis(s.start_time_ms),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": rfc3339_millis(s.start_time_ms),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": crate::config::format_duration(s.retention),
    }))
}

pub async fn tsdb_status(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let p = Params::from_request(&uri, &HeaderMap::new(), &Bytes::new());
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(x) => match x.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return bad_data("limit must be a positive number"),
        },
    };
    let st = s.head.stats();
    let card = s.head.cardinality(limit);
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
        },
        "seriesCountByMetricName": pairs(card.series_by_metric_name),
        "labelValueCountByLabelName": pairs(card.label_value_count_by_name),
        "memoryInBytesByLabelName": pairs(card.memory_by_label_name),
        "seriesCountByLabelValuePair": pairs(card.series_by_label_pair),
    }))
}

/// `GET /api/v1/metadata`: family → distinct metadata across targets.
pub async fn metadata(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let p = Params::from_request(&uri, &HeaderMap::new(), &Bytes::new());
    let parse_limit = |name: &str| -> Result<Option<usize>, Response> {
        match p.get(name) {
            None | Some("") => Ok(None),
            Some(x) => x
                .parse::<i64>()
                .map(|n| usize::try_from(n).ok().filter(|n| *n > 0))
                .map_err(|_| {
                    bad_data(format!("invalid parameter {name:?}: {x:?} is not a number"))
                }),
        }
    };
    let (limit, per_metric) = match (parse_limit("limit"), parse_limit("limit_per_metric")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let only = p.get("metric").filter(|m| !m.is_empty());
    let mut all: std::collections::BTreeMap<String, Vec<crate::scrape::target::Metadata>> =
        Default::default();
    for pool in s.manager.targets() {
        for t in &pool.active {
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
