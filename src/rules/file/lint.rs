//! klaxon's extra rule lints (`check rules --lint=all`): problems promtool
//! does not flag but that page people at night — alerts without a summary
//! or runbook, `for` shorter than the evaluation interval (no hold at all),
//! rate windows too short to hold two scrapes, labels templated from
//! `$value` (each new value is a new alert: flapping), and recording rule
//! names outside the `level:metric:operations` convention.

use super::{Rule, RuleFile, RuleKind};
use crate::config::format_duration;
use crate::config::GlobalConfig;
use crate::promql::Expr;
use crate::scrape::config::ScrapeConfig;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Prometheus' default evaluation interval, when no config is given.
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// Range functions whose window should span at least four scrapes, so a
/// missed scrape does not leave fewer than two samples in the window.
const RANGE_FUNCS: &[&str] = &["rate", "irate", "increase", "delta", "idelta", "deriv"];

/// One lint finding, positioned at the part of the rule it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintWarning {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub group: String,
    pub rule: String,
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: group {:?}, rule {:?}: {}",
            self.file, self.line, self.column, self.group, self.rule, self.message
        )
    }
}

/// What the lints know about the setup; from `--config` when given.
#[derive(Clone, Debug, Default)]
pub struct LintContext {
    /// The interval of groups without their own.
    pub evaluation_interval: Option<Duration>,
    /// Global scrape interval and per-job ones; `None` without a config,
    /// which turns the rate-window lint off.
    pub scrape: Option<(Duration, HashMap<String, Duration>)>,
}

impl LintContext {
    /// From the `global:` intervals and each scrape job's interval.
    pub fn from_config(global: &GlobalConfig, scrape_configs: &[ScrapeConfig]) -> LintContext {
        LintContext {
            evaluation_interval: Some(global.evaluation_interval),
            scrape: Some((
                global.scrape_interval,
                scrape_configs
                    .iter()
                    .map(|s| (s.job_name.clone(), s.scrape_interval))
                    .collect(),
            )),
        }
    }
}

/// Every extra lint finding of one loaded file, in rule order.
pub fn lint_file(file: &str, rf: &RuleFile, ctx: &LintContext) -> Vec<LintWarning> {
    let mut out = Vec::new();
    for g in &rf.groups {
        let interval = g
            .interval
            .or(ctx.evaluation_interval)
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL);
        for r in &g.rules {
            let mut warn = |(line, column): (usize, usize), message: String| {
                out.push(LintWarning {
                    file: file.to_string(),
                    line,
                    column,
                    group: g.name.clone(),
                    rule: r.kind.name().to_string(),
                    message,
                })
            };
            match &r.kind {
                RuleKind::Alert(_) => {
                    for a in ["summary", "runbook_url"] {
                        if !r.annotations.contains_key(a) {
                            warn(r.pos.rule, format!("alerting rule has no {a:?} annotation"));
                        }
                    }
                    if !r.for_.is_zero() && r.for_ < interval {
                        warn(
                            r.pos.for_.unwrap_or(r.pos.rule),
                            format!(
                                "'for' {} is shorter than the group's evaluation interval {}",
                                format_duration(r.for_),
                                format_duration(interval)
                            ),
                        );
                    }
                    for (name, value) in r.labels.iter().map(|l| (&l.name, &l.value)) {
                        if templates_value(value) {
                            let at = r
                                .pos
                                .labels
                                .iter()
                                .find(|(n, _, _)| n == name)
                                .map_or(r.pos.rule, |(_, l, c)| (*l, *c));
                            warn(
                                at,
                                format!(
                                    "label {name:?} is templated from $value: every new value is a new alert (flapping)"
                                ),
                            );
                        }
                    }
                }
                RuleKind::Record(name) => {
                    if !level_metric_operations(name) {
                        warn(
                            r.pos.rule,
                            format!(
                                "recording rule name {name:?} is not in level:metric:operations form"
                            ),
                        );
                    }
                }
            }
            if let Some((global, jobs)) = &ctx.scrape {
                for m in short_ranges(r, *global, jobs) {
                    warn(r.pos.expr, m);
                }
            }
        }
    }
    out
}

/// `{{ ... $value ... }}` or `.Value` inside an action.
fn templates_value(v: &str) -> bool {
    v.split("{{")
        .skip(1)
        .filter_map(|rest| rest.split("}}").next())
        .any(|action| action.contains("$value") || action.contains(".Value"))
}

