//! Probe modules in blackbox_exporter's `blackbox.yml` shape.
//!
//! Parsed in two steps like the main config: position-carrying raw structs
//! (unknown keys are errors, so a misspelt option never silently probes
//! something else), then resolution into plain values with every regex
//! compiled, each error naming FILE:LINE:COL and the field.

use crate::config::errors::{from_yaml_error, Pos, Sink};
use crate::config::{goregex, parse_duration, parse_size, ConfigErrors};
use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The modules shipped with klaxon (`exporters/probes.yml`).
pub const DEFAULT_MODULES: &str = include_str!("../../exporters/probes.yml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    modules: Option<Entries<RawModule>>,
}

/// A mapping kept as an ordered list of (spanned key, spanned value), so a
/// duplicate or bad module name can be pointed at.
#[derive(Debug)]
struct Entries<V>(Vec<(S<String>, S<V>)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of module names to modules")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries<V>, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<S<String>, S<V>>()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
            fn visit_unit<E>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    prober: Option<S<String>>,
    timeout: Option<S<String>>,
    http: Option<RawHttp>,
    tcp: Option<RawTcp>,
    dns: Option<RawDns>,
    icmp: Option<RawIcmp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<String>,
    insecure_skip_verify: Option<bool>,
    server_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Option<String>,
    password: Option<String>,
    password_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderMatch {
    header: S<String>,
    regexp: S<String>,
    allow_missing: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    valid_status_codes: Option<Vec<u16>>,
    valid_http_versions: Option<Vec<S<String>>>,
    no_follow_redirects: Option<bool>,
    follow_redirects: Option<bool>,
    fail_if_ssl: Option<bool>,
    fail_if_not_ssl: Option<bool>,
    fail_if_body_matches_regexp: Option<Vec<S<String>>>,
    fail_if_body_not_matches_regexp: Option<Vec<S<String>>>,
    fail_if_header_matches: Option<Vec<RawHeaderMatch>>,
    fail_if_header_not_matches: Option<Vec<RawHeaderMatch>>,
    basic_auth: Option<RawBasicAuth>,
    bearer_token: Option<String>,
    tls_config: Option<RawTls>,
    preferred_ip_protocol: Option<S<String>>,
    ip_protocol_fallback: Option<bool>,
    compression: Option<S<String>>,
    body_size_limit: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueryResponse {
    expect: Option<S<String>>,
    send: Option<String>,
    starttls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    query_response: Option<Vec<RawQueryResponse>>,
    tls: Option<bool>,
    tls_config: Option<RawTls>,
    preferred_ip_protocol: Option<S<String>>,
    ip_protocol_fallback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRRValidator {
    fail_if_matches_regexp: Option<Vec<S<String>>>,
    fail_if_all_match_regexp: Option<Vec<S<String>>>,
    fail_if_not_matches_regexp: Option<Vec<S<String>>>,
    fail_if_none_matches_regexp: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    query_name: Option<S<String>>,
    query_type: Option<S<String>>,
    query_class: Option<S<String>>,
    valid_rcodes: Option<Vec<S<String>>>,
    validate_answer_rrs: Option<RawRRValidator>,
    validate_authority_rrs: Option<RawRRValidator>,
    validate_additional_rrs: Option<RawRRValidator>,
    transport_protocol: Option<S<String>>,
    recursion_desired: Option<bool>,
    preferred_ip_protocol: Option<S<String>>,
    ip_protocol_fallback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIcmp {
    preferred_ip_protocol: Option<S<String>>,
    ip_protocol_fallback: Option<bool>,
}

/// Which address family to try first when a name resolves to both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpProtocol {
    Ip4,
    Ip6,
}

/// Address choice shared by all probers (blackbox's `chooseProtocol`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpOptions {
    /// Default ip6, as blackbox.
    pub preferred: IpProtocol,
    /// Default true: use the other family when the preferred has no address.
    pub fallback: bool,
}

impl Default for IpOptions {
    fn default() -> Self {
        IpOptions {
            preferred: IpProtocol::Ip6,
            fallback: true,
        }
    }
}

/// TLS client options of a module.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    pub ca_file: Option<String>,
    pub insecure_skip_verify: bool,
    pub server_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: Regex,
    pub allow_missing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Deflate,
    Identity,
}

#[derive(Clone, Debug, Default)]
pub struct HttpModule {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Empty means any 2xx.
    pub valid_status_codes: Vec<u16>,
    /// Empty means any version; entries like `HTTP/1.1`.
    pub valid_http_versions: Vec<String>,
    pub follow_redirects: bool,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    pub fail_if_body_matches: Vec<Regex>,
    pub fail_if_body_not_matches: Vec<Regex>,
    pub fail_if_header_matches: Vec<HeaderMatch>,
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    /// (username, password or password_file content read at probe time)
    pub basic_auth: Option<(String, Option<String>, Option<String>)>,
    pub bearer_token: Option<String>,
    pub tls: TlsOptions,
    pub ip: IpOptions,
    pub compression: Option<Compression>,
    /// 0 = unlimited.
    pub body_size_limit: u64,
}

#[derive(Clone, Debug)]
pub struct QueryResponse {
    pub expect: Option<Regex>,
    pub send: Option<String>,
    pub starttls: bool,
}

#[derive(Clone, Debug, Default)]
pub struct TcpModule {
    pub query_response: Vec<QueryResponse>,
    pub tls: bool,
    pub tls_config: TlsOptions,
    pub ip: IpOptions,
}

#[derive(Clone, Debug, Default)]
pub struct RRValidator {
    pub fail_if_matches: Vec<Regex>,
    pub fail_if_all_match: Vec<Regex>,
    pub fail_if_not_matches: Vec<Regex>,
    pub fail_if_none_matches: Vec<Regex>,
}

#[derive(Clone, Debug)]
pub struct DnsModule {
    pub query_name: String,
    /// Record type name as written (`A`, `AAAA`, `ANY`...), upper case.
    pub query_type: String,
    pub query_class: String,
    /// Default `NOERROR`.
    pub valid_rcodes: Vec<String>,
    pub validate_answer: RRValidator,
    pub validate_authority: RRValidator,
    pub validate_additional: RRValidator,
    pub tcp: bool,
    pub recursion_desired: bool,
    pub ip: IpOptions,
}

#[derive(Clone, Debug, Default)]
pub struct IcmpModule {
    pub ip: IpOptions,
}

#[derive(Clone, Debug)]
pub enum Prober {
    Http(HttpModule),
    Tcp(TcpModule),
    Dns(DnsModule),
    Icmp(IcmpModule),
}

impl Prober {
    /// The name blackbox logs (`probe=http`).
    pub fn kind(&self) -> &'static str {
        match self {
            Prober::Http(_) => "http",
            Prober::Tcp(_) => "tcp",
            Prober::Dns(_) => "dns",
            Prober::Icmp(_) => "icmp",
        }
    }
}

