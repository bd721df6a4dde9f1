//! The stored payload and the HTTP side of sending it: status
//! classification (what is retried), Retry-After, and errors that never
//! carry the URL (Slack and webhook URLs are secrets).

use crate::config::HttpClientConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the outbox stores for one notification × integration, rendered
/// once so every attempt and every replay sends the same content.
/// Secrets (routing keys, URLs, SMTP passwords) are not part of it: they
/// are taken from the config at send time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A JSON body POSTed to the integration's URL. `secret_field`, when
    /// set, is the top-level key the integration's key is inserted under
    /// at send time (PagerDuty's `routing_key` / `service_key`).
    Json {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_field: Option<String>,
        /// Sent as `X-Request-ID` (the API call that caused it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A multipart e-mail.
    Email {
        from: String,
        to: Vec<String>,
        headers: Vec<(String, String)>,
        text: String,
        html: String,
    },
}

/// The URL and client settings a JSON payload is POSTed with.
#[derive(Clone, Debug)]
pub struct HttpTarget<'a> {
    pub url: &'a str,
    pub http: &'a HttpClientConfig,
}

/// Why an attempt failed, and whether trying again can help.
#[derive(Clone, Debug, PartialEq)]
pub struct SendError {
    pub retry: bool,
    /// The receiver's `Retry-After`, honoured over our own backoff.
    pub retry_after: Option<Duration>,
    /// Short label value for `klaxon_notifications_failed_total{reason}`.
    pub reason: &'static str,
    /// Human text for the delivery log; never holds the URL or a secret.
    pub message: String,
}

impl SendError {
    pub fn permanent(reason: &'static str, message: impl Into<String>) -> Self {
        SendError {
            retry: false,
            retry_after: None,
            reason,
            message: message.into(),
        }
    }

    pub fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        SendError {
            retry: true,
            retry_after: None,
            reason,
            message: message.into(),
        }
    }
}

/// Inserts `"field": "secret"` as the first key of a JSON object body.
pub fn with_secret_field(body: &str, field: &str, secret: &str) -> String {
    let key = serde_json::to_string(field).unwrap_or_else(|_| "\"\"".into());
    let val = serde_json::to_string(secret).unwrap_or_else(|_| "\"\"".into());
    let rest = body.trim_start().strip_prefix('{').unwrap_or("}");
    if rest.trim_start().starts_with('}') {
        format!("{{{key}:{val}}}")
    } else {
        format!("{{{key}:{val},{rest}")
    }
}

/// A client for one integration's TLS, proxy and redirect settings.
pub fn build_client(
    http: &HttpClientConfig,
    proxy_url: Option<&str>,
) -> Result<reqwest::Client, String> {
    let mut b = crate::scrape::tls::client_builder(http)?;
    if let Some(p) = proxy_url {
        let proxy = reqwest::Proxy::all(p)
            .map_err(|e| format!("http_config.proxy_url: {}", e.without_url()))?;
        b = b.proxy(proxy);
    }
    b.build().map_err(|e| format!("building HTTP client: {e}"))
}

/// Parses `Retry-After` (delay-seconds; an HTTP date is not honoured and
/// falls back to our backoff), capped at `max`: the server's number must
/// not park a sender for days or overflow a timestamp it is added to.
pub fn parse_retry_after(v: &str, max: Duration) -> Option<Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(max))
}

/// Longest `Retry-After` honoured for a notification (a day is past any
/// delivery deadline anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// POSTs `body` as JSON and classifies the outcome: 2xx success; 429 and
/// 5xx retried (429 with its Retry-After); other statuses are permanent.
pub async fn post_json(
    client: &reqwest::Client,
    target: HttpTarget<'_>,
    body: String,
    request_id: Option<&str>,
    idempotency_key: Option<&str>,
    timeout: Duration,
) -> Result<(), SendError> {
    let mut req = client
        .post(target.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(id) = request_id {
        req = req.header("X-Request-ID", id);
    }
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    match crate::scrape::tls::authorization_header(target.http) {
        Ok(Some(h)) => req = req.header(reqwest::header::AUTHORIZATION, h),
        Ok(None) => {}
        Err(e) => return Err(SendError::transient("config", e)),
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let e = e.without_url();
            let reason = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connection"
            } else {
                "request"
            };
            return Err(SendError::transient(reason, e.to_string()));
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, MAX_RETRY_AFTER));
    let text = resp.text().await.unwrap_or_default();
    let snippet: String = text.chars().take(256).collect();
    let message = format!(
        "unexpected status code {}: {}",
        status.as_u16(),
        snippet.trim()
    );
    let code = status.as_u16();
    Err(if code == 429 {
        SendError {
            retry: true,
            retry_after,
            reason: "http_429",
            message,
        }
    } else if status.is_server_error() {
        SendError {
            retry: true,
            retry_after,
            reason: "http_5xx",
            message,
        }
    } else {
        SendError::permanent("http_4xx", message)
    })
}

/// Go's `time.Time` JSON text (RFC 3339 with trailing zero fractions
/// dropped), UTC; `None` is Go's zero time, as Alertmanager sends for an
/// unset `endsAt`.
pub fn go_time_json(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".into();
    };
    let s = crate::model::time::rfc3339_millis(ms);
    // `...SS.mmmZ` → drop zero millis like Go's RFC3339Nano.
    match s.strip_suffix("Z").and_then(|b| b.rsplit_once('.')) {
        Some((whole, frac)) => {
            let f = frac.trim_end_matches('0');
            if f.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{f}Z")
            }
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_field_goes_first() {
        assert_eq!(
            with_secret_field("{\"a\":1}", "routing_key", "k\""),
            "{\"routing_key\":\"k\\\"\",\"a\":1}"
        );
        assert_eq!(with_secret_field("{}", "k", "v"), "{\"k\":\"v\"}");
    }

    #[test]
    fn go_times() {
        assert_eq!(go_time_json(None), "0001-01-01T00:00:00Z");
        assert_eq!(
            go_time_json(Some(1_700_000_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            go_time_json(Some(1_700_000_000_120)),
            "2023-11-14T22:13:20.12Z"
        );
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            parse_retry_after(" 3", MAX_RETRY_AFTER),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", MAX_RETRY_AFTER),
            None
        );
    }
}
