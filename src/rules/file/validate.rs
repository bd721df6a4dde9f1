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
        // Prometheus 3's group labels: names under the validation scheme,
        // never `__name__` (promtool prints no position for these).
        if dialect != Dialect::Prometheus2_42 {
            let mut labels: Vec<&Entry> = g.labels.iter().flatten().collect();
            labels.sort_by(|a, b| a.key.cmp(&b.key));
            for l in labels {
                if !label_name_ok(&l.key, dialect) || l.key == "__name__" {
                    push(l.line, l.column, format!("invalid label name: {}", l.key));
                }
            }
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

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: a record name under legacy names.
use crate::config::names::is_legacy_metric_name as is_metric_name;

fn label_name_ok(s: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Prometheus2_42 | Dialect::Prometheus3Legacy => is_legacy_label_name(s),
        Dialect::Prometheus3 => !s.is_empty(),
    }
}

/// A record name as the dialect's validation scheme allows it.
fn record_name_ok(s: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Prometheus2_42 | Dialect::Prometheus3Legacy => is_metric_name(s),
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
        if !record_name_ok(record, dialect) {
            problem(
                rec.clone(),
                format!("invalid recording rule name: {record}"),
            );
        }
        // Prometheus 3: a UTF-8 record name may hold anything but braces,
        // the usual sign of an expression put in the wrong field.
        if dialect != Dialect::Prometheus2_42 && record.contains(['{', '}']) {
            problem(
                rec,
                format!(
                    "braces present in the recording rule name; should it be in expr?: {record}"
                ),
            );
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
        assert!(!label_name_ok("ins-tance", Dialect::Prometheus3Legacy));
    }

    fn errors(text: &str, dialect: Dialect) -> Vec<String> {
        match crate::rules::file::parse_rule_file("r.yml", text.as_bytes(), dialect) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.message).collect(),
        }
    }

    /// Prometheus 3's rulefmt under each validation scheme.
    #[test]
    fn names_follow_the_validation_scheme() {
        use crate::config::names::NameValidation::{Legacy, Utf8};
        let utf8 = Dialect::prometheus3(Utf8);
        let legacy = Dialect::prometheus3(Legacy);
        let file = "groups:\n- name: g\n  labels:\n    team.name: a\n  rules:\n  - record: job.up:sum\n    expr: up\n    labels:\n      my.label: x\n  - alert: A\n    expr: up\n    annotations:\n      run.book: y\n";
        assert_eq!(errors(file, utf8), Vec::<String>::new());
        let e = errors(file, legacy);
        assert_eq!(
            e,
            [
                "invalid label name: team.name",
                "6:13: group \"g\", rule 1, \"job.up:sum\": invalid recording rule name: job.up:sum",
                "group \"g\", rule 1, \"job.up:sum\": invalid label name: my.label",
                "group \"g\", rule 2, \"A\": invalid annotation name: run.book",
            ],
            "{e:#?}"
        );
        // Braces in a record name: refused under both schemes of 3.x.
        let braces = "groups:\n- name: g\n  rules:\n  - record: up{job=\"a\"}\n    expr: up\n";
        let e = errors(braces, utf8);
        assert_eq!(
            e,
            ["4:13: group \"g\", rule 1, \"up{job=\\\"a\\\"}\": braces present in the recording rule name; should it be in expr?: up{job=\"a\"}"],
        );
        assert_eq!(errors(braces, legacy).len(), 2);
        // `__name__` is never a group label.
        let name = "groups:\n- name: g\n  labels:\n    __name__: x\n  rules:\n  - record: r\n    expr: up\n";
        assert_eq!(errors(name, utf8), ["invalid label name: __name__"]);
    }
}