/// One named module.
#[derive(Clone, Debug)]
pub struct Module {
    pub name: String,
    /// None when the file did not set one (the caller then derives it from
    /// the scrape timeout, or uses 10 s).
    pub timeout: Option<Duration>,
    pub prober: Prober,
}

/// A set of modules by name.
#[derive(Clone, Debug, Default)]
pub struct Modules {
    map: BTreeMap<String, Arc<Module>>,
}

impl Modules {
    /// The shipped modules.
    pub fn defaults() -> Modules {
        // The shipped file is tested (`defaults_parse`); an error here would
        // be a build defect, so fall back to no modules rather than panic.
        Modules::parse(DEFAULT_MODULES, "exporters/probes.yml").unwrap_or_else(|e| {
            tracing::error!(error = %e, "shipped probe modules are invalid");
            Modules::default()
        })
    }

    /// The shipped modules, replaced or extended by a user file's.
    pub fn defaults_with_file(path: &Path) -> Result<Modules, ConfigErrors> {
        let mut m = Modules::defaults();
        m.extend(Modules::load_file(path)?);
        Ok(m)
    }

    pub fn load_file(path: &Path) -> Result<Modules, ConfigErrors> {
        let origin = path.display().to_string();
        let text = crate::config::read_config_file(path, "probe modules")?;
        Modules::parse(&text, &origin)
    }

