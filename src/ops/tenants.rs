//! Tenants: a label (`auth.tenant_label`, default `tenant`) names whose a
//! series, alert or silence is, and a token can be scoped to tenants
//! (`auth.tokens[].tenants`). A scoped caller reads only its tenants' data
//! and writes only data carrying one of its tenants.
//!
//! Reads of the TSDB are scoped twice, so one mistake does not leak:
//! - [`Scope::inject`] ANDs the tenant matcher into every selector of a
//!   parsed PromQL expression (what prom-label-proxy does), so the query
//!   that runs is the one the tenant may run;
//! - [`ScopedQueryable`] adds the same matcher to every index lookup the
//!   engine or the series/labels APIs make (this also covers lookups that
//!   are not selectors in the tree, such as `info()`'s info series).
//!
//! The matcher is `tenant="a"` for one tenant and `tenant=~"a|b"` built from
//! regex-escaped values for several: an exact alternation that a caller's
//! own matchers (ANDed with it) can only narrow.

use crate::model::{Labels, MatchType, Matcher};
use crate::promql::parser::Expr;
use crate::tsdb::storage::{Querier, Queryable};
use crate::tsdb::SeriesData;
use std::sync::Arc;

/// The tenant label when `auth.tenant_label` is not set.
pub const DEFAULT_LABEL: &str = "tenant";

/// What a scoped caller may see: series, alerts and silences whose tenant
/// label is one of `tenants`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub label: String,
    /// Never empty; sorted, without duplicates.
    pub tenants: Vec<String>,
}

impl Scope {
    /// `None` for an empty tenant list (an unscoped caller).
    pub fn new(label: &str, tenants: &[String]) -> Option<Scope> {
        let mut tenants = tenants.to_vec();
        tenants.sort();
        tenants.dedup();
        (!tenants.is_empty()).then(|| Scope {
            label: label.to_string(),
            tenants,
        })
    }

    /// `tenant="a"`, or `tenant=~"a|b"` of escaped values.
    pub fn matcher(&self) -> Matcher {
        if let [one] = self.tenants.as_slice() {
            return equal(&self.label, one);
        }
        let alt: Vec<String> = self.tenants.iter().map(|t| regex::escape(t)).collect();
        // Escaped literals always compile; should the regex engine still
        // refuse (its size limit), a matcher that matches nothing keeps the
        // scope closed rather than open.
        Matcher::new(MatchType::RegexMatch, &self.label, alt.join("|"))
            .unwrap_or_else(|_| equal(&self.label, "\u{0}"))
    }

    /// Whether a tenant value belongs to the scope.
    pub fn allows_value(&self, v: Option<&str>) -> bool {
        v.is_some_and(|v| self.tenants.iter().any(|t| t == v))
    }

    /// Whether a label set (series, alert) belongs to the scope.
    pub fn allows(&self, l: &Labels) -> bool {
        self.allows_value(l.get(&self.label))
    }

    /// Whether a JSON label object (`{"tenant": "a", ...}`) belongs to the
    /// scope.
    pub fn allows_json(&self, labels: Option<&serde_json::Value>) -> bool {
        self.allows_value(
            labels
                .and_then(|l| l.get(&self.label))
                .and_then(|v| v.as_str()),
        )
    }

    /// The tenant a silence belongs to: the value of an equality matcher
    /// on the tenant label that is one of the scope's (a silence's
    /// matchers are ANDed, so such a silence mutes only that tenant's
    /// alerts).
    pub fn owns_silence(&self, matchers: &[Matcher]) -> bool {
        matchers.iter().any(|m| {
            m.name == self.label && m.kind == MatchType::Equal && self.allows_value(Some(&m.value))
        })
    }

    /// Whether an Alertmanager group key (`{route}:{a="x", tenant="y"}`)
    /// names one of the scope's tenants as an equality: in its group labels
    /// (the route groups by the tenant label) or in a route matcher.
    pub fn owns_group_key(&self, key: &str) -> bool {
        self.tenants.iter().any(|t| {
            let pair = format!("{}={}", self.label, crate::model::gofmt::go_quote(t));
            key.match_indices(&pair).any(|(i, _)| {
                let before = &key[..i];
                let after = &key[i + pair.len()..];
                (before.ends_with('{') || before.ends_with(", ") || before.ends_with(','))
                    && (after.starts_with('}') || after.starts_with(','))
            })
        })
    }

    /// Matchers with the tenant matcher ANDed.
    pub fn restrict(&self, matchers: &[Matcher]) -> Vec<Matcher> {
        let mut v = matchers.to_vec();
        v.push(self.matcher());
        v
    }

    /// ANDs the tenant matcher into every selector of `e`.
    pub fn inject(&self, e: &mut Expr) {
        inject(e, &self.matcher());
    }
}

fn equal(label: &str, v: &str) -> Matcher {
    match Matcher::new(MatchType::Equal, label, v) {
        Ok(m) => m,
        Err(_) => unreachable!("an equality matcher compiles no regex"),
    }
}

