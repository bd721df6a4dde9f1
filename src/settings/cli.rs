//! `klaxon check config`: each file loaded as `klaxon run` would load it
//! (an alertmanager.yml as a notify config), with promtool's report: the
//! verdict per file on `out`, errors and warnings on `err`, then each rule
//! file the config names.

use crate::rules::cli::print_errors;
use std::io::Write;
use std::path::PathBuf;

/// Checks `files`; the exit code: 0 when all are valid, else 1.
pub fn check_config(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut code = 0;
    for file in files {
        // An alertmanager.yml is checked as a notify config.
        let is_am = std::fs::read_to_string(file)
            .is_ok_and(|t| crate::notify::config::looks_like_alertmanager(&t));
        if is_am {
            match crate::notify::config::load_file(file) {
                Ok(n) => {
                    let _ = writeln!(
                        out,
                        "{}: SUCCESS: notify config, {} receivers, {} inhibit rules",
                        file.display(),
                        n.receivers.len(),
                        n.inhibit_rules.len()
                    );
                }
                Err(errs) => {
                    print_errors(err, &errs);
                    code = 1;
                }
            }
            continue;
        }
        let cfg = match crate::settings::load_file(file) {
            Ok(cfg) => cfg,
            Err(errs) => {
                print_errors(err, &errs);
                code = 1;
                continue;
            }
        };
        let report = crate::settings::check::check(&cfg);
        for w in &report.warnings {
            let _ = writeln!(err, "{}: WARNING: {w}", file.display());
        }
        if !report.errors.is_empty() {
            print_errors(err, &crate::config::ConfigErrors(report.errors.clone()));
        }
        if report.ok() {
            let _ = writeln!(
                out,
                "{}: SUCCESS: {} scrape configs, {} rule files found",
                file.display(),
                cfg.scrape_configs.len(),
                report.rule_files.len()
            );
        } else {
            let _ = writeln!(out, "{}: FAILED", file.display());
            code = 1;
        }
        // Each rule file, as promtool reports them after the config.
        for rf in &report.rule_files {
            let _ = writeln!(out, "  Checking {}", rf.path.display());
            match &rf.result {
                Ok(n) => {
                    let _ = writeln!(out, "    SUCCESS: {n} rules found");
                }
                Err(errs) => {
                    let _ = writeln!(out, "    FAILED:");
                    for e in errs {
                        let _ = writeln!(err, "{e}");
                    }
                }
            }
        }
    }
    code
}

/// `klaxon check rules`: the lint context from `config` (its scrape
/// intervals, for the rate-window lint), then [`crate::rules::cli::check`].
pub fn check_rules(
    a: &crate::rules::cli::CheckArgs,
    config: Option<&std::path::Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let ctx = match config {
        None => crate::rules::file::lint::LintContext::default(),
        Some(p) => match super::load_file(p) {
            Ok(c) => {
                crate::rules::file::lint::LintContext::from_config(&c.global, &c.scrape_configs)
            }
            Err(errs) => {
                print_errors(err, &errs);
                return 1;
            }
        },
    };
    crate::rules::cli::check(a, ctx, out, err)
}
