//! The action of a remediation rule: an HTTP request whose body is a
//! JSON document naming the rule, the target and the alert (labels,
//! annotations, runbook) or a template, or a signed command to another
//! klaxon. Both are signed like klaxon's own commands (`X-Timestamp`,
//! `X-Correlation-ID`, `X-Signature: sha256=` HMAC over
//! `timestamp + "." + body`) and sent with retries.

use crate::config::{HttpClientConfig, Secret};
use crate::model::Labels;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the request is.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// `action.http`: the body is `body` rendered, or [`Payload`].
    Http,
    /// `action.command`: `POST /internal/commands/NAME` on another klaxon
    /// with `{"operator": "autoheal/RULE", "reason": ...}`.
    Command {
        command: crate::ops::commands::Command,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpAction {
    pub method: reqwest::Method,
    pub url: String,
    /// Extra headers (names and values validated at config load).
    pub headers: Vec<(String, String)>,
    /// A template (the notification template language) for the body; its
    /// data are `.Rule`, `.Target`, `.Labels`, `.Annotations`,
    /// `.RunbookURL`, `.StartsAt`, `.Fingerprint`, with every string
    /// JSON-escaped so `"{{ .Labels.instance }}"` is always valid JSON.
    pub body: Option<String>,
    /// HMAC-SHA256 key; without it the request is unsigned.
    pub secret: Option<Secret>,
    pub timeout: Duration,
    /// Attempts in all (1: no retry); a 5xx, 429 or a transport error is
    /// retried after `backoff`, doubling.
    pub attempts: u32,
    pub backoff: Duration,
    /// TLS, authentication and redirect settings (`http_config:`).
    pub http: HttpClientConfig,
    pub proxy_url: Option<String>,
    pub kind: ActionKind,
}

impl HttpAction {
    /// A POST with the defaults: 10s timeout, 3 attempts, 1s backoff.
    pub fn post(url: &str) -> HttpAction {
        HttpAction {
            method: reqwest::Method::POST,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            secret: None,
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_secs(1),
            http: HttpClientConfig::default(),
            proxy_url: None,
            kind: ActionKind::Http,
        }
    }

    /// The client for this action's TLS and proxy settings.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        crate::notify::receivers::http::build_client(&self.http, self.proxy_url.as_deref())
    }

    /// The request body for one run.
    pub fn render_body(&self, rule: &str, p: &Payload<'_>) -> Result<Vec<u8>, ActionError> {
        match (&self.kind, &self.body) {
            (ActionKind::Command { reason, .. }, _) => {
                let reason = if reason.is_empty() {
                    format!("autoheal rule {rule} for {}", p.target)
                } else {
                    reason.clone()
                };
                serde_json::to_vec(&serde_json::json!({
                    "operator": format!("autoheal/{rule}"),
                    "reason": reason,
                }))
                .map_err(|e| ActionError::Encode(e.to_string()))
            }
            (ActionKind::Http, None) => {
                serde_json::to_vec(p).map_err(|e| ActionError::Encode(e.to_string()))
            }
            (ActionKind::Http, Some(t)) => render_template(t, p).map(String::into_bytes),
        }
    }
}

/// A string as it sits inside a JSON string literal (no quotes).
fn json_escaped(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap_or_default();
    q.get(1..q.len().saturating_sub(1))
        .unwrap_or("")
        .to_string()
}

