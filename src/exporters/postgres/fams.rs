//! Families as postgres_exporter exposes them: counters keep the exact
//! name upstream gives them (`pg_stat_database_xact_commit` has no `_total`,
//! `pg_stat_bgwriter_buffers_alloc_total` has), which the shared
//! `metrics::FamilySnapshot` (always appending `_total`) cannot express.

use crate::metrics::{format_value, write_header, write_series, Kind};
use std::collections::HashMap;

/// One family: `name` is the exposed sample name.
#[derive(Clone, Debug, PartialEq)]
pub struct PgFamily {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

/// Families being built, looked up by name so rows of one query and of
/// several servers land in one family.
#[derive(Default)]
pub struct Fams {
    fams: Vec<PgFamily>,
    index: HashMap<String, usize>,
}

impl Fams {
    /// Adds one sample. The first call for a name fixes its help and kind.
    pub fn push(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: f64) {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.fams.push(PgFamily {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                let i = self.fams.len() - 1;
                self.index.insert(name.to_string(), i);
                i
            }
        };
        if let Some(f) = self.fams.get_mut(i) {
            f.samples.push((
                labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                v,
            ));
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Gauge, labels, v)
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Counter, labels, v)
    }

    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Untyped, labels, v)
    }

    /// Sum of a family's samples; `None` when it has none (its query failed).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let f = self.fams.get(*self.index.get(name)?)?;
        if f.samples.is_empty() {
            return None;
        }
        Some(
            f.samples
                .iter()
                .map(|(_, v)| v)
                .filter(|v| !v.is_nan())
                .sum(),
        )
    }

    /// Moves every family of `other` in (samples appended to same-named ones).
    pub fn merge(&mut self, other: Fams) {
        for f in other.fams {
            match self.index.get(&f.name) {
                Some(&i) => {
                    if let Some(mine) = self.fams.get_mut(i) {
                        mine.samples.extend(f.samples);
                    }
                }
                None => {
                    self.index.insert(f.name.clone(), self.fams.len());
                    self.fams.push(f);
                }
            }
        }
    }

    /// The families sorted by name, samples sorted by labels, as
    /// client_golang exposes them (stable output for diffing).
    pub fn finish(mut self) -> Vec<PgFamily> {
        self.fams.sort_by(|a, b| a.name.cmp(&b.name));
        for f in &mut self.fams {
            f.samples.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, _) in &mut f.samples {
                labels.sort();
            }
        }
        self.fams
    }
}

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
