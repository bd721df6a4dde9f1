//! Alertmanager API v2, the subset Prometheus and `amtool` use: alerts
//! (list, post, groups), silences (list, post, get, expire), status and
//! receivers. JSON shapes follow Alertmanager's OpenAPI spec, so existing
//! clients work against klaxon unchanged.

use super::params::Params;
use super::{labels_json, AppState, HttpState};
use crate::model::{Labels, Timestamp};
use crate::notify::dispatch::{parse_rfc3339, rfc3339, Dispatcher, StoredAlert};
use crate::notify::matchers::parse_matchers;
use crate::notify::silence::{Silence, SilenceError, SilenceState};
use crate::notify::Alert;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Alertmanager answers client errors with the message as a JSON string.
fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(Value::String(msg.into()))).into_response()
}

/// A bad query parameter, answered with 400 and the message.
type BadParam = String;

fn bool_param(p: &Params, name: &str) -> Result<bool, BadParam> {
    match p.get(name) {
        None => Ok(true),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(format!("{name} in query must be of type boolean: {v:?}")),
    }
}

/// `filter` (matchers) and `receiver` (regex) parameters.
struct Filters {
    matchers: Vec<crate::model::Matcher>,
    receiver: Option<regex::Regex>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    /// A tenant-scoped caller's tenants: other tenants' alerts are left out.
    scope: Option<crate::ops::tenants::Scope>,
}

fn filters(p: &Params, ext: &axum::http::Extensions) -> Result<Filters, BadParam> {
    let mut matchers = Vec::new();
    for f in p.get_all("filter") {
        matchers.extend(parse_matchers(f).map_err(|e| e.0)?);
    }
    let receiver = match p.get("receiver").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| format!("failed to parse receiver param: {e}"))?,
        ),
    };
    Ok(Filters {
        matchers,
        receiver,
        active: bool_param(p, "active")?,
        silenced: bool_param(p, "silenced")?,
        inhibited: bool_param(p, "inhibited")?,
        scope: crate::ops::tenants::of_request(ext),
    })
}

/// `gettableAlert`, with its status computed now (as Alertmanager does at
/// query time). `None` when the filters exclude it.
fn alert_json(
    d: &Dispatcher,
    a: &StoredAlert,
    receivers: Vec<String>,
    f: &Filters,
    now: Timestamp,
) -> Option<Value> {
    let (silenced_by, inhibited_by) = d.mute_status(&a.alert.labels, now);
    let suppressed = !silenced_by.is_empty() || !inhibited_by.is_empty();
    if (!f.silenced && !silenced_by.is_empty())
        || (!f.inhibited && !inhibited_by.is_empty())
        || (!f.active && !suppressed)
    {
        return None;
    }
    Some(json!({
        "labels": labels_json(&a.alert.labels),
        "annotations": labels_json(&a.alert.annotations),
        "startsAt": rfc3339(a.alert.starts_at),
        "endsAt": rfc3339(a.alert.ends_at.unwrap_or(0)),
        "updatedAt": rfc3339(a.alert.updated_at),
        "generatorURL": a.alert.generator_url,
        "fingerprint": format!("{:016x}", a.fingerprint),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": if suppressed { "suppressed" } else { "active" },
            "silencedBy": silenced_by,
            "inhibitedBy": inhibited_by.iter().map(|f| format!("{f:016x}")).collect::<Vec<_>>(),
        },
    }))
}

fn selected(f: &Filters, a: &StoredAlert, receivers: &[String], now: Timestamp) -> bool {
    if a.resolved_at(now) {
        return false;
    }
    if let Some(re) = &f.receiver {
        if !receivers.iter().any(|r| re.is_match(r)) {
            return false;
        }
    }
    if f.scope
        .as_ref()
        .is_some_and(|sc| !sc.allows(&a.alert.labels))
    {
        return false;
    }
    crate::notify::matchers::matches_all(&f.matchers, &a.alert.labels)
}

