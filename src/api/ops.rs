//! Operations endpoints: `/healthz`, `/meta`, the signed commands under
//! `/internal/commands/`, the event stream and the audit listing.

use super::middleware::error_response;
use super::{AppState, HttpState};
use crate::ops::audit::{self, CommandAudit};
use crate::ops::commands::{self, Command, CommandError, SignedHeaders};
use crate::ops::events::Event;
use crate::ops::{MaintenanceState, Principal, RequestId};
use crate::store::audit::EventQuery;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

/// Process liveness, as JSON (load balancers that want a body).
pub async fn healthz(State(ops): State<std::sync::Arc<crate::ops::Ops>>) -> Response {
    let up = (crate::model::now_millis() - ops.started_ms).max(0) / 1000;
    axum::Json(serde_json::json!({"status": "ok", "uptime_seconds": up})).into_response()
}

/// Version, enabled features, maintenance state, last heartbeat ACK.
pub async fn meta(State(s): State<HttpState>) -> Response {
    let ack = s.ops.heartbeat.ack();
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "features": s.ops.features(),
        "maintenance": {
            "enabled": s.ops.maintenance.is_on(),
            "state": s.ops.maintenance.state(),
        },
        "ha": crate::store::leader::status(s.outbox.store()),
        "heartbeat": {
            "enabled": s.ops.heartbeat_enabled,
            "last_ack": ack.last_ack_ms.map(crate::model::time::rfc3339_millis),
            "last_ack_correlation_id": ack.last_correlation_id,
            "last_status": ack.last_status,
            "consecutive_failed_beats": ack.consecutive_failed_beats,
        },
    }))
    .into_response()
}

/// Body of a command (extra fields are allowed and ignored).
#[derive(Debug, Default, Deserialize)]
struct CommandBody {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    operator: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Commands are small JSON objects.
const MAX_COMMAND_BODY: usize = 64 * 1024;

/// `POST /internal/commands/{kill-switch,resume,reload,refresh}`.
pub async fn command(State(s): State<HttpState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let rid = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(RequestId::generate);
    let body: Bytes = match axum::body::to_bytes(body, MAX_COMMAND_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_data",
                "command body too large",
                &rid,
            )
        }
    };
    // Verifying (replay check), applying (a reload reads files and waits for
    // rule evaluations) and auditing all touch the disk: off the workers.
    let rid2 = rid.clone();
    match tokio::task::spawn_blocking(move || execute(&s, &parts, &body, rid2)).await {
        Ok(r) => r,
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "execution",
            &format!("command failed: {e}"),
            &rid,
        ),
    }
}

/// A command after its body was read: verify, apply, audit, acknowledge.
fn execute(
    s: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
    rid: RequestId,
) -> Response {
    let principal = parts.extensions.get::<Principal>();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
    let headers = &parts.headers;
    let name = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let ops = &s.ops;
    let mut a = CommandAudit {
        what: name.to_string(),
        correlation_id: header(headers, "x-correlation-id")
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect(),
        source: peer.map(|p| p.0.to_string()).unwrap_or_default(),
        request_id: rid.to_string(),
        who: principal
            .filter(|p| p.authenticated)
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let Some(cmd) = Command::parse(name) else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "unknown command", &rid);
    };
    let h = SignedHeaders {
        signature: header(headers, "x-signature"),
        timestamp: header(headers, "x-timestamp"),
        correlation_id: header(headers, "x-correlation-id"),
    };
    // Who/why from the body are audited even for rejected commands, marked
    // as unverified claims by the result.
    let parsed: Result<CommandBody, _> = serde_json::from_slice(body);
    if let Ok(b) = &parsed {
        if a.who.is_empty() {
            a.who = b.operator.chars().take(200).collect();
        }
        a.reason = b.reason.chars().take(1000).collect();
    }
    if let Err(e) = ops.verifier.verify(h, body, crate::model::now_millis()) {
        a.result = format!("rejected: {e}");
        audit::record(&ops.events, &a);
        let code = match e {
            CommandError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        };
        return error_response(code, "unauthorized", &e.to_string(), &rid);
    }
    let b = match parsed {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("command body: line {} column {}: {e}", e.line(), e.column());
            a.result = format!("rejected: {msg}");
            audit::record(&ops.events, &a);
            return error_response(StatusCode::BAD_REQUEST, "bad_data", &msg, &rid);
        }
    };
    let outcome = match cmd {
        Command::KillSwitch => {
            ops.maintenance.enable(MaintenanceState {
                reason: b.reason.clone(),
                operator: b.operator.clone(),
                since_ms: crate::model::now_millis(),
                correlation_id: a.correlation_id.clone(),
            });
            tracing::warn!(reason = %b.reason, operator = %b.operator, "maintenance mode ON");
            Ok(())
        }
        Command::Resume => {
            ops.maintenance.disable();
            tracing::warn!(operator = %b.operator, "maintenance mode OFF");
            Ok(())
        }
        Command::Reload => ops.reload("command"),
        Command::Refresh => {
            ops.refresh();
            Ok(())
        }
    };
    a.result = match &outcome {
        Ok(()) => "accepted".into(),
        Err(e) => format!("failed: {e}"),
    };
    audit::record(&ops.events, &a);
    if let Err(e) = outcome {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "execution",
            &e.to_string(),
            &rid,
        );
    }
    let maintenance = ops.maintenance.is_on();
    let status = "acknowledged";
    let signature = ops
        .verifier
        .secret()
        .map(|k| commands::sign_ack(k, status, &a.correlation_id, maintenance))
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "status": status,
        "command": cmd.as_str(),
        "correlation_id": a.correlation_id,
        "maintenance_mode": maintenance,
        "request_id": rid.as_str(),
        "signature": format!("sha256={signature}"),
    }))
    .into_response()
}

