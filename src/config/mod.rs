//! Configuration: a `prometheus.yml`-shaped file, plus klaxon's own keys
//! (`storage`), loaded into plain resolved values.
//!
//! Loading is two steps. The YAML is deserialized into position-carrying raw
//! structs (`raw`), which catches syntax errors, wrong types and unknown
//! keys. Then every semantic rule Prometheus applies is checked, collecting
//! all errors with their positions, and the raw structs are turned into the
//! resolved types below (defaults filled, globals inherited, regexes
//! compiled). Callers never see positions or optional-ness they would have to
//! re-interpret.

pub mod alerting;
pub mod check;
pub mod duration;
pub mod errors;
pub mod file_sd;
pub mod goregex;
pub(crate) mod raw;
pub mod redact;
pub mod relabel;
pub mod scrape;

pub use alerting::{AlertingConfig, AlertmanagerConfig};
pub use duration::{format_duration, parse_duration, parse_size};
pub use errors::{ConfigError, ConfigErrors};
pub use file_sd::{parse_file_sd, parse_file_sd_str, parse_json_groups, FileSdError, TargetGroup};
pub use redact::redact_secrets;
pub use relabel::{Action, RelabelConfig, RelabelRegex};
pub use scrape::{
    Authorization, BasicAuth, FileSdConfig, HttpClientConfig, Scheme, ScrapeConfig, ScrapeProtocol,
    Secret, TlsConfig, TlsVersion,
};

use crate::model::Labels;
use errors::{from_yaml_error, Pos, Sink};
use raw::RawConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings under `global:`, defaults as in Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// `query_log_file`: every API query appended as one JSON line, in
    /// Prometheus' query log format. Relative to the working directory.
    pub query_log_file: Option<PathBuf>,
}

/// `body_size_limit` when the config sets none: the most a scrape body may
/// hold after decompression (Prometheus has no limit by default; one
/// endless body or gzip bomb would then take all memory). Larger
/// exporters set their own; `0` written explicitly means no limit.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 128 << 20;

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Labels::empty(),
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            query_log_file: None,
        }
    }
}

/// klaxon-only `storage:` section: where the head is persisted and for how
/// long samples are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// As written (relative paths are relative to the working directory,
    /// like Prometheus' `--storage.tsdb.path`).
    pub path: PathBuf,
    pub retention: Duration,
    /// Size limit over blocks, WAL and head chunks (`None`: no limit).
    pub retention_size: Option<u64>,
    /// The head's block range: the head is compacted into blocks of this
    /// length (Prometheus' 2 h default).
    pub min_block_duration: Duration,
    /// Backend (sqlite or postgres) and HA settings.
    pub db: crate::store::config::DbConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./data"),
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_size: None,
            min_block_duration: Duration::from_secs(2 * 3600),
            db: Default::default(),
        }
    }
}

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
    pub storage: StorageConfig,
    /// Built-in exporters run as in-process scrape jobs (`exporters:`).
    pub exporters: crate::exporters::config::ExportersConfig,
    /// `auth:` (RBAC, rate limits); `None` when the section is absent.
    pub auth: Option<crate::ops::config::AuthConfig>,
    /// `command_center:` (heartbeat, signed commands).
    pub command_center: Option<crate::ops::config::CommandCenterConfig>,
    /// Scheduled probes and the probe modules (`probes:`).
    pub probes: crate::probe::schedule::ProbesSection,
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
    pub web: crate::api::serve::ServeOptions,
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

/// Joins a relative path to the config file's directory, as Prometheus does
/// for every file reference (absolute paths and an unknown dir are kept).
pub(crate) fn join_dir(dir: Option<&Path>, p: &str) -> String {
    match dir {
        Some(d) if !p.is_empty() && !Path::new(p).is_absolute() => {
            d.join(p).to_string_lossy().into_owned()
        }
        _ => p.to_string(),
    }
}

/// Reads and validates a configuration file; relative file references in it
/// are resolved against the file's directory.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: origin.clone(),
            line: 0,
            column: 0,
            message: format!("reading config: {e}"),
        }])
    })?;
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

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // Prometheus (yaml.v2 UnmarshalStrict) rejects duplicate keys; a
        // silently overwritten key is exactly the bug we want to surface.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    }
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

/// Every structural error (unknown field, wrong type, duplicate key) of a
/// text whose first one is `first`, not only the first: the offending entry
/// is blanked out (line numbers kept) and the text parsed again, until it
/// parses or the next error is of another kind (a syntax error, or one the
/// blanking caused, such as a missing field).
pub(crate) fn structural_errors(
    text: &str,
    first: ConfigError,
    parse: impl Fn(&str) -> Result<(), ConfigError>,
) -> Vec<ConfigError> {
    const MAX: usize = 100;
    let structural = |e: &ConfigError| {
        e.line > 0
            && (e.message.starts_with("unknown field")
                || e.message.starts_with("invalid type")
                || e.message.starts_with("invalid value")
                || e.message.starts_with("expected ")
                || e.message.starts_with("duplicate key"))
    };
    let mut errors = vec![first];
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    while errors.len() < MAX {
        let Some(last) = errors.last().filter(|e| structural(e)) else {
            break;
        };
        if !blank_entry(&mut lines, last.line, last.column) {
            break;
        }
        match parse(&lines.join("\n")) {
            Ok(()) => break,
            Err(e) if structural(&e) && !errors.iter().any(|x| x.line == e.line) => errors.push(e),
            Err(_) => break,
        }
    }
    errors
}