    /// Parses a blackbox.yml-shaped text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Modules, ConfigErrors> {
        let opts = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        };
        let raw: Option<RawFile> = serde_saphyr::from_str_with_options(text, opts)
            .map_err(|e| ConfigErrors(vec![from_yaml_error(origin, &e)]))?;
        let mut sink = Sink::new(origin);
        let mut map = BTreeMap::new();
        for (name, m) in raw.and_then(|r| r.modules).map(|e| e.0).unwrap_or_default() {
            let pos = Pos::of(&name);
            if let Some(module) = resolve_module(&name.value, m, &mut sink) {
                if map.insert(name.value.clone(), Arc::new(module)).is_some() {
                    sink.push(pos, format!("module {:?} defined twice", name.value));
                }
            }
        }
        sink.into_result(Modules { map })
    }

    /// Adds `other`'s modules, replacing same-named ones.
    pub fn extend(&mut self, other: Modules) {
        self.map.extend(other.map);
    }

    pub fn get(&self, name: &str) -> Option<Arc<Module>> {
        self.map.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

fn regexes(list: Option<Vec<S<String>>>, field: &str, sink: &mut Sink) -> Vec<Regex> {
    list.unwrap_or_default()
        .into_iter()
        .filter_map(|r| compile(&r, field, sink))
        .collect()
}

fn compile(r: &S<String>, field: &str, sink: &mut Sink) -> Option<Regex> {
    match Regex::new(&goregex::translate(&r.value)) {
        Ok(re) => Some(re),
        Err(e) => {
            let msg = e.to_string();
            let short = msg.lines().last().unwrap_or("invalid regex").trim();
            sink.push(
                Pos::of(r),
                format!("{field}: invalid regular expression {:?}: {short}", r.value),
            );
            None
        }
    }
}

fn ip_options(p: Option<S<String>>, fallback: Option<bool>, sink: &mut Sink) -> IpOptions {
    let preferred = match p {
        None => IpProtocol::Ip6,
        Some(s) => match s.value.as_str() {
            "ip4" => IpProtocol::Ip4,
            "ip6" | "" => IpProtocol::Ip6,
            other => {
                sink.push(
                    Pos::of(&s),
                    format!("preferred_ip_protocol: must be ip4 or ip6, got {other:?}"),
                );
                IpProtocol::Ip6
            }
        },
    };
    IpOptions {
        preferred,
        fallback: fallback.unwrap_or(true),
    }
}

fn tls_options(t: Option<RawTls>) -> TlsOptions {
    let t = t.unwrap_or_default();
    TlsOptions {
        ca_file: t.ca_file,
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        server_name: t.server_name,
    }
}

fn header_matches(
    list: Option<Vec<RawHeaderMatch>>,
    field: &str,
    sink: &mut Sink,
) -> Vec<HeaderMatch> {
    let mut out = Vec::new();
    for h in list.unwrap_or_default() {
        if h.header.value.is_empty() {
            sink.push(
                Pos::of(&h.header),
                format!("{field}: header name must be set"),
            );
        }
        if let Some(re) = compile(&h.regexp, &format!("{field}.regexp"), sink) {
            out.push(HeaderMatch {
                header: h.header.value,
                regexp: re,
                allow_missing: h.allow_missing.unwrap_or(false),
            });
        }
    }
    out
}

fn resolve_module(name: &str, m: S<RawModule>, sink: &mut Sink) -> Option<Module> {
    let pos = Pos::of(&m);
    let m = m.value;
    let timeout = match &m.timeout {
        None => None,
        Some(t) => match parse_duration(&t.value) {
            Ok(d) => Some(d),
            Err(e) => {
                sink.push(Pos::of(t), format!("timeout: {e}"));
                None
            }
        },
    };
    let Some(kind) = m.prober else {
        sink.push(pos, format!("module {name:?}: prober must be set"));
        return None;
    };
    let prober = match kind.value.as_str() {
        "http" => Prober::Http(resolve_http(m.http.unwrap_or_default(), sink)),
        "tcp" => Prober::Tcp(resolve_tcp(m.tcp.unwrap_or_default(), sink)),
        "dns" => Prober::Dns(resolve_dns(m.dns.unwrap_or_default(), pos, sink)?),
        "icmp" => {
            let i = m.icmp.unwrap_or_default();
            Prober::Icmp(IcmpModule {
                ip: ip_options(i.preferred_ip_protocol, i.ip_protocol_fallback, sink),
            })
        }
        other => {
            sink.push(
                Pos::of(&kind),
                format!("prober: unknown prober {other:?} (http, tcp, dns or icmp)"),
            );
            return None;
        }
    };
    Some(Module {
        name: name.to_string(),
        timeout,
        prober,
    })
}

fn resolve_http(h: RawHttp, sink: &mut Sink) -> HttpModule {
    let mut versions = Vec::new();
    for v in h.valid_http_versions.unwrap_or_default() {
        if !matches!(
            v.value.as_str(),
            "HTTP/1.0" | "HTTP/1.1" | "HTTP/2.0" | "HTTP/2"
        ) {
            sink.push(
                Pos::of(&v),
                format!("valid_http_versions: unknown version {:?}", v.value),
            );
        }
        versions.push(v.value);
    }
    let compression = match &h.compression {
        None => None,
        Some(c) => {
            match c.value.to_ascii_lowercase().as_str() {
                "" => None,
                "gzip" => Some(Compression::Gzip),
                "deflate" => Some(Compression::Deflate),
                "identity" => Some(Compression::Identity),
                other => {
                    sink.push(
                    Pos::of(c),
                    format!("compression: unsupported algorithm {other:?} (gzip, deflate or identity)"),
                );
                    None
                }
            }
        }
    };
    let body_size_limit = match &h.body_size_limit {
        None => 0,
        Some(s) => parse_size(&s.value).unwrap_or_else(|e| {
            sink.push(Pos::of(s), format!("body_size_limit: {e}"));
            0
        }),
    };
    // blackbox 0.23: `follow_redirects` (default true) from the HTTP client
    // config; the older `no_follow_redirects: true` still wins.
    let follow = !h.no_follow_redirects.unwrap_or(false) && h.follow_redirects.unwrap_or(true);
    HttpModule {
        method: h
            .method
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase(),
        headers: h.headers.unwrap_or_default().into_iter().collect(),
        body: h.body,
        valid_status_codes: h.valid_status_codes.unwrap_or_default(),
        valid_http_versions: versions,
        follow_redirects: follow,
        fail_if_ssl: h.fail_if_ssl.unwrap_or(false),
        fail_if_not_ssl: h.fail_if_not_ssl.unwrap_or(false),
        fail_if_body_matches: regexes(
            h.fail_if_body_matches_regexp,
            "fail_if_body_matches_regexp",
            sink,
        ),
        fail_if_body_not_matches: regexes(
            h.fail_if_body_not_matches_regexp,
            "fail_if_body_not_matches_regexp",
            sink,
        ),
        fail_if_header_matches: header_matches(
            h.fail_if_header_matches,
            "fail_if_header_matches",
            sink,
        ),
        fail_if_header_not_matches: header_matches(
            h.fail_if_header_not_matches,
            "fail_if_header_not_matches",
            sink,
        ),
        basic_auth: h
            .basic_auth
            .map(|b| (b.username.unwrap_or_default(), b.password, b.password_file)),
        bearer_token: h.bearer_token,
        tls: tls_options(h.tls_config),
        ip: ip_options(h.preferred_ip_protocol, h.ip_protocol_fallback, sink),
        compression,
        body_size_limit,
    }
}

fn resolve_tcp(t: RawTcp, sink: &mut Sink) -> TcpModule {
    let query_response = t
        .query_response
        .unwrap_or_default()
        .into_iter()
        .map(|q| QueryResponse {
            expect: q
                .expect
                .as_ref()
                .and_then(|e| compile(e, "query_response.expect", sink)),
            send: q.send,
            starttls: q.starttls.unwrap_or(false),
        })
        .collect();
    TcpModule {
        query_response,
        tls: t.tls.unwrap_or(false),
        tls_config: tls_options(t.tls_config),
        ip: ip_options(t.preferred_ip_protocol, t.ip_protocol_fallback, sink),
    }
}

fn rr_validator(v: Option<RawRRValidator>, field: &str, sink: &mut Sink) -> RRValidator {
    let v = v.unwrap_or_default();
    RRValidator {
        fail_if_matches: regexes(
            v.fail_if_matches_regexp,
            &format!("{field}.fail_if_matches_regexp"),
            sink,
        ),
        fail_if_all_match: regexes(
            v.fail_if_all_match_regexp,
            &format!("{field}.fail_if_all_match_regexp"),
            sink,
        ),
        fail_if_not_matches: regexes(
            v.fail_if_not_matches_regexp,
            &format!("{field}.fail_if_not_matches_regexp"),
            sink,
        ),
        fail_if_none_matches: regexes(
            v.fail_if_none_matches_regexp,
            &format!("{field}.fail_if_none_matches_regexp"),
            sink,
        ),
    }
}

fn resolve_dns(d: RawDns, pos: Pos, sink: &mut Sink) -> Option<DnsModule> {
    let Some(name) = d.query_name else {
        sink.push(pos, "dns: query_name must be set");
        return None;
    };
    let query_type = d
        .query_type
        .as_ref()
        .map(|t| t.value.to_ascii_uppercase())
        .unwrap_or_else(|| "ANY".into());
    if let Some(t) = &d.query_type {
        if crate::probe::dns::record_type(&query_type).is_none() {
            sink.push(
                Pos::of(t),
                format!("query_type: unknown record type {:?}", t.value),
            );
        }
    }
    let query_class = d
        .query_class
        .as_ref()
        .map(|t| t.value.to_ascii_uppercase())
        .unwrap_or_else(|| "IN".into());
    if let Some(c) = &d.query_class {
        if crate::probe::dns::dns_class(&query_class).is_none() {
            sink.push(
                Pos::of(c),
                format!("query_class: unknown class {:?}", c.value),
            );
        }
    }
    let mut rcodes = Vec::new();
    for r in d.valid_rcodes.unwrap_or_default() {
        let up = r.value.to_ascii_uppercase();
        if crate::probe::dns::rcode_value(&up).is_none() {
            sink.push(
                Pos::of(&r),
                format!("valid_rcodes: unknown rcode {:?}", r.value),
            );
        }
        rcodes.push(up);
    }
    if rcodes.is_empty() {
        rcodes.push("NOERROR".into());
    }
    let tcp = match &d.transport_protocol {
        None => false,
        Some(t) => match t.value.as_str() {
            "" | "udp" => false,
            "tcp" => true,
            other => {
                sink.push(
                    Pos::of(t),
                    format!("transport_protocol: must be udp or tcp, got {other:?}"),
                );
                false
            }
        },
    };
    Some(DnsModule {
        query_name: name.value,
        query_type,
        query_class,
        valid_rcodes: rcodes,
        validate_answer: rr_validator(d.validate_answer_rrs, "validate_answer_rrs", sink),
        validate_authority: rr_validator(d.validate_authority_rrs, "validate_authority_rrs", sink),
        validate_additional: rr_validator(
            d.validate_additional_rrs,
            "validate_additional_rrs",
            sink,
        ),
        tcp,
        recursion_desired: d.recursion_desired.unwrap_or(true),
        ip: ip_options(d.preferred_ip_protocol, d.ip_protocol_fallback, sink),
    })
}

fn yaml_list<T: std::fmt::Display>(out: &mut String, key: &str, v: &[T]) {
    if v.is_empty() {
        return;
    }
    let items: Vec<String> = v.iter().map(|x| format!("{:?}", x.to_string())).collect();
    out.push_str(&format!("  {key}: [{}]\n", items.join(", ")));
}

fn yaml_ip(out: &mut String, ip: &IpOptions) {
    let p = match ip.preferred {
        IpProtocol::Ip4 => "ip4",
        IpProtocol::Ip6 => "ip6",
    };
    out.push_str(&format!(
        "  preferred_ip_protocol: {p}\n  ip_protocol_fallback: {}\n",
        ip.fallback
    ));
}

fn yaml_tls(out: &mut String, key: &str, t: &TlsOptions) {
    out.push_str(&format!(
        "  {key}:\n    insecure_skip_verify: {}\n",
        t.insecure_skip_verify
    ));
    if let Some(c) = &t.ca_file {
        out.push_str(&format!("    ca_file: {c:?}\n"));
    }
    if let Some(s) = &t.server_name {
        out.push_str(&format!("    server_name: {s:?}\n"));
    }
}

impl Module {
    /// The module with defaults filled in, YAML-shaped, for the
    /// "Module configuration" part of `/probe?debug=true` (secrets left
    /// out).
    pub fn describe(&self) -> String {
        let mut o = format!("prober: {}\n", self.prober.kind());
        if let Some(t) = self.timeout {
            o.push_str(&format!("timeout: {}\n", crate::config::format_duration(t)));
        }
        match &self.prober {
            Prober::Http(h) => {
                o.push_str("http:\n");
                o.push_str(&format!("  method: {}\n", h.method));
                yaml_list(&mut o, "valid_status_codes", &h.valid_status_codes);
                yaml_list(&mut o, "valid_http_versions", &h.valid_http_versions);
                o.push_str(&format!("  follow_redirects: {}\n", h.follow_redirects));
                o.push_str(&format!("  fail_if_ssl: {}\n", h.fail_if_ssl));
                o.push_str(&format!("  fail_if_not_ssl: {}\n", h.fail_if_not_ssl));
                let re = |v: &[Regex]| v.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>();
                yaml_list(
                    &mut o,
                    "fail_if_body_matches_regexp",
                    &re(&h.fail_if_body_matches),
                );
                yaml_list(
                    &mut o,
                    "fail_if_body_not_matches_regexp",
                    &re(&h.fail_if_body_not_matches),
                );
                yaml_tls(&mut o, "tls_config", &h.tls);
                yaml_ip(&mut o, &h.ip);
                if h.body_size_limit > 0 {
                    o.push_str(&format!("  body_size_limit: {}\n", h.body_size_limit));
                }
            }
            Prober::Tcp(t) => {
                o.push_str("tcp:\n");
                yaml_ip(&mut o, &t.ip);
                o.push_str(&format!("  tls: {}\n", t.tls));
                yaml_tls(&mut o, "tls_config", &t.tls_config);
                if !t.query_response.is_empty() {
                    o.push_str("  query_response:\n");
                    for q in &t.query_response {
                        o.push_str("    -");
                        if let Some(e) = &q.expect {
                            o.push_str(&format!(" expect: {:?}", e.as_str()));
                        }
                        if let Some(s) = &q.send {
                            o.push_str(&format!(" send: {s:?}"));
                        }
                        if q.starttls {
                            o.push_str(" starttls: true");
                        }
                        o.push('\n');
                    }
                }
            }
            Prober::Dns(d) => {
                o.push_str("dns:\n");
                yaml_ip(&mut o, &d.ip);
                o.push_str(&format!(
                    "  transport_protocol: {}\n  query_name: {:?}\n  query_type: {}\n  query_class: {}\n  recursion_desired: {}\n",
                    if d.tcp { "tcp" } else { "udp" },
                    d.query_name,
                    d.query_type,
                    d.query_class,
                    d.recursion_desired
                ));
                yaml_list(&mut o, "valid_rcodes", &d.valid_rcodes);
            }
            Prober::Icmp(i) => {
                o.push_str("icmp:\n");
                yaml_ip(&mut o, &i.ip);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let m = Modules::parse(DEFAULT_MODULES, "probes.yml");
        let m = match m {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = m.names().collect();
        for n in [
            "http_2xx",
            "http_post_2xx",
            "tcp_connect",
            "tls_connect",
            "dns_a",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let Some(post) = m.get("http_post_2xx") else {
            panic!("no http_post_2xx")
        };
        match &post.prober {
            Prober::Http(h) => assert_eq!(h.method, "POST"),
            p => panic!("wrong prober {}", p.kind()),
        }
    }

    #[test]
    fn invalid_regex_names_field_and_position() {
        let text = "modules:\n  bad:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n";
        let e = Modules::parse(text, "m.yml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("m.yml:5:"), "{e}");
        assert!(e.contains("fail_if_body_matches_regexp"), "{e}");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let text = "modules:\n  bad:\n    prober: http\n    http:\n      metod: GET\n";
        let e = Modules::parse(text, "m.yml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("metod"), "{e}");
        assert!(e.contains("m.yml:5"), "{e}");
    }

    #[test]
    fn unknown_prober_is_an_error() {
        let text = "modules:\n  bad:\n    prober: smtp\n";
        let e = Modules::parse(text, "m.yml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("m.yml:3:13") && e.contains("smtp"), "{e}");
    }

    #[test]
    fn user_file_extends_defaults() {
        let mut m = Modules::defaults();
        let user = Modules::parse(
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 3s\n    http:\n      method: HEAD\n  mine:\n    prober: tcp\n",
            "u.yml",
        );
        let Ok(user) = user else { panic!("user file") };
        m.extend(user);
        let Some(h) = m.get("http_2xx") else {
            panic!("no http_2xx")
        };
        assert_eq!(h.timeout, Some(Duration::from_secs(3)));
        assert!(m.get("mine").is_some());
        assert!(m.get("tcp_connect").is_some());
    }
}
