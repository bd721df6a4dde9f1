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

pub mod duration;
pub mod errors;
pub mod file_sd;
pub mod goregex;
pub(crate) mod raw;
pub mod relabel;
pub mod scrape;

pub use duration::{format_duration, parse_duration, parse_size};
pub use errors::{ConfigError, ConfigErrors};
pub use file_sd::{parse_file_sd, parse_file_sd_str, parse_json_groups, FileSdError, TargetGroup};
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
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Labels::empty(),
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            body_size_limit: 0,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
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
    /// Backend (sqlite or postgres) and HA settings.
    pub db: crate::store::config::DbConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./data"),
            retention: Duration::from_secs(6 * 3600),
            db: Default::default(),
        }
    }
}

/// `alerting:`. Alert relabeling is validated now; the Alertmanager list is
/// kept as parsed YAML for the notifier to interpret.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<serde_json::Value>,
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
    pub source_path: Option<PathBuf>,
    /// True for [`embedded_default`]: its `rule_files` then name the rule
    /// files compiled into the binary, not files on disk.
    pub embedded: bool,
    source_text: String,
}

impl Config {
    /// The configuration text as loaded, for `/api/v1/status/config`.
    ///
    /// Returned verbatim rather than re-serialized so comments and the
    /// user's layout survive. Note: unlike Prometheus this does not mask
    /// secrets; callers exposing it over HTTP must decide whether to.
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
        let parsed: Option<RawConfig> =
            serde_saphyr::from_str_with_options(text, yaml_options())
                .map_err(|e| ConfigErrors(vec![tidy_yaml_message(from_yaml_error(origin, &e))]))?;
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
            e.message = if crate::discovery::config::UNSUPPORTED_FIELDS.contains(&field) {
                crate::discovery::config::unsupported_message(field)
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
        .map(|a| AlertingConfig {
            alert_relabel_configs: relabel::resolve_relabel_configs(
                a.alert_relabel_configs.as_deref().unwrap_or(&[]),
                sink,
            ),
            alertmanagers: a.alertmanagers.unwrap_or_default(),
        })
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
        source_path: None,
        embedded: false,
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
    if let Some(q) = &g.query_log_file {
        tracing::warn!(
            file = sink.file(),
            line = Pos::of(q).line,
            "global.query_log_file is not supported by klaxon and is ignored"
        );
    }
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
        body_size_limit: scrape::opt_size(&g.body_size_limit, sink).unwrap_or(0),
        sample_limit: g.sample_limit.unwrap_or(0),
        target_limit: g.target_limit.unwrap_or(0),
        label_limit: g.label_limit.unwrap_or(0),
        label_name_length_limit: g.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: g.label_value_length_limit.unwrap_or(0),
    }
}

/// The text of the built-in configuration, with a placeholder target.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yml");
const LISTEN_PLACEHOLDER: &str = "__KLAXON_LISTEN_ADDRESS__";

/// The built-in configuration: klaxon scraping itself at `listen`
/// (`host:port`, as decided by the CLI).
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

/// Keys whose values are secrets wherever they appear (Prometheus' and
/// Alertmanager's `Secret` fields).
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "key",
    "client_secret",
    "auth_password",
    "auth_secret",
    "routing_key",
    "service_key",
    "api_key",
    "api_url",
    "slack_api_url",
    // Alertmanager's global SMTP secrets and the chat webhooks' URLs.
    "smtp_auth_password",
    "smtp_auth_secret",
    "webhook_url",
    "secret",
    "token",
    // auth: / command_center: (issue 8).
    "command_secret",
    "token_sha256",
    // storage: (issue 10).
    "dsn",
];

