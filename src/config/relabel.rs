//! Relabel configuration: the YAML shape, defaults and validation rules of
//! Prometheus' `relabel_config`, and the engine that applies it (`apply`:
//! targets, samples, remote-write series and alerts all go through
//! [`process`]). Whatever reaches the engine is a configuration Prometheus
//! would also have accepted.

pub mod apply;

pub use apply::{expand, hash_mod, process, process_builder};

use super::errors::{Pos, Sink};
use super::raw::RawRelabelConfig;
use regex::Regex;
use serde_saphyr::Spanned;
use std::fmt;

/// Bounds the compiled size of a user regex so a hostile config cannot make
/// us allocate without limit.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Every relabel action Prometheus (2.42 … 3.x) knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Case-insensitive, as upstream lower-cases the action before matching.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fully anchored relabel regex, remembering the text the user wrote.
///
/// Anchored as `^(?s:…)$` like Prometheus 3.x, so `.` also matches newlines
/// and a pattern must match the whole value; written in Go's RE2 syntax and
/// translated (see `goregex`) so matching agrees with Prometheus exactly.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    regex: Regex,
}

impl RelabelRegex {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let translated = super::goregex::translate(source);
        let regex = regex::RegexBuilder::new(&format!("^(?s:{translated})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()?;
        Ok(RelabelRegex {
            source: source.to_string(),
            regex,
        })
    }

    /// The pattern as written in the configuration (without anchors).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One validated relabel step, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

fn default_regex() -> RelabelRegex {
    // A constant pattern, not user input: it cannot fail to compile.
    #[allow(clippy::expect_used)]
    RelabelRegex::new(DEFAULT_REGEX).expect("default relabel regex compiles")
}

/// Prometheus' legacy label-name rule `[a-zA-Z_][a-zA-Z0-9_]*`.
///
/// Prometheus 3.x also has a UTF-8 validation mode; klaxon keeps the classic
/// rule everywhere so series names stay valid for every exposition format.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Upstream's check for a replace `target_label`: a label name that may
/// contain `$1` / `${name}` template references (which are expanded per
/// target and re-validated at run time). Equivalent to
/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`.
fn is_valid_replace_target(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphabetic() || c == b'_' => i += 1,
            b'$' => {
                i += 1;
                if i < b.len() && b[i] == b'{' {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && word(b[j]) {
                        j += 1;
                    }
                    if j == start || j >= b.len() || b[j] != b'}' {
                        return false;
                    }
                    i = j + 1;
                } else {
                    let start = i;
                    while i < b.len() && word(b[i]) {
                        i += 1;
                    }
                    if i == start {
                        return false;
                    }
                }
            }
            // Digits may follow a first letter/underscore/reference.
            c if c.is_ascii_digit() && i > 0 => i += 1,
            _ => return false,
        }
    }
    true
}

/// Validates raw relabel configs, reporting each problem at its node, and
/// returns the valid ones (invalid entries are dropped after reporting, so
/// the caller can keep validating the rest of the file).
/// A YAML list of relabel rules, as written under `relabel_configs:`
/// (benchmarks, tests, tools), validated as in a config file; errors name
/// `origin` and the position in `text`.
pub fn parse_relabel_configs(
    text: &str,
    origin: &str,
) -> Result<Vec<RelabelConfig>, super::ConfigErrors> {
    let raw: Vec<Spanned<RawRelabelConfig>> =
        serde_saphyr::from_str_with_options(text, super::yaml_options()).map_err(|e| {
            super::ConfigErrors(vec![super::tidy_yaml_message(
                super::errors::from_yaml_error(origin, &e),
            )])
        })?;
    let mut sink = Sink::new(origin);
    let out = resolve_relabel_configs(&raw, &mut sink);
    sink.into_result(out)
}

pub(crate) fn resolve_relabel_configs(
    raw: &[Spanned<RawRelabelConfig>],
    sink: &mut Sink,
) -> Vec<RelabelConfig> {
    raw.iter().filter_map(|r| resolve_one(r, sink)).collect()
}

fn resolve_one(raw: &Spanned<RawRelabelConfig>, sink: &mut Sink) -> Option<RelabelConfig> {
    let at = Pos::of(raw);
    let r = &raw.value;
    let before = sink.len();
    let mut cfg = RelabelConfig::default();

    if let Some(a) = &r.action {
        match Action::parse(&a.value) {
            Some(act) => cfg.action = act,
            None => {
                if a.value.is_empty() {
                    sink.push(Pos::of(a), "relabel action cannot be empty");
                } else {
                    sink.push(Pos::of(a), format!("unknown relabel action {:?}", a.value));
                }
                return None;
            }
        }
    }
    if let Some(sl) = &r.source_labels {
        for l in &sl.value {
            if !is_valid_label_name(&l.value) {
                sink.push(
                    Pos::of(l),
                    format!("{:?} is not a valid label name", l.value),
                );
            }
            cfg.source_labels.push(l.value.clone());
        }
    }
    if let Some(s) = &r.separator {
        cfg.separator = s.value.clone();
    }
    if let Some(re) = &r.regex {
        match RelabelRegex::new(&re.value) {
            Ok(x) => cfg.regex = x,
            Err(e) => sink.push(
                Pos::of(re),
                format!(
                    "invalid regex {:?}: error parsing regexp: {}",
                    re.value,
                    regex_reason(&e)
                ),
            ),
        }
    }
    if let Some(m) = &r.modulus {
        cfg.modulus = m.value;
    }
    if let Some(t) = &r.target_label {
        cfg.target_label = t.value.clone();
    }
    if let Some(rep) = &r.replacement {
        cfg.replacement = rep.value.clone();
    }

    let act = cfg.action;
    let target_pos = r.target_label.as_ref().map(Pos::of).unwrap_or(at);
    if act == Action::HashMod && cfg.modulus == 0 {
        sink.push(
            at,
            "relabel configuration for hashmod requires non-zero modulus",
        );
    }
    let needs_target = matches!(
        act,
        Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
    );
    if needs_target && cfg.target_label.is_empty() {
        sink.push(
            at,
            format!("relabel configuration for {act} action requires 'target_label' value"),
        );
    } else if needs_target {
        // Replace targets may be templates (`${1}`), re-checked per target at
        // run time; every other action needs a literal label name.
        let valid = if act == Action::Replace {
            is_valid_replace_target(&cfg.target_label)
        } else {
            is_valid_label_name(&cfg.target_label)
        };
        if !valid {
            sink.push(
                target_pos,
                format!(
                    "{:?} is invalid 'target_label' for {act} action",
                    cfg.target_label
                ),
            );
        }
    }
    if matches!(act, Action::Lowercase | Action::Uppercase)
        && cfg.replacement != DEFAULT_REPLACEMENT
    {
        let p = r.replacement.as_ref().map(Pos::of).unwrap_or(at);
        sink.push(p, format!("'replacement' can not be set for {act} action"));
    }
    // Prometheus' own check: a labelmap replacement is a label name with
    // `$1`/`${name}` references (which only expand to name characters).
    if act == Action::LabelMap && !is_valid_replace_target(&cfg.replacement) {
        let pos = r.replacement.as_ref().map(Pos::of).unwrap_or(at);
        sink.push(
            pos,
            format!(
                "{:?} is invalid 'replacement' for {act} action",
                cfg.replacement
            ),
        );
    }
    if matches!(act, Action::KeepEqual | Action::DropEqual)
        && (r.regex.as_ref().is_some_and(|x| x.value != DEFAULT_REGEX)
            || r.modulus.as_ref().is_some_and(|m| m.value != 0)
            || cfg.separator != DEFAULT_SEPARATOR
            || cfg.replacement != DEFAULT_REPLACEMENT)
    {
        sink.push(
            at,
            format!(
                "{act} action requires only 'source_labels' and `target_label`, and no other fields"
            ),
        );
    }
    if matches!(act, Action::LabelDrop | Action::LabelKeep)
        && (r.source_labels.is_some()
            || !cfg.target_label.is_empty()
            || cfg.modulus != 0
            || cfg.separator != DEFAULT_SEPARATOR
            || cfg.replacement != DEFAULT_REPLACEMENT)
    {
        sink.push(
            at,
            format!("{act} action requires only 'regex', and no other fields"),
        );
    }
    if sink.len() != before {
        return None;
    }
    Some(cfg)
}

/// The reason a regex failed, on one line: the regex crate's syntax errors
/// span several lines (our anchored pattern, a caret, then `error: …`), and
/// the anchored pattern would only confuse the user.
pub(crate) fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    if let Some(reason) = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    {
        return reason.to_string();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_target_pattern() {
        for ok in [
            "a",
            "_x",
            "foo_bar1",
            "$1",
            "${1}",
            "a$1",
            "${foo}_bar",
            "$1x",
            "__param_target",
        ] {
            assert!(is_valid_replace_target(ok), "{ok}");
        }
        for bad in ["", "1a", "foo-bar", "${}", "$", "a b", "${1", "$-"] {
            assert!(!is_valid_replace_target(bad), "{bad}");
        }
    }

    #[test]
    fn labelmap_replacement_must_be_a_name_template() {
        let load = |rep: &str| {
            parse_relabel_configs(
                &format!("- action: labelmap\n  regex: a(.*)\n  replacement: {rep:?}\n"),
                "t.yml",
            )
        };
        assert!(load("b_$1").is_ok());
        let e = load(";$1").unwrap_err().to_string();
        assert!(
            e.contains("t.yml:3:16: \";$1\" is invalid 'replacement' for labelmap action"),
            "{e}"
        );
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("__name__"));
        assert!(is_valid_label_name("a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("a.b"));
    }

    #[test]
    fn regex_is_anchored_and_dotall() {
        let r = RelabelRegex::new("a.c").unwrap();
        assert!(r.is_match("abc"));
        assert!(r.is_match("a\nc"));
        assert!(!r.is_match("xabc"));
        assert!(!r.is_match("abcx"));
        let alt = RelabelRegex::new("a|b").unwrap();
        assert!(!alt.is_match("ab"));
    }
}