fn render_template(text: &str, p: &Payload<'_>) -> Result<String, ActionError> {
    use crate::template::{TemplateSet, Value};
    use std::rc::Rc;
    let esc = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        Value::Labels(Rc::new(Labels::from_pairs(
            pairs.map(|(k, v)| (k.to_string(), json_escaped(v))),
        )))
    };
    let mut m = BTreeMap::new();
    m.insert("Rule".to_string(), Value::Str(json_escaped(p.rule)));
    m.insert("Target".to_string(), Value::Str(json_escaped(p.target)));
    m.insert(
        "Labels".to_string(),
        esc(&mut p.labels.iter().map(|(k, v)| (*k, *v))),
    );
    m.insert(
        "Annotations".to_string(),
        esc(&mut p.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    m.insert(
        "RunbookURL".to_string(),
        Value::Str(json_escaped(p.runbook_url.unwrap_or(""))),
    );
    m.insert(
        "StartsAt".to_string(),
        Value::Time(i128::from(p.fired_at) * 1_000_000),
    );
    m.insert("Fingerprint".to_string(), Value::Str(p.fingerprint.clone()));
    let data = Value::Map(Rc::new(m));
    TemplateSet::new()
        .render(text, &data, false)
        .map_err(|e| ActionError::Encode(format!("body template: {e}")))
}

/// The body the endpoint receives.
#[derive(Debug, Clone, Serialize)]
pub struct Payload<'a> {
    pub rule: &'a str,
    pub target: &'a str,
    pub labels: BTreeMap<&'a str, &'a str>,
    pub annotations: &'a BTreeMap<String, String>,
    pub runbook_url: Option<&'a str>,
    /// Unix ms the alert started firing.
    pub fired_at: i64,
    /// The alert's fingerprint (16 hex digits, as Alertmanager shows it).
    pub fingerprint: String,
}

impl<'a> Payload<'a> {
    pub fn new(
        rule: &'a str,
        target: &'a str,
        labels: &'a Labels,
        annotations: &'a BTreeMap<String, String>,
        fired_at: i64,
    ) -> Payload<'a> {
        Payload {
            rule,
            target,
            labels: labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
            runbook_url: annotations.get("runbook_url").map(String::as_str),
            annotations,
            fired_at,
            fingerprint: format!("{:016x}", crate::notify::dispatch::fingerprint(labels)),
        }
    }
}

/// Why an action failed (after its retries); the text goes to the audit
/// log, so it names the status or the transport error, never a header.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("HTTP {status} after {attempts} attempt(s)")]
    Status { status: u16, attempts: u32 },
    #[error("request failed after {attempts} attempt(s): {reason}")]
    Transport { reason: String, attempts: u32 },
    #[error("encoding the body: {0}")]
    Encode(String),
}