/// Prometheus' naming convention: three non-empty colon-separated parts.
fn level_metric_operations(name: &str) -> bool {
    let parts: Vec<&str> = name.split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

/// Range-function windows shorter than 4× the scrape interval of the
/// selected job (or the global one without a `job="..."` matcher).
fn short_ranges(r: &Rule, global: Duration, jobs: &HashMap<String, Duration>) -> Vec<String> {
    let mut out = Vec::new();
    walk(&r.expr, &mut |e| {
        let Expr::Call(c) = e else { return };
        if !RANGE_FUNCS.contains(&c.func.name) {
            return;
        }
        for a in &c.args {
            let Expr::MatrixSelector(m) = a else { continue };
            if m.range_expr.is_some() || m.range <= 0 {
                continue;
            }
            let job = m
                .selector
                .matchers
                .iter()
                .find(|x| x.name == "job" && x.kind == crate::model::MatchType::Equal);
            let (scrape, whose) = match job.and_then(|j| jobs.get(&j.value).map(|d| (j, d))) {
                Some((j, d)) => (*d, format!("job {:?}", j.value)),
                None => (global, "the global config".to_string()),
            };
            let range = Duration::from_millis(m.range as u64);
            if range < scrape * 4 {
                out.push(format!(
                    "{}() range {} (expression offset {}) is shorter than 4x the scrape interval {} of {}",
                    c.func.name,
                    format_duration(range),
                    m.span.0,
                    format_duration(scrape),
                    whose
                ));
            }
        }
    });
    out
}

fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Call(c) => c.args.iter().for_each(|a| walk(a, f)),
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::SubqueryExpr(s) => walk(&s.expr, f),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::file::{parse_rule_file, Dialect};

    const FILE: &str = r#"groups:
  - name: g
    interval: 1m
    rules:
      - alert: NoDocs
        expr: rate(http_requests_total{job="api"}[1m]) > 1
        for: 30s
        labels:
          sev: "{{ $value }}"
      - alert: Fine
        expr: rate(x[10m]) > 1
        for: 5m
        annotations:
          summary: s
          runbook_url: http://r
      - record: badname
        expr: sum(x)
      - record: job:x:sum
        expr: sum(rate(x{job="other"}[30s]))
"#;

    fn warnings(ctx: &LintContext) -> Vec<String> {
        let rf = parse_rule_file("r.yml", FILE.as_bytes(), Dialect::Prometheus2_42).unwrap();
        lint_file("r.yml", &rf, ctx)
            .iter()
            .map(|w| w.to_string())
            .collect()
    }

    #[test]
    fn each_lint_names_file_position_group_and_rule() {
        let w = warnings(&LintContext::default());
        assert_eq!(
            w,
            [
                "r.yml:5:9: group \"g\", rule \"NoDocs\": alerting rule has no \"summary\" annotation",
                "r.yml:5:9: group \"g\", rule \"NoDocs\": alerting rule has no \"runbook_url\" annotation",
                "r.yml:7:14: group \"g\", rule \"NoDocs\": 'for' 30s is shorter than the group's evaluation interval 1m",
                "r.yml:9:11: group \"g\", rule \"NoDocs\": label \"sev\" is templated from $value: every new value is a new alert (flapping)",
                "r.yml:16:9: group \"g\", rule \"badname\": recording rule name \"badname\" is not in level:metric:operations form",
            ]
        );
    }

    #[test]
    fn rate_windows_are_checked_against_the_jobs_scrape_interval() {
        let ctx = LintContext {
            evaluation_interval: None,
            scrape: Some((
                Duration::from_secs(15),
                HashMap::from([("api".to_string(), Duration::from_secs(30))]),
            )),
        };
        let w: Vec<String> = warnings(&ctx)
            .into_iter()
            .filter(|w| w.contains("range"))
            .collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("r.yml:6:15: group \"g\", rule \"NoDocs\": rate() range 1m"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("4x the scrape interval 30s of job \"api\""),
            "{}",
            w[0]
        );
        // job="other" is not configured: the global interval applies.
        assert!(w[1].contains("rule \"job:x:sum\""), "{}", w[1]);
        assert!(w[1].contains("15s of the global config"), "{}", w[1]);
    }

    #[test]
    fn value_templates_and_names() {
        assert!(templates_value("{{ $value | humanize }}"));
        assert!(templates_value("x{{.Value}}"));
        assert!(!templates_value("$value"));
        assert!(!templates_value("{{ $labels.x }}"));
        assert!(level_metric_operations("job:http_requests:rate5m"));
        assert!(!level_metric_operations("job:http_requests"));
        assert!(!level_metric_operations("a::b"));
    }
}
