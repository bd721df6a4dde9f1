//! The stored payload and the HTTP side of sending it: status
//! classification (what is retried), Retry-After, and errors that never
//! carry the URL (Slack and webhook URLs are secrets).

use crate::config::client::parse_retry_after;
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
    /// One or more HTTP requests (Opsgenie's `update_alerts` sends three),
    /// without their secrets: the integration's base URL, keys and
    /// signatures are added at send time ([`Endpoint`]).
    Requests {
        requests: Vec<StoredRequest>,
        /// Sent as `X-Request-ID` (the API call that caused it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A Jira issue: the search for the group's issue, the body that
    /// creates it and the one that updates it; which requests go out is
    /// decided at send time from Jira's answers.
    Jira {
        search: String,
        create: String,
        update: String,
        /// The group fires (a resolved group never creates an issue).
        firing: bool,
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

/// One stored HTTP request of a [`Payload::Requests`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub method: String,
    /// Appended to the endpoint's base URL path (Go's `u.Path += path`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Query parameters that are not secret; merged with the endpoint's and
    /// the base URL's and sorted by key, as Go's `url.Values.Encode`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The group key, for Slack's `update_message` (the message posted for
    /// a group is edited on later notifications of that group).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thread: String,
}

impl StoredRequest {
    /// A POST of a JSON body to the endpoint itself.
    pub fn post_json(body: String) -> Self {
        StoredRequest {
            method: "POST".into(),
            path: String::new(),
            query: vec![],
            content_type: "application/json".into(),
            body,
            thread: String::new(),
        }
    }
}

/// What a 2xx answer must also satisfy to count as delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCheck {
    /// Any 2xx is a success.
    None,
    /// A JSON answer with `"ok": false` is a failure (Slack's Web API,
    /// Telegram's Bot API), carrying its `error`/`description`.
    OkField,
    /// A JSON answer with `"success": false` is a failure (Rocket.Chat).
    SuccessField,
}

/// Where and how the stored requests of an integration go, with the
/// secrets resolved at send time.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub base: String,
    pub headers: Vec<(&'static str, String)>,
    /// Secret query parameters (Pushover's token and user key).
    pub query: Vec<(String, String)>,
    /// Statuses retried besides 5xx (Alertmanager's `Retrier.RetryCodes`).
    pub retry_codes: &'static [u16],
    /// Retry every failure, whatever the status (Alertmanager's Telegram
    /// notifier does: its client library reports every failure alike).
    pub retry_all: bool,
    pub check: BodyCheck,
}

impl Endpoint {
    /// A plain endpoint: no extra headers or query, 5xx retried, any 2xx
    /// a success (webhook-style integrations).
    pub fn at(base: String) -> Self {
        Endpoint {
            base,
            headers: vec![],
            query: vec![],
            retry_codes: &[],
            retry_all: false,
            check: BodyCheck::None,
        }
    }
}

/// The single request of a stored payload, for integrations with their
/// own sender (WeChat, SNS, Slack).
pub fn single_request<'a>(
    payload: &'a Payload,
    what: &str,
) -> Result<&'a StoredRequest, SendError> {
    match payload {
        Payload::Requests { requests, .. } => requests
            .first()
            .ok_or_else(|| SendError::permanent("payload", format!("empty {what} payload"))),
        _ => Err(SendError::permanent(
            "payload",
            format!("payload is not a {what} message"),
        )),
    }
}

/// Go's `encoding/json` text of `v` as `json.NewEncoder(w).Encode` writes
/// it: `<`, `>`, `&`, U+2028 and U+2029 escaped, and a trailing newline.
pub fn go_json<T: Serialize>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        // These characters only occur inside JSON strings, where the
        // escape means the same character.
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// Go's `url.Values.Encode`: sorted by key (stable), `QueryEscape`d.
pub fn go_query(pairs: &[(String, String)]) -> String {
    let mut p: Vec<&(String, String)> = pairs.iter().collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    p.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::model::url::query_escape(k),
                crate::model::url::query_escape(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses a raw query string into pairs (form decoding).
fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The final URL of `req` on `ep`.
pub fn request_url(ep: &Endpoint, req: &StoredRequest) -> String {
    let (base, base_q) = match ep.base.split_once('?') {
        Some((b, q)) => (b, q),
        None => (ep.base.as_str(), ""),
    };
    let mut q = parse_query(base_q);
    let extra = !req.query.is_empty() || !ep.query.is_empty();
    q.extend(req.query.iter().cloned());
    q.extend(ep.query.iter().cloned());
    let url = format!("{base}{}", req.path);
    if q.is_empty() {
        url
    } else if !extra {
        format!("{url}?{base_q}")
    } else {
        format!("{url}?{}", go_query(&q))
    }
}

/// Sends `reqs` in order on `ep`; the first failure ends the attempt.
pub async fn send_requests(
    client: &reqwest::Client,
    ep: &Endpoint,
    http: &HttpClientConfig,
    reqs: &[StoredRequest],
    request_id: Option<&str>,
    timeout: Duration,
) -> Result<(), SendError> {
    for r in reqs {
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| SendError::permanent("payload", format!("bad method {:?}", r.method)))?;
        let mut req = client
            .request(method, request_url(ep, r))
            .timeout(timeout)
            .body(r.body.clone());
        if !r.content_type.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, &r.content_type);
        }
        if let Some(id) = request_id {
            req = req.header("X-Request-ID", id);
        }
        match crate::config::client::authorization_header(http) {
            Ok(Some(h)) => req = req.header(reqwest::header::AUTHORIZATION, h),
            Ok(None) => {}
            Err(e) => return Err(SendError::transient("config", e)),
        }
        for (k, v) in &ep.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(request_error)?;
        let mut res = check_response(resp, ep.retry_codes, ep.check).await;
        if ep.retry_all {
            if let Err(e) = &mut res {
                e.retry = true;
            }
        }
        res?;
    }
    Ok(())
}

