//! `http_sd_configs`: a JSON list of target groups fetched every
//! `refresh_interval`, in Prometheus' format; each group gets `__meta_url`.

use super::config::HttpSdConfig;
use super::refresh::{run_every, SdClient, SdError};
use super::ProviderCtx;
use crate::config::TargetGroup;

pub const META_URL: &str = "__meta_url";

pub async fn run(cfg: HttpSdConfig, ctx: ProviderCtx) {
    // As Prometheus: a refresh may take at most one interval.
    let client = match SdClient::new(
        &cfg.http_client,
        Some(cfg.refresh_interval),
        ctx.opts.max_response_bytes,
    ) {
        Ok(c) => c,
        Err(e) => {
            ctx.failed(&e);
            return;
        }
    };
    let interval = cfg.refresh_interval;
    run_every(ctx, interval, || fetch(&client, &cfg)).await
}

/// One refresh: GET the URL and decode its groups.
pub async fn fetch(client: &SdClient, cfg: &HttpSdConfig) -> Result<Vec<TargetGroup>, SdError> {
    let rb = client
        .get(&cfg.url)?
        .header(reqwest::header::ACCEPT, "application/json")
        .header(
            "X-Prometheus-Refresh-Interval-Seconds",
            cfg.refresh_interval.as_secs_f64().to_string(),
        );
    let (ctype, body) = client.send(&cfg.url, rb).await?;
    let media = ctype.split(';').next().unwrap_or("").trim();
    if media != "application/json" {
        return Err(SdError::Decode {
            url: cfg.url.clone(),
            detail: format!("unsupported content type {ctype:?}"),
        });
    }
    decode(&cfg.url, &body)
}

/// Decodes an HTTP SD body (also used by tests on recorded answers).
pub fn decode(url: &str, body: &[u8]) -> Result<Vec<TargetGroup>, SdError> {
    let text = std::str::from_utf8(body).map_err(|e| SdError::Decode {
        url: url.to_string(),
        detail: format!("answer is not UTF-8: {e}"),
    })?;
    let mut groups = crate::config::parse_json_groups(text, url).map_err(|e| SdError::Decode {
        url: url.to_string(),
        detail: format!("line {} column {}: {}", e.line, e.column, e.message),
    })?;
    for g in &mut groups {
        g.labels.insert(META_URL.to_string(), url.to_string());
    }
    Ok(groups)
}
