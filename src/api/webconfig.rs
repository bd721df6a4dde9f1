//! `--web.config.file`: the exporter-toolkit web configuration Prometheus,
//! Alertmanager and the exporters share: `tls_server_config` (certificate
//! and key files, client CA and client auth type, TLS versions, cipher
//! suites), `basic_auth_users` (bcrypt hashes) and
//! `http_server_config.headers`.
//!
//! The certificate and key are read again when either file changes (checked
//! at each TLS handshake), so a renewed certificate needs no restart. Basic
//! auth users are checked before anything else; klaxon's roles then apply:
//! a user gets the roles of the `auth.tokens` entry of the same name, and
//! admin when there is none (as in Prometheus, where an authenticated user
//! may do everything).

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A web config that does not load.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct WebConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The loaded web configuration.
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Successful checks, so bcrypt (tens of ms) runs once per credential.
    verified: Mutex<std::collections::HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Headers exporter-toolkit refuses to let a config set.
const RESERVED: &[&str] = &["authorization", "content-type", "content-length"];

/// Loads and checks `path`; relative file names are relative to it.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let file = path.display().to_string();
    let err = |message: String| WebConfigError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("reading: {e}")))?;
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        serde_saphyr::from_str::<Option<RawWebConfig>>(&text)
            .map_err(|e| err(e.to_string()))?
            .unwrap_or_default()
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tls = match raw.tls_server_config {
        Some(t) => Some(Arc::new(tls_config(t, dir).map_err(err)?)),
        None => None,
    };
    let mut headers = Vec::new();
    if let Some(h) = raw
        .http_server_config
        .as_ref()
        .and_then(|h| h.headers.as_ref())
    {
        for (k, v) in h {
            if RESERVED.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(err(format!(
                    "http_server_config.headers: setting header {k:?} is not allowed"
                )));
            }
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                err(format!(
                    "http_server_config.headers: invalid header name {k:?}"
                ))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                err(format!(
                    "http_server_config.headers: invalid value for {k:?}"
                ))
            })?;
            headers.push((name, value));
        }
    }
    let _http2 = raw.http_server_config.as_ref().and_then(|h| h.http2);
    let users = raw.basic_auth_users.unwrap_or_default();
    for (u, h) in &users {
        if !h.starts_with("$2") {
            return Err(err(format!(
                "basic_auth_users: the password of {u:?} is not a bcrypt hash"
            )));
        }
    }
    Ok(WebConfig {
        tls,
        users,
        headers,
        verified: Mutex::new(Default::default()),
    })
}

fn tls_config(t: RawTls, dir: &Path) -> Result<rustls::ServerConfig, String> {
    let join = |f: &str| {
        let p = Path::new(f);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    let cert = t
        .cert_file
        .filter(|s| !s.is_empty())
        .ok_or("tls_server_config: missing cert_file")?;
    let key = t
        .key_file
        .filter(|s| !s.is_empty())
        .ok_or("tls_server_config: missing key_file")?;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = t.cipher_suites.filter(|c| !c.is_empty()) {
        let mut chosen = Vec::new();
        for n in &names {
            let s = provider
                .cipher_suites
                .iter()
                .find(|s| format!("{:?}", s.suite()) == *n)
                .ok_or_else(|| format!("tls_server_config.cipher_suites: unknown or unsupported cipher suite {n:?}"))?;
            chosen.push(*s);
        }
        // TLS 1.3 suites are not configurable in Go either: keep them.
        for s in &provider.cipher_suites {
            if s.version() == &rustls::version::TLS13
                && !chosen.iter().any(|c| c.suite() == s.suite())
            {
                chosen.push(*s);
            }
        }
        provider.cipher_suites = chosen;
    }
    let _ = (t.prefer_server_cipher_suites, t.curve_preferences);
    let version = |v: &Option<String>, default: u8| -> Result<u8, String> {
        match v.as_deref() {
            None | Some("") => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(x @ ("TLS10" | "TLS11")) => Err(format!(
                "tls_server_config: {x} is not supported (TLS12 or TLS13)"
            )),
            Some(x) => Err(format!("tls_server_config: unknown TLS version: {x}")),
        }
    };
    let (min, max) = (version(&t.min_version, 12)?, version(&t.max_version, 13)?);
    if min > max {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| *v >= min && *v <= max)
            .map(|(_, p)| p)
            .collect();
    let provider = Arc::new(provider);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let ca = t.client_ca_file.filter(|s| !s.is_empty()).map(|f| join(&f));
    let builder = match auth {
        "NoClientCert" | "" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let ca = ca.ok_or_else(|| format!("tls_server_config: client_ca_file is required for client_auth_type {auth}"))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(&ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == "VerifyClientCertIfGiven" {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "tls_server_config: client_auth_type {auth} (unverified client certificates) is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
            ))
        }
        other => return Err(format!("tls_server_config: invalid ClientAuth {other:?}")),
    };
    let resolver = ReloadingCert::new(join(&cert), join(&key))?;
    let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
    // The server speaks HTTP/1.1 (`http_server_config.http2` is accepted
    // and has no effect).
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn read_certs(p: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", p.display()));
    }
    Ok(certs)
}

