//! Applying a scrape config's `tls_config` and auth settings to requests.
//!
//! Secrets in `*_file` fields are read at request time, as Prometheus does, so
//! rotating a token file needs no reload.

use crate::config::{HttpClientConfig, TlsConfig};
use base64::Engine as _;

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("unable to read {what} {}: {e}", path.display()))
}

fn read_trimmed(path: &std::path::Path, what: &str) -> Result<String, String> {
    let b = read(path, what)?;
    Ok(String::from_utf8_lossy(&b).trim().to_string())
}

/// A client builder with what every outgoing HTTP client of klaxon takes
/// from an `HttpClientConfig` (scrapes, remote write, the rule datasource,
/// notification receivers): klaxon's user agent, redirects as
/// `follow_redirects` says, HTTP/1.1 only without `enable_http2`, TLS.
/// Callers add what is theirs (compression, proxies, timeouts).
pub fn client_builder(h: &HttpClientConfig) -> Result<reqwest::ClientBuilder, String> {
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
) -> Result<reqwest::ClientBuilder, String> {
    if tls.server_name.is_some() {
        return Err(
            "tls_config.server_name is not supported yet (see docs/compatibility.md)".into(),
        );
    }
    let ca = match (&tls.ca, &tls.ca_file) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(p)) => Some(read(p, "CA file")?),
        (None, None) => None,
    };
    if let Some(pem) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("invalid CA certificate: {e}"))?;
        if certs.is_empty() {
            return Err("CA file holds no PEM certificate".into());
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
            let id = reqwest::Identity::from_pem(&c)
                .map_err(|e| format!("invalid client certificate or key: {e}"))?;
            b = b.identity(id);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err("client certificate and key must be configured together".into())
        }
        (None, None) => {}
    }
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    Ok(b)
}

/// The `Authorization` header value for the next request, if any.
pub fn authorization_header(h: &HttpClientConfig) -> Result<Option<String>, String> {
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
