//! Amazon SNS `Publish` (query protocol, form body sorted as the AWS SDK
//! writes it), signed with SigV4 by the `aws-sigv4` crate at send time.
//! Credentials: `sigv4.access_key`/`secret_key`, else the environment's
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`.
//! `profile` and `role_arn` (shared config files, STS) are refused at load.

use super::config::Ctx;
use super::http::{
    check_response, go_query, request_error, BodyCheck, Payload, SendError, StoredRequest,
};
use super::{group_hash, Render};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::{HttpClientConfig, Secret};
use crate::notify::Notification;
use crate::rules::template::TemplateSet;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The body's content type as Alertmanager 0.25's AWS SDK sends it.
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigV4 {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub profile: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    pub external_id: Option<S<String>>,
    /// Accepted; STS is not used (no `role_arn`).
    #[serde(rename = "use_fips_sts_endpoint")]
    pub _use_fips_sts_endpoint: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSns {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<S<String>>,
    pub sigv4: Option<RawSigV4>,
    pub topic_arn: Option<S<String>>,
    pub phone_number: Option<S<String>>,
    pub target_arn: Option<S<String>>,
    pub subject: Option<S<String>>,
    pub message: Option<S<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
    /// Accepted; klaxon always uses its own client (with `http_config`).
    #[serde(rename = "use_aws_http_client")]
    pub _use_aws_http_client: Option<bool>,
}

/// `sns_configs` entry. String fields are templates.
#[derive(Clone, Debug)]
pub struct SnsConfig {
    pub send_resolved: bool,
    pub api_url: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Option<Secret>,
    pub topic_arn: String,
    pub phone_number: String,
    pub target_arn: String,
    pub subject: String,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

pub(super) fn resolve(c: &S<RawSns>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<SnsConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    let topic_arn = t(&r.topic_arn, "", "topic_arn", sink);
    let phone_number = t(&r.phone_number, "", "phone_number", sink);
    let target_arn = t(&r.target_arn, "", "target_arn", sink);
    if topic_arn.is_empty() && phone_number.is_empty() && target_arn.is_empty() {
        sink.push(
            pos,
            "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config",
        );
        return None;
    }
    let empty = RawSigV4 {
        region: None,
        access_key: None,
        secret_key: None,
        profile: None,
        role_arn: None,
        external_id: None,
        _use_fips_sts_endpoint: None,
    };
    let sig = r.sigv4.as_ref().unwrap_or(&empty);
    for (field, v) in [
        ("profile", &sig.profile),
        ("role_arn", &sig.role_arn),
        ("external_id", &sig.external_id),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.value.is_empty()) {
            sink.push(
                Pos::of(v),
                format!("sns_configs: sigv4.{field} is not supported by klaxon (static keys or AWS_* environment variables only; see docs/compatibility.md)"),
            );
        }
    }
    if sig.access_key.is_some() != sig.secret_key.is_some() {
        sink.push(pos, "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config");
    }
    Some(SnsConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_url: t(&r.api_url, "", "api_url", sink),
        region: sig.region.clone().unwrap_or_default(),
        access_key: sig.access_key.clone().unwrap_or_default(),
        secret_key: sig.secret_key.clone().map(Secret::new),
        topic_arn,
        phone_number,
        target_arn,
        subject: t(
            &r.subject,
            "{{ template \"sns.default.subject\" . }}",
            "subject",
            sink,
        ),
        message: t(
            &r.message,
            "{{ template \"sns.default.message\" . }}",
            "message",
            sink,
        ),
        attributes: r.attributes.clone().unwrap_or_default(),
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    })
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cut_bytes(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_string(), true)
}

pub fn render(cfg: &SnsConfig, n: &Notification, set: &TemplateSet) -> Result<Payload, String> {
    let r = Render::new(n, set);
    let mut q: Vec<(String, String)> = vec![
        ("Action".into(), "Publish".into()),
        ("Version".into(), "2010-03-31".into()),
    ];
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &cfg.attributes {
        attrs.insert(r.text("attributes", k)?, r.text("attributes", v)?);
    }
    let mut limit = 256 * 1024;
    if !cfg.topic_arn.is_empty() {
        let topic = r.text("topic_arn", &cfg.topic_arn)?;
        if topic.ends_with(".fifo") {
            let h = group_hash(&n.group_key);
            q.push(("MessageDeduplicationId".into(), h.clone()));
            q.push(("MessageGroupId".into(), h));
        }
        q.push(("TopicArn".into(), topic));
    }
    if !cfg.phone_number.is_empty() {
        q.push((
            "PhoneNumber".into(),
            r.text("phone_number", &cfg.phone_number)?,
        ));
        limit = 1600;
    }
    if !cfg.target_arn.is_empty() {
        q.push(("TargetArn".into(), r.text("target_arn", &cfg.target_arn)?));
    }
    let (message, cut) = cut_bytes(&r.text("message", &cfg.message)?, limit);
    if cut {
        attrs.insert("truncated".into(), "true".into());
    }
    q.push(("Message".into(), message));
    if attrs.is_empty() {
        // The AWS SDK Alertmanager 0.25 uses writes an empty map so.
        q.push(("MessageAttributes".into(), String::new()));
    }
    for (i, (k, v)) in attrs.iter().enumerate() {
        let p = format!("MessageAttributes.entry.{}", i + 1);
        q.push((format!("{p}.Name"), k.clone()));
        q.push((format!("{p}.Value.DataType"), "String".into()));
        q.push((format!("{p}.Value.StringValue"), v.clone()));
    }
    if !cfg.subject.is_empty() {
        q.push(("Subject".into(), r.text("subject", &cfg.subject)?));
    }
    Ok(Payload::Requests {
        requests: vec![StoredRequest {
            method: "POST".into(),
            path: String::new(),
            query: vec![],
            content_type: CONTENT_TYPE.into(),
            body: go_query(&q),
            thread: String::new(),
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

/// The region: configured, else taken from an `sns.<region>.amazonaws.com`
/// API URL, else `AWS_REGION`.
fn region(cfg: &SnsConfig) -> Option<String> {
    if !cfg.region.is_empty() {
        return Some(cfg.region.clone());
    }
    let host = cfg
        .api_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if let Some(r) = host.strip_prefix("sns.").and_then(|h| h.split('.').next()) {
        return Some(r.to_string());
    }
    std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty())
}

/// Sends a stored Publish, signed now.
pub async fn send(
    cfg: &SnsConfig,
    payload: &Payload,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), SendError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let req = super::http::single_request(payload, "SNS")?;
    let cfg_err = |m: &str| SendError::permanent("config", m.to_string());
    let region = region(cfg)
        .ok_or_else(|| cfg_err("region not configured in sns.sigv4.region or AWS_REGION"))?;
    let (ak, sk, token) = match &cfg.secret_key {
        Some(sk) => (cfg.access_key.clone(), sk.expose().to_string(), None),
        None => (
            std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
                cfg_err(
                    "no SigV4 credentials: set sigv4.access_key/secret_key or AWS_ACCESS_KEY_ID",
                )
            })?,
            std::env::var("AWS_SECRET_ACCESS_KEY")
                .map_err(|_| cfg_err("AWS_SECRET_ACCESS_KEY is not set"))?,
            std::env::var("AWS_SESSION_TOKEN").ok(),
        ),
    };
    let url = if cfg.api_url.is_empty() {
        format!("https://sns.{region}.amazonaws.com/")
    } else {
        cfg.api_url.clone()
    };
    let identity = aws_credential_types::Credentials::new(ak, sk, token, None, "klaxon").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("sns")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| cfg_err(&format!("signing: {e}")))?
        .into();
    let headers = [("content-type", CONTENT_TYPE)];
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(req.body.as_bytes()),
    )
    .map_err(|e| cfg_err(&format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| cfg_err(&format!("signing: {e}")))?
        .into_parts();
    let mut rb = client
        .post(&url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(req.body.clone());
    for (k, v) in instructions.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.map_err(request_error)?;
    // The AWS SDK under Alertmanager retries throttling (429) itself.
    check_response(resp, &[429], BodyCheck::None).await
}