/// ANDs `m` into every vector and matrix selector of `e`, at any depth
/// (subqueries, function arguments, aggregations, both sides of binary
/// operators). The selector's own matchers stay: the result can only be
/// narrower than the tenant's data. `info()`'s second argument selects
/// which info series' labels are added rather than data to return; it is
/// left as written and its lookups are scoped by [`ScopedQueryable`].
pub fn inject(e: &mut Expr, m: &Matcher) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => vs.matchers.push(m.clone()),
        Expr::MatrixSelector(ms) => ms.selector.matchers.push(m.clone()),
        Expr::SubqueryExpr(s) => inject(&mut s.expr, m),
        Expr::Unary(u) => inject(&mut u.expr, m),
        Expr::Binary(b) => {
            inject(&mut b.lhs, m);
            inject(&mut b.rhs, m);
        }
        Expr::Paren(p) => inject(&mut p.expr, m),
        Expr::Call(c) => {
            let info = c.func.name == "info";
            for (i, a) in c.args.iter_mut().enumerate() {
                if !(info && i == 1) {
                    inject(a, m);
                }
            }
        }
        Expr::Aggregate(a) => {
            inject(&mut a.expr, m);
            if let Some(p) = &mut a.param {
                inject(p, m);
            }
        }
    }
}

/// Every selector of `e` that lacks `m` (empty when injection is complete),
/// as text, for tests and the fuzz target.
pub fn unscoped_selectors(e: &Expr, m: &Matcher) -> Vec<String> {
    let mut out = Vec::new();
    walk_selectors(e, false, &mut |vs, info_arg| {
        if !info_arg && !vs.matchers.iter().any(|x| x == m) {
            out.push(Expr::VectorSelector(Box::new(vs.clone())).to_string());
        }
    });
    out
}

/// For the fuzz target: when `text` parses, injection leaves no selector
/// without `scope`'s matcher, and the injected tree prints to a query that
/// parses back with none either. `Err` describes the escape.
pub fn check_injection(scope: &Scope, text: &str) -> Result<Option<Expr>, String> {
    let Ok(mut e) = crate::promql::parse(text) else {
        return Ok(None);
    };
    let m = scope.matcher();
    scope.inject(&mut e);
    let left = unscoped_selectors(&e, &m);
    if !left.is_empty() {
        return Err(format!(
            "{text:?}: selectors without the tenant matcher: {left:?}"
        ));
    }
    let printed = e.to_string();
    // A printed form that does not parse is the parser's business (its own
    // fuzz target); the query that runs is the injected tree, not its text.
    if let Ok(again) = crate::promql::parse(&printed) {
        let left = unscoped_selectors(&again, &m);
        if !left.is_empty() {
            return Err(format!(
                "{printed:?} (from {text:?}) reparsed without the matcher: {left:?}"
            ));
        }
    }
    Ok(Some(e))
}

fn walk_selectors(
    e: &Expr,
    info_arg: bool,
    f: &mut dyn FnMut(&crate::promql::parser::ast::VectorSelector, bool),
) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::VectorSelector(vs) => f(vs, info_arg),
        Expr::MatrixSelector(ms) => f(&ms.selector, info_arg),
        Expr::SubqueryExpr(s) => walk_selectors(&s.expr, false, f),
        Expr::Unary(u) => walk_selectors(&u.expr, false, f),
        Expr::Binary(b) => {
            walk_selectors(&b.lhs, false, f);
            walk_selectors(&b.rhs, false, f);
        }
        Expr::Paren(p) => walk_selectors(&p.expr, false, f),
        Expr::Call(c) => {
            for (i, a) in c.args.iter().enumerate() {
                walk_selectors(a, c.func.name == "info" && i == 1, f);
            }
        }
        Expr::Aggregate(a) => {
            walk_selectors(&a.expr, false, f);
            if let Some(p) = &a.param {
                walk_selectors(p, false, f);
            }
        }
    }
}

/// Whether a tenant-scoped caller named `caller` may see an operations
/// event: alerts and targets of its tenants (their `labels`),
/// notifications of groups naming one of them, and changes it made itself.
/// Commands and reloads concern the whole server: admins' business.
pub fn event_visible(scope: &Scope, caller: &str, kind: &str, data: &serde_json::Value) -> bool {
    use crate::ops::events::{KIND_ALERT, KIND_CHANGE, KIND_NOTIFICATION, KIND_TARGET};
    match kind {
        KIND_ALERT | KIND_TARGET => scope.allows_json(data.get("labels")),
        KIND_NOTIFICATION => data
            .get("group_key")
            .and_then(|k| k.as_str())
            .is_some_and(|k| scope.owns_group_key(k)),
        KIND_CHANGE => data.get("who").and_then(|w| w.as_str()) == Some(caller),
        _ => false,
    }
}