/// Secrets a key-per-line pass misses: values in flow mappings
/// (`basic_auth: {username: u, password: p}`) and the password in a URL's
/// userinfo (`http://user:pass@host`).
fn redact_inline(line: &str) -> String {
    use std::sync::OnceLock;
    static FLOW: OnceLock<Option<regex::Regex>> = OnceLock::new();
    static USERINFO: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let flow = FLOW.get_or_init(|| {
        regex::Regex::new(r#"([{,]\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?\s*:\s*)([^,}\s][^,}]*)"#)
            .ok()
    });
    let userinfo = USERINFO
        .get_or_init(|| regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:)[^@/\s]+@").ok());
    let mut out = line.to_string();
    if let Some(re) = flow {
        out = re
            .replace_all(&out, |c: &regex::Captures| {
                if SECRET_KEYS.contains(&&c[2]) {
                    format!("{}<secret>", &c[1])
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
    }
    if let Some(re) = userinfo {
        out = re.replace_all(&out, "${1}<secret>@").into_owned();
    }
    out
}

/// The config text with every secret value replaced by `<secret>`, as
/// Prometheus shows it on `/api/v1/status/config`. Works on the text so the
/// user's layout and comments survive.
pub fn redact_secrets(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let after_dash = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
        let redacted = after_dash.split_once(':').and_then(|(k, v)| {
            let k = k.trim().trim_matches(['"', '\'']);
            let v = v.trim();
            (SECRET_KEYS.contains(&k) && !v.is_empty() && !v.starts_with('#')).then(|| {
                let prefix_len = body.len() - after_dash.len();
                format!("{}{}: <secret>", &body[..prefix_len], k)
            })
        });
        match redacted.or_else(|| redact_flow(body)) {
            Some(r) => {
                out.push_str(&r);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(&redact_inline(line)),
        }
    }
    out
}

/// Secrets inside flow mappings on one line (`basic_auth: {username: u,
/// password: p}`), which the key-per-line rule above misses. `None` when
/// the line has none.
fn redact_flow(line: &str) -> Option<String> {
    if !line.contains('{') {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut rest = line.char_indices().peekable();
    while let Some((i, c)) = rest.next() {
        if c != '{' && c != ',' {
            continue;
        }
        // A key starts after the separator and optional spaces.
        let after = line.get(i + 1..).unwrap_or("");
        let key_start = i + 1 + (after.len() - after.trim_start().len());
        let tail = line.get(key_start..).unwrap_or("");
        let Some(colon) = tail.find(':') else {
            continue;
        };
        let key = tail
            .get(..colon)
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if !SECRET_KEYS.contains(&key) {
            continue;
        }
        // The value runs to the next `,` or `}` outside quotes.
        let vstart = key_start + colon + 1;
        let mut quote = None;
        let mut vend = line.len();
        for (j, ch) in line.get(vstart..).unwrap_or("").char_indices() {
            match quote {
                Some(q) if ch == q => quote = None,
                Some(_) => {}
                None if ch == '"' || ch == '\'' => quote = Some(ch),
                None if ch == ',' || ch == '}' => {
                    vend = vstart + j;
                    break;
                }
                None => {}
            }
        }
        let value = line.get(vstart..vend).unwrap_or("");
        if value.trim().is_empty() {
            continue;
        }
        let lead = value.len() - value.trim_start().len();
        out.push_str(line.get(copied..vstart + lead).unwrap_or(""));
        out.push_str("<secret>");
        copied = vend;
        while rest.peek().is_some_and(|(j, _)| *j < vend) {
            rest.next();
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(line.get(copied..).unwrap_or(""));
    Some(out)
}

#[cfg(test)]
mod redact_tests {
    use super::redact_secrets;

    #[test]
    fn secrets_are_masked_layout_kept() {
        let y = "basic_auth:\n  username: u\n  password: hunter2\nauthorization:\n  credentials: \"abc\"\n- bearer_token: t0k\npassword_file: /p\n";
        let r = redact_secrets(y);
        assert!(
            !r.contains("hunter2") && !r.contains("abc") && !r.contains("t0k"),
            "{r}"
        );
        assert!(r.contains("  password: <secret>\n"));
        assert!(r.contains("- bearer_token: <secret>\n"));
        assert!(r.contains("username: u\n") && r.contains("password_file: /p\n"));
    }

    #[test]
    fn flow_mappings_smtp_and_url_userinfo_are_masked() {
        let y = "basic_auth: {username: u, password: flow1}\nglobal:\n  smtp_auth_password: smtp2\n- url: http://user:pw3@127.0.0.1:9/hook\n- url: http://127.0.0.1:9/plain\n";
        let r = redact_secrets(y);
        for leak in ["flow1", "smtp2", "pw3"] {
            assert!(!r.contains(leak), "{leak} in {r}");
        }
        assert!(r.contains("{username: u, password: <secret>}"), "{r}");
        assert!(r.contains("http://user:<secret>@127.0.0.1:9/hook"), "{r}");
        assert!(r.contains("- url: http://127.0.0.1:9/plain\n"), "{r}");
    }
}
