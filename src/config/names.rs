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

impl NameValidation {
    /// Prometheus' `ValidationScheme.IsValidMetricName` (a Rust string is
    /// always valid UTF-8, so utf8 only asks for a non-empty name).
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_metric_name(name),
        }
    }

    /// Prometheus' `ValidationScheme.IsValidLabelName`.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => crate::model::gofmt::is_legacy_label_name(name),
        }
    }

    /// Prometheus' `labels.Labels.IsValid(scheme)`: the metric name and
    /// every label name valid under the scheme.
    pub fn labels_valid(self, labels: &crate::model::Labels) -> bool {
        labels.iter().all(|l| {
            self.is_valid_label_name(&l.name)
                && (l.name != crate::model::labels::METRIC_NAME
                    || self.is_valid_metric_name(&l.value))
        })
    }
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
    /// Where the written `escaping` is, for errors of the scopes that
    /// inherit it.
    pub(crate) escaping_at: Option<Pos>,
}

/// Resolves the schemes of a scope as Prometheus 3 does; `parent` is the
/// global scope for a scrape config, `scope` names the scope in errors
/// ("global", "scrape config").
///
/// A scrape config without a validation scheme inherits the global one
/// and, without an escaping scheme, the global escaping scheme (written,
/// or derived from the global validation scheme). One that sets its own
/// validation scheme derives its escaping scheme from it instead (legacy:
/// underscores, utf8: allow-utf-8). `allow-utf-8` with legacy validation is
/// an error of the scrape config that ends up with both (Prometheus checks
/// it per scrape config only, so a global pair no scrape config uses passes).
pub(crate) fn resolve(
    validation: &Option<S<String>>,
    escaping: &Option<S<String>>,
    parent: Option<&NameSchemes>,
    scope: &str,
    sink: &mut Sink,
) -> NameSchemes {
    let mut out = parent.copied().unwrap_or_default();
    let mut own_validation = false;
    if let Some(v) = validation {
        match v.value.as_str() {
            "" => {}
            "utf8" => {
                out.validation = NameValidation::Utf8;
                own_validation = true;
            }
            "legacy" => {
                out.validation = NameValidation::Legacy;
                own_validation = true;
            }
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
                out.escaping_at = Some(Pos::of(e));
            }
            None => sink.push(
                Pos::of(e),
                format!(
                    "unknown {scope} name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {:?}",
                    e.value
                ),
            ),
        },
        None if own_validation || !out.escaping_set => {
            out.escaping = match out.validation {
                NameValidation::Utf8 => NameEscaping::AllowUtf8,
                NameValidation::Legacy => NameEscaping::Underscores,
            };
            out.escaping_set = false;
            out.escaping_at = None;
        }
        None => {}
    }
    if parent.is_some()
        && out.escaping == NameEscaping::AllowUtf8
        && out.validation == NameValidation::Legacy
    {
        let at = out
            .escaping_at
            .or(validation.as_ref().map(Pos::of))
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
        _ if name.is_empty() => Cow::Borrowed(name),
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

/// `name` unescaped as Prometheus' `model.UnescapeName`: underscores
/// cannot be undone; dots turn `_dot_` into `.` and then `__` into `_`;
/// values needs the `U__` prefix and gives the input back unchanged when
/// anything in it is malformed (a lone `_`, a code that is not hex, of six
/// digits or more, unterminated, or not a Unicode scalar value).
pub fn unescape_name(name: &str, scheme: NameEscaping) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    match scheme {
        NameEscaping::AllowUtf8 | NameEscaping::Underscores => Cow::Borrowed(name),
        NameEscaping::Dots => {
            if !name.contains("__") && !name.contains("_dot_") {
                return Cow::Borrowed(name);
            }
            Cow::Owned(name.replace("_dot_", ".").replace("__", "_"))
        }
        NameEscaping::Values => match unescape_values(name) {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(name),
        },
    }
}

