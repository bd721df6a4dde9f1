//! Custom queries in postgres_exporter's `queries.yaml` format:
//!
//! ```yaml
//! pg_postmaster:                 # namespace: metric name prefix
//!   query: "SELECT ... AS start_time_seconds"
//!   master: true                 # run only on the DSN's database, not on
//!                                # auto-discovered ones
//!   metrics:
//!     - start_time_seconds:
//!         usage: "GAUGE"         # LABEL, COUNTER, GAUGE, MAPPEDMETRIC,
//!         description: "..."     # DURATION or DISCARD
//! ```
//!
//! HISTOGRAM columns are refused at load with their position: klaxon
//! would have to assemble bucket arrays, and no default query needs it.

use super::fams::Fams;
use super::row::{parse_value, text};
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::SimpleQueryRow;

#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    query: S<String>,
    master: Option<bool>,
    cache_seconds: Option<u64>,
    /// A semver range of server versions; accepted, not evaluated.
    runonserver: Option<String>,
    metrics: Vec<BTreeMap<String, S<RawColumn>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    usage: S<String>,
    description: Option<String>,
    mapping: Option<BTreeMap<String, f64>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Usage {
    Label,
    Counter,
    Gauge,
    Mapped(BTreeMap<String, f64>),
    Duration,
    Discard,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub usage: Usage,
    pub help: String,
}

/// One namespace of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomQuery {
    pub namespace: String,
    pub sql: String,
    pub master: bool,
    pub columns: HashMap<String, Column>,
}

pub fn load_file(path: &str) -> Result<Vec<CustomQuery>, CustomError> {
    let text = std::fs::read_to_string(path).map_err(|source| CustomError::Read {
        path: path.to_string(),
        source,
    })?;
    parse(&text, path)
}

fn err_at(path: &str, l: &serde_saphyr::Location, message: String) -> CustomError {
    CustomError::Parse {
        path: path.to_string(),
        line: l.line(),
        column: l.column(),
        message,
    }
}

pub fn parse(text: &str, path: &str) -> Result<Vec<CustomQuery>, CustomError> {
    let raw: BTreeMap<String, S<RawQuery>> =
        serde_saphyr::from_str(text).map_err(|e| CustomError::Parse {
            path: path.to_string(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
    let mut out = Vec::with_capacity(raw.len());
    for (namespace, q) in raw {
        let q = q.value;
        let _ = (q.cache_seconds, q.runonserver);
        let mut columns = HashMap::new();
        for m in q.metrics {
            for (name, c) in m {
                let at = c.referenced;
                let c = c.value;
                let usage = match c.usage.value.to_ascii_uppercase().as_str() {
                    "LABEL" => Usage::Label,
                    "COUNTER" => Usage::Counter,
                    "GAUGE" => Usage::Gauge,
                    "DURATION" => Usage::Duration,
                    "DISCARD" => Usage::Discard,
                    "MAPPEDMETRIC" => match c.mapping {
                        Some(m) => Usage::Mapped(m),
                        None => {
                            return Err(err_at(
                                path,
                                &at,
                                format!("{namespace}.{name}: MAPPEDMETRIC needs a mapping"),
                            ))
                        }
                    },
                    other => {
                        return Err(err_at(
                            path,
                            &c.usage.referenced,
                            format!("{namespace}.{name}: usage {other:?} is not supported"),
                        ))
                    }
                };
                columns.insert(
                    name,
                    Column {
                        usage,
                        help: c.description.unwrap_or_default(),
                    },
                );
            }
        }
        if q.query.value.trim().is_empty() {
            return Err(err_at(
                path,
                &q.query.referenced,
                format!("{namespace}: empty query"),
            ));
        }
        out.push(CustomQuery {
            namespace,
            sql: q.query.value,
            master: q.master.unwrap_or(false),
            columns,
        });
    }
    Ok(out)
}

/// Turns a custom query's rows into families: LABEL columns label every
/// value column of the row; unlisted columns are untyped, as upstream.
pub fn handle(q: &CustomQuery, server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    let unknown = format!("Unknown metric from {}", q.namespace);
    for r in rows {
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for c in r.columns() {
            if matches!(
                q.columns.get(c.name()),
                Some(Column {
                    usage: Usage::Label,
                    ..
                })
            ) {
                labels.push((c.name(), text(r, c.name())));
            }
        }
        labels.push(("server", server));
        for c in r.columns() {
            let col = c.name();
            let raw = text(r, col);
            let name = format!("{}_{}", q.namespace, col);
            match q.columns.get(col) {
                Some(Column {
                    usage: Usage::Label | Usage::Discard,
                    ..
                }) => {}
                Some(Column {
                    usage: Usage::Counter,
                    help,
                }) => out.counter(&name, help, &labels, num(r, col, raw)),
                Some(Column {
                    usage: Usage::Gauge,
                    help,
                }) => out.gauge(&name, help, &labels, num(r, col, raw)),
                Some(Column {
                    usage: Usage::Duration,
                    help,
                }) => out.gauge(
                    &format!("{name}_milliseconds"),
                    help,
                    &labels,
                    num(r, col, raw),
                ),
                Some(Column {
                    usage: Usage::Mapped(m),
                    help,
                }) => out.gauge(
                    &name,
                    help,
                    &labels,
                    m.get(raw).copied().unwrap_or(f64::NAN),
                ),
                None => out.untyped(&name, &unknown, &labels, num(r, col, raw)),
            }
        }
    }
}

fn num(r: &SimpleQueryRow, col: &str, raw: &str) -> f64 {
    match r.try_get(col) {
        Ok(Some(_)) => parse_value(raw),
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format_and_points_at_bad_usage() {
        let q = parse(
            "pg_x:\n  query: \"SELECT 1 AS a, 'b' AS l\"\n  master: true\n  metrics:\n    - l:\n        usage: LABEL\n        description: l\n    - a:\n        usage: \"GAUGE\"\n        description: A.\n",
            "q.yml",
        )
        .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].namespace, "pg_x");
        assert!(q[0].master);
        assert_eq!(q[0].columns["a"].usage, Usage::Gauge);
        assert_eq!(q[0].columns["l"].usage, Usage::Label);

        let e = parse(
            "pg_y:\n  query: SELECT 1\n  metrics:\n    - a:\n        usage: HISTOGRAM\n",
            "q.yml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("q.yml:5:"), "{e}");
        assert!(e.contains("HISTOGRAM"), "{e}");
    }

    #[test]
    fn the_shipped_example_file_loads() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/exporters/postgres_queries.yml"
        );
        let q = load_file(p).unwrap();
        assert!(q.len() >= 3, "{}", q.len());
    }
}