/// The scope of the request's caller (set by the auth middleware), if any.
pub fn of_request(ext: &axum::http::Extensions) -> Option<Scope> {
    ext.get::<crate::ops::Principal>()
        .and_then(|p| p.scope.clone())
}

/// A [`Queryable`] whose every lookup has the tenant matcher ANDed.
pub struct ScopedQueryable {
    inner: Arc<dyn Queryable>,
    matcher: Matcher,
}

impl ScopedQueryable {
    pub fn new(inner: Arc<dyn Queryable>, scope: &Scope) -> ScopedQueryable {
        ScopedQueryable {
            inner,
            matcher: scope.matcher(),
        }
    }
}

/// `storage` as a caller may read it: scoped when the caller is.
pub fn scoped(storage: &Arc<dyn Queryable>, scope: Option<&Scope>) -> Arc<dyn Queryable> {
    match scope {
        None => storage.clone(),
        Some(s) => Arc::new(ScopedQueryable::new(storage.clone(), s)),
    }
}

impl Queryable for ScopedQueryable {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        Box::new(ScopedQuerier {
            inner: self.inner.querier(mint, maxt),
            matcher: &self.matcher,
        })
    }
}

struct ScopedQuerier<'a> {
    inner: Box<dyn Querier + 'a>,
    matcher: &'a Matcher,
}

impl ScopedQuerier<'_> {
    fn with(&self, ms: &[Matcher]) -> Vec<Matcher> {
        let mut v = ms.to_vec();
        v.push(self.matcher.clone());
        v
    }
}

impl Querier for ScopedQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Vec<SeriesData> {
        self.inner.select(&self.with(matchers))
    }
    fn series(&self, matchers: &[Matcher]) -> Vec<Labels> {
        self.inner.series(&self.with(matchers))
    }
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.inner.label_names(&self.with(matchers))
    }
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.inner.label_values(name, &self.with(matchers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(t: &[&str]) -> Scope {
        Scope::new(
            "tenant",
            &t.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn matcher_is_exact_even_for_regex_characters() {
        let s = scope(&["a.b", "c|d"]);
        let m = s.matcher();
        assert_eq!(m.kind, MatchType::RegexMatch);
        assert!(m.matches("a.b") && m.matches("c|d"));
        for other in ["axb", "c", "d", "a.bc|d", ""] {
            assert!(!m.matches(other), "{other}");
        }
        let one = scope(&["x"]).matcher();
        assert_eq!(one.to_string(), "tenant=\"x\"");
        assert!(Scope::new("tenant", &[]).is_none());
    }

    #[test]
    fn every_selector_gets_the_matcher() {
        let s = scope(&["a"]);
        let q = r#"sum by (tenant) (rate(x{tenant=~"a|b"}[5m])) + on() group_left absent(nope) or label_replace(max_over_time({__name__=~".+"}[1h:1m]), "tenant", "b", "", "") unless count_values("v", up) > scalar(y)"#;
        let mut e = crate::promql::parse(q).unwrap();
        assert!(!unscoped_selectors(&e, &s.matcher()).is_empty());
        s.inject(&mut e);
        assert_eq!(unscoped_selectors(&e, &s.matcher()), Vec::<String>::new());
        // The injected tree prints and parses back to the same selectors.
        let again = crate::promql::parse(&e.to_string()).unwrap();
        assert_eq!(
            unscoped_selectors(&again, &s.matcher()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_fuzz_check_accepts_injected_trees_and_skips_garbage() {
        let s = scope(&["a", "b"]);
        for q in [
            "up",
            "absent_over_time(nope{tenant=\"c\"}[5m])",
            "info(up, {k=\"v\"})",
            "-(a @ start() offset -1m)",
            "1 + 2",
            "\"str\"",
        ] {
            assert!(check_injection(&s, q).unwrap().is_some(), "{q}");
        }
        assert!(check_injection(&s, "sum(").unwrap().is_none());
    }

    #[test]
    fn silences_and_group_keys() {
        let s = scope(&["a"]);
        let eq = |v: &str| Matcher::new(MatchType::Equal, "tenant", v).unwrap();
        assert!(s.owns_silence(&[eq("a")]));
        assert!(!s.owns_silence(&[eq("b")]));
        assert!(!s.owns_silence(&[Matcher::new(MatchType::RegexMatch, "tenant", "a").unwrap()]));
        assert!(s.owns_group_key(r#"{}:{alertname="x", tenant="a"}"#));
        assert!(s.owns_group_key(r#"{}/{tenant="a"}:{alertname="x"}"#));
        assert!(!s.owns_group_key(r#"{}:{alertname="x", tenant="ab"}"#));
        assert!(!s.owns_group_key(r#"{}:{alertname="x", xtenant="a"}"#));
        assert!(!s.owns_group_key(r#"{}:{alertname="tenant=\"a\""}"#));
        assert!(!s.owns_group_key(r#"{}:{alertname="x"}"#));
    }
}
