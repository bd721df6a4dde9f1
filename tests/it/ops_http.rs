//! The cross-cutting HTTP layer on 127.0.0.1: request ids, the RBAC route ×
//! role matrix, rate limiting, golden-signal metrics and JSON error bodies.

use klaxon::ops::auth::{Required, Role, ROUTES};
use sha2::{Digest, Sha256};

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn start(extra: &str) -> (klaxon::app::Running, String, tempfile::TempDir) {
    crate::common::Klaxon::start(extra).await.parts()
}

fn auth_section(extra: &str) -> String {
    format!(
        "auth:\n  anonymous_role: none\n  tokens:\n    - {{name: v, token_sha256: {}, roles: [viewer]}}\n    - {{name: o, token_sha256: {}, roles: [operator]}}\n    - {{name: a, token_sha256: {}, roles: [viewer, admin]}}\n{extra}",
        sha("tok-viewer"),
        sha("tok-operator"),
        sha("tok-admin")
    )
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = c.request(m, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    let is_stream = headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    // Streams never end; their status line is all this test needs.
    let body = if is_stream || method == "HEAD" {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(serde_json::Value::Null)
    };
    (code, body, headers)
}

/// Refused by the RBAC layer itself (handlers may answer 401 for their own
/// reasons, e.g. a command without a signature).
fn refused(code: u16, body: &serde_json::Value) -> Option<u16> {
    match (code, body["errorType"].as_str()) {
        (401, Some("unauthorized")) if body["error"] == "missing or invalid bearer token" => {
            Some(401)
        }
        (403, Some("forbidden")) => Some(403),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_times_every_role() {
    let (app, base, _d) = start(&auth_section("")).await;
    let c = reqwest::Client::new();
    let principals: [(Option<&str>, Option<Role>); 4] = [
        (None, None),
        (Some("tok-viewer"), Some(Role::Viewer)),
        (Some("tok-operator"), Some(Role::Operator)),
        (Some("tok-admin"), Some(Role::Admin)),
    ];
    let mut extra = vec![
        ("GET", "/not/a/route", Required::Role(Role::Viewer)),
        ("POST", "/not/a/route", Required::Role(Role::Admin)),
        ("DELETE", "/api/v1/query", Required::Role(Role::Admin)),
    ];
    extra.extend(ROUTES.iter().copied());
    let mut checked = 0;
    for (method, route, need) in extra {
        let url = format!("{base}{}", concrete(route));
        for (token, role) in principals {
            let (code, body, h) = call(&c, method, &url, token).await;
            let got = refused(code, &body);
            let want = match need {
                Required::Public | Required::Signed => None,
                Required::Role(r) => match role {
                    Some(have) if have >= r => None,
                    None => Some(401),
                    Some(_) => Some(403),
                },
            };
            assert_eq!(
                got, want,
                "{method} {route} as {token:?}: status {code}, body {body}"
            );
            if want == Some(401) {
                assert!(h.contains_key("www-authenticate"));
            }
            if want.is_some() {
                assert_eq!(
                    body["request_id"].as_str(),
                    h.get("x-request-id").and_then(|v| v.to_str().ok())
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (ROUTES.len() + 3) * 4);
    // A client-supplied role header grants nothing.
    let r = c
        .post(format!("{base}/-/reload"))
        .header("X-User-Roles", "admin")
        .header("X-Role", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_metrics_and_error_bodies() {
    let (app, base, _d) = start("").await;
    let c = reqwest::Client::new();
    // Echoed when sane.
    let r = c
        .get(format!("{base}/healthz"))
        .header("X-Request-ID", "trace-42.a:b_c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42.a:b_c");
    let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    // Replaced when not, generated when absent: UUID v4 both.
    for hdr in [Some("has space"), Some(&*"x".repeat(200)), None] {
        let mut rb = c.get(format!("{base}/-/healthy"));
        if let Some(h) = hdr {
            rb = rb.header("X-Request-ID", h);
        }
        let r = rb.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let u = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(u.get_version_num(), 4, "{id}");
    }
    // A Prometheus-API error keeps its shape and gains request_id.
    let r = c
        .get(format!("{base}/api/v1/query"))
        .header("X-Request-ID", "req-err-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["request_id"], "req-err-1");
    let error_type = body["errorType"].as_str().unwrap().to_string();

    // No auth section on loopback: anonymous admin, as before.
    let r = c.post(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let meta: serde_json::Value = serde_json::from_slice(
        &c.get(format!("{base}/meta"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["maintenance"]["enabled"], false);
    assert_eq!(meta["heartbeat"]["enabled"], false);

    let m = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1\n".to_string(),
        "http_requests_total{method=\"GET\",route=\"/-/healthy\",status=\"200\"} 3\n".to_string(),
        "http_requests_total{method=\"GET\",route=\"/api/v1/query\",status=\"400\"} 1\n"
            .to_string(),
        "http_request_duration_seconds_count{method=\"GET\",route=\"/-/healthy\"} 3\n".to_string(),
        "# TYPE http_request_duration_seconds histogram\n".to_string(),
        format!("http_errors_total{{route=\"/api/v1/query\",error_type=\"{error_type}\"}} 1\n"),
        "http_errors_total{route=\"unmatched\",error_type=\"not_found\"} 1\n".to_string(),
        "klaxon_maintenance_mode 0\n".to_string(),
    ] {
        assert!(m.contains(&want), "missing {want:?} in\n{m}");
    }
    assert!(m.contains(
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 1\n"
    ));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_token_answers_429_with_retry_after() {
    let (app, base, _d) = start(&auth_section(
        "  rate_limit: {requests_per_second: 0.5, burst: 2}\n",
    ))
    .await;
    let c = reqwest::Client::new();
    let url = format!("{base}/api/v1/status/buildinfo");
    for _ in 0..2 {
        let (code, _, _) = call(&c, "GET", &url, Some("tok-viewer")).await;
        assert_eq!(code, 200);
    }
    let (code, body, h) = call(&c, "GET", &url, Some("tok-viewer")).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["errorType"], "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another token has its own bucket; probes are never limited.
    let (code, _, _) = call(&c, "GET", &url, Some("tok-admin")).await;
    assert_eq!(code, 200);
    let (code, _, _) = call(&c, "GET", &format!("{base}/-/healthy"), Some("tok-viewer")).await;
    assert_eq!(code, 200);
    app.stop().await;

    // Anonymous callers are limited per client address.
    let (app, base, _d) = start(
        "auth:\n  anonymous_role: viewer\n  rate_limit: {requests_per_second: 0.5, burst: 1}\n",
    )
    .await;
    let url = format!("{base}/api/v1/status/buildinfo");
    assert_eq!(call(&c, "GET", &url, None).await.0, 200);
    let (code, body, h) = call(&c, "GET", &url, None).await;
    assert_eq!(code, 429, "{body}");
    assert!(h.contains_key("retry-after"));
    app.stop().await;
}
