//! AWS credentials and SigV4 signing for `sns_configs.sigv4`, resolved as
//! Alertmanager's AWS SDK does:
//!
//! * `access_key`/`secret_key` when set;
//! * else a named profile (`sigv4.profile`, else `AWS_PROFILE`) from the
//!   shared files (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`,
//!   `AWS_CONFIG_FILE` or `~/.aws/config`; the credentials file wins);
//! * else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`;
//! * else the `default` profile.
//!
//! With `role_arn` those credentials sign an STS `AssumeRole` (with
//! `external_id`), and the role's temporary credentials, cached until
//! shortly before they expire, sign the request. The STS endpoint is
//! `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the region's
//! (`sts-fips.` with `use_fips_sts_endpoint`).

use super::http::{classify, go_query, request_error, retry_after_of, BodyCheck, SendError};
use crate::config::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Content type of AWS query-protocol bodies, as the AWS SDKs send it.
pub const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Temporary credentials are renewed this long before they expire.
const RENEW_BEFORE_MS: i64 = 60_000;

/// Credentials that sign a request.
#[derive(Clone)]
pub struct Creds {
    pub access_key: String,
    pub secret_key: Secret,
    pub session_token: Option<String>,
    /// Milliseconds since the epoch (assumed-role credentials).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key", &self.access_key)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `sigv4:` of an SNS config, resolved.
#[derive(Clone, Debug, Default)]
pub struct SigV4 {
    pub region: String,
    pub access_key: String,
    pub secret_key: Option<Secret>,
    pub profile: String,
    pub role_arn: String,
    pub external_id: String,
    pub use_fips_sts_endpoint: bool,
    /// The assumed role's credentials, shared by the clones of one config.
    pub cache: Arc<tokio::sync::Mutex<Option<Creds>>>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// A shared file: the environment's path, else `~/.aws/<name>`.
fn shared_file(var: &str, name: &str) -> Option<PathBuf> {
    env(var)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

/// The keys of section `section` of an AWS INI file, lower-cased.
fn ini_section(text: &str, section: &str) -> Option<BTreeMap<String, String>> {
    let mut found: Option<BTreeMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = name == section;
            if inside && found.is_none() {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        if inside {
            if let (Some(m), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
                m.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    found
}

/// A profile of the shared files: the config file's `[profile name]`
/// (`[default]`) overlaid with the credentials file's `[name]`.
#[derive(Debug, Default)]
struct Profile {
    keys: BTreeMap<String, String>,
}

/// The files a profile is looked up in, for error messages.
fn files_text() -> String {
    let c = shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let f = shared_file("AWS_CONFIG_FILE", "config");
    [c, f]
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn load_profile(name: &str) -> Option<Profile> {
    let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let from_config = read(shared_file("AWS_CONFIG_FILE", "config"))
        .and_then(|t| ini_section(&t, &config_section));
    let from_creds = read(shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
        .and_then(|t| ini_section(&t, name));
    if from_config.is_none() && from_creds.is_none() {
        return None;
    }
    let mut keys = from_config.unwrap_or_default();
    keys.extend(from_creds.unwrap_or_default());
    Some(Profile { keys })
}

impl Profile {
    fn get(&self, k: &str) -> Option<String> {
        self.keys.get(k).filter(|v| !v.is_empty()).cloned()
    }

    /// Its static credentials; `what` names the profile in errors.
    fn creds(&self, what: &str) -> Result<Creds, String> {
        match (
            self.get("aws_access_key_id"),
            self.get("aws_secret_access_key"),
        ) {
            (Some(ak), Some(sk)) => Ok(Creds {
                access_key: ak,
                secret_key: Secret::new(sk),
                session_token: self.get("aws_session_token"),
                expires_at: None,
            }),
            _ => {
                let other: Vec<&str> = [
                    "role_arn",
                    "source_profile",
                    "credential_process",
                    "sso_session",
                    "sso_start_url",
                    "web_identity_token_file",
                ]
                .into_iter()
                .filter(|k| self.keys.contains_key(*k))
                .collect();
                if other.is_empty() {
                    Err(format!(
                        "{what} has no aws_access_key_id and aws_secret_access_key"
                    ))
                } else {
                    Err(format!(
                        "{what} has no aws_access_key_id and aws_secret_access_key ({} in a profile is not supported by klaxon; use sigv4.role_arn)",
                        other.join(", ")
                    ))
                }
            }
        }
    }
}

/// The profile named by config or `AWS_PROFILE`, and what to call it.
fn explicit_profile(sig: &SigV4) -> Option<(String, String)> {
    if !sig.profile.is_empty() {
        return Some((
            sig.profile.clone(),
            format!("sigv4.profile {:?}", sig.profile),
        ));
    }
    env("AWS_PROFILE").map(|p| (p.clone(), format!("AWS_PROFILE {p:?}")))
}

fn config_error(msg: String) -> SendError {
    // Alertmanager retries a failed credential lookup (a file may appear).
    SendError::transient("config", msg)
}

/// The named profile, or an error naming where it was looked for.
fn named_profile(name: &str, what: &str) -> Result<Profile, SendError> {
    load_profile(name).ok_or_else(|| {
        config_error(format!(
            "{what}: no such profile in {}",
            if files_text().is_empty() {
                "the shared AWS files (HOME is not set)".to_string()
            } else {
                files_text()
            }
        ))
    })
}

/// The region: `sigv4.region`, the `sns.<region>` API host, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, then the profile's `region`.
pub fn region(sig: &SigV4, api_url: &str) -> Option<String> {
    if !sig.region.is_empty() {
        return Some(sig.region.clone());
    }
    let host = api_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if let Some(r) = host.strip_prefix("sns.").and_then(|h| h.split('.').next()) {
        return Some(r.to_string());
    }
    if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return Some(r);
    }
    let name = explicit_profile(sig).map_or_else(|| "default".to_string(), |(n, _)| n);
    load_profile(&name).and_then(|p| p.get("region"))
}

/// The credentials before any role is assumed.
pub fn base_credentials(sig: &SigV4) -> Result<Creds, SendError> {
    if let Some(sk) = &sig.secret_key {
        return Ok(Creds {
            access_key: sig.access_key.clone(),
            secret_key: sk.clone(),
            session_token: None,
            expires_at: None,
        });
    }
    if let Some((name, what)) = explicit_profile(sig) {
        return named_profile(&name, &what)?
            .creds(&what)
            .map_err(config_error);
    }
    if let (Some(ak), Some(sk)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Creds {
            access_key: ak,
            secret_key: Secret::new(sk),
            session_token: env("AWS_SESSION_TOKEN"),
            expires_at: None,
        });
    }
    match load_profile("default") {
        Some(p) => p.creds("the default profile").map_err(config_error),
        None => Err(config_error(
            "no SigV4 credentials: set sigv4.access_key/secret_key, sigv4.profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a default profile".into(),
        )),
    }
}

/// The credentials that sign the request: the assumed role's with
/// `role_arn` (from the cache while they are fresh), else the base ones.
pub async fn credentials(
    sig: &SigV4,
    region: &str,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<Creds, SendError> {
    if sig.role_arn.is_empty() {
        return base_credentials(sig);
    }
    let mut cache = sig.cache.lock().await;
    let now = crate::model::now_millis();
    if let Some(c) = cache.as_ref() {
        if c.expires_at.is_some_and(|e| e - RENEW_BEFORE_MS > now) {
            return Ok(c.clone());
        }
    }
    let base = base_credentials(sig)?;
    let c = assume_role(sig, &base, region, client, timeout).await?;
    *cache = Some(c.clone());
    Ok(c)
}

/// Where STS requests go.
pub fn sts_endpoint(sig: &SigV4, region: &str) -> String {
    if let Some(u) = env("AWS_ENDPOINT_URL_STS").or_else(|| env("AWS_ENDPOINT_URL")) {
        return u;
    }
    if sig.use_fips_sts_endpoint {
        format!("https://sts-fips.{region}.amazonaws.com/")
    } else {
        format!("https://sts.{region}.amazonaws.com/")
    }
}

/// The text of the first `<tag>` element of an XML answer, unescaped.
fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&format!("</{tag}>"))?;
    Some(
        doc[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

async fn assume_role(
    sig: &SigV4,
    base: &Creds,
    region: &str,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<Creds, SendError> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut q = vec![
        ("Action".to_string(), "AssumeRole".to_string()),
        ("DurationSeconds".to_string(), "900".to_string()),
        ("RoleArn".to_string(), sig.role_arn.clone()),
        ("RoleSessionName".to_string(), format!("klaxon-{nanos}")),
        ("Version".to_string(), "2011-06-15".to_string()),
    ];
    if !sig.external_id.is_empty() {
        q.push(("ExternalId".to_string(), sig.external_id.clone()));
    }
    let body = go_query(&q);
    let url = sts_endpoint(sig, region);
    let what = format!("assuming sigv4.role_arn {:?}", sig.role_arn);
    let text = signed_post(client, &url, base, region, "sts", body, timeout)
        .await
        .map_err(|mut e| {
            e.message = format!("{what}: {}", e.message);
            e
        })?;
    let get = |t: &str| {
        xml_text(&text, t).ok_or_else(|| {
            SendError::transient("error_body", format!("{what}: STS answer has no {t}"))
        })
    };
    let expiration = get("Expiration")?;
    Ok(Creds {
        access_key: get("AccessKeyId")?,
        secret_key: Secret::new(get("SecretAccessKey")?),
        session_token: Some(get("SessionToken")?),
        expires_at: Some(
            crate::model::time::parse_time(&expiration).map_err(|e| {
                SendError::transient("error_body", format!("{what}: Expiration: {e}"))
            })?,
        ),
    })
}

/// POSTs a form `body` to an AWS query API, signed with SigV4 for
/// `service` in `region`; the answer's text on a 2xx. AWS errors carry
/// their `<Code>` and `<Message>`; 5xx and 429 are retried.
pub async fn signed_post(
    client: &reqwest::Client,
    url: &str,
    creds: &Creds,
    region: &str,
    service: &str,
    body: String,
    timeout: Duration,
) -> Result<String, SendError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let cfg_err = |m: String| SendError::permanent("config", format!("signing: {m}"));
    let identity = aws_credential_types::Credentials::new(
        creds.access_key.clone(),
        creds.secret_key.expose().to_string(),
        creds.session_token.clone(),
        None,
        "klaxon",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| cfg_err(e.to_string()))?
        .into();
    let headers = [("content-type", FORM)];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| cfg_err(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| cfg_err(e.to_string()))?
        .into_parts();
    let mut rb = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(body);
    for (k, v) in instructions.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.map_err(request_error)?;
    let status = resp.status();
    let retry_after = retry_after_of(&resp);
    let text = resp.text().await.map_err(request_error)?;
    if !status.is_success() {
        // AWS's XML error: say its code and message, not the raw XML.
        if let (Some(code), Some(msg)) = (xml_text(&text, "Code"), xml_text(&text, "Message")) {
            return classify(
                status,
                retry_after,
                &format!("{code}: {msg}"),
                &[429],
                BodyCheck::None,
            )
            .map(|()| String::new());
        }
    }
    // The AWS SDKs retry throttling (429) themselves.
    classify(status, retry_after, &text, &[429], BodyCheck::None)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_and_keys() {
        let t = "# c\n[default]\naws_access_key_id = A\n[profile ops]\nRegion=eu-west-1\n; x\n[ops]\naws_access_key_id=B\n";
        assert_eq!(ini_section(t, "default").unwrap()["aws_access_key_id"], "A");
        assert_eq!(
            ini_section(t, "profile ops").unwrap()["region"],
            "eu-west-1"
        );
        assert_eq!(ini_section(t, "ops").unwrap()["aws_access_key_id"], "B");
        assert!(ini_section(t, "missing").is_none());
    }

    #[test]
    fn xml_fields() {
        let x = "<R><Credentials><AccessKeyId>ASIA1</AccessKeyId><SessionToken>a&amp;b</SessionToken></Credentials></R>";
        assert_eq!(xml_text(x, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(xml_text(x, "SessionToken").as_deref(), Some("a&b"));
        assert_eq!(xml_text(x, "Nope"), None);
    }

    #[test]
    fn profile_without_keys_names_what_is_missing() {
        let p = Profile {
            keys: [("role_arn".to_string(), "arn:x".to_string())]
                .into_iter()
                .collect(),
        };
        let e = p.creds("sigv4.profile \"ops\"").unwrap_err();
        assert!(
            e.starts_with("sigv4.profile \"ops\" has no aws_access_key_id"),
            "{e}"
        );
        assert!(e.contains("role_arn in a profile is not supported"), "{e}");
    }
}
