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
    // Prometheus checks the pair per scrape config: one that inherits both
    // fails (at the global value it inherits), one with its own validation
    // scheme derives its escaping scheme from it, and without scrape
    // configs the pair is never used.
    let pair = "global:\n  metric_name_validation_scheme: legacy\n  metric_name_escaping_scheme: allow-utf-8\n";
    let e = load(&format!(
        "{pair}scrape_configs:\n  - job_name: a\n  - job_name: b\n"
    ))
    .unwrap_err();
    assert_eq!(
        e.matches("utf8 metric names requested").count(),
        1,
        "reported once: {e}"
    );
    assert!(
        e.contains(
            "x.yml:3:32: utf8 metric names requested but validation scheme is not set to UTF8"
        ),
        "{e}"
    );
    let c = load(&format!(
        "{pair}scrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: utf8\n  - job_name: b\n    metric_name_validation_scheme: legacy\n"
    ))
    .unwrap();
    assert_eq!(c.scrape_configs[0].names.escaping, NameEscaping::AllowUtf8);
    assert_eq!(
        c.scrape_configs[1].names.escaping,
        NameEscaping::Underscores
    );
    assert!(load(pair).is_ok());
    // A scrape config's own validation scheme wins over the global
    // escaping scheme.
    let c = load("global:\n  metric_name_validation_scheme: legacy\n  metric_name_escaping_scheme: dots\nscrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: utf8\n").unwrap();
    assert_eq!(c.scrape_configs[0].names.escaping, NameEscaping::AllowUtf8);
    let c = load("global:\n  metric_name_escaping_scheme: allow-utf-8\nscrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: legacy\n").unwrap();
    assert_eq!(
        c.scrape_configs[0].names.escaping,
        NameEscaping::Underscores
    );
    // Written in the scrape config itself: the error is there.
    let e = load("global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n    metric_name_escaping_scheme: allow-utf-8\n").unwrap_err();
    assert!(
        e.contains(
            "x.yml:5:34: utf8 metric names requested but validation scheme is not set to UTF8"
        ),
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

/// Prometheus' TestScrapeConfigNameValidationSettings and
/// TestScrapeConfigNameEscapingSettings on its own testdata files, and
/// the conflicting pair of bad-config-errors.tsv.
#[test]
fn upstream_scheme_testdata() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/upstream/prometheus/config/testdata");
    if !dir.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} missing",
            dir.display()
        );
        return;
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("testdata file");
    let cases = [
        (
            "scrape_config_default_validation_mode.yml",
            NameValidation::Utf8,
            NameEscaping::AllowUtf8,
        ),
        (
            "scrape_config_global_validation_mode.yml",
            NameValidation::Legacy,
            NameEscaping::Dots,
        ),
        (
            "scrape_config_local_validation_mode.yml",
            NameValidation::Legacy,
            NameEscaping::Values,
        ),
        (
            "scrape_config_local_global_validation_mode.yml",
            NameValidation::Utf8,
            NameEscaping::Dots,
        ),
        (
            "scrape_config_local_infer_escaping.yml",
            NameValidation::Legacy,
            NameEscaping::Underscores,
        ),
    ];
    for (file, validation, escaping) in cases {
        let c = load(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let n = c.scrape_configs[0].names;
        assert_eq!((n.validation, n.escaping), (validation, escaping), "{file}");
    }
    let e = load(&read("scrape_config_utf8_conflicting.bad.yml")).unwrap_err();
    assert!(
        e.contains("utf8 metric names requested but validation scheme is not set to UTF8"),
        "{e}"
    );
}

/// `klaxon check config` checks rule files under the global validation
/// scheme, as `klaxon run` (and Prometheus 3's server) will load them.
#[test]
fn check_config_reads_rule_files_under_the_global_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g\n  rules:\n  - record: job.up\n    expr: up\n    labels:\n      my.label: x\n",
    )
    .unwrap();
    let check = |global: &str| {
        let yaml = format!("{global}rule_files: ['{}']\n", rules.display());
        let path = dir.path().join("klaxon.yml");
        std::fs::write(&path, yaml).unwrap();
        let cfg = crate::settings::load_file(&path).unwrap();
        crate::settings::check::check(&cfg)
            .rule_files
            .remove(0)
            .result
    };
    assert_eq!(check(""), Ok(1));
    let errs = check("global:\n  metric_name_validation_scheme: legacy\n").unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].contains("invalid recording rule name: job.up"),
        "{errs:#?}"
    );
    assert!(
        errs[1].contains("invalid label name: my.label"),
        "{errs:#?}"
    );
}
