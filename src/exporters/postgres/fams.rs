//! Families as postgres_exporter exposes them: counters keep the exact
//! name upstream gives them (`pg_stat_database_xact_commit` has no `_total`,
//! `pg_stat_bgwriter_buffers_alloc_total` has), which the shared
//! `metrics::FamilySnapshot` (always appending `_total`) cannot express.

use crate::metrics::{format_value, write_header, write_series};

/// A family as the PostgreSQL collectors build it.
pub type PgFamily = crate::metrics::FamilySnapshot;

/// Families being built, looked up by name so rows of one query and of
/// several servers land in one family.
pub type Fams = crate::metrics::FamilyBuilder;

/// The text exposition format 0.0.4 (postgres_exporter offers no
/// OpenMetrics either).
pub fn encode_text(fams: &[PgFamily], out: &mut String) {
    for f in fams {
        write_header(out, &f.name, &f.help, f.kind.text_name());
        for (labels, v) in &f.samples {
            write_series(out, &f.name, "", labels);
            format_value(*v, out);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_their_exact_name_and_rows_merge() {
        let mut a = Fams::default();
        a.counter("pg_x", "x", &[("server", "b")], 2.0);
        let mut b = Fams::default();
        b.counter("pg_x", "x", &[("server", "a")], 1.0);
        b.gauge("pg_a", "a\nb", &[], f64::NAN);
        a.merge(b);
        let mut s = String::new();
        encode_text(&a.finish(), &mut s);
        assert_eq!(
            s,
            "# HELP pg_a a\\nb\n# TYPE pg_a gauge\npg_a NaN\n\
             # HELP pg_x x\n# TYPE pg_x counter\npg_x{server=\"a\"} 1\npg_x{server=\"b\"} 2\n"
        );
    }
}
