//! What `klaxon check config` verifies beyond loading the file, as
//! `promtool check config` does: every `rule_files` entry loads and checks,
//! the files the config points at (credentials, passwords, TLS material)
//! exist. A glob that matches nothing is a warning (here and at `klaxon
//! run`).

use super::Config;
use crate::config::errors::ConfigError;
use std::path::{Path, PathBuf};

/// One rule file a `rule_files` entry matched, and how it checked.
#[derive(Debug)]
pub struct RuleFileCheck {
    pub path: PathBuf,
    /// The number of rules, or every error as `FILE:LINE:COL: message`.
    pub result: Result<usize, Vec<String>>,
}

/// The outcome of [`check`].
#[derive(Debug, Default)]
pub struct CheckReport {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    pub rule_files: Vec<RuleFileCheck>,
}

impl CheckReport {
    /// True when nothing is wrong (warnings do not count).
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.rule_files.iter().all(|r| r.result.is_ok())
    }
}

/// Checks a loaded config the way promtool does after parsing it.
pub fn check(cfg: &Config) -> CheckReport {
    let mut r = CheckReport::default();
    let origin = cfg
        .source_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<config>".to_string());
    let (files, warnings, errors) = rule_file_paths(&cfg.rule_files);
    r.warnings = warnings;
    for e in errors {
        r.errors.push(at(&origin, cfg, "rule_files", None, e));
    }
    for path in files {
        // As `klaxon run` will load them: under the global validation
        // scheme (promtool 3 checks rule files as utf8 whatever the config
        // says, and Prometheus then refuses at start what it passed).
        let result = crate::rules::file::load_rule_file_with(
            &path,
            crate::rules::file::Dialect::prometheus3(cfg.global.names.validation),
        )
        .map(|rf| rf.groups.iter().map(|g| g.rules.len()).sum())
        .map_err(|e| e.0.iter().map(|x| x.positioned()).collect());
        r.rule_files.push(RuleFileCheck { path, result });
    }
    for sc in &cfg.scrape_configs {
        referenced_files(&sc.http_client, cfg, &origin, &mut r.errors);
        relabeled_targets(sc, &origin, &mut r.errors);
    }
    for rw in &cfg.remote_write {
        referenced_files(&rw.http_client, cfg, &origin, &mut r.errors);
    }
    // `alerting.alertmanagers` entries are validated when the file loads
    // (notifier::config, the SD entries as a scrape job's), with their
    // positions; here, as for jobs, the files they name and their static
    // targets after relabeling.
    for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
        referenced_files(&am.http_client, cfg, &origin, &mut r.errors);
        relabeled_alertmanagers(i, am, &origin, &mut r.errors);
    }
    r
}

/// Static Alertmanagers of an entry with relabel_configs, checked after
/// relabeling as promtool does: the final `__address__` must be host:port.
fn relabeled_alertmanagers(
    i: usize,
    am: &crate::notifier::config::AlertmanagerConfig,
    origin: &str,
    out: &mut Vec<ConfigError>,
) {
    if am.relabel_configs.is_empty() {
        return;
    }
    for (g, group) in am.static_configs.iter().enumerate() {
        if let Err(e) = crate::notifier::alertmanagers_from_group(group, am) {
            out.push(ConfigError {
                file: origin.to_string(),
                line: 0,
                column: 0,
                message: format!("alerting.alertmanagers[{i}]: group {g}: {e}"),
            });
        }
    }
}

