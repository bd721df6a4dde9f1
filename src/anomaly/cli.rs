//! `klaxon anomaly generate`: the baseline, band and alert rules (and their
//! promtool tests) of an anomaly definition file, printed or written under
//! a directory.

use std::io::Write;
use std::path::Path;

/// Generates from `file`; the exit code (0, or 1 with `klaxon: error` on
/// `err`).
pub fn generate(file: &Path, dir: Option<&Path>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    crate::rules::cli::run_generator(file, dir, out, err, |f, name| {
        let g = super::generate(&super::load_file(f)?, name);
        Ok::<_, super::AnomalyError>([(g.rules_path, g.rules), (g.tests_path, g.tests)])
    })
}
