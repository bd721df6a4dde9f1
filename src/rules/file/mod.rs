//! Prometheus rule files: loading with Prometheus' validation (`rulefmt`)
//! and `check rules` output like `promtool check rules` 2.42.
//!
//! Loading follows promtool step by step because its verdicts and messages
//! are the compatibility target: the first YAML document is decoded strictly
//! (unknown fields are errors), then shape-checked a second time, and only a
//! file that decodes cleanly is validated rule by rule. Alert templates are
//! not syntax-checked yet (there is no template module); promtool rejects
//! broken templates, klaxon currently accepts them.

mod check;
mod decode;
pub mod lint;
mod validate;
mod yaml;

pub use check::{check_rule_files, duplicate_rules, DuplicateRule, LintOptions};

use crate::model::Labels;
use crate::promql::Expr;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Which Prometheus release's rule-file format to accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// promtool 2.42: no `query_offset` or group `labels` (unknown fields),
    /// label and annotation names restricted to `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[default]
    Prometheus2_42,
    /// Prometheus 3.x under `metric_name_validation_scheme: utf8` (the
    /// default): `query_offset` and group `labels` allowed; record names,
    /// label and annotation names may be any non-empty UTF-8 string (a
    /// record name without braces).
    Prometheus3,
    /// Prometheus 3.x under `metric_name_validation_scheme: legacy`: the
    /// fields of 3.x, the names of 2.42.
    Prometheus3Legacy,
}

impl Dialect {
    /// The dialect Prometheus 3 loads rule files in under the global
    /// `metric_name_validation_scheme`.
    pub fn prometheus3(names: crate::config::names::NameValidation) -> Dialect {
        match names {
            crate::config::names::NameValidation::Utf8 => Dialect::Prometheus3,
            crate::config::names::NameValidation::Legacy => Dialect::Prometheus3Legacy,
        }
    }
}

/// A loaded, validated rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

