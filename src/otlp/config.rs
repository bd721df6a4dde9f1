//! The `otlp:` section, in Prometheus 3's shape, validated with its error
//! texts.

use crate::config::errors::{Pos, Sink};
use crate::config::raw::S;
use serde::Deserialize;

/// `otlp.translation_strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TranslationStrategy {
    /// Names escaped to the legacy character set, unit and type suffixes.
    #[default]
    UnderscoreEscapingWithSuffixes,
    UnderscoreEscapingWithoutSuffixes,
    /// UTF-8 names kept, suffixes added.
    NoUTF8EscapingWithSuffixes,
    /// Names exactly as sent.
    NoTranslation,
}

impl TranslationStrategy {
    pub fn parse(s: &str) -> Option<TranslationStrategy> {
        Some(match s {
            "UnderscoreEscapingWithSuffixes" => Self::UnderscoreEscapingWithSuffixes,
            "UnderscoreEscapingWithoutSuffixes" => Self::UnderscoreEscapingWithoutSuffixes,
            "NoUTF8EscapingWithSuffixes" => Self::NoUTF8EscapingWithSuffixes,
            "NoTranslation" => Self::NoTranslation,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnderscoreEscapingWithSuffixes => "UnderscoreEscapingWithSuffixes",
            Self::UnderscoreEscapingWithoutSuffixes => "UnderscoreEscapingWithoutSuffixes",
            Self::NoUTF8EscapingWithSuffixes => "NoUTF8EscapingWithSuffixes",
            Self::NoTranslation => "NoTranslation",
        }
    }

    /// Whether names are escaped to the legacy character set.
    pub fn escapes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::UnderscoreEscapingWithoutSuffixes
        )
    }

    /// Whether unit and type suffixes are added.
    pub fn adds_suffixes(self) -> bool {
        matches!(
            self,
            Self::UnderscoreEscapingWithSuffixes | Self::NoUTF8EscapingWithSuffixes
        )
    }
}

/// The resolved `otlp:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Resource attributes copied onto every series of the resource.
    pub promote_resource_attributes: Vec<String>,
    /// Every resource attribute promoted except `ignore_resource_attributes`.
    pub promote_all_resource_attributes: bool,
    pub ignore_resource_attributes: Vec<String>,
    pub translation_strategy: TranslationStrategy,
    /// `service.name`, `service.namespace` and `service.instance.id` kept on
    /// `target_info` besides `job` and `instance`.
    pub keep_identifying_resource_attributes: bool,
    /// `otel_scope_name`, `otel_scope_version` on every series.
    pub promote_scope_metadata: bool,
    /// Explicit-bucket histograms stored as native histograms with custom
    /// buckets instead of classic `_bucket` series.
    pub convert_histograms_to_nhcb: bool,
    /// `key` before an escaped label name starting with a single `_`.
    pub label_name_underscore_sanitization: bool,
    /// Runs of `_` in escaped label names kept.
    pub label_name_preserve_multiple_underscores: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            translation_strategy: TranslationStrategy::default(),
            keep_identifying_resource_attributes: false,
            promote_scope_metadata: false,
            convert_histograms_to_nhcb: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
        }
    }
}