/// `/-/ready`: 503 in maintenance mode (with the reason), else as before.
pub fn maintenance_unready(s: &AppState) -> Option<Response> {
    let st = s.ops.maintenance.state()?;
    Some(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Maintenance mode: {} (by {}, correlation id {})\n",
                st.reason, st.operator, st.correlation_id
            ),
        )
            .into_response(),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamParams {
    kind: Option<String>,
    last_event_id: Option<String>,
}

/// Page size when replaying from the store.
const REPLAY_PAGE: usize = 500;
/// Comment lines keep proxies from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

struct StreamState {
    events: crate::ops::Events,
    rx: tokio::sync::broadcast::Receiver<Event>,
    backlog: VecDeque<Event>,
    last: i64,
    replay: bool,
    kind: Option<String>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// A tenant-scoped caller (its scope and name): events of other
    /// tenants are skipped.
    scope: Option<(crate::ops::tenants::Scope, String)>,
}

fn to_sse(e: &Event) -> axum::response::sse::Event {
    let ev = axum::response::sse::Event::default().event(e.kind.clone());
    let ev = if e.id > 0 {
        ev.id(e.id.to_string())
    } else {
        ev
    };
    ev.json_data(e)
        .unwrap_or_else(|_| axum::response::sse::Event::default().comment("unencodable event"))
}

/// `GET /api/v1/events/stream`: Server-Sent Events; `Last-Event-ID` (or
/// `?last_event_id=`) replays stored events after it first.
pub async fn stream(
    State(s): State<HttpState>,
    Extension(rid): Extension<RequestId>,
    principal: Option<Extension<Principal>>,
    Query(p): Query<StreamParams>,
    headers: HeaderMap,
) -> Response {
    let last = header(&headers, "last-event-id")
        .map(str::to_string)
        .or(p.last_event_id);
    let last = match last.map(|l| l.trim().parse::<i64>()) {
        None => None,
        Some(Ok(v)) if v >= 0 => Some(v),
        Some(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_data",
                "Last-Event-ID must be a non-negative integer",
                &rid,
            )
        }
    };
    // Subscribe before reading the store: nothing published in between is
    // lost (duplicates are skipped by id).
    let st = StreamState {
        events: s.ops.events.clone(),
        rx: s.ops.events.subscribe(),
        backlog: VecDeque::new(),
        last: last.unwrap_or(0),
        replay: last.is_some(),
        kind: p.kind,
        shutdown: s.shutdown.clone(),
        scope: principal.and_then(|Extension(p)| p.scope.map(|sc| (sc, p.name))),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.backlog.pop_front() {
                st.last = st.last.max(e.id);
                if st.kind.as_ref().is_some_and(|k| *k != e.kind) {
                    continue;
                }
                if st.scope.as_ref().is_some_and(|(sc, who)| {
                    !crate::ops::tenants::event_visible(sc, who, &e.kind, &e.data)
                }) {
                    continue;
                }
                return Some((Ok::<_, std::convert::Infallible>(to_sse(&e)), st));
            }
            if st.replay {
                let ev = st.events.clone();
                let q = EventQuery {
                    after_id: Some(st.last),
                    limit: REPLAY_PAGE,
                    ..Default::default()
                };
                let page = tokio::task::spawn_blocking(move || ev.query(&q)).await;
                match page {
                    Ok(Ok(v)) => {
                        st.replay = v.len() == REPLAY_PAGE;
                        st.backlog.extend(v);
                    }
                    _ => {
                        tracing::warn!("event replay from the store failed");
                        st.replay = false;
                    }
                }
                continue;
            }
            let next = tokio::select! {
                r = st.rx.recv() => r,
                _ = st.shutdown.wait_for(|stop| *stop) => return None,
            };
            match next {
                Ok(e) if e.id != 0 && e.id <= st.last => continue,
                Ok(e) => st.backlog.push_back(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event stream lagged; resuming from the store");
                    st.replay = st.last > 0;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive"))
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Largest page.
const MAX_LIMIT: usize = 1000;

/// `GET /api/v1/events/audit?since=&until=&kind=&limit=&cursor=`: stored
/// events oldest first; `next_cursor` is set when more follow.
pub async fn audit_list(
    State(s): State<HttpState>,
    Extension(rid): Extension<RequestId>,
    principal: Option<Extension<Principal>>,
    Query(p): Query<AuditParams>,
) -> Response {
    let bad = |m: String| error_response(StatusCode::BAD_REQUEST, "bad_data", &m, &rid);
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        v.as_deref()
            .map(|t| crate::model::time::parse_time(t).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let since = match time("since", &p.since) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let until = match time("until", &p.until) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let limit = match p.limit.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad(format!("limit: must be an integer in 1..={MAX_LIMIT}")),
    };
    let after_id = match p.cursor.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => return bad("cursor: not a cursor from a previous page".into()),
    };
    let q = EventQuery {
        since_ms: since,
        until_ms: until,
        kind: p.kind.filter(|k| !k.is_empty()),
        after_id,
        // One more than asked tells whether another page exists.
        limit: limit + 1,
    };
    let ev = s.ops.events.clone();
    let scope = principal.and_then(|Extension(p)| p.scope.map(|sc| (sc, p.name)));
    let (mut rows, resume) = match tokio::task::spawn_blocking(move || match scope {
        None => ev.query(&q).map(|rows| (rows, None)),
        Some((sc, who)) => scoped_events(&ev, q, &sc, &who),
    })
    .await
    {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
                &rid,
            )
        }
        Err(e) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
                &rid,
            )
        }
    };
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|e| e.id.to_string())
    } else {
        resume.map(|id| id.to_string())
    };
    super::success(serde_json::json!({"events": rows, "next_cursor": next}))
}

