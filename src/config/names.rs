//! `metric_name_validation_scheme` and `metric_name_escaping_scheme`
//! (global and per scrape config), as Prometheus 3 reads them, and the
//! escaping of a name to the legacy character set the schemes name.

use super::errors::{Pos, Sink};
use super::raw::S;

/// `metric_name_validation_scheme`: which metric and label names are valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameValidation {
    /// Any non-empty UTF-8 (Prometheus 3's default).
    #[default]
    Utf8,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` names, `[a-zA-Z_][a-zA-Z0-9_]*` labels.
    Legacy,
}

/// `metric_name_escaping_scheme`: what a target is asked to do with names
/// outside the legacy set (the `escaping=` parameter of the scrape's
/// `Accept` header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameEscaping {
    #[default]
    AllowUtf8,
    Underscores,
    Dots,
    Values,
}

impl NameEscaping {
    pub fn parse(s: &str) -> Option<NameEscaping> {
        Some(match s {
            "allow-utf-8" => NameEscaping::AllowUtf8,
            "underscores" => NameEscaping::Underscores,
            "dots" => NameEscaping::Dots,
            "values" => NameEscaping::Values,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NameEscaping::AllowUtf8 => "allow-utf-8",
            NameEscaping::Underscores => "underscores",
            NameEscaping::Dots => "dots",
            NameEscaping::Values => "values",
        }
    }
}

/// The two schemes of one scope (global or a scrape config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameSchemes {
    pub validation: NameValidation,
    pub escaping: NameEscaping,
    /// Whether `escaping` was written (else it follows `validation`).
    pub escaping_set: bool,
}

/// Resolves the schemes of a scope; `parent` is the global scope for a
/// scrape config (its written values are inherited), `scope` names the
/// scope in errors ("global", "scrape config").
pub(crate) fn resolve(
    validation: &Option<S<String>>,
    escaping: &Option<S<String>>,
    parent: Option<&NameSchemes>,
    scope: &str,
    sink: &mut Sink,
) -> NameSchemes {
    let mut out = parent.copied().unwrap_or_default();
    if let Some(v) = validation {
        match v.value.as_str() {
            "" => {}
            "utf8" => out.validation = NameValidation::Utf8,
            "legacy" => out.validation = NameValidation::Legacy,
            other => sink.push(
                Pos::of(v),
                format!("unrecognized ValidationScheme: {other:?}"),
            ),
        }
    }
    match escaping.as_ref().filter(|e| !e.value.is_empty()) {
        Some(e) => match NameEscaping::parse(&e.value) {
            Some(x) => {
                out.escaping = x;
                out.escaping_set = true;
            }
            None => sink.push(
                Pos::of(e),
                format!(
                    "unknown {scope} name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {:?}",
                    e.value
                ),
            ),
        },
        None if !out.escaping_set => {
            out.escaping = match out.validation {
                NameValidation::Utf8 => NameEscaping::AllowUtf8,
                NameValidation::Legacy => NameEscaping::Underscores,
            }
        }
        None => {}
    }
    if out.escaping == NameEscaping::AllowUtf8 && out.validation == NameValidation::Legacy {
        let at = escaping
            .as_ref()
            .or(validation.as_ref())
            .map(Pos::of)
            .unwrap_or(Pos::UNKNOWN);
        sink.push(
            at,
            "utf8 metric names requested but validation scheme is not set to UTF8",
        );
    }
    out
}

fn legacy_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Whether `name` is a legacy metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_legacy_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| legacy_char(c, i == 0))
}

/// `name` escaped by `scheme`, as Prometheus' `model.EscapeName`:
/// underscores replace each invalid character with `_`; dots write `.` as
/// `_dot_`, `_` as `__` and other invalid characters as `__`; values prefix
/// `U__` and write `_` as `__` and an invalid character as `_<hex code>_`.
pub fn escape_name(name: &str, scheme: NameEscaping) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    use std::fmt::Write;
    match scheme {
        NameEscaping::AllowUtf8 => Cow::Borrowed(name),
        NameEscaping::Underscores | NameEscaping::Values if is_legacy_metric_name(name) => {
            Cow::Borrowed(name)
        }
        NameEscaping::Underscores => Cow::Owned(
            name.chars()
                .enumerate()
                .map(|(i, c)| if legacy_char(c, i == 0) { c } else { '_' })
                .collect(),
        ),
        NameEscaping::Dots => {
            let mut out = String::with_capacity(name.len());
            for (i, c) in name.chars().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if legacy_char(c, i == 0) => out.push(c),
                    _ => out.push_str("__"),
                }
            }
            Cow::Owned(out)
        }
        NameEscaping::Values => {
            let mut out = String::from("U__");
            for (i, c) in name.chars().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    c if legacy_char(c, i == 0) => out.push(c),
                    c => {
                        let _ = write!(out, "_{:x}_", c as u32);
                    }
                }
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_as_prometheus() {
        use NameEscaping::*;
        assert_eq!(escape_name("my.metric", AllowUtf8), "my.metric");
        assert_eq!(escape_name("my.metric", Underscores), "my_metric");
        assert_eq!(escape_name("ok_name", Underscores), "ok_name");
        assert_eq!(escape_name("my.metric_x", Dots), "my_dot_metric__x");
        assert_eq!(escape_name("a-b", Dots), "a__b");
        assert_eq!(escape_name("my.metric", Values), "U__my_2e_metric");
        assert_eq!(escape_name("a_b.c", Values), "U__a__b_2e_c");
        assert_eq!(escape_name("ok_name", Values), "ok_name");
        assert_eq!(escape_name("1a", Underscores), "_a");
    }
}
