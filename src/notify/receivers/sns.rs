//! Amazon SNS `Publish` (query protocol, form body sorted as the AWS SDK
//! writes it), signed with SigV4 at send time with the credentials
//! [`super::aws`] resolves (static keys, a shared-file profile, the
//! environment, or an assumed `role_arn`).

use super::aws::{self, SigV4};
use super::config::Ctx;
use super::http::{go_query, Payload, SendError, StoredRequest};
use super::{group_hash, Render};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::{HttpClientConfig, Secret};
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigV4 {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub profile: Option<S<String>>,
    pub role_arn: Option<S<String>>,
    pub external_id: Option<S<String>>,
    pub use_fips_sts_endpoint: Option<bool>,
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
    pub sigv4: SigV4,
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
        use_fips_sts_endpoint: None,
    };
    let sig = r.sigv4.as_ref().unwrap_or(&empty);
    let text = |v: &Option<S<String>>| v.as_ref().map(|v| v.value.clone()).unwrap_or_default();
    if sig.access_key.is_some() != sig.secret_key.is_some() {
        sink.push(pos, "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config");
    }
    if let Some(e) = sig.external_id.as_ref().filter(|e| !e.value.is_empty()) {
        if text(&sig.role_arn).is_empty() {
            sink.push(Pos::of(e), "external_id can only be used with role_arn");
        }
    }
    let sigv4 = SigV4 {
        region: sig.region.clone().unwrap_or_default(),
        access_key: sig.access_key.clone().unwrap_or_default(),
        secret_key: sig.secret_key.clone().map(Secret::new),
        profile: text(&sig.profile),
        role_arn: text(&sig.role_arn),
        external_id: text(&sig.external_id),
        use_fips_sts_endpoint: sig.use_fips_sts_endpoint.unwrap_or(false),
        cache: Arc::default(),
    };
    Some(SnsConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_url: t(&r.api_url, "", "api_url", sink),
        sigv4,
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

pub fn render(
    cfg: &SnsConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
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
            content_type: aws::FORM.into(),
            body: go_query(&q),
            thread: String::new(),
        }],
        request_id: n.request_id().map(str::to_string),
    })
}

/// Sends a stored Publish, signed now.
pub async fn send(
    cfg: &SnsConfig,
    payload: &Payload,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), SendError> {
    let req = super::http::single_request(payload, "SNS")?;
    let region = aws::region(&cfg.sigv4, &cfg.api_url).ok_or_else(|| {
        SendError::permanent(
            "config",
            "region not configured in sns.sigv4.region or in default credentials chain",
        )
    })?;
    let creds = aws::credentials(&cfg.sigv4, &region, client, timeout).await?;
    let url = if cfg.api_url.is_empty() {
        format!("https://sns.{region}.amazonaws.com/")
    } else {
        cfg.api_url.clone()
    };
    aws::signed_post(
        client,
        &url,
        &creds,
        &region,
        "sns",
        req.body.clone(),
        timeout,
    )
    .await
    .map(drop)
}