pub async fn get_alerts(
    State(dispatcher): State<std::sync::Arc<crate::notify::dispatch::Dispatcher>>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let p = Params::from_request(&uri, &headers, &Bytes::new());
    let f = match filters(&p, &ext) {
        Ok(f) => f,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let d = dispatcher.clone();
    stream_json_array(move |emit| {
        let now = crate::model::now_millis();
        let mut all = d.alerts();
        // By fingerprint, as its 16 hex digits sort.
        all.sort_unstable_by_key(|a| a.fingerprint);
        for a in all {
            let receivers = d.receivers_for(&a.alert.labels);
            if !selected(&f, &a, &receivers, now) {
                continue;
            }
            if let Some(v) = alert_json(&d, &a, receivers, &f, now) {
                if !emit(&v) {
                    return;
                }
            }
        }
    })
}

pub async fn alert_groups(
    State(dispatcher): State<std::sync::Arc<crate::notify::dispatch::Dispatcher>>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let p = Params::from_request(&uri, &headers, &Bytes::new());
    let f = match filters(&p, &ext) {
        Ok(f) => f,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let d = dispatcher.clone();
    stream_json_array(move |emit| {
        let now = crate::model::now_millis();
        for g in d.groups() {
            if let Some(re) = &f.receiver {
                if !re.is_match(&g.receiver) {
                    continue;
                }
            }
            let alerts: Vec<Value> = g
                .alerts
                .iter()
                .filter(|a| selected(&f, a, std::slice::from_ref(&g.receiver), now))
                .filter_map(|a| alert_json(&d, a, vec![g.receiver.clone()], &f, now))
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let v = json!({
                "labels": labels_json(&g.labels),
                "receiver": {"name": g.receiver},
                "alerts": alerts,
            });
            if !emit(&v) {
                return;
            }
        }
    })
}

/// Bytes of JSON sent per chunk of a streamed answer.
const CHUNK: usize = 256 * 1024;

/// A JSON array whose items `produce` hands to `emit` one at a time, on the
/// blocking pool: the async workers never build or serialize it, and the
/// answer is never held whole in memory (a chunk at a time, with
/// backpressure from the client). `emit` returns false once the client is
/// gone; `produce` should stop then.
fn stream_json_array<F>(produce: F) -> Response
where
    F: FnOnce(&mut dyn FnMut(&Value) -> bool) + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        buf.push(b'[');
        let mut first = true;
        let mut open = true;
        let mut emit = |v: &Value| {
            if !first {
                buf.push(b',');
            }
            first = false;
            if serde_json::to_writer(&mut buf, v).is_err() {
                return false;
            }
            if buf.len() >= CHUNK {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                    open = false;
                }
            }
            open
        };
        produce(&mut emit);
        if open {
            buf.push(b']');
            let _ = tx.blocking_send(Ok(Bytes::from(buf)));
        }
    });
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

fn string_map(v: Option<&Value>, what: &str, i: usize) -> Result<Labels, String> {
    let mut pairs = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Some(s) = v.as_str() else {
                    return Err(format!("alert {i}: {what}.{k} must be a string"));
                };
                pairs.push((k.clone(), s.to_string()));
            }
        }
        Some(_) => return Err(format!("alert {i}: {what} must be an object")),
    }
    Ok(Labels::from_pairs(pairs))
}

fn time_field(v: &Value, k: &str, i: usize) -> Result<Timestamp, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => parse_rfc3339(s)
            .ok_or_else(|| format!("alert {i}: {k} must be an RFC 3339 time: {s:?}")),
        Some(_) => Err(format!("alert {i}: {k} must be a string")),
    }
}