/// Stored events a tenant-scoped caller may see, read page by page until
/// `q.limit` of them (or a bounded number of pages) are found; with the
/// id to resume after when the pages ran out first.
fn scoped_events(
    ev: &crate::ops::Events,
    mut q: EventQuery,
    sc: &crate::ops::tenants::Scope,
    who: &str,
) -> Result<(Vec<Event>, Option<i64>), crate::store::StoreError> {
    const MAX_PAGES: usize = 20;
    let want = q.limit;
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = ev.query(&q)?;
        let full = page.len() == q.limit;
        q.after_id = page.last().map(|e| e.id).or(q.after_id);
        out.extend(
            page.into_iter()
                .filter(|e| crate::ops::tenants::event_visible(sc, who, &e.kind, &e.data)),
        );
        if out.len() >= want || !full {
            return Ok((out, None));
        }
    }
    Ok((out, q.after_id))
}

/// `GET /api/v1/auth/whoami`: the caller as the server sees it, so the web
/// UI shows only the buttons the caller may use (the API still enforces
/// every role). `roles` lists every role held: each includes the ones
/// before it, so an operator is also a viewer.
pub async fn whoami(principal: Option<Extension<Principal>>) -> Response {
    let (name, role, authenticated, scope) = match principal {
        Some(Extension(p)) => (p.name, p.role, p.authenticated, p.scope),
        None => ("anonymous".to_string(), None, false, None),
    };
    // A bare object, as the UI contract names it (not Prometheus' envelope:
    // this is klaxon's own endpoint, not part of the Prometheus API).
    let mut v = whoami_json(&name, role, authenticated);
    // `tenants` only for a scoped caller: absent means every tenant.
    if let Some(s) = scope {
        v["tenants"] = serde_json::json!(s.tenants);
        v["tenantLabel"] = serde_json::json!(s.label);
    }
    axum::Json(v).into_response()
}

/// The body of [`whoami`] (a function of its own for the unit test).
pub fn whoami_json(
    name: &str,
    role: Option<crate::ops::Role>,
    authenticated: bool,
) -> serde_json::Value {
    use crate::ops::Role;
    let roles: Vec<&str> = [Role::Viewer, Role::Operator, Role::Admin]
        .into_iter()
        .filter(|r| role.is_some_and(|have| have >= *r))
        .map(Role::as_str)
        .collect();
    serde_json::json!({
        "name": name,
        "roles": roles,
        "authenticated": authenticated,
    })
}
