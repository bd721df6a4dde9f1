//! `/api/v1/autoheal/*`: the remediation rules with their state (operator),
//! rules created, replaced and deleted by admins (audited by the
//! middleware, kept in the store), the run history, and the reset of a
//! receiver endpoint's circuit breaker.

use super::{api_error, success, HttpState};
use crate::ops::autoheal::engine::RuleChangeError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// Rules, runs and endpoints span every tenant's alerts and receivers, so a
/// tenant-scoped token is refused here as it is for the TSDB status.
pub async fn unscoped_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if crate::ops::tenants::of_request(req.extensions()).is_some() {
        return api_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "auto-healing covers all tenants; a tenant-scoped token cannot use it",
        );
    }
    next.run(req).await
}

/// Largest rule document accepted.
const MAX_RULE_BODY: usize = 64 * 1024;

fn change_error(e: RuleChangeError) -> Response {
    let code = match &e {
        RuleChangeError::ReadOnly(_) | RuleChangeError::Exists(_) => StatusCode::CONFLICT,
        RuleChangeError::NotFound(_) => StatusCode::NOT_FOUND,
        RuleChangeError::Invalid(_) => StatusCode::BAD_REQUEST,
        RuleChangeError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let kind = match code {
        StatusCode::BAD_REQUEST => "bad_data",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        _ => "internal",
    };
    api_error(code, kind, e.to_string())
}

/// `GET /api/v1/autoheal/rules`: every rule with its state, the receiver
/// endpoints with failures, and whether maintenance pauses actions.
pub async fn list(State(s): State<HttpState>) -> Response {
    let endpoints: Vec<_> = s
        .outbox
        .endpoint_states()
        .iter()
        .map(super::deliveries::endpoint_json)
        .collect();
    success(json!({
        "rules": s.autoheal.views(),
        "endpoints": endpoints,
        "paused": s.ops.maintenance.is_on(),
    }))
}

/// `GET /api/v1/autoheal/rules/{name}`.
pub async fn get_one(
    State(autoheal): State<std::sync::Arc<crate::ops::autoheal::engine::Engine>>,
    Path(name): Path<String>,
) -> Response {
    match autoheal.view(&name) {
        Some(v) => success(json!(v)),
        None => change_error(RuleChangeError::NotFound(name)),
    }
}

/// The rule document's text, or why it is refused.
fn body_text(body: &Bytes) -> Result<&str, (StatusCode, String)> {
    if body.len() > MAX_RULE_BODY {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("rule body larger than {MAX_RULE_BODY} bytes"),
        ));
    }
    std::str::from_utf8(body).map_err(|_| (StatusCode::BAD_REQUEST, "body is not UTF-8".into()))
}

async fn put_rule(s: HttpState, name: Option<String>, body: Bytes, create: bool) -> Response {
    let text = match body_text(&body) {
        Ok(t) => t.to_string(),
        Err((code, msg)) => return api_error(code, "bad_data", msg),
    };
    let e = s.autoheal.clone();
    match tokio::task::spawn_blocking(move || e.put_rule(name.as_deref(), &text, create)).await {
        Ok(Ok(v)) => success(json!(v)),
        Ok(Err(e)) => change_error(e),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `POST /api/v1/autoheal/rules`: creates a rule (409 if the name exists).
pub async fn create(State(s): State<HttpState>, body: Bytes) -> Response {
    put_rule(s, None, body, true).await
}

/// `PUT /api/v1/autoheal/rules/{name}`: replaces an API rule.
pub async fn replace(
    State(s): State<HttpState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    put_rule(s, Some(name), body, false).await
}

/// `DELETE /api/v1/autoheal/rules/{name}`.
pub async fn delete(
    State(autoheal): State<std::sync::Arc<crate::ops::autoheal::engine::Engine>>,
    Path(name): Path<String>,
) -> Response {
    let e = autoheal.clone();
    let n = name.clone();
    match tokio::task::spawn_blocking(move || e.delete_rule(&n)).await {
        Ok(Ok(())) => success(json!({"name": name})),
        Ok(Err(e)) => change_error(e),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `GET /api/v1/autoheal/runs?rule=&since=&limit=`: decisions and run
/// outcomes, oldest first (the newest `limit`, default 100, at most 1000;
/// `since` defaults to 24 hours ago).
pub async fn runs(
    State(autoheal): State<std::sync::Arc<crate::ops::autoheal::engine::Engine>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut rule = None;
    let mut since = crate::model::now_millis() - 24 * 3600 * 1000;
    let mut limit = 100usize;
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "rule" if !v.is_empty() => rule = Some(v.into_owned()),
            "since" if !v.is_empty() => match crate::model::time::parse_time(&v) {
                Ok(t) => since = t,
                Err(e) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "bad_data",
                        format!("invalid parameter \"since\": {e}"),
                    )
                }
            },
            "limit" if !v.is_empty() => match v.parse::<usize>() {
                Ok(n) if n > 0 => limit = n.min(1000),
                _ => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "bad_data",
                        format!("invalid parameter \"limit\": {v:?} is not a positive integer"),
                    )
                }
            },
            _ => {}
        }
    }
    let e = autoheal.clone();
    match tokio::task::spawn_blocking(move || e.history(since, rule.as_deref(), limit)).await {
        Ok(Ok(rows)) => success(json!({"runs": rows})),
        Ok(Err(e)) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearBody {
    receiver: String,
    #[serde(default)]
    integration: Option<String>,
}

/// `POST /api/v1/autoheal/clear_endpoint_cooldown` with
/// `{"receiver": "...", "integration": "webhook"}` (integration optional:
/// all of the receiver's): the breaker starts over and the endpoint's
/// waiting notifications are due at once.
pub async fn clear_endpoint_cooldown(State(s): State<HttpState>, body: Bytes) -> Response {
    let b: ClearBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("body: {e} (want {{\"receiver\": NAME, \"integration\": KIND}})"),
            )
        }
    };
    match s
        .outbox
        .clear_endpoint_cooldown(&b.receiver, b.integration.as_deref())
        .await
    {
        Ok(cleared) => {
            for c in &cleared {
                s.ops.events.publish_later(
                    crate::ops::autoheal::engine::KIND_AUTOHEAL,
                    json!({
                        "outcome": "endpoint_cleared",
                        "receiver": c.receiver,
                        "integration": c.integration,
                        "integration_index": c.integration_index,
                    }),
                );
            }
            success(json!({
                "receiver": b.receiver,
                "cleared": cleared.iter().map(super::deliveries::endpoint_json).collect::<Vec<_>>(),
            }))
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}
