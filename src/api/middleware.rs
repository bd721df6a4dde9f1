//! The cross-cutting HTTP layer, applied to every route (and the fallback):
//! request id, tracing span, RBAC, rate limit, golden-signal metrics, one
//! access-log line per request, and `request_id` in JSON error bodies.
//!
//! One function rather than a stack of tower layers so the order is
//! visible: the id comes first (every refusal carries it), then the
//! browser guards (`guard`: Host, Origin, Content-Type), then the caller:
//! callers without a valid token are rate limited by address before their
//! refusal (so guessing tokens is throttled), a token's budget is per token.

use crate::ops::auth::{self, AuthError, Authorizer, Required};
use crate::ops::request_id::{self, RequestId};
use crate::ops::Ops;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Route label for requests that matched no route or table pattern (one
/// label value, so scanners cannot create series).
pub const UNMATCHED: &str = "unmatched";

/// Error bodies larger than this are passed through untouched.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Our JSON error: Prometheus' envelope plus the request id.
pub fn error_response(code: StatusCode, error_type: &str, msg: &str, rid: &RequestId) -> Response {
    (
        code,
        axum::Json(serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": msg,
            "request_id": rid.as_str(),
        })),
    )
        .into_response()
}

pub async fn layer(State(ops): State<Arc<Ops>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let rid = RequestId::accept_or_generate(
        req.headers()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let method = req.method().as_str().to_string();
    let route: String = match req.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str().to_string(),
        None => auth::route_for_path(req.uri().path())
            .unwrap_or(UNMATCHED)
            .to_string(),
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let span = tracing::info_span!("request", request_id = %rid, route = %route, method = %method);
    req.extensions_mut().insert(rid.clone());

    let need = ops.auth.required(&method, &route);
    let mut caller = None;
    let refused = match crate::api::guard::check(
        req.method(),
        &route,
        req.headers(),
        ops.loopback,
        ops.external_host.as_deref(),
    ) {
        Err(e) => Some(Refusal::Guard(e)),
        Ok(()) => match check_access(&ops.auth, &req, need, peer) {
            Ok(p) => {
                caller = Some(p.caller(peer));
                req.extensions_mut().insert(p);
                None
            }
            Err(r) => Some(r),
        },
    };
    let caller = caller.unwrap_or_else(|| crate::ops::Principal::anonymous().caller(peer));
    let resp = match refused {
        Some(Refusal::Guard(e)) => {
            tracing::debug!(request_id = %rid, route = %route, method = %method, error = %e, "request refused");
            error_response(e.status(), e.error_type(), &e.to_string(), &rid)
        }
        Some(Refusal::Auth(e)) => {
            let (code, t) = match e {
                AuthError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
                AuthError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            };
            let mut r = error_response(code, t, &e.to_string(), &rid);
            if code == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"klaxon\""),
                );
            }
            r
        }
        Some(Refusal::Rate(secs)) => {
            let mut r = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!("rate limit exceeded, retry in {secs} s"),
                &rid,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        None => {
            let path = req.uri().path().to_string();
            let resp = next.run(req).instrument(span.clone()).await;
            match crate::ops::audit::change_action(&method, &route) {
                Some(action) => {
                    audit_change(&ops, action, &method, &path, &caller, &rid, resp).await
                }
                None => resp,
            }
        }
    };
    let (mut resp, error_type) = annotate_error(resp, &rid).await;
    if let Ok(v) = HeaderValue::from_str(rid.as_str()) {
        resp.headers_mut().insert(request_id::HEADER, v);
    }
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    ops.http.observe(
        &method,
        &route,
        status,
        elapsed.as_secs_f64(),
        error_type.as_deref(),
    );
    let _e = span.enter();
    // request_id and route repeated as fields of the line itself, so a JSON
    // log has them at the top level, not only under "span".
    // One line per request at debug (Prometheus logs none); a server error
    // at warn. Milliseconds to two decimals.
    let duration_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
    macro_rules! access {
        ($level:ident) => {
            tracing::$level!(
                target: "klaxon::access",
                request_id = %rid,
                route = %route,
                method = %method,
                caller = %caller,
                status,
                duration_ms,
                "request"
            )
        };
    }
    if status >= 500 {
        access!(warn);
    } else {
        access!(debug);
    }
    resp
}

