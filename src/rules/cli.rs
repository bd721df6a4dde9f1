//! The rule-file commands of the binary: `klaxon check rules` and
//! `klaxon test rules` (promtool's output and exit codes), and the file
//! writing shared by the rule generators (`klaxon slo generate`,
//! `klaxon anomaly generate`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// `klaxon check rules`.
#[derive(Clone, Debug, Default)]
pub struct CheckArgs {
    pub files: Vec<PathBuf>,
    /// `duplicate-rules`, `none`, `all` or `klaxon`.
    pub lint: String,
    /// Exit 3 when lint finds problems.
    pub lint_fatal: bool,
    /// klaxon's `FILE:LINE:COL:` error form instead of promtool's text.
    pub positions: bool,
}

/// Checks the rule files; the exit code: 0 valid, 1 invalid, 3 lint
/// problems under `lint_fatal`. `ctx` holds the scrape intervals the
/// rate-window lint uses (`settings::cli::check_rules` reads them from
/// `--config`).
pub fn check(
    a: &CheckArgs,
    ctx: super::file::lint::LintContext,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let opts = super::file::LintOptions {
        positions: a.positions,
        ..super::file::LintOptions::from_flag(&a.lint, a.lint_fatal, ctx)
    };
    match super::file::check_rule_files(&a.files, opts, out, err) {
        Ok(c) => u8::try_from(c).unwrap_or(1),
        Err(e) => {
            let _ = writeln!(err, "klaxon: {e}");
            1
        }
    }
}

/// Runs promtool unit-test files; the exit code (0 all passed, 1 else).
pub fn test(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    u8::try_from(super::unittest::test_rule_files(files, out, err)).unwrap_or(1)
}

/// Config errors, each `FILE:LINE:COL: message` on its own line.
pub fn print_errors(err: &mut dyn Write, errs: &crate::config::ConfigErrors) {
    let s = errs.to_string();
    let _ = write!(err, "{s}");
    if !s.ends_with('\n') {
        let _ = writeln!(err);
    }
}

/// An error and its causes, `outer: inner: ...`, as the commands print it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Why generated files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("creating {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A generator's rules and tests, as `(relative path, text)`: without
/// `dir` the rules go to `out`; with it both files are written under
/// `dir` and their paths printed.
pub fn write_generated(
    files: [(&String, &String); 2],
    dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), WriteError> {
    let Some(dir) = dir else {
        let _ = write!(out, "{}", files[0].1);
        return Ok(());
    };
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WriteError::Create {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, text).map_err(|source| WriteError::Write {
            path: path.clone(),
            source,
        })?;
        let _ = writeln!(out, "{}", path.display());
    }
    Ok(())
}

/// A generator command: `generate` reads `file` and renders the rules and
/// tests (`(relative path, text)` each, named after the file); they are
/// printed or written under `dir`. The exit code: 0, or 1 with `klaxon:
/// error` on `err`.
pub fn run_generator<E: std::error::Error>(
    file: &Path,
    dir: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    generate: impl FnOnce(&Path, &str) -> Result<[(String, String); 2], E>,
) -> u8 {
    let written = generate(file, &source_name(file))
        .map_err(|e| error_chain(&e))
        .and_then(|[(rp, r), (tp, t)]| {
            write_generated([(&rp, &r), (&tp, &t)], dir, out).map_err(|e| error_chain(&e))
        });
    match written {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "klaxon: {e}");
            1
        }
    }
}

/// The file name a generator names its output after.
pub fn source_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_every_cause() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }

    #[test]
    fn generated_rules_go_to_out_without_a_directory() {
        let mut out = Vec::new();
        let f = ["a.yml", "rules\n", "t/a.test.yml", "tests\n"].map(String::from);
        write_generated([(&f[0], &f[1]), (&f[2], &f[3])], None, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "rules\n");
    }
}
