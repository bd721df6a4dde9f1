//! Resolved scrape configuration: defaults applied, global values inherited,
//! validated with the same rules (and messages) as Prometheus.

use super::duration::{parse_duration, parse_size};
use super::errors::{Pos, Sink};
use super::file_sd::TargetGroup;
use super::raw::{
    RawAuthorization, RawBasicAuth, RawFileSdConfig, RawHttpClientConfig, RawScrapeConfig,
    RawStaticConfig, RawTlsConfig, SpannedMap, S,
};
use super::relabel::{is_valid_label_name, resolve_relabel_configs, RelabelConfig};
use super::{join_dir, GlobalConfig};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

/// Exposition formats a scrape may negotiate, with Prometheus' names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
    ];

    /// Prometheus 3.x's default preference order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
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

#[derive(Clone, Debug, PartialEq)]
pub struct FileSdConfig {
    /// Globs, already joined to the config file's directory.
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

impl ScrapeConfig {
    /// Every SD entry of the job, for the discovery manager: the static
    /// entries, the file_sd entries, then the others.
    pub fn sd_configs(&self) -> Vec<crate::discovery::SdConfig> {
        crate::discovery::config::join_sd(
            &self.static_configs,
            &self.file_sd_configs,
            &self.service_discovery,
        )
    }
}

/// Limits are 0 for "unlimited", as in Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: Scheme,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    /// The other service discovery entries (http, dns, consul, docker,
    /// kubernetes), in the order of their fields.
    pub service_discovery: Vec<crate::discovery::SdConfig>,
    pub http_client: HttpClientConfig,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    pub target_limit: u64,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    pub enable_compression: bool,
}

