//! `GET /probe`: klaxon as a blackbox_exporter-style multi-target exporter,
//! so an existing Prometheus scrape job written for blackbox works against
//! klaxon unchanged. Bad requests (unknown module, malformed target) get a
//! 400 with the reason instead of a failed probe, so a misconfigured scrape
//! job is visible as a scrape error rather than as a down target.

use crate::probe::{check_target, effective_timeout, find_module, run_probe, ProbeError};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use crate::metrics::TEXT_CONTENT_TYPE as TEXT;

fn bad_request(e: ProbeError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{e}\n"),
    )
        .into_response()
}

pub async fn probe(
    State(probe_modules): State<std::sync::Arc<crate::probe::Modules>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // blackbox's default module when none is given.
    let name = q
        .get("module")
        .filter(|m| !m.is_empty())
        .map(String::as_str)
        .unwrap_or("http_2xx");
    let module = match find_module(&probe_modules, name) {
        Ok(m) => m,
        Err(e) => return bad_request(e),
    };
    let target = q.get("target").map(String::as_str).unwrap_or("");
    if let Err(e) = check_target(&module, target) {
        return bad_request(e);
    }
    let scrape_timeout = headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let timeout = effective_timeout(&module, scrape_timeout);
    let outcome = run_probe(&module, target, timeout).await;
    if q.get("debug").is_some_and(|d| d == "true") {
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            outcome.debug_text(&module),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, TEXT)], outcome.metrics.render()).into_response()
}

/// `GET /api/v1/probes`: each scheduled probe's last result (the probes
/// page). Probes that have not run yet are absent; times are RFC 3339,
/// durations seconds, `certExpiry` the earliest certificate's `notAfter`.
pub async fn results(
    State(results): State<std::sync::Arc<crate::probe::schedule::ProbeResults>>,
) -> Response {
    let probes: Vec<serde_json::Value> = results.snapshot().iter().map(result_json).collect();
    super::success(serde_json::json!({ "probes": probes }))
}

fn result_json(r: &crate::probe::schedule::LastResult) -> serde_json::Value {
    use crate::model::time::rfc3339_millis;
    // A list, not an object: the order is the probe's (resolve, connect,
    // tls, processing, transfer), which a JSON object would not keep.
    let phases: Vec<serde_json::Value> = r
        .phases
        .iter()
        .map(|(p, v)| serde_json::json!({"phase": p, "seconds": v}))
        .collect();
    serde_json::json!({
        "job": r.job,
        "target": r.target,
        "module": r.module,
        "intervalSeconds": r.interval.as_secs_f64(),
        "lastRun": rfc3339_millis(r.at_ms),
        "success": r.success,
        "durationSeconds": r.duration.as_secs_f64(),
        "error": r.reason.clone().unwrap_or_default(),
        "httpStatus": r.status,
        "phases": phases,
        // Seconds since the epoch can exceed i64 millis only in theory;
        // out-of-range values are dropped rather than wrapped.
        "certExpiry": r
            .cert_expiry
            .filter(|s| s.is_finite() && s.abs() < 1e14)
            .map(|s| rfc3339_millis((s * 1000.0) as i64)),
    })
}
