//! The whole configuration file: `prometheus.yml`'s shape plus klaxon's own
//! sections, loaded into one [`Config`] that the wiring (`app`) hands to
//! each stage.
//!
//! This is the aggregator, and it sits above the stages: it names every
//! stage's section type (`scrape::config`, `notifier::config`,
//! `notify::config`, `store::config`, `probe::config`, ...) and calls each
//! one's resolver. The pieces those resolvers share (positions and errors,
//! durations and sizes, HTTP client settings and the client built from
//! them, secrets, TLS, relabeling, the `global:` defaults) are the kit in
//! `crate::config`, which imports no stage, so a stage imports the kit and
//! never this module.
//!
//! Loading is two steps. The YAML is deserialized into position-carrying raw
//! structs (`raw`), which catches syntax errors, wrong types and unknown
//! keys. Then every semantic rule Prometheus applies is checked, collecting
//! all errors with their positions, and the raw structs are turned into the
//! resolved types (defaults filled, globals inherited, regexes compiled).
//! Callers never see positions or optional-ness they would have to
//! re-interpret.

pub mod check;
pub mod cli;
pub(crate) mod raw;

use crate::config::errors::{from_yaml_error, Pos, Sink};
use crate::config::{
    join_dir, null_entry_message, resolve_global, structural_errors, tidy_yaml_message,
    yaml_options, ConfigErrors, GlobalConfig,
};
use crate::notifier::config::AlertingConfig;
use crate::scrape::config::ScrapeConfig;
use crate::store::config::StorageConfig;
use raw::RawConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loaded, validated configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Globs, joined to the config file's directory when relative.
    pub rule_files: Vec<String>,
    pub alerting: AlertingConfig,
    /// `remote_write:` entries (see `remote::config`).
    pub remote_write: Vec<crate::remote::config::RemoteWriteConfig>,
    /// Accepted and kept, but not acted on yet.
    pub remote_read: Option<serde_json::Value>,
    /// `otlp:` (the OTLP receiver's translation, see `otlp::config`).
    pub otlp: crate::otlp::OtlpConfig,
    pub storage: StorageConfig,
    /// Built-in exporters run as in-process scrape jobs (`exporters:`).
    pub exporters: crate::exporters::config::ExportersConfig,
    /// `auth:` (RBAC, rate limits); `None` when the section is absent.
    pub auth: Option<crate::ops::config::AuthConfig>,
    /// `command_center:` (heartbeat, signed commands).
    pub command_center: Option<crate::ops::config::CommandCenterConfig>,
    /// Scheduled probes and the probe modules (`probes:`).
    pub probes: crate::probe::config::ProbesSection,
    /// `notify:` (or the `--notify-config` file set by the caller).
    pub notify: Option<std::sync::Arc<crate::notify::config::NotifyConfig>>,
    /// `rule_evaluation:` (datasource mode, `for` restore settings).
    pub rule_evaluation: crate::rules::datasource::config::RuleEvaluationConfig,
    /// `autoheal:` (remediation rules, receiver circuit breaker).
    pub autoheal: Option<crate::ops::autoheal::config::AutohealConfig>,
    /// Query limits from the command line (`--query.*`), not the file.
    pub query: crate::promql::QuerySettings,
    pub source_path: Option<PathBuf>,
    /// True for [`embedded_default`]: its `rule_files` then name the rule
    /// files compiled into the binary, not files on disk.
    pub embedded: bool,
    /// HTTP server limits: set from the `--web.*` flags by the binary, not
    /// from the file (defaults otherwise).
    pub web: ServeOptions,
    source_text: String,
}

impl Config {
    /// The configuration text as loaded, for `/api/v1/status/config`.
    ///
    /// Verbatim, secrets included: what is served goes through
    /// [`redact_secrets`].
    pub fn to_yaml(&self) -> &str {
        &self.source_text
    }

    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }
}

/// The HTTP server's limits (`--web.*` flags; `api::serve` runs with them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Time allowed for a request's headers, counted from the connection's
    /// accept or its previous response (idle keep-alive included).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Prometheus' `--web.max-connections` default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Ample for any client's headers; an idle keep-alive client reconnects.
/// A slow-header or idle socket holds its slot no longer than this.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Reads and validates a configuration file; relative file references in it
/// are resolved against the file's directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let text = crate::config::read_config_file(path, "config")?;
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.to_path_buf()
        }
    });
    let mut cfg = load_with_dir(&text, &origin, dir.as_deref())?;
    cfg.source_path = Some(path.to_path_buf());
    Ok(cfg)
}

/// Validates configuration text; `origin` names it in error messages.
/// Relative file references are kept as written.
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    load_with_dir(text, origin, None)
}

