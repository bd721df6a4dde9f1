//! The HTTP action of a remediation rule: a JSON body naming the rule, the
//! target and the alert (labels, annotations, runbook), signed like
//! klaxon's own commands (`X-Timestamp`, `X-Signature: sha256=` HMAC
//! over `timestamp + "." + body`), sent with retries.

use crate::model::Labels;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HttpAction {
    pub method: reqwest::Method,
    pub url: String,
    /// Extra headers (names and values validated at config load).
    pub headers: Vec<(String, String)>,
    /// HMAC-SHA256 key; without it the request is unsigned.
    pub secret: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Attempts in all (1: no retry); a 5xx, 429 or a transport error is
    /// retried after `backoff`, doubling.
    pub attempts: u32,
    pub backoff: Duration,
}

impl HttpAction {
    /// A POST with the defaults: 10s timeout, 3 attempts, 1s backoff.
    pub fn post(url: &str) -> HttpAction {
        HttpAction {
            method: reqwest::Method::POST,
            url: url.to_string(),
            headers: Vec::new(),
            secret: None,
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
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

/// Sends the action; `now_s` is the signature's timestamp (Unix seconds).
/// Returns the final status and the attempts it took.
pub async fn execute(
    client: &reqwest::Client,
    action: &HttpAction,
    payload: &Payload<'_>,
    now_s: i64,
) -> Result<(u16, u32), ActionError> {
    let body = serde_json::to_vec(payload).map_err(|e| ActionError::Encode(e.to_string()))?;
    let ts = now_s.to_string();
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
            .header("X-Timestamp", &ts);
        for (k, v) in &action.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(secret) = &action.secret {
            let sig = crate::ops::commands::sign_request(secret, &ts, &body);
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
        a.secret = Some(secret.to_vec());
        a.backoff = Duration::from_millis(10);
        a
    }

    #[tokio::test]
    async fn signed_action_is_verified_and_retried_on_5xx() {
        let (url, calls, task) = endpoint(2).await;
        let labels = Labels::from_pairs([("alertname", "Down".to_string())]);
        let ann = BTreeMap::from([("runbook_url".to_string(), "http://rb/Down".to_string())]);
        let p = Payload::new("restart", "instance=\"a\"", &labels, &ann, 1);
        let client = reqwest::Client::new();
        let got = execute(&client, &action(&url, b"s3cret"), &p, 1_700_000_000)
            .await
            .expect("third attempt succeeds");
        assert_eq!(got, (200, 3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A wrong secret is refused by the endpoint and not retried (4xx).
        let err = execute(&client, &action(&url, b"other"), &p, 1_700_000_000)
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
        let err = execute(&reqwest::Client::new(), &action(&url, b"s3cret"), &p, 5)
            .await
            .expect_err("always 503");
        assert_eq!(err.to_string(), "HTTP 503 after 3 attempt(s)");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        task.abort();
    }
}
