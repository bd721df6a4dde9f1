//! `metric_name_validation_scheme` / `metric_name_escaping_scheme` and the
//! `otlp:` strategy check, through the whole file's loader (global values
//! inherited by scrape configs, Prometheus' error texts).

use crate::config::names::{NameEscaping, NameValidation};

fn load(yaml: &str) -> Result<crate::settings::Config, String> {
    crate::settings::load_str(yaml, "x.yml").map_err(|e| e.to_string())
}

#[test]
fn schemes_resolve_and_inherit() {
    let c = load("scrape_configs:\n  - job_name: a\n").unwrap();
    assert_eq!(c.global.names.validation, NameValidation::Utf8);
    assert_eq!(c.scrape_configs[0].names.escaping, NameEscaping::AllowUtf8);
    let c = load("scrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: legacy\n")
        .unwrap();
    assert_eq!(c.scrape_configs[0].names.validation, NameValidation::Legacy);
    assert_eq!(
        c.scrape_configs[0].names.escaping,
        NameEscaping::Underscores
    );
    let c = load("global:\n  metric_name_validation_scheme: legacy\n  metric_name_escaping_scheme: values\nscrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: utf8\n    metric_name_escaping_scheme: dots\n  - job_name: b\n").unwrap();
    assert_eq!(c.scrape_configs[0].names.escaping, NameEscaping::Dots);
    assert_eq!(c.scrape_configs[1].names.escaping, NameEscaping::Values);
    assert_eq!(c.scrape_configs[1].names.validation, NameValidation::Legacy);
    let e = load("global:\n  metric_name_validation_scheme: invalid_scheme\n").unwrap_err();
    assert!(
        e.contains("x.yml:2:34: unrecognized ValidationScheme: \"invalid_scheme\""),
        "{e}"
    );
    let e = load("global:\n  metric_name_validation_scheme: legacy\n  metric_name_escaping_scheme: allow-utf-8\n").unwrap_err();
    assert!(
        e.contains("utf8 metric names requested but validation scheme is not set to UTF8"),
        "{e}"
    );
    let e = load("scrape_configs:\n  - job_name: a\n    metric_name_escaping_scheme: nope\n")
        .unwrap_err();
    assert!(e.contains("unknown scrape config name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got \"nope\""), "{e}");
    let e = load("global:\n  metric_name_validation_scheme: legacy\notlp:\n  translation_strategy: NoTranslation\n").unwrap_err();
    assert!(
        e.contains(
            "OTLP translation strategy \"NoTranslation\" is not allowed when UTF8 is disabled"
        ),
        "{e}"
    );
}