fn load_with_dir(text: &str, origin: &str, dir: Option<&Path>) -> Result<Config, ConfigErrors> {
    let mut raw: RawConfig = if is_blank_yaml(text) {
        // An empty file is a valid, all-defaults configuration upstream.
        RawConfig::default()
    } else {
        let parsed: Option<RawConfig> = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| {
            ConfigErrors(structural_errors(
                text,
                null_entry_message(text, tidy_yaml_message(from_yaml_error(origin, &e))),
                |t| {
                    serde_saphyr::from_str_with_options::<Option<RawConfig>>(t, yaml_options())
                        .map(drop)
                        .map_err(|e| tidy_yaml_message(from_yaml_error(origin, &e)))
                },
            ))
        })?;
        parsed.unwrap_or_default()
    };
    let mut sink = Sink::new(origin);
    let notify = raw.notify.take().map(|n| {
        std::sync::Arc::new(crate::notify::config::resolve_section(
            n, text, dir, &mut sink,
        ))
    });
    let cfg = resolve(raw, dir, &mut sink);
    let cfg = Config {
        notify,
        source_text: text.to_string(),
        ..cfg
    };
    sink.into_result(cfg)
}

/// True for text with nothing but whitespace, comments and document markers.
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

fn resolve(raw: RawConfig, dir: Option<&Path>, sink: &mut Sink) -> Config {
    let global = resolve_global(raw.global.unwrap_or_default(), sink);

    let mut rule_files = Vec::new();
    for rf in raw.rule_files.iter().flatten() {
        if !crate::config::common::is_single_star_glob(&rf.value) {
            sink.push(
                Pos::of(rf),
                format!("invalid rule file path {:?}", rf.value),
            );
            continue;
        }
        rule_files.push(join_dir(dir, &rf.value));
    }

    let scrape_configs = crate::scrape::config::resolve_scrape_configs(
        raw.scrape_configs.as_deref().unwrap_or(&[]),
        &global,
        dir,
        sink,
    );

    let alerting = raw
        .alerting
        .map(|a| crate::notifier::config::resolve(a, dir, sink))
        .unwrap_or_default();

    if let Some(v) = &raw.remote_read {
        tracing::warn!(
            file = sink.file(),
            line = Pos::of(v).line,
            "remote_read is accepted but not used yet by klaxon"
        );
    }
    let remote_write = crate::remote::config::resolve(raw.remote_write, dir, sink);

    let storage = crate::store::config::resolve_storage(raw.storage, dir, sink);

    let jobs: Vec<&str> = scrape_configs.iter().map(|s| s.job_name.as_str()).collect();
    let exporters = crate::exporters::config::resolve(raw.exporters, dir, &jobs, sink);

    let probes =
        crate::probe::config::resolve_section(raw.probes, dir, global.scrape_interval, sink);
    let otlp = crate::otlp::config::resolve(
        raw.otlp,
        global.names.validation == crate::config::names::NameValidation::Legacy,
        sink,
    );
    Config {
        probes,
        global,
        scrape_configs,
        rule_files,
        alerting,
        remote_write,
        remote_read: raw.remote_read.map(|v| v.value),
        otlp,
        storage,
        exporters,
        auth: raw
            .auth
            .map(|a| crate::ops::config::resolve_auth(a, dir, sink)),
        command_center: raw
            .command_center
            .map(|c| crate::ops::config::resolve_command_center(c, dir, sink)),
        notify: None,
        rule_evaluation: crate::rules::datasource::config::resolve(raw.rule_evaluation, dir, sink),
        autoheal: raw
            .autoheal
            .map(|a| crate::ops::autoheal::config::resolve(a, dir, sink)),
        query: Default::default(),
        source_path: None,
        embedded: false,
        web: Default::default(),
        source_text: String::new(),
    }
}

/// The text of the built-in configuration, with a placeholder target.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yml");
const LISTEN_PLACEHOLDER: &str = "__KLAXON_LISTEN_ADDRESS__";

/// The built-in configuration: klaxon scraping itself at `listen`
/// (`host:port`, as decided by the CLI).
/// [`embedded_default`] for a server under a route prefix
/// (`--web.route-prefix`): the self-scrape reads `{prefix}/metrics`.
pub fn embedded_default_under(listen: &str, route_prefix: &str) -> Config {
    let mut c = embedded_default(listen);
    let prefix = route_prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        for sc in &mut c.scrape_configs {
            if sc.static_configs.iter().any(|g| g.targets == [listen]) {
                sc.metrics_path = format!("{prefix}{}", sc.metrics_path);
            }
        }
    }
    c
}