/// Parses and validates `postableAlerts` as Alertmanager does: valid alerts
/// are accepted even when others in the batch are not.
pub fn parse_postable_alerts(
    body: &[u8],
    now: Timestamp,
) -> Result<(Vec<Alert>, Vec<String>), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("parsing alerts: {e}"))?;
    let Value::Array(items) = v else {
        return Err("parsing alerts: expected a JSON array".into());
    };
    let mut ok = Vec::with_capacity(items.len());
    let mut errs = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let parsed = (|| -> Result<Alert, String> {
            if !it.is_object() {
                return Err(format!("alert {i}: expected an object"));
            }
            let labels = string_map(it.get("labels"), "labels", i)?;
            let annotations = string_map(it.get("annotations"), "annotations", i)?;
            let mut starts = time_field(it, "startsAt", i)?;
            let ends = time_field(it, "endsAt", i)?;
            if starts == 0 {
                starts = if ends == 0 { now } else { ends };
            }
            if labels.is_empty() {
                return Err("at least one label pair required".to_string());
            }
            for l in labels.iter().chain(annotations.iter()) {
                if !crate::config::relabel::is_valid_label_name(&l.name) {
                    return Err(format!("invalid label set: invalid name {:?}", l.name));
                }
            }
            if ends != 0 && ends < starts {
                return Err("start time must be before end time".to_string());
            }
            Ok(Alert {
                labels,
                annotations,
                starts_at: starts,
                ends_at: (ends != 0).then_some(ends),
                generator_url: it
                    .get("generatorURL")
                    .and_then(|g| g.as_str())
                    .unwrap_or("")
                    .to_string(),
                updated_at: now,
                request_id: None,
            })
        })();
        match parsed {
            Ok(a) => ok.push(a),
            Err(e) => errs.push(e),
        }
    }
    Ok((ok, errs))
}

pub async fn post_alerts(
    State(s): State<HttpState>,
    rid: Option<axum::Extension<crate::ops::RequestId>>,
    ext: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let now = crate::model::now_millis();
    let (mut alerts, errs) = match parse_postable_alerts(&body, now) {
        Ok(x) => x,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    // A tenant-scoped sender posts only its tenants' alerts: the whole
    // request is refused, naming the first alert that does not.
    if let Some(sc) = crate::ops::tenants::of_request(&ext) {
        if let Some((i, a)) = alerts
            .iter()
            .enumerate()
            .find(|(_, a)| !sc.allows(&a.labels))
        {
            return err(
                StatusCode::BAD_REQUEST,
                format!(
                    "alert {i} {}: labels.{} must be one of the token's tenants {:?}",
                    a.labels, sc.label, sc.tenants
                ),
            );
        }
    }
    if let Some(axum::Extension(id)) = rid {
        for a in &mut alerts {
            a.request_id = Some(id.as_str().to_string());
        }
    }
    let (alerts, refused) = s.dispatcher.admit(alerts, s.alerts_max);
    let merged = s.dispatcher.ingest(alerts, now);
    // Stored before the answer: a 200 survives a crash (the store's
    // threads, with its timeout; one transaction per request).
    if let Some(st) = s.dispatcher.store() {
        let stored = st
            .call(move |st| crate::notify::dispatch::persist_posted(st, &merged))
            .await;
        if let Err(e) = stored {
            return err(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("alerts taken in memory but not stored, send them again: {e}"),
            );
        }
    }
    if refused > 0 {
        return err(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{refused} alerts refused: klaxon holds the most alerts --alerts.max={} allows",
                s.alerts_max
            ),
        );
    }
    if !errs.is_empty() {
        return err(StatusCode::BAD_REQUEST, errs.join("; "));
    }
    StatusCode::OK.into_response()
}