/// Parses an optional duration, reporting at its node; `None` when absent,
/// zero (Prometheus treats an explicit 0 as "not set") or invalid.
pub(crate) fn opt_duration(v: &Option<S<String>>, sink: &mut Sink) -> Option<Duration> {
    let v = v.as_ref()?;
    match parse_duration(&v.value) {
        Ok(d) if d.is_zero() => None,
        Ok(d) => Some(d),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

pub(crate) fn opt_size(v: &Option<S<String>>, sink: &mut Sink) -> Option<u64> {
    let v = v.as_ref()?;
    match parse_size(&v.value) {
        Ok(n) => Some(n),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

pub(crate) fn resolve_protocols(
    v: &S<Vec<S<String>>>,
    sink: &mut Sink,
) -> Option<Vec<ScrapeProtocol>> {
    if v.value.is_empty() {
        sink.push(Pos::of(v), "scrape_protocols cannot be empty");
        return None;
    }
    let mut out: Vec<ScrapeProtocol> = Vec::new();
    let mut ok = true;
    for p in &v.value {
        match ScrapeProtocol::parse(&p.value) {
            Some(x) if out.contains(&x) => {
                sink.push(
                    Pos::of(p),
                    format!("duplicated protocol in scrape_protocols, got {}", p.value),
                );
                ok = false;
            }
            Some(x) => out.push(x),
            None => {
                let all: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
                sink.push(
                    Pos::of(p),
                    format!(
                        "unknown scrape protocol {}, supported: [{}]",
                        p.value,
                        all.join(" ")
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Validates label names of a `labels:` mapping; returns the valid pairs.
pub(crate) fn resolve_label_map(m: &SpannedMap, sink: &mut Sink) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in &m.0 {
        if !is_valid_label_name(&k.value) {
            sink.push(
                Pos::of(k),
                format!("{:?} is not a valid label name", k.value),
            );
            continue;
        }
        out.insert(k.value.clone(), v.value.clone());
    }
    out
}

/// At most one `*`, and no `/` after it (upstream's rule for rule and SD
/// file globs: only the last path element may be a pattern).
pub(crate) fn is_single_star_glob(s: &str) -> bool {
    match s.find('*') {
        None => true,
        Some(i) => !s[i + 1..].contains('*') && !s[i + 1..].contains('/'),
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

fn resolve_http_client(
    r: &RawScrapeConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> HttpClientConfig {
    reject_unsupported(&unsupported_http_fields!(r), sink);
    resolve_http_fields(crate::config::scrape::http_fields!(r), dir, sink)
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
        $crate::config::scrape::HttpFields {
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
        crate::config::scrape::http_fields!(self)
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

/// `static_configs` entries as target groups (source: the entry's index),
/// for scrape configs and `alerting.alertmanagers` alike.
pub(crate) fn resolve_static_configs(
    raw: &[S<RawStaticConfig>],
    check_hosts: bool,
    sink: &mut Sink,
) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for (i, sc) in raw.iter().enumerate() {
        let labels = sc
            .value
            .labels
            .as_ref()
            .map(|m| resolve_label_map(m, sink))
            .unwrap_or_default();
        let targets = sc
            .value
            .targets
            .iter()
            .flatten()
            .map(|t| {
                // A target is host:port; without relabeling to repair it, a
                // URL is a mistake (upstream's checkStaticTargets).
                if check_hosts && t.value.contains('/') {
                    sink.push(Pos::of(t), format!("{:?} is not a valid hostname", t.value));
                }
                t.value.clone()
            })
            .collect();
        out.push(TargetGroup {
            targets,
            labels,
            source: i.to_string(),
            target_labels: Vec::new(),
        });
    }
    out
}

/// `file_sd_configs` entries: file names checked as Prometheus does and
/// joined to the config's directory, refresh defaulting to 5m.
pub(crate) fn resolve_file_sd_configs(
    raw: &[S<RawFileSdConfig>],
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> Vec<FileSdConfig> {
    let mut out = Vec::new();
    for f in raw {
        let mut files = Vec::new();
        for name in f.value.files.iter().flatten() {
            if !crate::discovery::config::is_valid_file_sd_name(&name.value) {
                sink.push(
                    Pos::of(name),
                    format!("path name {:?} is not valid for file discovery", name.value),
                );
            }
            files.push(join_dir(dir, &name.value));
        }
        let refresh_interval =
            opt_duration(&f.value.refresh_interval, sink).unwrap_or(Duration::from_secs(300));
        out.push(FileSdConfig {
            files,
            refresh_interval,
        });
    }
    out
}

/// Resolves every scrape config; reports duplicates of `job_name` at the
/// later occurrence, like upstream (which names the job).
pub(crate) fn resolve_scrape_configs(
    raw: &[S<RawScrapeConfig>],
    global: &GlobalConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> Vec<ScrapeConfig> {
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut out = Vec::new();
    for r in raw {
        let before = sink.len();
        let sc = resolve_one(r, global, dir, sink);
        if let Some(j) = &r.value.job_name {
            if !j.value.is_empty() {
                if seen.contains_key(&j.value) {
                    sink.push(
                        Pos::of(j),
                        format!("found multiple scrape configs with job name {:?}", j.value),
                    );
                } else {
                    seen.insert(j.value.clone(), Pos::of(j));
                }
            }
        }
        if sink.len() == before {
            out.push(sc);
        }
    }
    out
}

fn resolve_one(
    raw: &S<RawScrapeConfig>,
    g: &GlobalConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> ScrapeConfig {
    let at = Pos::of(raw);
    let r = &raw.value;
    let job_name = r
        .job_name
        .as_ref()
        .map(|j| j.value.clone())
        .unwrap_or_default();
    if job_name.is_empty() {
        sink.push(
            r.job_name.as_ref().map(Pos::of).unwrap_or(at),
            "job_name is empty",
        );
    }
    let scrape_interval = opt_duration(&r.scrape_interval, sink).unwrap_or(g.scrape_interval);
    let explicit_timeout = opt_duration(&r.scrape_timeout, sink);
    let scrape_timeout = match explicit_timeout {
        Some(t) => {
            if t > scrape_interval {
                let p = r.scrape_timeout.as_ref().map(Pos::of).unwrap_or(at);
                sink.push(
                    p,
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
                    ),
                );
            }
            t
        }
        // Upstream clamps the inherited timeout to this job's interval.
        None => g.scrape_timeout.min(scrape_interval),
    };
    let scheme = match r.scheme.as_ref() {
        None => Scheme::Http,
        Some(s) => match s.value.as_str() {
            "http" | "" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                sink.push(
                    Pos::of(s),
                    format!("invalid scheme {other:?}: must be \"http\" or \"https\""),
                );
                Scheme::Http
            }
        },
    };
    // Prometheus' CheckTargetAddress: a target is host:port, never a URL
    // (scheme and path have their own fields). With relabel_configs the
    // address may still be rewritten; `check config` tests it after
    // relabeling (config::check).
    let check_hosts = r.relabel_configs.as_ref().is_none_or(|v| v.is_empty());
    let (static_configs, file_sd_configs, service_discovery) =
        crate::discovery::config::split_sd(crate::discovery::config::resolve_sd_fields(
            crate::discovery::config::sd_fields!(r),
            dir,
            check_hosts,
            sink,
        ));
    let http_client = resolve_http_client(r, dir, sink);
    let relabel_configs =
        resolve_relabel_configs(r.relabel_configs.as_deref().unwrap_or(&[]), sink);
    let metric_relabel_configs =
        resolve_relabel_configs(r.metric_relabel_configs.as_deref().unwrap_or(&[]), sink);
    let scrape_protocols = r
        .scrape_protocols
        .as_ref()
        .and_then(|p| resolve_protocols(p, sink))
        .unwrap_or_else(|| g.scrape_protocols.clone());
    let or_global = |v: Option<u64>, d: u64| v.filter(|x| *x != 0).unwrap_or(d);
    ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path: r
            .metrics_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/metrics".to_string()),
        scheme,
        params: r.params.clone().unwrap_or_default(),
        honor_labels: r.honor_labels.unwrap_or(false),
        honor_timestamps: r.honor_timestamps.unwrap_or(true),
        static_configs,
        file_sd_configs,
        service_discovery,
        http_client,
        relabel_configs,
        metric_relabel_configs,
        sample_limit: or_global(r.sample_limit, g.sample_limit),
        label_limit: or_global(r.label_limit, g.label_limit),
        label_name_length_limit: or_global(r.label_name_length_limit, g.label_name_length_limit),
        label_value_length_limit: or_global(r.label_value_length_limit, g.label_value_length_limit),
        body_size_limit: or_global(opt_size(&r.body_size_limit, sink), g.body_size_limit),
        target_limit: or_global(r.target_limit, g.target_limit),
        scrape_protocols,
        enable_compression: r.enable_compression.unwrap_or(true),
    }
}
