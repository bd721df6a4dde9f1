//! The HTTP side of remote write: one client per `remote_write` entry, the
//! protocol's headers, and the classification of a response into sent,
//! worth retrying, or dropped (Prometheus' `RecoverableError` split).

use super::config::RemoteWriteConfig;
use crate::config::HttpClientConfig;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// The version of the protocol we speak (remote write 1.0).
pub const REMOTE_WRITE_VERSION: &str = "0.1.0";

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SendError {
    /// 5xx, 429 when `retry_on_http_429`, timeouts and connection errors:
    /// the same batch is tried again after a backoff, or after the
    /// server's `Retry-After` when it sent one.
    #[error("{message} (will retry)")]
    Recoverable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx answer: the batch is dropped and counted as
    /// failed, because sending it again would get the same answer.
    #[error("{0}")]
    Fatal(String),
}

/// Sends encoded write requests to one endpoint.
pub struct WriteClient {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    headers: HeaderMap,
    /// Kept for the `Authorization` header, read per request so a rotated
    /// `*_file` secret is picked up without a reload.
    auth: HttpClientConfig,
    retry_on_429: bool,
}

impl WriteClient {
    pub fn new(cfg: &RemoteWriteConfig) -> Result<Self, String> {
        let h = &cfg.http_client;
        let client = crate::scrape::tls::client_builder(h)?
            .build()
            .map_err(|e| format!("building HTTP client: {e}"))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            // Validated at config load; a failure here is skipped, not fatal.
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        let fixed = [
            ("content-encoding", "snappy"),
            ("content-type", "application/x-protobuf"),
            ("x-prometheus-remote-write-version", REMOTE_WRITE_VERSION),
        ];
        for (k, v) in fixed {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        Ok(WriteClient {
            client,
            url: cfg.url.clone(),
            timeout: cfg.remote_timeout,
            headers,
            auth: h.clone(),
            retry_on_429: cfg.queue.retry_on_http_429,
        })
    }

    /// POSTs one snappy-compressed protobuf `WriteRequest`.
    pub async fn store(&self, body: Vec<u8>) -> Result<(), SendError> {
        let mut req = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .body(body);
        match crate::scrape::tls::authorization_header(&self.auth) {
            Ok(Some(v)) => req = req.header(reqwest::header::AUTHORIZATION, v),
            Ok(None) => {}
            // A missing secret file may appear later: retry, like a
            // connection error.
            Err(e) => {
                return Err(SendError::Recoverable {
                    message: e,
                    retry_after: None,
                })
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(SendError::Recoverable {
                    message: format!(
                        "sending to {}: {}",
                        crate::model::url::redact_userinfo(&self.url),
                        error_chain(&e.without_url())
                    ),
                    retry_after: None,
                })
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
            .and_then(|v| crate::notify::receivers::http::parse_retry_after(v, MAX_RETRY_AFTER));
        // The first line of the body says why; bounded so a chatty server
        // cannot fill the log.
        let body = resp.text().await.unwrap_or_default();
        let line = body.lines().next().unwrap_or("");
        let line: String = line.chars().take(256).collect();
        let message = format!("server returned HTTP status {status}: {line}");
        classify(status.as_u16(), self.retry_on_429, message, retry_after)
    }
}

/// Longest `Retry-After` a shard waits: a confused server must not park it
/// for days. (An HTTP date, which Prometheus also reads, falls back to our
/// own backoff.)
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// 5xx, and 429 when allowed, are worth retrying; anything else is not.
fn classify(
    status: u16,
    retry_on_429: bool,
    message: String,
    retry_after: Option<Duration>,
) -> Result<(), SendError> {
    if (500..600).contains(&status) || (status == 429 && retry_on_429) {
        Err(SendError::Recoverable {
            message,
            retry_after,
        })
    } else {
        Err(SendError::Fatal(message))
    }
}

use crate::net::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_like_prometheus() {
        let r = |s, on429| classify(s, on429, String::new(), None);
        assert!(matches!(r(500, false), Err(SendError::Recoverable { .. })));
        assert!(matches!(r(503, false), Err(SendError::Recoverable { .. })));
        assert!(matches!(r(429, true), Err(SendError::Recoverable { .. })));
        assert!(matches!(r(429, false), Err(SendError::Fatal(_))));
        assert!(matches!(r(400, true), Err(SendError::Fatal(_))));
        assert!(matches!(r(404, false), Err(SendError::Fatal(_))));
    }
}