impl RuleFile {
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

#[derive(Clone, Debug)]
pub struct RuleGroup {
    pub name: String,
    /// `None`: the global evaluation interval applies.
    pub interval: Option<Duration>,
    /// Maximum series/alerts per evaluation; 0 means no limit (Prometheus
    /// treats any value <= 0 so).
    pub limit: u64,
    /// Always `None` under [`Dialect::Prometheus2_42`], which rejects the field.
    pub query_offset: Option<Duration>,
    /// Group labels (3.x); empty under 2.42.
    pub labels: Labels,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Record(String),
    Alert(String),
}

impl RuleKind {
    pub fn name(&self) -> &str {
        match self {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: RuleKind,
    pub expr: Expr,
    /// The expression as written, for display and the rules API.
    pub expr_text: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// 1-based line of the rule's mapping in the file.
    pub line: usize,
    /// Where the rule's parts are in the file, for lint warnings.
    pub pos: RulePos,
}

/// 1-based `(line, column)` positions of a rule's parts; `(0, 0)` unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulePos {
    pub rule: (usize, usize),
    pub expr: (usize, usize),
    pub for_: Option<(usize, usize)>,
    /// `(name, line, column)` of each label key.
    pub labels: Vec<(String, usize, usize)>,
}

/// One problem in a rule file. `message` is promtool's text after the
/// `FILE: ` prefix (it carries positions itself where promtool prints them);
/// `line`/`column` are the best known position, 0 when none.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// `group "g", rule N, "name"` when the message itself does not say
    /// (promtool's decode errors); empty otherwise.
    pub context: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl RuleFileError {
    /// klaxon's richer form (`check rules --positions`): always
    /// `FILE:LINE:COL: ` first (when the position is known), then the
    /// group and rule, then promtool's message without its own leading
    /// positions. PromQL errors keep their position inside the expression.
    pub fn positioned(&self) -> String {
        let mut msg = self.message.as_str();
        while let Some(rest) = strip_position(msg) {
            msg = rest;
        }
        let head = if self.line > 0 {
            format!("{}:{}:{}", self.file, self.line, self.column)
        } else {
            self.file.clone()
        };
        if self.context.is_empty() {
            format!("{head}: {msg}")
        } else {
            format!("{head}: {}: {msg}", self.context)
        }
    }
}

/// `"12:5: rest"` → `"rest"`.
fn strip_position(s: &str) -> Option<&str> {
    let (l, rest) = s.split_once(':')?;
    let (c, rest) = rest.split_once(": ")?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    (digits(l) && digits(c)).then_some(rest)
}

/// Every problem found in one file, in promtool's order; never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleFileErrors(pub Vec<RuleFileError>);

impl RuleFileErrors {
    pub fn errors(&self) -> &[RuleFileError] {
        &self.0
    }
}

impl fmt::Display for RuleFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Loads and validates a rule file as promtool 2.42 would.
pub fn load_rule_file(path: impl AsRef<Path>) -> Result<RuleFile, RuleFileErrors> {
    load_rule_file_with(path, Dialect::default())
}

pub fn load_rule_file_with(
    path: impl AsRef<Path>,
    dialect: Dialect,
) -> Result<RuleFile, RuleFileErrors> {
    let path = path.as_ref();
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse_rule_file(&name, &bytes, dialect),
        Err(e) => Err(RuleFileErrors(vec![RuleFileError {
            message: format!("open {name}: {}", io_text(&e)),
            file: name,
            line: 0,
            column: 0,
            context: String::new(),
        }])),
    }
}

/// Go's wording for the common open errors.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Parses rule-file content; `file` names it in errors.
pub fn parse_rule_file(
    file: &str,
    content: &[u8],
    dialect: Dialect,
) -> Result<RuleFile, RuleFileErrors> {
    let err = |line: usize, column: usize, message: String| RuleFileError {
        file: file.to_string(),
        line,
        column,
        message,
        context: String::new(),
    };
    let text = match std::str::from_utf8(content) {
        Ok(t) => t,
        Err(e) => {
            // Both of promtool's decodes fail on the reader, so it prints twice.
            let m = format!("yaml: {}", utf8_problem(content, &e));
            let good = content.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + good.iter().filter(|b| **b == b'\n').count();
            let column = 1 + good.iter().rev().take_while(|b| **b != b'\n').count();
            return Err(RuleFileErrors(vec![
                err(line, column, m.clone()),
                err(line, column, m),
            ]));
        }
    };
    let root = match yaml::parse_first_document(text) {
        Ok(r) => r,
        Err(e) => {
            let m = format!("yaml: {}", e.message);
            return Err(RuleFileErrors(vec![
                err(e.line, e.column, m.clone()),
                err(e.line, e.column, m),
            ]));
        }
    };
    let mut errors = Vec::new();
    let decoded = decode::decode(root.as_ref(), dialect);
    if let Err((f, at)) = &decoded {
        let at = at.clone().unwrap_or_default();
        errors.push(RuleFileError {
            context: at.context,
            ..err(at.line, at.column, f.message())
        });
    }
    if let Some(f) = decode::shape_check(root.as_ref()) {
        let (line, column) = root.as_ref().map_or((0, 0), |r| (r.line, r.column));
        errors.push(err(line, column, f.message()));
    }
    match decoded {
        Ok(groups) if errors.is_empty() => validate::validate(file, groups, dialect),
        _ => Err(RuleFileErrors(errors)),
    }
}

/// libyaml's reader messages for invalid UTF-8.
fn utf8_problem(content: &[u8], e: &std::str::Utf8Error) -> &'static str {
    let at = e.valid_up_to();
    let lead = content.get(at).copied().unwrap_or(0);
    let width = match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 0,
    };
    if width == 0 {
        "invalid leading UTF-8 octet"
    } else if e.error_len().is_none() {
        "incomplete UTF-8 octet sequence"
    } else {
        "invalid trailing UTF-8 octet"
    }
}
