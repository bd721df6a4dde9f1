//! Prometheus' rule validation (`rulefmt.RuleGroups.Validate` and
//! `RuleNode.Validate`) with promtool's message formats, turning raw
//! decoded groups into [`RuleFile`].

use super::decode::{Entry, RawGroup, RawRule};
use super::yaml::Node;
use super::{Dialect, Rule, RuleFile, RuleFileError, RuleFileErrors, RuleGroup, RuleKind, RulePos};
use crate::model::Labels;
use std::collections::{BTreeMap, HashSet};

/// A rule-level problem: promtool prints `L:C: ` for the node (`0:0` when
/// the field is absent) and `L:C: L:C: ` when two nodes are involved.
struct RuleProblem {
    nodes: Vec<(usize, usize)>,
    /// Where the problem is when promtool prints no position (label keys).
    hidden: Option<(usize, usize)>,
    text: String,
}

fn at(n: Option<&Node>) -> (usize, usize) {
    n.map(|n| (n.line, n.column)).unwrap_or((0, 0))
}

fn value(n: Option<&Node>) -> &str {
    n.map(|n| n.value()).unwrap_or("")
}

pub(crate) fn validate(
    file: &str,
    groups: Vec<RawGroup>,
    dialect: Dialect,
) -> Result<RuleFile, RuleFileErrors> {
    let mut errors = Vec::new();
    let mut push = |line: usize, column: usize, message: String| {
        errors.push(RuleFileError {
            file: file.to_string(),
            line,
            column,
            message,
            context: String::new(),
        })
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        if g.name.is_empty() {
            push(
                g.line,
                g.column,
                format!("{}:{}: Groupname must not be empty", g.line, g.column),
            );
        }
        if !seen.insert(g.name.clone()) {
            push(
                g.line,
                g.column,
                format!(
                    "{}:{}: groupname: \"{}\" is repeated in the same file",
                    g.line, g.column, g.name
                ),
            );
        }
        let mut rules = Vec::with_capacity(g.rules.len());
        for (i, r) in g.rules.iter().enumerate() {
            let name = if !value(r.alert.as_ref()).is_empty() {
                value(r.alert.as_ref())
            } else {
                value(r.record.as_ref())
            };
            let (problems, parsed) = check_rule(r, dialect);
            for p in problems {
                let mut prefix = String::new();
                for (l, c) in &p.nodes {
                    prefix.push_str(&format!("{l}:{c}: "));
                }
                // promtool prints `0:0` for a missing node; the position
                // kept for klaxon's own form falls back to the rule's.
                let (line, column) = p
                    .nodes
                    .iter()
                    .copied()
                    .find(|&(l, _)| l > 0)
                    .or(p.hidden)
                    .unwrap_or((r.line, r.column));
                push(
                    line,
                    column,
                    format!(
                        "{prefix}group {:?}, rule {}, {:?}: {}",
                        g.name,
                        i + 1,
                        name,
                        p.text
                    ),
                );
            }
            if let Some(rule) = parsed {
                rules.push(rule);
            }
        }
        out.push(RuleGroup {
            name: g.name,
            interval: g.interval,
            limit: u64::try_from(g.limit).unwrap_or(0),
            query_offset: g.query_offset,
            labels: labels_of(g.labels.as_deref()),
            rules,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile { groups: out })
    } else {
        Err(RuleFileErrors(errors))
    }
}

fn labels_of(entries: Option<&[Entry]>) -> Labels {
    Labels::from_pairs(
        entries
            .unwrap_or_default()
            .iter()
            .map(|e| (e.key.clone(), e.value.clone())),
    )
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, 2.42's (legacy) label name rule.
use crate::config::relabel::is_valid_label_name as is_legacy_label_name;

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`; kept in 3.x too for record names, which must
/// be usable as metric names in PromQL without quoting.
pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn label_name_ok(s: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Prometheus2_42 => is_legacy_label_name(s),
        Dialect::Prometheus3 => !s.is_empty(),
    }
}

fn check_rule(r: &RawRule, dialect: Dialect) -> (Vec<RuleProblem>, Option<Rule>) {
    let mut p = Vec::new();
    let record = value(r.record.as_ref());
    let alert = value(r.alert.as_ref());
    let mut problem = |nodes: Vec<(usize, usize)>, text: String| {
        p.push(RuleProblem {
            nodes,
            hidden: None,
            text,
        })
    };
    if !record.is_empty() && !alert.is_empty() {
        problem(
            vec![at(r.record.as_ref()), at(r.alert.as_ref())],
            "only one of 'record' and 'alert' must be set".into(),
        );
    }
    if record.is_empty() && alert.is_empty() {
        problem(
            vec![at(r.record.as_ref())],
            "one of 'record' or 'alert' must be set".into(),
        );
    }
    let expr_text = value(r.expr.as_ref());
    let mut expr = None;
    if expr_text.is_empty() {
        problem(
            vec![at(r.expr.as_ref())],
            "field 'expr' must be set in rule".into(),
        );
    } else {
        match crate::promql::parse(expr_text) {
            Ok(e) => expr = Some(e),
            Err(e) => problem(
                vec![at(r.expr.as_ref())],
                format!("could not parse expression: {e}"),
            ),
        }
    }
    if !record.is_empty() {
        let rec = vec![at(r.record.as_ref())];
        if r.annotations.is_some() {
            problem(
                rec.clone(),
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if !r.for_.is_zero() {
            problem(rec.clone(), "invalid field 'for' in recording rule".into());
        }
        if !r.keep_firing_for.is_zero() {
            problem(
                rec.clone(),
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !is_metric_name(record) {
            problem(rec, format!("invalid recording rule name: {record}"));
        }
    }
    // promtool walks Go maps (random order); sorted keeps output stable.
    let mut labels: Vec<&Entry> = r.labels.iter().flatten().collect();
    labels.sort_by(|a, b| a.key.cmp(&b.key));
    for l in labels {
        if !label_name_ok(&l.key, dialect) || l.key == "__name__" {
            p.push(RuleProblem {
                nodes: Vec::new(),
                hidden: Some((l.line, l.column)),
                text: format!("invalid label name: {}", l.key),
            });
        }
    }
    let mut annotations: Vec<&Entry> = r.annotations.iter().flatten().collect();
    annotations.sort_by(|a, b| a.key.cmp(&b.key));
    for a in annotations {
        if !label_name_ok(&a.key, dialect) {
            p.push(RuleProblem {
                nodes: Vec::new(),
                hidden: Some((a.line, a.column)),
                text: format!("invalid annotation name: {}", a.key),
            });
        }
    }
    // As Prometheus: an alerting rule's label and annotation values must
    // parse as templates (they are rendered for every alert).
    if !alert.is_empty() {
        let name = format!("__alert_{alert}");
        let mut check = |kind: &str, entries: &Option<Vec<Entry>>| {
            let mut sorted: Vec<&Entry> = entries.iter().flatten().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            for e in sorted {
                if let Err(err) = crate::template::Template::parse(&name, &e.value) {
                    p.push(RuleProblem {
                        nodes: Vec::new(),
                        hidden: Some((e.line, e.column)),
                        text: format!("{kind} {:?}: {err}", e.key),
                    });
                }
            }
        };
        check("label", &r.labels);
        check("annotation", &r.annotations);
    }
    let rule = match expr {
        Some(expr) if p.is_empty() => Some(Rule {
            kind: if alert.is_empty() {
                RuleKind::Record(record.to_string())
            } else {
                RuleKind::Alert(alert.to_string())
            },
            expr,
            expr_text: expr_text.to_string(),
            for_: r.for_,
            keep_firing_for: r.keep_firing_for,
            labels: labels_of(r.labels.as_deref()),
            annotations: r
                .annotations
                .iter()
                .flatten()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect::<BTreeMap<_, _>>(),
            line: r.line,
            pos: RulePos {
                rule: (r.line, r.column),
                expr: at(r.expr.as_ref()),
                for_: r.for_at,
                labels: r
                    .labels
                    .iter()
                    .flatten()
                    .map(|e| (e.key.clone(), e.line, e.column))
                    .collect(),
            },
        }),
        _ => None,
    };
    (p, rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_metric_name("job:up:sum"));
        assert!(is_metric_name("_x"));
        assert!(!is_metric_name("5m_rate"));
        assert!(!is_metric_name("a-b"));
        assert!(!is_metric_name(""));
        assert!(is_legacy_label_name("team_name"));
        assert!(!is_legacy_label_name("a:b"));
        assert!(!is_legacy_label_name("1a"));
        assert!(label_name_ok("ins-tance", Dialect::Prometheus3));
        assert!(!label_name_ok("", Dialect::Prometheus3));
    }
}