/// A transport failure (no answer): always worth retrying. The error
/// text never holds the URL.
pub fn request_error(e: reqwest::Error) -> SendError {
    let e = e.without_url();
    let reason = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request"
    };
    SendError::transient(reason, e.to_string())
}

/// Classifies an answer: 2xx passing `check` is a success; 5xx and
/// `retry_codes` are retried (with the server's Retry-After); other
/// statuses and failed body checks are permanent.
pub async fn check_response(
    resp: reqwest::Response,
    retry_codes: &[u16],
    check: BodyCheck,
) -> Result<(), SendError> {
    let status = resp.status();
    let retry_after = retry_after_of(&resp);
    let text = resp.text().await.unwrap_or_default();
    classify(status, retry_after, &text, retry_codes, check)
}

/// [`check_response`] on an answer already read.
pub fn classify(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    text: &str,
    retry_codes: &[u16],
    check: BodyCheck,
) -> Result<(), SendError> {
    let snippet: String = text.chars().take(256).collect();
    if status.is_success() {
        let field = match check {
            BodyCheck::None => None,
            BodyCheck::OkField => Some("ok"),
            BodyCheck::SuccessField => Some("success"),
        };
        if let Some(field) = field {
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(text) {
                if m.get(field) == Some(&serde_json::Value::Bool(false)) {
                    let why = ["error", "description"]
                        .iter()
                        .find_map(|k| m.get(*k).and_then(|v| v.as_str()))
                        .unwrap_or("no reason given");
                    return Err(SendError::permanent(
                        "error_body",
                        format!(
                            "receiver answered {} with {field}=false: {why}",
                            status.as_u16()
                        ),
                    ));
                }
            }
        }
        return Ok(());
    }
    let code = status.as_u16();
    let message = if snippet.trim().is_empty() {
        format!("unexpected status code {code}")
    } else {
        format!("unexpected status code {code}: {}", snippet.trim())
    };
    let reason = match code {
        429 => "http_429",
        500..=599 => "http_5xx",
        _ => "http_4xx",
    };
    if status.is_server_error() || retry_codes.contains(&code) {
        Err(SendError {
            retry: true,
            retry_after,
            reason,
            message,
        })
    } else {
        Err(SendError::permanent(reason, message))
    }
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
    let mut b = crate::config::client::client_builder(http)?;
    if let Some(p) = proxy_url {
        let proxy = reqwest::Proxy::all(p)
            .map_err(|e| format!("http_config.proxy_url: {}", e.without_url()))?;
        b = b.proxy(proxy);
    }
    b.build().map_err(|e| format!("building HTTP client: {e}"))
}

/// The server's `Retry-After` of `resp`, capped.
pub fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, MAX_RETRY_AFTER))
}

/// Longest `Retry-After` honoured for a notification (a day is past any
/// delivery deadline anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// POSTs `body` as JSON and classifies the outcome ([`check_response`]).
#[allow(clippy::too_many_arguments)]
pub async fn post_json(
    client: &reqwest::Client,
    target: HttpTarget<'_>,
    body: String,
    request_id: Option<&str>,
    idempotency_key: Option<&str>,
    timeout: Duration,
    retry_codes: &[u16],
    check: BodyCheck,
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
    match crate::config::client::authorization_header(target.http) {
        Ok(Some(h)) => req = req.header(reqwest::header::AUTHORIZATION, h),
        Ok(None) => {}
        Err(e) => return Err(SendError::transient("config", e)),
    }
    let resp = req.send().await.map_err(request_error)?;
    check_response(resp, retry_codes, check).await
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
