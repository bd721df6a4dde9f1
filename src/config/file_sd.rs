//! Reading file-based service discovery files (`file_sd_configs`), in the
//! JSON and YAML shapes Prometheus reads. Watching the files for changes is
//! the caller's job; this only turns one file into target groups.

use super::relabel::is_valid_label_name;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;

/// A set of targets sharing labels, as produced by service discovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Identifies the group within its provider (`FILE:INDEX` for file SD,
    /// the index for static configs, `pod/NS/NAME` for a Kubernetes pod),
    /// so updates can replace it.
    pub source: String,
    /// Each target's own labels on top of the group's, parallel to
    /// `targets` (empty when no target has any), as Prometheus' per-target
    /// label sets: one Kubernetes object is one group, with a target per
    /// port.
    pub target_labels: Vec<BTreeMap<String, String>>,
}

impl TargetGroup {
    /// Each target's address and labels: the group's, overridden by the
    /// target's own (borrowed when it has none).
    pub fn each_target(
        &self,
    ) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, BTreeMap<String, String>>)> {
        self.targets.iter().enumerate().map(move |(i, t)| {
            let labels = match self.target_labels.get(i).filter(|l| !l.is_empty()) {
                None => std::borrow::Cow::Borrowed(&self.labels),
                Some(own) => {
                    let mut m = self.labels.clone();
                    m.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                    std::borrow::Cow::Owned(m)
                }
            };
            (t.as_str(), labels)
        })
    }
}

/// Why a file SD file could not be used; `line`/`column` are 1-based, 0 when
/// unknown (e.g. the file could not be read).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct FileSdError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The label upstream adds to every group read from a file.
pub const META_FILEPATH: &str = "__meta_filepath";

/// A label name that fails deserialization, with the parser's position,
/// when it is not a valid Prometheus label name.
struct LabelName(String);

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !is_valid_label_name(&s) {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is not a valid label name"
            )));
        }
        Ok(LabelName(s))
    }
}

impl PartialEq for LabelName {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for LabelName {}
impl PartialOrd for LabelName {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for LabelName {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

/// JSON groups: unknown keys are ignored, as Go's `encoding/json` does.
#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<LabelName, String>,
}

/// YAML groups: upstream reads them strictly, so unknown keys are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<LabelName, String>>,
}

/// Reads one file SD file (`.json`, `.yml` or `.yaml`).
pub fn parse_file_sd(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let name = path.display().to_string();
    let err = |line: usize, column: usize, message: String| FileSdError {
        file: name.clone(),
        line,
        column,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, 0, e.to_string()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    parse_file_sd_str(&text, &name, ext)
}

/// Parses target groups in Prometheus' JSON shape (file_sd's `.json`, the
/// body of an `http_sd_configs` answer); sources are `NAME:INDEX`.
pub fn parse_json_groups(text: &str, name: &str) -> Result<Vec<TargetGroup>, FileSdError> {
    let v: Option<Vec<JsonGroup>> = serde_json::from_str(text).map_err(|e| FileSdError {
        file: name.to_string(),
        line: e.line(),
        column: e.column(),
        message: strip_json_pos(&e.to_string()),
    })?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, g)| TargetGroup {
            targets: g.targets,
            labels: g.labels.into_iter().map(|(k, v)| (k.0, v)).collect(),
            source: format!("{name}:{i}"),
            target_labels: Vec::new(),
        })
        .collect())
}

/// Parses file SD content; `ext` selects the format (`json`, `yml`, `yaml`),
/// `name` is used for error messages, sources and `__meta_filepath`.
pub fn parse_file_sd_str(
    text: &str,
    name: &str,
    ext: &str,
) -> Result<Vec<TargetGroup>, FileSdError> {
    let err = |line: usize, column: usize, message: String| FileSdError {
        file: name.to_string(),
        line,
        column,
        message,
    };
    let groups: Vec<(Vec<String>, BTreeMap<String, String>)> = match ext {
        "json" | "JSON" => parse_json_groups(text, name)?
            .into_iter()
            .map(|g| (g.targets, g.labels))
            .collect(),
        "yml" | "yaml" | "YML" | "YAML" => {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            let opts = serde_saphyr::options! {
                duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
            };
            let v: Option<Vec<YamlGroup>> = serde_saphyr::from_str_with_options(text, opts)
                .map_err(|e| {
                    let c = super::tidy_yaml_message(super::errors::from_yaml_error(name, &e));
                    err(c.line, c.column, c.message)
                })?;
            v.unwrap_or_default()
                .into_iter()
                .map(|g| {
                    let labels = g.labels.unwrap_or_default();
                    let labels = labels.into_iter().map(|(k, v)| (k.0, v)).collect();
                    (g.targets.unwrap_or_default(), labels)
                })
                .collect()
        }
        other => {
            return Err(err(
                0,
                0,
                format!("unhandled file extension {:?}", format!(".{other}")),
            ))
        }
    };
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, (targets, labels))| {
            let mut labels = labels;
            labels.insert(META_FILEPATH.to_string(), name.to_string());
            TargetGroup {
                targets,
                labels,
                source: format!("{name}:{i}"),
                target_labels: Vec::new(),
            }
        })
        .collect())
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_json_pos(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_groups() {
        let text = r#"[
  {"targets": ["a:1", "b:2"], "labels": {"env": "prod"}},
  {"targets": ["c:3"], "ignored": 1}
]"#;
        let g = parse_file_sd_str(text, "x.json", "json").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets, ["a:1", "b:2"]);
        assert_eq!(g[0].labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(
            g[0].labels.get(META_FILEPATH).map(String::as_str),
            Some("x.json")
        );
        assert_eq!(g[1].source, "x.json:1");
    }

    #[test]
    fn json_bad_label_name_has_position() {
        let text = "[\n  {\"targets\": [\"a:1\"], \"labels\": {\"bad-name\": \"x\"}}\n]";
        let e = parse_file_sd_str(text, "x.json", "json").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message.contains("\"bad-name\" is not a valid label name"),
            "{e}"
        );
    }

    #[test]
    fn json_syntax_error_position() {
        let e =
            parse_file_sd_str("[\n  {\"targets\": [\"a:1\",]}\n]", "x.json", "json").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.column > 0);
    }

    #[test]
    fn yaml_strict_and_empty() {
        assert_eq!(parse_file_sd_str("", "x.yml", "yml").unwrap(), vec![]);
        let e = parse_file_sd_str("- targats:\n    - a:1\n", "x.yml", "yml").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("targats"), "{e}");
        let e = parse_file_sd_str("- targets: [a]\n  labels:\n    1x: y\n", "x.yml", "yml")
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn unknown_extension() {
        let e = parse_file_sd_str("[]", "x.txt", "txt").unwrap_err();
        assert!(e.message.contains(".txt"));
    }
}