/// Active first (soonest end first), then pending (soonest start), then
/// expired (latest end first), as Alertmanager lists them.
fn sort_silences(v: &mut [Silence], now: Timestamp) {
    fn rank(s: SilenceState) -> u8 {
        match s {
            SilenceState::Active => 0,
            SilenceState::Pending => 1,
            SilenceState::Expired => 2,
        }
    }
    v.sort_by(|a, b| {
        let (sa, sb) = (a.state(now), b.state(now));
        rank(sa).cmp(&rank(sb)).then_with(|| match sa {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
}

/// Alertmanager's silence filter: each filter matcher must accept the value
/// the silence's matcher of that name has.
fn silence_matches_filter(s: &Silence, f: &[crate::model::Matcher]) -> bool {
    f.iter().all(|m| {
        let v = s
            .matchers
            .iter()
            .find(|x| x.name == m.name)
            .map(|x| x.value.as_str());
        if m.value.is_empty() && v.is_none() && m.matches("") {
            return true;
        }
        m.matches(v.unwrap_or(""))
    })
}

pub async fn get_silences(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    let p = Params::from_request(&uri, &headers, &Bytes::new());
    let mut f = Vec::new();
    for x in p.get_all("filter") {
        match parse_matchers(x) {
            Ok(m) => f.extend(m),
            Err(e) => return err(StatusCode::BAD_REQUEST, e.0),
        }
    }
    let now = crate::model::now_millis();
    let mut list: Vec<Silence> = s
        .dispatcher
        .silences()
        .list()
        .into_iter()
        .filter(|x| silence_matches_filter(x, &f))
        .filter(|x| scope.as_ref().is_none_or(|sc| sc.owns_silence(&x.matchers)))
        .collect();
    sort_silences(&mut list, now);
    Json(Value::Array(list.iter().map(|x| x.to_json(now)).collect())).into_response()
}

pub async fn post_silence(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let now = crate::model::now_millis();
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("parsing silence: {e}")),
    };
    // The same parser as the store's: one definition of the silence shape.
    let mut sil = match Silence::from_json(&v) {
        Ok(x) => x,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if sil.starts_at >= sil.ends_at {
        return err(
            StatusCode::BAD_REQUEST,
            "failed to create silence: start time must be before end time",
        );
    }
    if sil.ends_at < now {
        return err(
            StatusCode::BAD_REQUEST,
            "failed to create silence: end time can't be in the past",
        );
    }
    let scope = crate::ops::tenants::of_request(&ext);
    if let Some(sc) = &scope {
        if let Err(e) = tenant_silence(sc, &mut sil) {
            return err(StatusCode::BAD_REQUEST, e);
        }
    }
    sil.updated_at = now;
    match silence_write(&s, move |x| {
        // Updating an existing silence: only one of the caller's tenants'
        // (another tenant's id is answered as unknown).
        if let Some(sc) = &scope {
            if !sil.id.is_empty()
                && x.get(&sil.id)
                    .is_none_or(|old| !sc.owns_silence(&old.matchers))
            {
                return Err(SilenceError::NotFound(sil.id.clone()));
            }
        }
        x.set(sil, now)
    })
    .await
    {
        Ok(id) => Json(json!({"silenceID": id})).into_response(),
        Err(SilenceError::NotFound(id)) => {
            err(StatusCode::NOT_FOUND, format!("silence {id} not found"))
        }
        Err(SilenceError::Store(e)) => store_error(e),
        Err(e) => err(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// A silence by a tenant-scoped caller must mute only its tenants' alerts:
/// it needs an equality matcher on the tenant label naming one of them.
/// With a single tenant the matcher is added when missing (what
/// prom-label-proxy does); a matcher on the tenant label naming another
/// tenant, or a regex/negative one, is refused rather than rewritten.
fn tenant_silence(sc: &crate::ops::tenants::Scope, sil: &mut Silence) -> Result<(), String> {
    use crate::model::MatchType;
    for m in sil.matchers.iter().filter(|m| m.name == sc.label) {
        if m.kind != MatchType::Equal || !sc.allows_value(Some(&m.value)) {
            return Err(format!(
                "matchers: {m} is not allowed: a silence of this token must match {}=\"<tenant>\" for one of its tenants {:?}",
                sc.label, sc.tenants
            ));
        }
    }
    if sc.owns_silence(&sil.matchers) {
        return Ok(());
    }
    match sc.tenants.as_slice() {
        [one] => {
            let m = crate::model::Matcher::new(MatchType::Equal, &sc.label, one.as_str())
                .map_err(|e| e.to_string())?;
            sil.matchers.push(m);
            Ok(())
        }
        many => Err(format!(
            "matchers: a silence of a token scoped to several tenants must include an equality matcher {}=\"<tenant>\" naming one of {many:?}",
            sc.label
        )),
    }
}

/// Runs a silence change where the store can be waited on: the store's
/// threads, with its call timeout (in memory when there is no store).
async fn silence_write<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&crate::notify::silence::Silences) -> Result<T, SilenceError> + Send + 'static,
) -> Result<T, SilenceError> {
    let sil = s.dispatcher.silences().clone();
    match sil.store().cloned() {
        Some(st) => st.call(move |_| Ok(f(&sil))).await?,
        None => f(&sil),
    }
}

/// 503 when the store is stalled: the change is not confirmed (a write
/// already under way completes once the disk answers; one still waiting
/// for the connection is dropped), the client retries. 500 for other store
/// failures.
pub fn store_error(e: crate::store::StoreError) -> Response {
    let code = match e {
        crate::store::StoreError::Stalled(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    err(code, e.to_string())
}

pub async fn get_silence(
    State(dispatcher): State<std::sync::Arc<crate::notify::dispatch::Dispatcher>>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    match dispatcher.silences().get(&id) {
        Some(x)
            if scope
                .as_ref()
                .is_some_and(|sc| !sc.owns_silence(&x.matchers)) =>
        {
            StatusCode::NOT_FOUND.into_response()
        }
        Some(x) => Json(x.to_json(crate::model::now_millis())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn delete_silence(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    Path(id): Path<String>,
) -> Response {
    let now = crate::model::now_millis();
    let scope = crate::ops::tenants::of_request(&ext);
    let expired = silence_write(&s, move |x| {
        // Another tenant's silence is answered as unknown.
        if let Some(sc) = &scope {
            if x.get(&id).is_none_or(|old| !sc.owns_silence(&old.matchers)) {
                return Err(SilenceError::NotFound(id));
            }
        }
        x.expire(&id, now)
    });
    match expired.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(SilenceError::Store(e @ crate::store::StoreError::Stalled(_))) => store_error(e),
        // Alertmanager answers an unknown id with 404 (its API's
        // deleteSilenceNotFound); other failures are 500s.
        Err(e @ SilenceError::NotFound(_)) => err(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn status(State(s): State<HttpState>) -> Response {
    Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "config": {"original": s.dispatcher.config().original},
        "uptime": rfc3339(s.start_time_ms),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": env!("CARGO_PKG_VERSION"),
        },
    }))
    .into_response()
}

pub async fn receivers(State(s): State<HttpState>) -> Response {
    let names: Vec<Value> = s
        .dispatcher
        .config()
        .receiver_names()
        .map(|n| json!({"name": n}))
        .collect();
    Json(Value::Array(names)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postable_alerts_validated_like_alertmanager() {
        let body = br#"[
            {"labels": {"alertname": "A"}},
            {"labels": {}},
            {"labels": {"a": "1"}, "startsAt": "2026-01-01T00:00:10Z", "endsAt": "2026-01-01T00:00:00Z"},
            {"labels": {"a": "2"}, "endsAt": "2026-01-01T00:00:00Z", "annotations": {"summary": "s"}, "generatorURL": "http://x"}
        ]"#;
        let (ok, errs) = parse_postable_alerts(body, 5).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!((ok[0].starts_at, ok[0].ends_at), (5, None));
        assert_eq!(ok[1].starts_at, ok[1].ends_at.unwrap());
        assert_eq!(ok[1].annotations.get("summary"), Some("s"));
        assert_eq!(errs.len(), 2);
        assert!(errs[0].contains("at least one label pair"), "{errs:?}");
        assert!(
            errs[1].contains("start time must be before end time"),
            "{errs:?}"
        );
        assert!(parse_postable_alerts(b"{}", 0).is_err());
    }
}
