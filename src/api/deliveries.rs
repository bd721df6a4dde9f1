//! The delivery history: `GET /api/v1/deliveries` (filtered, newest
//! first, cursor-paginated), `GET /api/v1/deliveries/{id}` and
//! `POST /api/v1/deliveries/{id}/replay`, in Prometheus' envelope.
//!
//! Stored payloads never hold secrets (keys and URLs are added at send
//! time), so they are shown as stored.

use super::{api_error, success};
use crate::model::time::{parse_time, rfc3339_millis};
use crate::notify::outbox::{Outbox, OutboxError};
use crate::store::notify::{Attempt, Delivery, Query};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

/// Page size when `limit` is not given, and the largest accepted.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The routes, with the outbox as their state; merge into the main router.
pub fn routes(outbox: Arc<Outbox>) -> Router {
    mount(Router::new()).with_state(outbox)
}

/// Router state that can hand out the outbox (klaxon's `AppState`, or the
/// outbox itself in tests).
pub trait HasOutbox: Clone + Send + Sync + 'static {
    fn outbox(&self) -> &Arc<Outbox>;
}

impl HasOutbox for Arc<Outbox> {
    fn outbox(&self) -> &Arc<Outbox> {
        self
    }
}

/// Adds the delivery routes to a router.
pub fn mount<S: HasOutbox>(r: Router<S>) -> Router<S> {
    r.route("/api/v1/deliveries", get(list::<S>))
        .route("/api/v1/deliveries/{id}", get(one::<S>))
        .route("/api/v1/deliveries/{id}/replay", post(replay::<S>))
}

/// The stored payload as JSON, with a JSON body (of the payload or of each
/// of its requests) shown as a value rather than as a string.
fn payload_json(p: &str) -> Value {
    fn parse_body(v: &mut Value) {
        if let Some(Value::String(body)) = v.get("body") {
            if let Ok(parsed) = serde_json::from_str::<Value>(body) {
                v["body"] = parsed;
            }
        }
    }
    let mut v: Value = serde_json::from_str(p).unwrap_or(Value::Null);
    parse_body(&mut v);
    // Jira's stored bodies.
    for k in ["search", "create", "update"] {
        if let Some(Value::String(body)) = v.get(k) {
            if let Ok(parsed) = serde_json::from_str::<Value>(body) {
                v[k] = parsed;
            }
        }
    }
    if let Some(Value::Array(reqs)) = v.get_mut("requests") {
        reqs.iter_mut().for_each(parse_body);
    }
    v
}

pub fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id.to_string(),
        "receiver": d.receiver,
        "integration": d.integration,
        "integrationIndex": d.integration_index,
        "groupKey": d.group_key,
        "alertnames": d.alertnames,
        "firing": d.firing,
        "resolved": d.resolved,
        "status": d.status,
        "attempts": d.attempts,
        "lastError": d.last_error,
        "lastReason": d.last_reason,
        "createdAt": rfc3339_millis(d.created_at),
        "updatedAt": rfc3339_millis(d.updated_at),
        "nextAttemptAt": (d.status == "pending").then(|| rfc3339_millis(d.next_attempt_at)),
        "deadline": rfc3339_millis(d.deadline_at),
        "deliveredAt": d.delivered_at.map(rfc3339_millis),
        "payload": payload_json(&d.payload),
    })
}

pub fn endpoint_json(e: &crate::notify::outbox::EndpointState) -> Value {
    json!({
        "receiver": e.receiver,
        "integration": e.integration,
        "integrationIndex": e.integration_index,
        "consecutiveFailures": e.consecutive_failures,
        "cooldownUntil": e.cooldown_until_ms.map(rfc3339_millis),
    })
}

fn attempt_json(a: &Attempt) -> Value {
    json!({
        "at": rfc3339_millis(a.at),
        "durationSeconds": a.duration_ms as f64 / 1000.0,
        "success": a.ok,
        "error": a.error,
        "replay": a.replay,
    })
}