/// Records a change that reached its handler (refusals are in the access
/// log): who, what, the outcome and, for a created silence, its id.
async fn audit_change(
    ops: &Ops,
    action: &'static str,
    method: &str,
    path: &str,
    caller: &str,
    rid: &RequestId,
    resp: Response,
) -> Response {
    let status = resp.status();
    let mut target = None;
    let wants_target = [
        crate::ops::audit::SILENCE_CREATE,
        crate::ops::audit::AUTOHEAL_RULE_CREATE,
        crate::ops::audit::AUTOHEAL_CLEAR_COOLDOWN,
    ]
    .contains(&action);
    let resp = if wants_target && status.is_success() {
        // The target is only in the answer (`{"silenceID": "..."}`, ...).
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
            Ok(b) => {
                target = serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| crate::ops::audit::answer_target(action, &v));
                Response::from_parts(parts, Body::from(b))
            }
            Err(_) => Response::from_parts(parts, Body::empty()),
        }
    } else {
        resp
    };
    crate::ops::audit::record_change(
        &ops.events,
        &crate::ops::audit::ChangeAudit {
            who: caller.to_string(),
            action: action.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            target,
            status: status.as_u16(),
            request_id: rid.as_str().to_string(),
        },
    );
    resp
}

enum Refusal {
    Guard(crate::api::guard::GuardError),
    Auth(AuthError),
    Rate(u64),
}

fn check_access(
    a: &Authorizer,
    req: &Request,
    need: Required,
    peer: Option<SocketAddr>,
) -> Result<crate::ops::Principal, Refusal> {
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    if need == Required::Public {
        // Probes never need (or are refused for) credentials.
        return Ok(a
            .authenticate(None)
            .unwrap_or_else(|_| crate::ops::Principal::anonymous()));
    }
    let addr = peer.map(|s| s.ip());
    let basic = req.extensions().get::<crate::api::webconfig::BasicUser>();
    let authenticated = match basic {
        // Verified by the web config's basic auth before this layer.
        Some(u) => Ok(a.basic_auth_user(&u.0)),
        None => a.authenticate(authz),
    };
    let p = match authenticated {
        Ok(p) => p,
        // The signature authenticates; a stale token must not block an
        // emergency command. A valid one still names the caller.
        Err(_) if need == Required::Signed => crate::ops::Principal::anonymous(),
        Err(e) => {
            // A wrong token spends its address' budget first: guessing
            // tokens is throttled like any anonymous caller.
            a.check_rate(&crate::ops::Principal::anonymous(), addr)
                .map_err(Refusal::Rate)?;
            return Err(Refusal::Auth(e));
        }
    };
    if !p.authenticated {
        // Before the role check, so refused anonymous callers count too.
        a.check_rate(&p, addr).map_err(Refusal::Rate)?;
    }
    Authorizer::authorize(&p, need).map_err(Refusal::Auth)?;
    if p.authenticated {
        a.check_rate(&p, addr).map_err(Refusal::Rate)?;
    }
    Ok(p)
}

/// For an error status: the error type for `http_errors_total` and, when
/// the body is a JSON object with an `error` field, `request_id` added to it
/// (an extra field: Prometheus API clients ignore unknown keys).
async fn annotate_error(resp: Response, rid: &RequestId) -> (Response, Option<String>) {
    let code = resp.status();
    if !(code.is_client_error() || code.is_server_error()) {
        return (resp, None);
    }
    let fallback = match code {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        c if c.is_client_error() => "client_error",
        _ => "server_error",
    }
    .to_string();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return (resp, Some(fallback));
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(_) => {
            // Too large or broken: say so rather than forward half a body.
            return (
                error_response(code, &fallback, "error body unavailable", rid),
                Some(fallback),
            );
        }
    };
    let mut error_type = fallback;
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut m)) if m.contains_key("error") => {
            if let Some(t) = m.get("errorType").and_then(|t| t.as_str()) {
                error_type = t.to_string();
            }
            m.entry("request_id")
                .or_insert_with(|| serde_json::Value::String(rid.as_str().to_string()));
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(serde_json::Value::Object(m).to_string())
        }
        _ => Body::from(bytes),
    };
    (Response::from_parts(parts, body), Some(error_type))
}
