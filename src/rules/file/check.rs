//! `check rules`: promtool 2.42's per-file report and exit codes, and its
//! duplicate-rule lint.

use super::lint::{lint_file, LintContext};
use super::{load_rule_file, RuleFile};
use crate::model::Labels;
use std::io::{self, Write};
use std::path::Path;

/// A rule name and label set that occurs more than once in a file: two
/// recording rules writing the same series would overwrite each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRule {
    pub metric: String,
    pub labels: Labels,
}

/// promtool's `checkDuplicates`: alerting and recording rules alike, keyed
/// by name and rule labels, each duplicated key reported once, in key order.
pub fn duplicate_rules(file: &RuleFile) -> Vec<DuplicateRule> {
    let mut keys: Vec<(&str, &Labels)> = file
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| (r.kind.name(), &r.labels))
        .collect();
    keys.sort_by(|a, b| {
        a.0.cmp(b.0).then_with(|| {
            a.1.as_slice()
                .iter()
                .map(|l| (&l.name, &l.value))
                .cmp(b.1.as_slice().iter().map(|l| (&l.name, &l.value)))
        })
    });
    let mut out: Vec<DuplicateRule> = Vec::new();
    for w in keys.windows(2) {
        if let [a, b] = w {
            if a == b
                && out
                    .last()
                    .is_none_or(|d| d.metric != a.0 || &d.labels != a.1)
            {
                out.push(DuplicateRule {
                    metric: b.0.to_string(),
                    labels: b.1.clone(),
                });
            }
        }
    }
    out
}

/// Lint settings of `promtool check rules` (`--lint`, `--lint-fatal`).
#[derive(Clone, Debug)]
pub struct LintOptions {
    pub duplicate_rules: bool,
    /// Lint findings make the exit code 3 instead of 0.
    pub fatal: bool,
    /// klaxon's extra lints ([`super::lint`]); `None` keeps promtool's output.
    pub extra: Option<LintContext>,
    /// Errors in klaxon's positioned form (`--positions`) instead of
    /// promtool's text; see [`super::RuleFileError::positioned`].
    pub positions: bool,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            duplicate_rules: true,
            fatal: false,
            extra: None,
            positions: false,
        }
    }
}

impl LintOptions {
    /// From `--lint` values as promtool takes them (comma-separated):
    /// `duplicate-rules` and `none` as promtool; `all` and the klaxon-only
    /// `klaxon` add the extra lints, with `ctx` from `--config` if given.
    pub fn from_flag(lint: &str, fatal: bool, ctx: LintContext) -> LintOptions {
        let has = |v: &str| lint.split(',').any(|l| l.trim() == v);
        LintOptions {
            duplicate_rules: has("duplicate-rules") || has("all"),
            fatal,
            extra: (has("all") || has("klaxon")).then_some(ctx),
            positions: false,
        }
    }
}

/// Checks each file, writing promtool's report (`Checking F`, `  SUCCESS: N
/// rules found` on `out`; `  FAILED:` and the errors on `err`) and returning
/// its exit code: 1 if any file is invalid, 3 for lint findings with
/// `fatal`, else 0.
pub fn check_rule_files<P: AsRef<Path>>(
    files: &[P],
    lint: LintOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<i32> {
    let mut failed = false;
    let mut has_errors = false;
    for f in files {
        let f = f.as_ref();
        writeln!(out, "Checking {}", f.display())?;
        let mut warnings = Vec::new();
        let problems: Vec<String> = match load_rule_file(f) {
            Err(errs) => {
                has_errors = true;
                errs.errors()
                    .iter()
                    .map(|e| {
                        if lint.positions {
                            e.positioned()
                        } else {
                            e.to_string()
                        }
                    })
                    .collect()
            }
            Ok(file) => {
                if let Some(ctx) = &lint.extra {
                    warnings = lint_file(&f.display().to_string(), &file, ctx);
                }
                let dups = if lint.duplicate_rules {
                    duplicate_rules(&file)
                } else {
                    Vec::new()
                };
                if dups.is_empty() {
                    writeln!(out, "  SUCCESS: {} rules found", file.rule_count())?;
                    Vec::new()
                } else {
                    vec![lint_message(&dups)]
                }
            }
        };
        if !problems.is_empty() {
            failed = true;
            writeln!(err, "  FAILED:")?;
            for p in &problems {
                writeln!(err, "{p}")?;
            }
        }
        if !warnings.is_empty() {
            failed = true;
            for w in &warnings {
                writeln!(err, "  WARNING: {w}")?;
            }
        }
        writeln!(out)?;
    }
    Ok(if failed && has_errors {
        1
    } else if failed && lint.fatal {
        3
    } else {
        0
    })
}

fn lint_message(dups: &[DuplicateRule]) -> String {
    let mut m = format!("lint error {} duplicate rule(s) found.\n", dups.len());
    for d in dups {
        m.push_str(&format!("Metric: {}\nLabel(s):\n", d.metric));
        for l in d.labels.iter() {
            m.push_str(&format!("\t{}: {}\n", l.name, l.value));
        }
    }
    m.push_str("Might cause inconsistency while recording expressions");
    m
}