/// Blanks the mapping entry at 1-based `line`: its key (keeping a list
/// item's `- `) and every following line indented deeper than the key.
fn blank_entry(lines: &mut [String], line: usize, column: usize) -> bool {
    let Some(l) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return false;
    };
    // Where the key starts: after indentation and any `- ` markers.
    let mut key_col = 0;
    let bytes = l.as_bytes();
    while key_col < bytes.len() {
        match bytes[key_col] {
            b' ' => key_col += 1,
            b'-' if bytes.get(key_col + 1).is_some_and(|b| *b == b' ') => key_col += 2,
            _ => break,
        }
    }
    let key_col = key_col.min(column.saturating_sub(1));
    let head = l.get(..key_col).unwrap_or("").to_string();
    if let Some(x) = lines.get_mut(line - 1) {
        *x = head;
    }
    for x in lines.iter_mut().skip(line) {
        let indent = x.len() - x.trim_start().len();
        if x.trim().is_empty() || x.trim_start().starts_with('#') {
            continue;
        }
        if indent <= key_col {
            break;
        }
        x.clear();
    }
    true
}

/// An empty list entry (`- ` with nothing after it) where a section is
/// expected gets Prometheus' text naming the section instead of the YAML
/// library's "expected mapping start".
fn null_entry_message(text: &str, mut e: ConfigError) -> ConfigError {
    if !e.message.starts_with("expected mapping") || e.line == 0 {
        return e;
    }
    // The nearest key above the entry, indented less than its `-`.
    let lines: Vec<&str> = text.lines().collect();
    let Some(entry) = lines.get(e.line - 1) else {
        return e;
    };
    let indent = entry.len() - entry.trim_start().len();
    let parent = lines[..e.line - 1]
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .find(|l| l.len() - l.trim_start().len() < indent || l.trim_end().ends_with(':'))
        .and_then(|l| l.trim().trim_start_matches("- ").split(':').next())
        .unwrap_or("");
    let text = match parent {
        "scrape_configs" => "empty or null scrape config section",
        "static_configs" => "empty or null section in static_configs",
        "relabel_configs" => "empty or null target relabeling rule in scrape config",
        "metric_relabel_configs" => "empty or null metric relabeling rule in scrape config",
        "alert_relabel_configs" => "empty or null alert relabeling rule",
        "remote_write" => "empty or null remote write config section",
        "write_relabel_configs" => "empty or null relabeling rule in remote write config",
        "alertmanagers" => "empty or null Alertmanager config",
        _ => return e,
    };
    e.message = text.to_string();
    e
}

/// The known name closest to `unknown`, when it is close enough to be a
/// typo (edit distance at most a third of its length, at least 1).
pub(crate) fn did_you_mean<'a>(
    unknown: &str,
    known: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).max(1);
    known
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde lists every expected field after an unknown one; for a scrape
/// config that is thirty names. Keep the message short and, for service
/// discovery mechanisms klaxon lacks, say so plainly.
pub(crate) fn tidy_yaml_message(mut e: ConfigError) -> ConfigError {
    if let Some(rest) = e.message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        e.message = format!("duplicate key {key:?}");
        return e;
    }
    if let Some(rest) = e.message.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            let field = &rest[..end];
            // serde lists the expected names: `..., expected one of a, b`
            // (or `expected a`), with or without backticks.
            let tail = &rest[end + 1..];
            let names = tail
                .split_once("expected one of ")
                .or_else(|| tail.split_once("expected "))
                .map_or("", |(_, n)| n);
            let expected = names
                .split(", ")
                .map(|k| k.trim().trim_matches('`'))
                .filter(|k| !k.is_empty());
            e.message = if crate::discovery::config::UNSUPPORTED_FIELDS.contains(&field) {
                crate::discovery::config::unsupported_message(field)
            } else if let Some(k) = did_you_mean(field, expected) {
                format!("unknown field `{field}`, did you mean `{k}`?")
            } else {
                format!("unknown field `{field}`")
            };
        }
    }
    e
}

