//! The configuration kit every stage builds its section with: source
//! positions and errors (`errors`), durations and sizes (`duration`), Go
//! regexes (`goregex`), HTTP client settings with their secrets and TLS and
//! the client built from them (`http`, `client`), relabel rules and their
//! processing (`relabel`), file_sd target groups (`file_sd`), the `global:`
//! defaults, and the YAML helpers that turn serde's errors into
//! Prometheus-like `FILE:LINE:COL: message` lines.
//!
//! The kit imports no stage (only `model`'s label types). Section types live
//! in their stage (`scrape::config`, `notifier::config`, `notify::config`,
//! `probe::config`, ...); the whole file is loaded by `crate::settings`,
//! which sits above the stages.

pub mod client;
pub mod common;
pub mod duration;
pub mod errors;
pub mod file_sd;
pub mod goregex;
pub mod http;
pub mod names;
pub(crate) mod raw;
pub mod redact;
pub mod relabel;

pub use common::{FileSdConfig, HistogramScrape, ScrapeProtocol};
pub use duration::{format_duration, parse_duration, parse_size};
pub use errors::{ConfigError, ConfigErrors};
pub use file_sd::{parse_file_sd, parse_file_sd_str, parse_json_groups, FileSdError, TargetGroup};
pub use http::{Authorization, BasicAuth, HttpClientConfig, Scheme, Secret, TlsConfig, TlsVersion};
pub use redact::redact_secrets;
pub use relabel::{Action, RelabelConfig, RelabelRegex};

use crate::model::Labels;
use errors::{Pos, Sink};
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
    /// Whether `scrape_protocols` was written (else scrape configs that
    /// enable native histograms put protobuf first).
    pub scrape_protocols_set: bool,
    pub histograms: HistogramScrape,
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// `query_log_file`: every API query appended as one JSON line, in
    /// Prometheus' query log format. Relative to the working directory.
    pub query_log_file: Option<PathBuf>,
    /// `metric_name_validation_scheme`, `metric_name_escaping_scheme`.
    pub names: names::NameSchemes,
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
            scrape_protocols_set: false,
            histograms: HistogramScrape::default(),
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            query_log_file: None,
            names: Default::default(),
        }
    }
}

/// Deserializes YAML `text` into `T` with the file loader's options
/// (duplicate keys rejected) and error texts; blank text is `T::default()`.
/// Lets a stage read its own section from a text alone (tests, tools) with
/// the positions the whole file would give.
pub fn parse_yaml<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigErrors> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_saphyr::from_str_with_options::<Option<T>>(text, yaml_options())
        .map(Option::unwrap_or_default)
        .map_err(|e| ConfigErrors(vec![tidy_yaml_message(errors::from_yaml_error(origin, &e))]))
}

/// Reads a file of configuration; when it cannot be read, one error naming
/// the file (no position) and `what` was being read.
pub fn read_config_file(path: &Path, what: &str) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("reading {what}: {e}"),
        }])
    })
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

pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // Prometheus (yaml.v2 UnmarshalStrict) rejects duplicate keys; a
        // silently overwritten key is exactly the bug we want to surface.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    }
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
pub(crate) fn null_entry_message(text: &str, mut e: ConfigError) -> ConfigError {
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
            e.message = if common::UNSUPPORTED_FIELDS.contains(&field) {
                common::unsupported_message(field)
            } else if let Some(k) = did_you_mean(field, expected) {
                format!("unknown field `{field}`, did you mean `{k}`?")
            } else {
                format!("unknown field `{field}`")
            };
        }
    }
    e
}

pub(crate) fn resolve_global(g: raw::RawGlobal, sink: &mut Sink) -> GlobalConfig {
    let d = GlobalConfig::default();
    let scrape_interval =
        common::opt_duration(&g.scrape_interval, sink).unwrap_or(d.scrape_interval);
    let scrape_timeout = match common::opt_duration(&g.scrape_timeout, sink) {
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
        external.extend(common::resolve_label_map(m, sink));
    }
    let scrape_protocols = g
        .scrape_protocols
        .as_ref()
        .and_then(|p| common::resolve_protocols(p, sink));
    let histograms = HistogramScrape {
        native: g.scrape_native_histograms.unwrap_or(false),
        always_classic: g.always_scrape_classic_histograms.unwrap_or(false),
        convert_to_nhcb: g.convert_classic_histograms_to_nhcb.unwrap_or(false),
        ..HistogramScrape::default()
    };
    let scrape_protocols_set = scrape_protocols.is_some();
    let scrape_protocols = scrape_protocols.unwrap_or_else(|| {
        if histograms.native {
            ScrapeProtocol::PROTO_FIRST.to_vec()
        } else {
            d.scrape_protocols
        }
    });
    GlobalConfig {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: common::opt_duration(&g.evaluation_interval, sink)
            .unwrap_or(d.evaluation_interval),
        external_labels: Labels::from_pairs(external),
        scrape_protocols,
        scrape_protocols_set,
        histograms,
        body_size_limit: common::opt_size(&g.body_size_limit, sink)
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
        names: names::resolve(
            &g.metric_name_validation_scheme,
            &g.metric_name_escaping_scheme,
            None,
            "global",
            sink,
        ),
    }
}

#[cfg(test)]
mod structural_tests {
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
