//! What the polling mechanisms (http, dns, docker) share: a loop that
//! refreshes every interval and replaces the provider's groups on success
//! (a failure keeps the last good ones), and an HTTP getter with the entry's
//! client settings, a timeout and a cap on the answer's size.

use super::ProviderCtx;
use crate::config::HttpClientConfig;
use crate::config::TargetGroup;
use std::future::Future;
use std::time::Duration;

/// Why a discovery request failed; the text names what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SdError {
    #[error("{0}")]
    Msg(String),
    #[error("request to {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error("{url}: server returned HTTP status {status}")]
    Status { url: String, status: String },
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: {detail}")]
    Decode { url: String, detail: String },
}

/// Runs `refresh` now and then every `interval` until the task is stopped.
pub async fn run_every<F, Fut>(ctx: ProviderCtx, interval: Duration, mut refresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<TargetGroup>, SdError>>,
{
    loop {
        match refresh().await {
            Ok(groups) => ctx.replace_all(groups),
            Err(e) => ctx.failed(&e),
        }
        tokio::time::sleep(interval).await;
    }
}

/// An HTTP client for one SD entry.
#[derive(Clone)]
pub struct SdClient {
    client: reqwest::Client,
    cfg: HttpClientConfig,
    limit: usize,
}

impl SdClient {
    /// `timeout` bounds a whole request (connect, headers, body); `None`
    /// for watches, which stay open.
    pub fn new(
        cfg: &HttpClientConfig,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Self, SdError> {
        Self::build(cfg, timeout, limit, None)
    }

    /// A client whose connections all go to the unix socket `socket`
    /// (the host part of URLs is then only a name).
    pub fn build(
        cfg: &HttpClientConfig,
        timeout: Option<Duration>,
        limit: usize,
        socket: Option<&std::path::Path>,
    ) -> Result<Self, SdError> {
        let mut b = crate::scrape::tls::client_builder(cfg).map_err(SdError::Msg)?;
        if let Some(p) = socket {
            b = b.unix_socket(p);
        }
        b = b.connect_timeout(Duration::from_secs(10));
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        let client = b
            .build()
            .map_err(|e| SdError::Msg(format!("HTTP client: {e}")))?;
        Ok(SdClient {
            client,
            cfg: cfg.clone(),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A GET with the entry's authorization (files read now, so rotated
    /// tokens are picked up).
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, SdError> {
        let mut rb = self.client.get(url);
        match crate::scrape::tls::authorization_header(&self.cfg) {
            Ok(Some(h)) => rb = rb.header(reqwest::header::AUTHORIZATION, h),
            Ok(None) => {}
            Err(e) => return Err(SdError::Msg(e)),
        }
        Ok(rb)
    }

    /// Sends `rb` and reads the whole body of a 2xx answer, up to the
    /// limit; returns the content type with it.
    pub async fn send(
        &self,
        url: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<(String, Vec<u8>), SdError> {
        let resp = rb.send().await.map_err(|e| request_error(url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SdError::Status {
                url: url.to_string(),
                status: status.to_string(),
            });
        }
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = read_limited(url, resp, self.limit).await?;
        Ok((ctype, body))
    }
}

pub(crate) fn request_error(url: &str, e: &reqwest::Error) -> SdError {
    SdError::Request {
        url: url.to_string(),
        detail: crate::net::error_chain(e),
    }
}

/// Reads a body, failing once it passes `limit` bytes.
pub async fn read_limited(
    url: &str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, SdError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| request_error(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(SdError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