fn resolve(raw: RawConfig, dir: Option<&Path>, sink: &mut Sink) -> Config {
    let global = resolve_global(raw.global.unwrap_or_default(), sink);

    let mut rule_files = Vec::new();
    for rf in raw.rule_files.iter().flatten() {
        if !scrape::is_single_star_glob(&rf.value) {
            sink.push(
                Pos::of(rf),
                format!("invalid rule file path {:?}", rf.value),
            );
            continue;
        }
        rule_files.push(join_dir(dir, &rf.value));
    }

    let scrape_configs = scrape::resolve_scrape_configs(
        raw.scrape_configs.as_deref().unwrap_or(&[]),
        &global,
        dir,
        sink,
    );

    let alerting = raw
        .alerting
        .map(|a| alerting::resolve(a, dir, sink))
        .unwrap_or_default();

    if let Some(v) = &raw.remote_read {
        tracing::warn!(
            file = sink.file(),
            line = Pos::of(v).line,
            "remote_read is accepted but not used yet by klaxon"
        );
    }
    let remote_write = crate::remote::config::resolve(raw.remote_write, dir, sink);

    let storage = match raw.storage {
        None => StorageConfig::default(),
        Some(s) => {
            for (name, v) in [("tsdb", &s.tsdb), ("exemplars", &s.exemplars)] {
                if let Some(v) = v {
                    tracing::warn!(
                        file = sink.file(),
                        line = Pos::of(v).line,
                        "storage.{name} is Prometheus-specific and ignored by klaxon"
                    );
                }
            }
            let d = StorageConfig::default();
            StorageConfig {
                path: s
                    .path
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or(d.path),
                retention: scrape::opt_duration(&s.retention, sink).unwrap_or(d.retention),
                retention_size: scrape::opt_size(&s.retention_size, sink).filter(|n| *n > 0),
                min_block_duration: scrape::opt_duration(&s.min_block_duration, sink)
                    .unwrap_or(d.min_block_duration),
                db: crate::store::config::resolve(
                    crate::store::config::RawDb {
                        backend: &s.backend,
                        dsn: &s.dsn,
                        dsn_file: &s.dsn_file,
                        ha: &s.ha,
                    },
                    dir.unwrap_or(Path::new(".")),
                    sink,
                ),
            }
        }
    };

    let jobs: Vec<&str> = scrape_configs.iter().map(|s| s.job_name.as_str()).collect();
    let exporters = crate::exporters::config::resolve(raw.exporters, dir, &jobs, sink);

    let probes =
        crate::probe::schedule::resolve_section(raw.probes, dir, global.scrape_interval, sink);
    Config {
        probes,
        global,
        scrape_configs,
        rule_files,
        alerting,
        remote_write,
        remote_read: raw.remote_read.map(|v| v.value),
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

fn resolve_global(g: raw::RawGlobal, sink: &mut Sink) -> GlobalConfig {
    let d = GlobalConfig::default();
    let scrape_interval =
        scrape::opt_duration(&g.scrape_interval, sink).unwrap_or(d.scrape_interval);
    let scrape_timeout = match scrape::opt_duration(&g.scrape_timeout, sink) {
        Some(t) => {
            if t > scrape_interval {
                if let Some(v) = &g.scrape_timeout {
                    sink.push(
                        Pos::of(v),
                        "global scrape timeout greater than scrape interval",
                    );
                }
            }
            t
        }
        // The default timeout must not exceed a short global interval.
        None => d.scrape_timeout.min(scrape_interval),
    };
    let mut external = Vec::new();
    if let Some(m) = &g.external_labels {
        for (k, _) in &m.0 {
            if k.value == "__name__" {
                sink.push(
                    Pos::of(k),
                    format!("{:?} is not a valid external label name", k.value),
                );
            }
        }
        external.extend(scrape::resolve_label_map(m, sink));
    }
    let scrape_protocols = g
        .scrape_protocols
        .as_ref()
        .and_then(|p| scrape::resolve_protocols(p, sink))
        .unwrap_or(d.scrape_protocols);
    GlobalConfig {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: scrape::opt_duration(&g.evaluation_interval, sink)
            .unwrap_or(d.evaluation_interval),
        external_labels: Labels::from_pairs(external),
        scrape_protocols,
        body_size_limit: scrape::opt_size(&g.body_size_limit, sink)
            .unwrap_or(DEFAULT_BODY_SIZE_LIMIT),
        sample_limit: g.sample_limit.unwrap_or(0),
        target_limit: g.target_limit.unwrap_or(0),
        label_limit: g.label_limit.unwrap_or(0),
        label_name_length_limit: g.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: g.label_value_length_limit.unwrap_or(0),
        query_log_file: g
            .query_log_file
            .as_ref()
            .map(|q| q.value.trim())
            .filter(|q| !q.is_empty())
            .map(PathBuf::from),
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
mod body_limit_tests {
    #[test]
    fn decompressed_bodies_are_limited_unless_told_otherwise() {
        let c = super::load_str("scrape_configs: [{job_name: a}]\n", "t.yml").unwrap();
        assert_eq!(c.global.body_size_limit, super::DEFAULT_BODY_SIZE_LIMIT);
        assert_eq!(
            c.scrape_configs[0].body_size_limit,
            super::DEFAULT_BODY_SIZE_LIMIT
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

    #[test]
    fn did_you_mean_only_for_close_names() {
        let known = ["scrape_interval", "scrape_timeout", "job_name"];
        assert_eq!(
            super::did_you_mean("scrape_intervall", known.iter().copied()),
            Some("scrape_interval")
        );
        assert_eq!(
            super::did_you_mean("jb_name", known.iter().copied()),
            Some("job_name")
        );
        assert_eq!(super::did_you_mean("tls", known.iter().copied()), None);
    }
}
