//! Prometheus' TSDB admin API: `POST|PUT /api/v1/admin/tsdb/snapshot`,
//! `delete_series` and `clean_tombstones`, with Prometheus' parameters,
//! answers and status codes. Off unless `--web.enable-admin-api`; the
//! routes need the admin role and are audited (`ops::audit`).

use super::params::{bad_data, invalid_param, time_param, ApiError, Params};
use super::prom::{selectors, MAX_TIME, MIN_TIME};
use super::{success, AppState, HttpState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/admin/tsdb/snapshot", post(snapshot).put(snapshot))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(delete_series).put(delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(clean_tombstones).put(clean_tombstones),
        )
}

/// Prometheus' answer while the flag is off: `unavailable`, which its API
/// maps to no status of its own, so 500.
fn check_enabled(s: &AppState) -> Result<(), ApiError> {
    if s.admin_api {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "unavailable",
            message: "admin APIs disabled".into(),
        })
    }
}

fn internal(msg: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error_type: "internal",
        message: msg.to_string(),
    }
}

/// Runs blocking TSDB work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::tsdb::admin::AdminError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(internal),
        Err(e) => Err(internal(e)),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `snapshots/<UTC time>-<random hex>`, Prometheus' naming.
fn snapshot_name(now_ms: i64) -> String {
    let t: String = crate::model::time::rfc3339_millis(now_ms)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    // "20261206T134512.123Z" without the milliseconds.
    let t = match (t.find('.'), t.strip_suffix('Z')) {
        (Some(dot), Some(_)) => format!("{}Z", &t[..dot]),
        _ => t,
    };
    let r = uuid::Uuid::new_v4().as_u64_pair().0 & (u64::MAX >> 1);
    format!("{t}-{r:016x}")
}

async fn snapshot(
    State(s): State<HttpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_enabled(&s)?;
    let p = Params::from_request(&uri, &headers, &body);
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            invalid_param(
                "skip_head",
                format!(
                    "unable to parse boolean: strconv.ParseBool: parsing {v:?}: invalid syntax"
                ),
            )
        })?,
    };
    let name = snapshot_name(crate::model::now_millis());
    let dir = s.tsdb.dir().join("snapshots").join(&name);
    let tsdb = s.tsdb.clone();
    blocking(move || tsdb.snapshot(&dir, skip_head))
        .await
        .map_err(|e| internal(format!("create snapshot: {}", e.message)))?;
    Ok(success(serde_json::json!({ "name": name })))
}

async fn delete_series(
    State(s): State<HttpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_enabled(&s)?;
    let p = Params::from_request(&uri, &headers, &body);
    if p.get_all("match[]").is_empty() {
        return Err(bad_data("no match[] parameter provided"));
    }
    let start = time_param(&p, "start", MIN_TIME)?;
    let end = time_param(&p, "end", MAX_TIME)?;
    let sets = selectors(&p)?;
    let tsdb = s.tsdb.clone();
    blocking(move || {
        for m in &sets {
            tsdb.delete_series(m, start, end)?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clean_tombstones(State(s): State<HttpState>) -> Result<Response, ApiError> {
    check_enabled(&s)?;
    let tsdb = s.tsdb.clone();
    blocking(move || tsdb.clean_tombstones()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_follow_prometheus() {
        // 2026-12-06T13:45:12.123Z
        let n = snapshot_name(1_796_564_712_123);
        let (t, r) = n.split_once('-').unwrap();
        assert_eq!(t, "20261206T134512Z");
        assert_eq!(r.len(), 16);
        assert!(r.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn booleans_parse_as_go() {
        assert_eq!(parse_bool("T"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