impl OtlpConfig {
    /// How attribute keys become label names.
    pub fn label_options(&self) -> crate::otlp::names::LabelOptions {
        crate::otlp::names::LabelOptions {
            strategy: self.translation_strategy,
            underscore_sanitization: self.label_name_underscore_sanitization,
            preserve_multiple_underscores: self.label_name_preserve_multiple_underscores,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOtlp {
    promote_resource_attributes: Option<S<Vec<S<String>>>>,
    promote_all_resource_attributes: Option<S<bool>>,
    ignore_resource_attributes: Option<S<Vec<S<String>>>>,
    translation_strategy: Option<S<String>>,
    keep_identifying_resource_attributes: Option<bool>,
    convert_histograms_to_nhcb: Option<bool>,
    promote_scope_metadata: Option<bool>,
    label_name_underscore_sanitization: Option<bool>,
    label_name_preserve_multiple_underscores: Option<bool>,
}

/// Trimmed, non-empty, unique attribute names; `what` names the list in
/// errors as Prometheus does.
fn attribute_list(list: &[S<String>], what: &str, sink: &mut Sink) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in list {
        let name = a.value.trim();
        if name.is_empty() {
            sink.push(Pos::of(a), format!("empty {what} OTel resource attribute"));
        } else if out.iter().any(|o| o == name) {
            sink.push(
                Pos::of(a),
                format!("duplicated {what} OTel resource attribute {name:?}"),
            );
        } else {
            out.push(name.to_string());
        }
    }
    out
}

/// `legacy`: the global `metric_name_validation_scheme` is `legacy`, which
/// only the escaping strategies fit.
pub(crate) fn resolve(raw: Option<S<RawOtlp>>, legacy: bool, sink: &mut Sink) -> OtlpConfig {
    let Some(raw) = raw else {
        return OtlpConfig::default();
    };
    let at = Pos::of(&raw);
    let raw = raw.value;
    let mut cfg = OtlpConfig::default();
    if let Some(list) = &raw.promote_resource_attributes {
        cfg.promote_resource_attributes = attribute_list(&list.value, "promoted", sink);
    }
    if let Some(list) = &raw.ignore_resource_attributes {
        cfg.ignore_resource_attributes = attribute_list(&list.value, "ignored", sink);
    }
    cfg.promote_all_resource_attributes = raw
        .promote_all_resource_attributes
        .as_ref()
        .is_some_and(|b| b.value);
    if cfg.promote_all_resource_attributes && !cfg.promote_resource_attributes.is_empty() {
        sink.push(
            at,
            "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
        );
    }
    if !cfg.ignore_resource_attributes.is_empty() && !cfg.promote_all_resource_attributes {
        sink.push(
            at,
            "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
        );
    }
    if let Some(s) = &raw.translation_strategy {
        match TranslationStrategy::parse(&s.value) {
            Some(t) => {
                cfg.translation_strategy = t;
                if legacy && !t.escapes() {
                    sink.push(
                        Pos::of(s),
                        format!(
                            "OTLP translation strategy {:?} is not allowed when UTF8 is disabled",
                            t.as_str()
                        ),
                    );
                }
            }
            None => sink.push(
                Pos::of(s),
                format!("unsupported OTLP translation strategy {:?}", s.value),
            ),
        }
    }
    cfg.keep_identifying_resource_attributes =
        raw.keep_identifying_resource_attributes.unwrap_or(false);
    cfg.promote_scope_metadata = raw.promote_scope_metadata.unwrap_or(false);
    cfg.convert_histograms_to_nhcb = raw.convert_histograms_to_nhcb.unwrap_or(false);
    cfg.label_name_underscore_sanitization = raw.label_name_underscore_sanitization.unwrap_or(true);
    cfg.label_name_preserve_multiple_underscores =
        raw.label_name_preserve_multiple_underscores.unwrap_or(true);
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<OtlpConfig, String> {
        let raw: S<RawOtlp> = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        let mut sink = Sink::new("x.yml");
        let cfg = resolve(Some(raw), false, &mut sink);
        sink.into_result(cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_fields() {
        let c = load("promote_resource_attributes: [' service.version ', k8s.pod.name]\ntranslation_strategy: NoUTF8EscapingWithSuffixes\n").unwrap();
        assert_eq!(
            c.promote_resource_attributes,
            vec!["service.version", "k8s.pod.name"]
        );
        assert_eq!(
            c.translation_strategy,
            TranslationStrategy::NoUTF8EscapingWithSuffixes
        );
        assert_eq!(load("{}").unwrap(), OtlpConfig::default());
    }

    #[test]
    fn errors_use_prometheus_texts() {
        let e = load("promote_resource_attributes: [a, ' a']\n").unwrap_err();
        assert!(
            e.contains("x.yml:1:")
                && e.contains("duplicated promoted OTel resource attribute \"a\""),
            "{e}"
        );
        let e = load("promote_resource_attributes: ['']\n").unwrap_err();
        assert!(e.contains("empty promoted OTel resource attribute"), "{e}");
        let e = load("translation_strategy: Foo\n").unwrap_err();
        assert!(
            e.contains("x.yml:1:") && e.contains("unsupported OTLP translation strategy \"Foo\""),
            "{e}"
        );
        let e = load("promote_all_resource_attributes: true\npromote_resource_attributes: [a]\n")
            .unwrap_err();
        assert!(e.contains("cannot be configured simultaneously"), "{e}");
        let e = load("ignore_resource_attributes: [a]\n").unwrap_err();
        assert!(
            e.contains("'ignore_resource_attributes' cannot be configured unless"),
            "{e}"
        );
    }
}