pub fn embedded_default(listen: &str) -> Config {
    // Substituting into the text keeps `to_yaml()` truthful. If the address
    // would break the YAML (quotes, newlines), fall back to setting the
    // target directly on the parsed placeholder config.
    if let Ok(c) = load_str(
        &DEFAULT_CONFIG_YAML.replace(LISTEN_PLACEHOLDER, listen),
        "<default>",
    ) {
        if c.scrape_configs
            .first()
            .and_then(|s| s.static_configs.first())
            .is_some_and(|g| g.targets == [listen])
        {
            return Config {
                embedded: true,
                ..c
            };
        }
    }
    let mut c = load_str(DEFAULT_CONFIG_YAML, "<default>").unwrap_or_default();
    c.embedded = true;
    for sc in &mut c.scrape_configs {
        for g in &mut sc.static_configs {
            for t in &mut g.targets {
                if t == LISTEN_PLACEHOLDER {
                    *t = listen.to_string();
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod names_tests;

#[cfg(test)]
mod body_limit_tests {
    #[test]
    fn decompressed_bodies_are_limited_unless_told_otherwise() {
        let c = super::load_str("scrape_configs: [{job_name: a}]\n", "t.yml").unwrap();
        assert_eq!(
            c.global.body_size_limit,
            crate::config::DEFAULT_BODY_SIZE_LIMIT
        );
        assert_eq!(
            c.scrape_configs[0].body_size_limit,
            crate::config::DEFAULT_BODY_SIZE_LIMIT
        );
        let c = super::load_str(
            "global: {body_size_limit: 0}\nscrape_configs: [{job_name: a}, {job_name: b, body_size_limit: 1KB}]\n",
            "t.yml",
        )
        .unwrap();
        assert_eq!(c.scrape_configs[0].body_size_limit, 0);
        assert_eq!(c.scrape_configs[1].body_size_limit, 1024);
    }
}

#[cfg(test)]
mod structural_tests {
    use super::load_str;

    /// Every block declared with the kit's inline HTTP client fields keeps
    /// serde's unknown-field error at its position, and knows the shared
    /// fields and the unsupported ones.
    #[test]
    fn blocks_with_inline_http_client_settings_reject_unknown_keys() {
        let cases = [
            ("scrape_configs:\n  - job_name: a\n    tls_confg: {}\n", "x.yml:3:5: unknown field `tls_confg`, did you mean `tls_config`?"),
            ("remote_write:\n  - url: http://h/w\n    bearer_tokn: t\n", "x.yml:3:5: unknown field `bearer_tokn`, did you mean `bearer_token`?"),
            ("alerting:\n  alertmanagers:\n    - enable_htp2: true\n", "x.yml:3:7: unknown field `enable_htp2`, did you mean `enable_http2`?"),
            ("rule_evaluation:\n  datasource:\n    url: http://h\n    basic_aut: {}\n", "x.yml:4:5: unknown field `basic_aut`, did you mean `basic_auth`?"),
            ("scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: http://h\n        follow_redirect: true\n", "x.yml:5:9: unknown field `follow_redirect`, did you mean `follow_redirects`?"),
        ];
        for (y, want) in cases {
            let e = load_str(y, "x.yml").unwrap_err().to_string();
            assert!(e.contains(want), "{y}: {e}");
        }
        let e = load_str(
            "remote_write:\n  - url: http://h/w\n    proxy_url: http://p\n",
            "x.yml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.yml:3:16: remote_write proxy_url is not supported"),
            "{e}"
        );
        let c = load_str(
            "rule_evaluation:\n  datasource:\n    url: http://h\n    bearer_token: t\n    enable_http2: false\n",
            "x.yml",
        )
        .unwrap();
        let ds = c.rule_evaluation.datasource.expect("datasource");
        assert!(!ds.http.enable_http2);
        assert_eq!(ds.http.authorization.expect("bearer").kind, "Bearer");
    }

    #[test]
    fn every_structural_error_at_once_with_suggestions() {
        let y = "global:\n  scrape_intervl: 15s\n  evaluation_interval: [1]\nscrape_configs:\n  - job_name: a\n    scrape_timeoutt: 5s\n    static_configs:\n      - targets: ['h:1']\n        lables: {a: b}\n  - job_name: b\n    metrics_path: 3\n    bogus_field_name: 1\n";
        let e = load_str(y, "x.yml").unwrap_err();
        let got: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        let want = [
            "x.yml:2:3: unknown field `scrape_intervl`, did you mean `scrape_interval`?",
            "x.yml:3:24: expected string scalar",
            "x.yml:6:5: unknown field `scrape_timeoutt`, did you mean `scrape_timeout`?",
            "x.yml:9:9: unknown field `lables`, did you mean `labels`?",
            "x.yml:12:5: unknown field `bogus_field_name`",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert!(
            !got.iter()
                .any(|g| g.contains("bogus_field_name`, did you mean")),
            "{got:#?}"
        );
    }
}

// Each stage names what it reads from the file; the whole file converts
// into it here, so the stages never import this module.

impl<'a> From<&'a Config> for crate::rules::manager::RulesSection<'a> {
    fn from(c: &'a Config) -> Self {
        crate::rules::manager::RulesSection {
            rule_files: &c.rule_files,
            global: &c.global,
            embedded: c.embedded,
        }
    }
}

impl<'a> From<&'a Config> for crate::notifier::NotifierSection<'a> {
    fn from(c: &'a Config) -> Self {
        crate::notifier::NotifierSection {
            alerting: &c.alerting,
            global: &c.global,
        }
    }
}

impl<'a> From<&'a Config> for crate::exporters::ExportersSection<'a> {
    fn from(c: &'a Config) -> Self {
        crate::exporters::ExportersSection {
            exporters: &c.exporters,
            global: &c.global,
        }
    }
}

#[cfg(test)]
mod section_tests {
    #[test]
    fn the_embedded_default_loads_the_bundled_rules_not_files_on_disk() {
        let cfg = super::embedded_default("127.0.0.1:9470");
        assert!(cfg.embedded);
        assert!(crate::rules::manager::embedded_sources()
            .iter()
            .all(|(n, _)| n.ends_with(".yml") || n.ends_with(".yaml")));
        // Exactly the bundled files' groups, whatever is bundled (an empty
        // folder included), even from a directory without those folders.
        let m = crate::rules::manager::RuleManager::load(&cfg, "http://x").unwrap();
        let got: Vec<String> = m.groups().iter().map(|g| g.lock().key()).collect();
        let mut want = Vec::new();
        for (name, text) in crate::rules::manager::embedded_sources() {
            let rf = crate::rules::file::parse_rule_file(
                name,
                text.as_bytes(),
                crate::rules::file::Dialect::Prometheus3,
            )
            .unwrap();
            want.extend(rf.groups.iter().map(|g| format!("{name};{}", g.name)));
        }
        want.sort();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, want);
    }
}

/// `exporters:` against the rest of the file (a job name taken by a
/// scrape config), through the whole-file loader.
#[cfg(test)]
mod exporters_tests {
    use crate::settings::load_str;
    use std::time::Duration;

    #[test]
    fn full_section_resolves_with_defaults() {
        let c = load_str(
            "exporters:\n  host: {instance: h1, scrape_interval: 5s}\n  postgres:\n    dsns: ['host=127.0.0.1 user=m password=pw sslmode=disable']\n    query_timeout: 2s\n    exclude_databases: [a]\n    statements: {limit: 5, include_query: true}\n",
            "e.yml",
        )
        .unwrap();
        let h = c.exporters.host.unwrap();
        assert_eq!(h.instance.as_deref(), Some("h1"));
        assert_eq!(h.scrape_interval, Some(Duration::from_secs(5)));
        let p = c.exporters.postgres.unwrap();
        assert_eq!(p.dsns.len(), 1);
        assert_eq!(p.query_timeout, Duration::from_secs(2));
        assert_eq!(p.exclude_databases, ["a"]);
        assert_eq!(p.statements.limit, 5);
        assert!(p.statements.include_query && p.statements.enabled);
        assert!(!format!("{p:?}").contains("pw"), "Debug shows the DSN");
    }

    #[test]
    fn errors_name_their_position_and_never_the_dsn() {
        let e = load_str(
            "scrape_configs:\n  - job_name: host\nexporters:\n  host: {}\n  postgres:\n    dsns:\n      - postgresql://u:hunter2@h/db?sslmode=require\n    query_timeout: soon\n    bogus: 1\n",
            "e.yml",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("bogus"), "{s}");
        let e = load_str(
            "scrape_configs:\n  - job_name: host\nexporters:\n  host: {}\n  postgres:\n    dsns:\n      - postgresql://u:hunter2@h/db?sslmode=require\n    query_timeout: soon\n",
            "e.yml",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(!s.contains("hunter2"), "{s}");
        let lines: Vec<(usize, &str)> = e
            .errors()
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 4 && m.contains("already has")),
            "{s}"
        );
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == 7 && m.contains("sslmode=require")),
            "{s}"
        );
        assert!(lines.iter().any(|(l, _)| *l == 8), "{s}");
    }

    #[test]
    fn disabled_exporters_are_absent() {
        let c = load_str(
            "exporters:\n  host: {enabled: false}\n  postgres: {enabled: false}\n",
            "e.yml",
        )
        .unwrap();
        assert_eq!(c.exporters, Default::default());
    }
}