/// The server certificate, read again when the cert or key file changes.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(
        Option<SystemTime>,
        Option<SystemTime>,
        Arc<rustls::sign::CertifiedKey>,
    )>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn certified_key(cert: &Path, key: &Path) -> Result<rustls::sign::CertifiedKey, String> {
    use rustls::pki_types::pem::PemObject;
    let chain = read_certs(cert)?;
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key_der, &provider)
        .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
}

impl ReloadingCert {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Self, String> {
        let ck = certified_key(&cert, &key)?;
        Ok(ReloadingCert {
            current: Mutex::new((mtime(&cert), mtime(&key), Arc::new(ck))),
            cert,
            key,
        })
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let mut cur = self.current.lock();
        let (c, k) = (mtime(&self.cert), mtime(&self.key));
        if (c, k) != (cur.0, cur.1) {
            match certified_key(&self.cert, &self.key) {
                Ok(ck) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    *cur = (c, k, Arc::new(ck));
                }
                // A half-written pair: keep serving the old one, retry later.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but does not load; keeping the previous one")
                }
            }
        }
        Some(cur.2.clone())
    }
}

/// A user a request authenticated as with basic auth (a request extension
/// the RBAC layer maps to roles).
#[derive(Clone, Debug)]
pub struct BasicUser(pub String);

impl WebConfig {
    /// Checks `user:password` against `basic_auth_users`.
    fn check(&self, user: &str, password: &str) -> bool {
        use sha2::Digest;
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = sha2::Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if self.verified.lock().contains(&key) {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            let mut v = self.verified.lock();
            if v.len() > 1024 {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }
}

/// The layer: configured headers on every answer; with `basic_auth_users`,
/// 401 (with `WWW-Authenticate: Basic`) unless the request carries a valid
/// user and password.
pub async fn layer(cfg: Arc<WebConfig>, mut req: Request, next: Next) -> Response {
    if !cfg.users.is_empty() {
        let creds = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let user = creds
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .and_then(|(u, p)| {
                let c = cfg.clone();
                let (u, p) = (u.to_string(), p.to_string());
                c.check(&u, &p).then_some(u)
            });
        match user {
            Some(u) => {
                req.extensions_mut().insert(BasicUser(u));
            }
            None => {
                let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                add_headers(&cfg, &mut r);
                return r;
            }
        }
    }
    let mut r = next.run(req).await;
    add_headers(&cfg, &mut r);
    r
}

fn add_headers(cfg: &WebConfig, r: &mut Response) {
    for (k, v) in &cfg.headers {
        r.headers_mut().insert(k.clone(), v.clone());
    }
}

/// A TLS listener for `axum::serve`: TCP connections are accepted and their
/// handshakes run on their own tasks (a slow client cannot hold the accept
/// loop); finished ones are handed to the server.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    pub fn new(
        l: tokio::net::TcpListener,
        cfg: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let local = l.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, addr) = match l.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    )
                    .await;
                    match hs {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local, task })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task ended (it does not, short of a panic).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_exporter_toolkit_rejects() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("web.yml");
        for (y, want) in [
            ("basic_auth_users:\n  a: plain\n", "not a bcrypt hash"),
            (
                "http_server_config:\n  headers:\n    Authorization: x\n",
                "not allowed",
            ),
            ("tls_server_config:\n  key_file: k\n", "missing cert_file"),
            ("tls_server_confg: {}\n", "unknown field"),
        ] {
            std::fs::write(&p, y).unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{y}: {e}");
        }
        std::fs::write(&p, "basic_auth_users:\n  u: $2y$04$HMZsAtTIcb1xo/Sk9G1gX.Y5m9zS0wHHJpRCrA9lBv.YOqDd9Z2lu\n").unwrap();
        assert_eq!(load(&p).unwrap().users.len(), 1);
    }
}