/// Sends the action with `body`; `now_s` is the signature's timestamp
/// (Unix seconds), `correlation_id` the run's id (`X-Correlation-ID`, the
/// same on every retry, so a receiver can drop repeats). `on_retry` hears
/// of each failed attempt that is retried. Returns the final status and
/// the attempts it took.
pub async fn execute(
    client: &reqwest::Client,
    action: &HttpAction,
    body: Vec<u8>,
    correlation_id: &str,
    now_s: i64,
    on_retry: &(dyn Fn(u32, &ActionError) + Send + Sync),
) -> Result<(u16, u32), ActionError> {
    let ts = now_s.to_string();
    let auth = crate::config::client::authorization_header(&action.http)
        .map_err(|e| ActionError::Encode(format!("http_config: {e}")))?;
    let mut wait = action.backoff;
    let attempts = action.attempts.max(1);
    let mut last = ActionError::Transport {
        reason: "not sent".into(),
        attempts: 0,
    };
    for attempt in 1..=attempts {
        let mut req = client
            .request(action.method.clone(), &action.url)
            .timeout(action.timeout)
            .header("Content-Type", "application/json")
            .header("X-Timestamp", &ts)
            .header("X-Correlation-ID", correlation_id);
        for (k, v) in &action.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(a) = &auth {
            req = req.header(reqwest::header::AUTHORIZATION, a.as_str());
        }
        if let Some(secret) = &action.secret {
            let sig = crate::ops::commands::sign_request(secret.expose().as_bytes(), &ts, &body);
            req = req.header("X-Signature", format!("sha256={sig}"));
        }
        let retry = match req.body(body.clone()).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    return Ok((status, attempt));
                }
                last = ActionError::Status {
                    status,
                    attempts: attempt,
                };
                status >= 500 || status == 429
            }
            Err(e) => {
                // reqwest's text can hold the URL (and so credentials in
                // it): keep the kind only.
                let reason = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection refused or unreachable"
                } else {
                    "transport error"
                };
                last = ActionError::Transport {
                    reason: reason.into(),
                    attempts: attempt,
                };
                true
            }
        };
        if !retry || attempt == attempts {
            break;
        }
        on_retry(attempt, &last);
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A fake remediation endpoint on 127.0.0.1 that verifies the signature
    /// with the shared secret and fails the first `fail_first` calls.
    async fn endpoint(fail_first: u32) -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let app = axum::Router::new().route(
            "/fix",
            axum::routing::post(move |h: HeaderMap, body: Bytes| {
                let c = c.clone();
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                    let ts = h
                        .get("x-timestamp")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let want = format!(
                        "sha256={}",
                        crate::ops::commands::sign_request(b"s3cret", ts, &body)
                    );
                    let got = h.get("x-signature").and_then(|v| v.to_str().ok());
                    if got != Some(want.as_str()) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    if n <= fail_first {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (format!("http://{addr}/fix"), calls, task)
    }

    fn action(url: &str, secret: &[u8]) -> HttpAction {
        let mut a = HttpAction::post(url);
        a.secret = Some(Secret::new(String::from_utf8_lossy(secret)));
        a.backoff = Duration::from_millis(10);
        a
    }

    #[tokio::test]
    async fn signed_action_is_verified_and_retried_on_5xx() {
        let (url, calls, task) = endpoint(2).await;
        let labels = Labels::from_pairs([("alertname", "Down".to_string())]);
        let ann = BTreeMap::from([("runbook_url".to_string(), "http://rb/Down".to_string())]);
        let p = Payload::new("restart", "instance=\"a\"", &labels, &ann, 1);
        let body = serde_json::to_vec(&p).expect("json");
        let client = reqwest::Client::new();
        let none = |_: u32, _: &ActionError| {};
        let got = execute(
            &client,
            &action(&url, b"s3cret"),
            body.clone(),
            "c1",
            1_700_000_000,
            &none,
        )
        .await
        .expect("third attempt succeeds");
        assert_eq!(got, (200, 3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A wrong secret is refused by the endpoint and not retried (4xx).
        let err = execute(
            &client,
            &action(&url, b"other"),
            body,
            "c2",
            1_700_000_000,
            &none,
        )
        .await
        .expect_err("401");
        assert_eq!(err.to_string(), "HTTP 401 after 1 attempt(s)");
        task.abort();
    }

    #[tokio::test]
    async fn a_failing_action_reports_its_attempts() {
        let (url, calls, task) = endpoint(100).await;
        let labels = Labels::empty();
        let ann = BTreeMap::new();
        let p = Payload::new("r", "", &labels, &ann, 0);
        let retried = std::sync::Mutex::new(Vec::new());
        let on_retry = |n: u32, e: &ActionError| retried.lock().unwrap().push((n, e.to_string()));
        let body = serde_json::to_vec(&p).expect("json");
        let err = execute(
            &reqwest::Client::new(),
            &action(&url, b"s3cret"),
            body,
            "c",
            5,
            &on_retry,
        )
        .await
        .expect_err("always 503");
        assert_eq!(err.to_string(), "HTTP 503 after 3 attempt(s)");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            *retried.lock().unwrap(),
            [
                (1, "HTTP 503 after 1 attempt(s)".to_string()),
                (2, "HTTP 503 after 2 attempt(s)".to_string())
            ]
        );
        task.abort();
    }

    #[test]
    fn body_templates_escape_values_into_valid_json() {
        let labels = Labels::from_pairs([
            ("alertname", "Down".to_string()),
            ("instance", "a\"b:1".to_string()),
        ]);
        let ann = BTreeMap::from([("runbook_url".to_string(), "http://rb/x".to_string())]);
        let p = Payload::new("restart", "t", &labels, &ann, 1_000);
        let mut a = HttpAction::post("http://h/");
        a.body = Some(
            r#"{"host": "{{ .Labels.instance }}", "rb": "{{ .RunbookURL }}", "rule": "{{ .Rule }}"}"#
                .into(),
        );
        let body = a.render_body("restart", &p).expect("render");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(v["host"], "a\"b:1");
        assert_eq!(v["rb"], "http://rb/x");
        assert_eq!(v["rule"], "restart");
        // The default body is the payload document.
        a.body = None;
        let v: serde_json::Value =
            serde_json::from_slice(&a.render_body("restart", &p).expect("render")).expect("json");
        assert_eq!(v["labels"]["alertname"], "Down");
        assert_eq!(v["fingerprint"].as_str().map(str::len), Some(16));
    }
}
