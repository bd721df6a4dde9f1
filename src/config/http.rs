//! HTTP client settings as Prometheus' common config has them (basic auth,
//! authorization, bearer tokens, TLS, redirects, HTTP/2) for every block
//! that talks HTTP: scrape jobs, SD mechanisms, Alertmanagers, remote write,
//! the rule datasource, notify receivers, auto-heal actions. The client
//! built from them is in [`super::client`].

use super::errors::{Pos, Sink};
use super::join_dir;
use super::raw::{RawAuthorization, RawBasicAuth, RawHttpClientConfig, RawTlsConfig, S};
use std::fmt;
use std::path::PathBuf;

/// A secret from the configuration. Debug output hides it so secrets do not
/// end up in logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for building the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TLS10" => TlsVersion::Tls10,
            "TLS11" => TlsVersion::Tls11,
            "TLS12" => TlsVersion::Tls12,
            "TLS13" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: Option<PathBuf>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

/// `Authorization: <type> <credentials>`; `bearer_token(_file)` is mapped
/// here with type `Bearer`, as upstream does.
#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    pub kind: String,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig {
    pub ca: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub cert: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

pub(crate) fn resolve_tls(
    raw: &S<RawTlsConfig>,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> TlsConfig {
    let at = Pos::of(raw);
    let r = &raw.value;
    let nonempty = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    if nonempty(&r.ca) && nonempty(&r.ca_file) {
        sink.push(at, "at most one of ca and ca_file must be configured");
    }
    if nonempty(&r.cert) && nonempty(&r.cert_file) {
        sink.push(at, "at most one of cert and cert_file must be configured");
    }
    if nonempty(&r.key) && nonempty(&r.key_file) {
        sink.push(at, "at most one of key and key_file must be configured");
    }
    let has_cert = nonempty(&r.cert) || nonempty(&r.cert_file);
    let has_key = nonempty(&r.key) || nonempty(&r.key_file);
    if has_cert && !has_key {
        sink.push(
            at,
            "exactly one of key or key_file must be configured when a client certificate is configured",
        );
    } else if has_key && !has_cert {
        sink.push(
            at,
            "exactly one of cert or cert_file must be configured when a client key is configured",
        );
    }
    let version = |v: &Option<S<String>>, sink: &mut Sink| {
        let v = v.as_ref()?;
        let parsed = TlsVersion::parse(&v.value);
        if parsed.is_none() {
            sink.push(Pos::of(v), format!("unknown TLS version: {}", v.value));
        }
        parsed
    };
    let min_version = version(&r.min_version, sink);
    let max_version = version(&r.max_version, sink);
    if let (Some(a), Some(b)) = (min_version, max_version) {
        if a > b {
            sink.push(
                at,
                "max_version must be greater than or equal to min_version",
            );
        }
    }
    let file = |f: &Option<String>| {
        f.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| PathBuf::from(join_dir(dir, s)))
    };
    TlsConfig {
        ca: r.ca.clone().filter(|s| !s.is_empty()),
        ca_file: file(&r.ca_file),
        cert: r.cert.clone().filter(|s| !s.is_empty()),
        cert_file: file(&r.cert_file),
        key: r.key.clone().filter(|s| !s.is_empty()).map(Secret),
        key_file: file(&r.key_file),
        server_name: r.server_name.clone().filter(|s| !s.is_empty()),
        insecure_skip_verify: r.insecure_skip_verify.unwrap_or(false),
        min_version,
        max_version,
    }
}

/// The inline HTTP client keys of a raw config block that klaxon does not
/// implement (proxies, OAuth 2), for [`reject_unsupported`].
macro_rules! unsupported_http_fields {
    ($r:expr) => {
        [
            ("proxy_url", &$r.proxy_url),
            ("no_proxy", &$r.no_proxy),
            ("proxy_from_environment", &$r.proxy_from_environment),
            ("proxy_connect_header", &$r.proxy_connect_header),
            ("oauth2", &$r.oauth2),
        ]
    };
}
pub(crate) use unsupported_http_fields;

/// Upstream keys klaxon recognises but does not implement: a clear "not
/// supported" error at each one present.
pub(crate) fn reject_unsupported(
    fields: &[(&str, &Option<S<serde::de::IgnoredAny>>)],
    sink: &mut Sink,
) {
    for (name, v) in fields {
        if let Some(v) = v {
            sink.push(Pos::of(v), format!("{name} is not supported"));
        }
    }
}