/// The files `rule_files` matches (sorted, deduplicated), warnings for
/// globs matching nothing, and errors for explicit files that are missing
/// (promtool's `"X" does not point to an existing file`) or bad patterns.
pub fn rule_file_paths(patterns: &[String]) -> (Vec<PathBuf>, Vec<String>, Vec<String>) {
    let (mut files, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for p in patterns {
        let matched: Vec<PathBuf> = match glob::glob(p) {
            Ok(paths) => paths.flatten().collect(),
            Err(e) => {
                errors.push(format!("invalid rule file path {p:?}: {e}"));
                continue;
            }
        };
        let is_glob = p.contains(['*', '?', '[']);
        if matched.is_empty() {
            if is_glob {
                warnings.push(format!("rule_files: pattern {p:?} matches no file"));
            } else {
                errors.push(format!("{p:?} does not point to an existing file"));
            }
        }
        files.extend(matched);
    }
    files.sort();
    files.dedup();
    (files, warnings, errors)
}

fn referenced_files(
    h: &crate::config::HttpClientConfig,
    cfg: &Config,
    origin: &str,
    out: &mut Vec<ConfigError>,
) {
    let mut check = |field: &str, what: &str, p: &Option<PathBuf>| {
        let Some(p) = p else { return };
        if let Err(e) = std::fs::metadata(p) {
            let msg = format!(
                "error checking {what} {:?}: stat {}: {}",
                p.display().to_string(),
                p.display(),
                io_text(&e)
            );
            let e = at(origin, cfg, field, Some(p), msg);
            if !out.contains(&e) {
                out.push(e);
            }
        }
    };
    if let Some(b) = &h.basic_auth {
        check(
            "username_file",
            "basic auth username file",
            &b.username_file,
        );
        check(
            "password_file",
            "basic auth password file",
            &b.password_file,
        );
    }
    if let Some(a) = &h.authorization {
        // bearer_token_file is mapped onto authorization, as upstream.
        let field = if field_line(cfg, "bearer_token_file", a.credentials_file.as_deref()).is_some()
        {
            "bearer_token_file"
        } else {
            "credentials_file"
        };
        check(
            field,
            "authorization credentials or bearer token file",
            &a.credentials_file,
        );
    }
    let t = &h.tls_config;
    check("ca_file", "CA file", &t.ca_file);
    check("cert_file", "client cert file", &t.cert_file);
    check("key_file", "client key file", &t.key_file);
}

/// Static targets of a job with relabel_configs, checked after relabeling
/// as promtool does: the final `__address__` must be host:port.
fn relabeled_targets(
    sc: &crate::scrape::config::ScrapeConfig,
    origin: &str,
    out: &mut Vec<ConfigError>,
) {
    if sc.relabel_configs.is_empty() {
        return;
    }
    for (g, group) in sc.static_configs.iter().enumerate() {
        for (i, t) in group.targets.iter().enumerate() {
            let mut pairs: Vec<(String, String)> = group
                .labels
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            pairs.push(("__address__".into(), t.clone()));
            pairs.push(("job".into(), sc.job_name.clone()));
            let labels = crate::model::Labels::from_pairs(pairs);
            let Some(after) = crate::config::relabel::process(&labels, &sc.relabel_configs) else {
                continue;
            };
            if let Some(addr) = after.get("__address__").filter(|a| a.contains('/')) {
                out.push(ConfigError {
                    file: origin.to_string(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "scrape job {:?}: instance {i} in group {g}: {addr:?} is not a valid hostname",
                        sc.job_name
                    ),
                });
            }
        }
    }
}

/// `no such file or directory`, as Go prints it (without Rust's
/// `(os error 2)`).
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

/// An error placed at the line of `field` (whose value is `path`, when
/// given) in the config's text; unplaced when it cannot be found.
fn at(
    origin: &str,
    cfg: &Config,
    field: &str,
    path: Option<&Path>,
    message: String,
) -> ConfigError {
    let (line, column) = field_line(cfg, field, path).unwrap_or((0, 0));
    ConfigError {
        file: origin.to_string(),
        line,
        column,
        message: if line == 0 {
            format!("{field}: {message}")
        } else {
            message
        },
    }
}

/// 1-based line and column of the first `field:` key whose value, joined to
/// the config's directory, is `path` (any value when `path` is `None`).
fn field_line(cfg: &Config, field: &str, path: Option<&Path>) -> Option<(usize, usize)> {
    let dir = cfg.source_path.as_ref().and_then(|p| p.parent());
    let key = format!("{field}:");
    for (i, l) in cfg.source_text.lines().enumerate() {
        let t = l.trim_start().trim_start_matches("- ");
        let Some(v) = t.strip_prefix(&key) else {
            continue;
        };
        let v = v
            .split(" #")
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        let matches = match path {
            None => true,
            Some(p) => {
                let written = Path::new(v);
                written == p || dir.is_some_and(|d| d.join(written) == p)
            }
        };
        if matches {
            let col = l.len() - t.len() + 1;
            return Some((i + 1, col));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_file_globs_and_explicit_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.yml"), "groups: []\n").unwrap();
        let pats = vec![
            d.path().join("*.yml").display().to_string(),
            d.path().join("none/*.yml").display().to_string(),
            d.path().join("missing.yml").display().to_string(),
        ];
        let (files, warnings, errors) = rule_file_paths(&pats);
        assert_eq!(files, vec![d.path().join("a.yml")]);
        assert!(warnings[0].contains("matches no file"), "{warnings:?}");
        assert!(
            errors[0].contains("does not point to an existing file"),
            "{errors:?}"
        );
    }
}
