//! What the rule generators (`klaxon slo generate`, `klaxon anomaly
//! generate`) share about their definition files: the error type naming the
//! file and the place, and the checks of names and labels.

use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// An error in a definition file, naming the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

/// Reads a definition file and hands its text to `parse`.
pub(crate) fn load<T>(
    path: &std::path::Path,
    parse: impl FnOnce(&str, &str) -> Result<T, SpecError>,
) -> Result<T, SpecError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// Letters, digits, '-', '_' and '.', starting with a letter or digit: safe
/// in label values, group names and file names (no path separators, nothing
/// to quote).
pub(crate) fn is_safe_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks parts of one definition file; errors carry the file and the
/// value's position.
pub(crate) struct Validator<'a> {
    pub file: &'a str,
    /// Label names starting with this belong to the generated rules.
    pub reserved_prefix: &'static str,
}

impl Validator<'_> {
    pub fn err<T>(&self, at: &Spanned<T>, field: &str, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            file: self.file.to_string(),
            line: usize::try_from(at.referenced.line()).unwrap_or(0),
            column: usize::try_from(at.referenced.column()).unwrap_or(0),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Service and rule names end up in label values, group names and the
    /// output file name: a conservative character set keeps all three safe.
    pub fn name(&self, s: &Spanned<String>, field: &str) -> Result<String, SpecError> {
        let n = &s.value;
        if is_safe_name(n) {
            Ok(n.clone())
        } else {
            Err(self.err(
                s,
                field,
                format!(
                    "{n:?}: use letters, digits, '-', '_' and '.', starting with a letter or digit"
                ),
            ))
        }
    }

    /// User labels for every generated series and alert; names the
    /// generated rules set themselves are refused.
    pub fn labels(
        &self,
        l: Option<&BTreeMap<String, Spanned<String>>>,
        field: &str,
    ) -> Result<Vec<(String, String)>, SpecError> {
        let mut out: Vec<(String, String)> = Vec::new();
        // Positions are the values' (the map keys carry none): the same line.
        for (name, v) in l.into_iter().flatten() {
            if !crate::config::relabel::is_valid_label_name(name) {
                return Err(self.err(v, field, format!("{name:?} is not a valid label name")));
            }
            if name.starts_with(self.reserved_prefix)
                || name.starts_with("__")
                || name == "severity"
            {
                return Err(self.err(
                    v,
                    field,
                    format!("{name:?} is reserved for the generated rules"),
                ));
            }
            out.push((name.clone(), v.value.clone()));
        }
        Ok(out)
    }
}