fn unescape_values(name: &str) -> Option<String> {
    let rest = name.strip_prefix("U__")?;
    let b = rest.as_bytes();
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'_' {
            // Copy the whole (possibly multi-byte) character.
            let c = rest[i..].chars().next()?;
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        i += 1;
        match b.get(i)? {
            b'_' => {
                out.push('_');
                i += 1;
            }
            _ => {
                // As Go's loop: the digit count is checked before the
                // closing underscore, so six digits are already too many.
                let start = i;
                loop {
                    if i - start >= 6 {
                        return None;
                    }
                    let c = *b.get(i)?;
                    if c == b'_' {
                        break;
                    }
                    if !c.is_ascii_hexdigit() {
                        return None;
                    }
                    i += 1;
                }
                let code = u32::from_str_radix(&rest[start..i], 16).ok()?;
                out.push(char::from_u32(code)?);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// prometheus/common model's TestEscapeName table: input, underscores,
    /// dots, dots unescaped, values (values always round-trips).
    const ESCAPE_CASES: &[(&str, &str, &str, &str, &str)] = &[
        ("", "", "", "", ""),
        (
            "no:escaping_required",
            "no:escaping_required",
            "no:escaping__required",
            "no:escaping_required",
            "no:escaping_required",
        ),
        (
            "mysystem.prod.west.cpu.load",
            "mysystem_prod_west_cpu_load",
            "mysystem_dot_prod_dot_west_dot_cpu_dot_load",
            "mysystem.prod.west.cpu.load",
            "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load",
        ),
        (
            "mysystem.prod.west.cpu.load_total",
            "mysystem_prod_west_cpu_load_total",
            "mysystem_dot_prod_dot_west_dot_cpu_dot_load__total",
            "mysystem.prod.west.cpu.load_total",
            "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load__total",
        ),
        (
            "http.status:sum",
            "http_status:sum",
            "http_dot_status:sum",
            "http.status:sum",
            "U__http_2e_status:sum",
        ),
        (
            "label with \u{1F631}",
            "label_with__",
            "label__with____",
            "label_with__",
            "U__label_20_with_20__1f631_",
        ),
        ("\u{82B1}\u{706B}", "__", "____", "__", "U___82b1__706b_"),
        (
            "label with \u{100}",
            "label_with__",
            "label__with____",
            "label_with__",
            "U__label_20_with_20__100_",
        ),
    ];

    #[test]
    fn escaping_as_prometheus_common() {
        use NameEscaping::*;
        for (input, under, dots, undots, values) in ESCAPE_CASES {
            assert_eq!(escape_name(input, AllowUtf8), *input);
            assert_eq!(unescape_name(input, AllowUtf8), *input);
            assert_eq!(escape_name(input, Underscores), *under, "{input}");
            assert_eq!(unescape_name(under, Underscores), *under, "{input}");
            assert_eq!(escape_name(input, Dots), *dots, "{input}");
            assert_eq!(unescape_name(dots, Dots), *undots, "{input}");
            assert_eq!(escape_name(input, Values), *values, "{input}");
            assert_eq!(unescape_name(values, Values), *input, "{input}");
        }
        assert_eq!(escape_name("1a", Underscores), "_a");
    }

    /// prometheus/common model's TestValueUnescapeErrors: malformed input
    /// comes back unchanged.
    #[test]
    fn values_unescape_errors_as_prometheus_common() {
        let cases = [
            ("", ""),
            ("U__no:unescapingrequired", "no:unescapingrequired"),
            ("U__capitals_2E_ok", "capitals.ok"),
            ("U__underscores__doubled__", "underscores_doubled_"),
            ("U__underscores_doubled_", "U__underscores_doubled_"),
            ("U__underscores__doubled_", "U__underscores__doubled_"),
            (
                "U__my__hack_2e_attempt_872348732fabdabbab_",
                "U__my__hack_2e_attempt_872348732fabdabbab_",
            ),
            ("U__my__hack_2e", "U__my__hack_2e"),
            ("U__bad__utf_2eg_", "U__bad__utf_2eg_"),
            ("U__bad__utf_D900_", "U__bad__utf_D900_"),
            // Not escaped at all.
            ("plain.name", "plain.name"),
            // Go counts digits before looking for the closing underscore:
            // six digits are refused even for a valid code point.
            ("U__a_10ffff_", "U__a_10ffff_"),
            ("U__a_1f631_", "a\u{1F631}"),
        ];
        for (input, want) in cases {
            assert_eq!(unescape_name(input, NameEscaping::Values), want, "{input}");
        }
    }

    /// prometheus/common model's TestValidationScheme_IsMetricNameValid
    /// (without its invalid-UTF-8 case, which a Rust string cannot hold).
    #[test]
    fn metric_name_validity_as_prometheus_common() {
        let cases = [
            ("Avalid_23name", true, true),
            ("_Avalid_23name", true, true),
            ("1valid_23name", false, true),
            ("avalid_23name", true, true),
            ("Ava:lid_23name", true, true),
            ("a lid_23name", false, true),
            (":leading_colon", true, true),
            ("colon:in:the:middle", true, true),
            ("", false, false),
            ("dot.in.name", false, true),
        ];
        for (name, legacy, utf8) in cases {
            assert_eq!(
                NameValidation::Legacy.is_valid_metric_name(name),
                legacy,
                "{name}"
            );
            assert_eq!(
                NameValidation::Utf8.is_valid_metric_name(name),
                utf8,
                "{name}"
            );
        }
        assert!(!NameValidation::Legacy.is_valid_label_name("a:b"));
        assert!(NameValidation::Utf8.is_valid_label_name("a:b"));
        assert!(!NameValidation::Utf8.is_valid_label_name(""));
    }

    #[test]
    fn labels_valid_checks_name_and_label_names() {
        use crate::model::Labels;
        let ok = Labels::from_pairs([("__name__", "a:b"), ("job", "x")]);
        let dotted = Labels::from_pairs([("__name__", "a.b"), ("job", "x")]);
        let label = Labels::from_pairs([("__name__", "ab"), ("my.label", "x")]);
        for l in [&ok, &dotted, &label] {
            assert!(NameValidation::Utf8.labels_valid(l), "{l}");
        }
        assert!(NameValidation::Legacy.labels_valid(&ok));
        assert!(!NameValidation::Legacy.labels_valid(&dotted));
        assert!(!NameValidation::Legacy.labels_valid(&label));
        // A value may hold anything.
        let value = Labels::from_pairs([("__name__", "ab"), ("job", "a.b c")]);
        assert!(NameValidation::Legacy.labels_valid(&value));
    }
}
