//! The HTTP client every outgoing request of klaxon is made with, built
//! from an [`HttpClientConfig`]: TLS, redirects, HTTP/2, the
//! `Authorization` header; plus the error text and `Retry-After` reading
//! that every sender shares.
//!
//! Secrets in `*_file` fields are read at request time, as Prometheus does, so
//! rotating a token file needs no reload.

use super::http::{HttpClientConfig, TlsConfig};
use base64::Engine as _;
use std::path::{Path, PathBuf};

/// Why a client or a request's credentials could not be set up from an
/// [`HttpClientConfig`] (the texts are Prometheus-like and name the file).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unable to read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls_config.server_name is not supported yet (see docs/compatibility.md)")]
    ServerNameUnsupported,
    #[error("invalid CA certificate: {0}")]
    InvalidCa(reqwest::Error),
    #[error("CA file holds no PEM certificate")]
    EmptyCa,
    #[error("invalid client certificate or key: {0}")]
    InvalidIdentity(reqwest::Error),
    #[error("client certificate and key must be configured together")]
    CertWithoutKey,
}

impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        e.to_string()
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_trimmed(path: &Path, what: &'static str) -> Result<String, ClientError> {
    let b = read(path, what)?;
    Ok(String::from_utf8_lossy(&b).trim().to_string())
}

/// A client builder with what every outgoing HTTP client of klaxon takes
/// from an `HttpClientConfig` (scrapes, remote write, the rule datasource,
/// notification receivers): klaxon's user agent, redirects as
/// `follow_redirects` says, HTTP/1.1 only without `enable_http2`, TLS.
/// Callers add what is theirs (compression, proxies, timeouts).
pub fn client_builder(h: &HttpClientConfig) -> Result<reqwest::ClientBuilder, ClientError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("klaxon/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(std::time::Duration::from_secs(5 * 60))
        .redirect(if h.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !h.enable_http2 {
        b = b.http1_only();
    }
    apply(b, &h.tls_config)
}

/// Configures certificates and verification on a client builder.
pub fn apply(
    mut b: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, ClientError> {
    if tls.server_name.is_some() {
        return Err(ClientError::ServerNameUnsupported);
    }
    let ca = match (&tls.ca, &tls.ca_file) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(p)) => Some(read(p, "CA file")?),
        (None, None) => None,
    };
    if let Some(pem) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(ClientError::InvalidCa)?;
        if certs.is_empty() {
            return Err(ClientError::EmptyCa);
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let cert = match (&tls.cert, &tls.cert_file) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(p)) => Some(read(p, "client certificate")?),
        (None, None) => None,
    };
    let key = match (&tls.key, &tls.key_file) {
        (Some(s), _) => Some(s.expose().as_bytes().to_vec()),
        (None, Some(p)) => Some(read(p, "client key")?),
        (None, None) => None,
    };
    match (cert, key) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            let id = reqwest::Identity::from_pem(&c).map_err(ClientError::InvalidIdentity)?;
            b = b.identity(id);
        }
        (Some(_), None) | (None, Some(_)) => return Err(ClientError::CertWithoutKey),
        (None, None) => {}
    }
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    Ok(b)
}

/// The `Authorization` header value for the next request, if any.
pub fn authorization_header(h: &HttpClientConfig) -> Result<Option<String>, ClientError> {
    if let Some(ba) = &h.basic_auth {
        let user = match &ba.username_file {
            Some(p) => read_trimmed(p, "username file")?,
            None => ba.username.clone(),
        };
        let pass = match (&ba.password, &ba.password_file) {
            (Some(p), _) => p.expose().to_string(),
            (None, Some(f)) => read_trimmed(f, "password file")?,
            (None, None) => String::new(),
        };
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        return Ok(Some(format!("Basic {enc}")));
    }
    if let Some(a) = &h.authorization {
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.expose().to_string(),
            (None, Some(f)) => read_trimmed(f, "credentials file")?,
            (None, None) => String::new(),
        };
        return Ok(Some(format!("{} {}", a.kind, cred)));
    }
    Ok(None)
}

/// reqwest's Display hides the cause ("error sending request"); the chain
/// says what actually went wrong (connection refused, TLS, ...).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Parses `Retry-After` (delay-seconds; an HTTP date is not honoured and
/// falls back to our backoff), capped at `max`: the server's number must
/// not park a sender for days or overflow a timestamp it is added to.
pub fn parse_retry_after(v: &str, max: std::time::Duration) -> Option<std::time::Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| std::time::Duration::from_secs(s).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::http::{BasicAuth, Secret};

    #[test]
    fn credentials_are_read_per_request_and_errors_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let pw = d.path().join("pw");
        let mut h = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                username_file: None,
                password: None,
                password_file: Some(pw.clone()),
            }),
            ..HttpClientConfig::default()
        };
        let e = authorization_header(&h).unwrap_err();
        assert!(matches!(
            e,
            ClientError::Read {
                what: "password file",
                ..
            }
        ));
        assert!(
            e.to_string()
                .starts_with(&format!("unable to read password file {}: ", pw.display())),
            "{e}"
        );
        std::fs::write(&pw, "p\n").unwrap();
        // base64("u:p")
        assert_eq!(
            authorization_header(&h).unwrap().as_deref(),
            Some("Basic dTpw")
        );
        h.basic_auth.as_mut().unwrap().password = Some(Secret::new("q"));
        assert_eq!(
            authorization_header(&h).unwrap().as_deref(),
            Some("Basic dTpx")
        );
    }

    #[test]
    fn tls_settings_klaxon_cannot_apply_are_errors() {
        let mut h = HttpClientConfig::default();
        h.tls_config.server_name = Some("x".into());
        let e = client_builder(&h).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tls_config.server_name is not supported yet (see docs/compatibility.md)"
        );
        let mut h = HttpClientConfig::default();
        h.tls_config.cert = Some("-----BEGIN CERTIFICATE-----".into());
        assert!(matches!(
            client_builder(&h).unwrap_err(),
            ClientError::CertWithoutKey
        ));
        let mut h = HttpClientConfig::default();
        h.tls_config.ca = Some("not pem".into());
        assert!(matches!(
            client_builder(&h).unwrap_err(),
            ClientError::EmptyCa | ClientError::InvalidCa(_)
        ));
    }
}