fn bad(msg: String) -> Response {
    api_error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn internal(e: impl std::fmt::Display) -> Response {
    api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// A store failure: 503 when the store is stalled, else 500.
fn store_failed(e: crate::store::StoreError) -> Response {
    match e {
        crate::store::StoreError::Stalled(_) => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        e => internal(e),
    }
}

/// Parses the query string into a store query; errors name the parameter.
fn parse_query(raw: Option<&str>) -> Result<Query, String> {
    let mut q = Query {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        if v.is_empty() {
            continue;
        }
        match k.as_ref() {
            "status" => match v.as_str() {
                "pending" | "sending" | "success" | "failed" | "superseded" => q.status = Some(v),
                _ => {
                    return Err(format!(
                        "invalid parameter \"status\": {v:?} is not one of pending, sending, success, failed, superseded"
                    ))
                }
            },
            "receiver" => q.receiver = Some(v),
            "alertname" => q.alertname = Some(v),
            "since" => {
                q.since = Some(parse_time(&v).map_err(|e| format!("invalid parameter \"since\": {e}"))?)
            }
            "until" => {
                q.until = Some(parse_time(&v).map_err(|e| format!("invalid parameter \"until\": {e}"))?)
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("invalid parameter \"limit\": {v:?} is not a positive integer"))?;
                if n == 0 {
                    return Err("invalid parameter \"limit\": must be positive".into());
                }
                q.limit = n.min(MAX_LIMIT);
            }
            "cursor" => {
                q.before_id = Some(
                    v.parse()
                        .map_err(|_| format!("invalid parameter \"cursor\": {v:?}"))?,
                )
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Store pages read at most for one page of a tenant-scoped caller, whose
/// deliveries may be sparse among everyone's.
const MAX_SCOPED_PAGES: usize = 20;

async fn list<S: HasOutbox>(
    State(s): State<S>,
    ext: axum::http::Extensions,
    RawQuery(raw): RawQuery,
) -> Response {
    let ob = s.outbox();
    let mut q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let limit = q.limit;
    // One more than asked tells whether there is a next page.
    q.limit = limit + 1;
    let scope = crate::ops::tenants::of_request(&ext);
    let mut rows = Vec::new();
    // Where a scoped scan that ran out of pages stops: the next page
    // continues there.
    let mut resume = None;
    for _ in 0..MAX_SCOPED_PAGES {
        let page_q = q.clone();
        let page = match ob.store().call(move |s| s.list_deliveries(&page_q)).await {
            Ok(r) => r,
            Err(e) => return store_failed(e),
        };
        let Some(sc) = &scope else {
            rows = page;
            break;
        };
        // A scoped caller sees deliveries of groups that name one of its
        // tenants (routes grouping by the tenant label).
        let full = page.len() == q.limit;
        q.before_id = page.last().map(|d| d.id);
        rows.extend(page.into_iter().filter(|d| sc.owns_group_key(&d.group_key)));
        if rows.len() > limit || !full {
            resume = None;
            break;
        }
        resume = q.before_id;
    }
    let more = rows.len() > limit;
    let page = &rows[..rows.len().min(limit)];
    let next = if more {
        page.last().map(|d| Value::String(d.id.to_string()))
    } else {
        resume.map(|id| Value::String(id.to_string()))
    };
    success(json!({
        "deliveries": page.iter().map(delivery_json).collect::<Vec<_>>(),
        "nextCursor": next,
        // Receiver endpoints with consecutive failures (the circuit
        // breaker's view; `cooldownUntil` while their rows wait).
        "endpoints": ob.endpoint_states().iter().map(endpoint_json).collect::<Vec<_>>(),
    }))
}

fn parse_id(id: &str) -> Result<i64, String> {
    id.parse::<i64>()
        .map_err(|_| format!("invalid delivery id {id:?}"))
}

/// 404 for a delivery a tenant-scoped caller may not see.
async fn hidden<S: HasOutbox>(s: &S, ext: &axum::http::Extensions, id: i64) -> Option<Response> {
    let sc = crate::ops::tenants::of_request(ext)?;
    let found = s.outbox().store().call(move |s| s.get_delivery(id)).await;
    match found {
        Ok(Some(d)) if sc.owns_group_key(&d.group_key) => None,
        Ok(_) => Some(api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("delivery {id} not found"),
        )),
        Err(e) => Some(store_failed(e)),
    }
}

async fn one<S: HasOutbox>(
    State(s): State<S>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    let ob = s.outbox();
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return bad(e),
    };
    if let Some(r) = hidden(&s, &ext, id).await {
        return r;
    }
    let found = ob
        .store()
        .call(move |s| Ok((s.get_delivery(id)?, s.delivery_attempts(id)?)))
        .await;
    match found {
        Ok((Some(d), a)) => success(json!({
            "delivery": delivery_json(&d),
            "attempts": a.iter().map(attempt_json).collect::<Vec<_>>(),
        })),
        Ok((None, _)) => api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("delivery {id} not found"),
        ),
        Err(e) => store_failed(e),
    }
}

async fn replay<S: HasOutbox>(
    State(s): State<S>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    let ob = s.outbox();
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return bad(e),
    };
    if let Some(r) = hidden(&s, &ext, id).await {
        return r;
    }
    match ob.replay(id).await {
        Ok(d) => {
            let attempts = ob
                .store()
                .call(move |s| s.delivery_attempts(id))
                .await
                .unwrap_or_default();
            let last = attempts.last().map(attempt_json);
            success(json!({
                "delivery": delivery_json(&d),
                "attempt": last,
            }))
        }
        Err(OutboxError::NotFound(_)) => api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("delivery {id} not found"),
        ),
        Err(e @ OutboxError::Send { .. }) => {
            api_error(StatusCode::CONFLICT, "unavailable", e.to_string())
        }
        Err(OutboxError::Store(e)) => store_failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_names_the_parameter() {
        let q = parse_query(Some(
            "status=failed&receiver=r&limit=5000&cursor=12&since=10",
        ))
        .unwrap();
        assert_eq!(q.status.as_deref(), Some("failed"));
        assert_eq!(q.limit, MAX_LIMIT);
        assert_eq!(q.before_id, Some(12));
        assert_eq!(q.since, Some(10_000));
        for (p, name) in [
            ("status=x", "status"),
            ("limit=-1", "limit"),
            ("cursor=a", "cursor"),
            ("until=zz", "until"),
        ] {
            let e = parse_query(Some(p)).unwrap_err();
            assert!(e.contains(&format!("\"{name}\"")), "{e}");
        }
    }
}