/// [`HttpFields`] of a raw config block that carries the HTTP client
/// settings inline under their upstream names (scrape configs,
/// `remote_write`, the rule datasource, Alertmanager's `http_config`).
macro_rules! http_fields {
    ($r:expr) => {
        $crate::config::http::HttpFields {
            basic_auth: $r.basic_auth.as_ref(),
            authorization: $r.authorization.as_ref(),
            bearer_token: $r.bearer_token.as_ref(),
            bearer_token_file: $r.bearer_token_file.as_ref(),
            tls_config: $r.tls_config.as_ref(),
            follow_redirects: $r.follow_redirects,
            enable_http2: $r.enable_http2,
        }
    };
}
pub(crate) use http_fields;

/// The HTTP client settings of one config block, as written: inline in a
/// scrape config, or an Alertmanager `http_config:`
/// ([`RawHttpClientConfig::fields`]).
pub(crate) struct HttpFields<'a> {
    pub basic_auth: Option<&'a S<RawBasicAuth>>,
    pub authorization: Option<&'a S<RawAuthorization>>,
    pub bearer_token: Option<&'a S<String>>,
    pub bearer_token_file: Option<&'a S<String>>,
    pub tls_config: Option<&'a S<RawTlsConfig>>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

impl RawHttpClientConfig {
    pub(crate) fn fields(&self) -> HttpFields<'_> {
        crate::config::http::http_fields!(self)
    }
}

/// Validates and resolves HTTP client settings with Prometheus common's
/// rules (mutually exclusive auth kinds, `X`/`X_file` pairs, TLS versions);
/// relative files are joined to `dir`.
pub(crate) fn resolve_http_fields(
    r: HttpFields<'_>,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> HttpClientConfig {
    let path = |s: &S<String>| PathBuf::from(join_dir(dir, &s.value));
    let bearer = r.bearer_token.filter(|s| !s.value.is_empty());
    let bearer_file = r.bearer_token_file.filter(|s| !s.value.is_empty());
    if let (Some(_), Some(f)) = (bearer, bearer_file) {
        sink.push(
            Pos::of(f),
            "at most one of bearer_token & bearer_token_file must be configured",
        );
    }
    let bearer_pos = bearer.or(bearer_file).map(Pos::of);
    let basic_auth = r.basic_auth.map(|b| {
        let bp = Pos::of(b);
        let v = &b.value;
        if let Some(p) = bearer_pos {
            sink.push(
                p,
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            );
        }
        let username = v.username.clone().unwrap_or_default();
        let username_file = v.username_file.as_ref().filter(|s| !s.value.is_empty());
        if !username.is_empty() && username_file.is_some() {
            sink.push(
                bp,
                "at most one of basic_auth username & username_file must be configured",
            );
        }
        let password = v.password.as_ref().filter(|s| !s.value.is_empty());
        let password_file = v.password_file.as_ref().filter(|s| !s.value.is_empty());
        if let (Some(_), Some(f)) = (password, password_file) {
            sink.push(
                Pos::of(f),
                "at most one of basic_auth password & password_file must be configured",
            );
        }
        BasicAuth {
            username,
            username_file: username_file.map(path),
            password: password.map(|p| Secret(p.value.clone())),
            password_file: password_file.map(path),
        }
    });
    let authorization = match r.authorization {
        Some(a) => {
            let ap = Pos::of(a);
            let v = &a.value;
            if let Some(p) = bearer_pos {
                sink.push(
                    p,
                    "authorization is not compatible with bearer_token & bearer_token_file",
                );
            }
            let creds = v.credentials.as_ref().filter(|s| !s.is_empty());
            let creds_file = v.credentials_file.as_ref().filter(|s| !s.value.is_empty());
            if creds.is_some() && creds_file.is_some() {
                sink.push(
                    ap,
                    "at most one of authorization credentials & credentials_file must be configured",
                );
            }
            let kind = v
                .kind
                .as_ref()
                .map(|k| k.value.trim().to_string())
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "Bearer".to_string());
            if kind.eq_ignore_ascii_case("basic") {
                let p = v.kind.as_ref().map(Pos::of).unwrap_or(ap);
                sink.push(
                    p,
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                );
            }
            if r.basic_auth.is_some() {
                sink.push(
                    ap,
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                );
            }
            Some(Authorization {
                kind,
                credentials: creds.map(|c| Secret(c.clone())),
                credentials_file: creds_file.map(path),
            })
        }
        None if bearer.is_some() || bearer_file.is_some() => Some(Authorization {
            kind: "Bearer".to_string(),
            credentials: bearer.map(|b| Secret(b.value.clone())),
            credentials_file: bearer_file.map(path),
        }),
        None => None,
    };
    HttpClientConfig {
        basic_auth,
        authorization,
        tls_config: r
            .tls_config
            .map(|t| resolve_tls(t, dir, sink))
            .unwrap_or_default(),
        follow_redirects: r.follow_redirects.unwrap_or(true),
        enable_http2: r.enable_http2.unwrap_or(true),
    }
}
