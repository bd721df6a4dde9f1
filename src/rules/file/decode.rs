//! Decoding the node tree into raw rule-file structs the way promtool 2.42
//! does: yaml.v3 with `KnownFields(true)` into `rulefmt.RuleGroups`.
//!
//! yaml.v3 collects type errors (unknown fields, wrong node kinds, duplicate
//! keys) and keeps going, reporting them together as `yaml: unmarshal
//! errors:`; a failing custom unmarshaler (a bad duration) aborts the decode
//! with its own message instead. Both behaviours are reproduced because
//! promtool's output depends on them.

use super::yaml::{parse_int, Kind, Node};
use super::Dialect;
use crate::config::parse_duration;
use std::time::Duration;

pub(crate) struct RawGroup {
    pub line: usize,
    pub column: usize,
    pub name: String,
    pub interval: Option<Duration>,
    pub query_offset: Option<Duration>,
    pub limit: i64,
    pub labels: Option<Vec<Entry>>,
    pub rules: Vec<RawRule>,
}

pub(crate) struct RawRule {
    pub line: usize,
    pub column: usize,
    /// Position of the `for:` value, when given.
    pub for_at: Option<(usize, usize)>,
    pub record: Option<Node>,
    pub alert: Option<Node>,
    pub expr: Option<Node>,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: Option<Vec<Entry>>,
    pub annotations: Option<Vec<Entry>>,
}

/// One `key: value` of a string map, with the key's position.
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
    pub column: usize,
}

/// Why a decode produced no groups: yaml.v3's collected type errors (each
/// `line N: ...`), or the one message of an aborting unmarshaler.
pub(crate) enum Failure {
    Unmarshal(Vec<String>),
    Abort(String),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::Unmarshal(lines) => {
                let mut s = String::from("yaml: unmarshal errors:");
                for l in lines {
                    s.push_str("\n  ");
                    s.push_str(l);
                }
                s
            }
            Failure::Abort(m) => m.clone(),
        }
    }
}

struct Dec {
    errs: Vec<String>,
    dialect: Dialect,
    /// Where the first problem is, for klaxon's positioned error form
    /// (promtool's own text for these errors carries at most a line).
    first: Option<Where>,
    cur_group: Option<String>,
    cur_rule: Option<(usize, String)>,
}

/// Position and group/rule context of a decode problem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Where {
    pub line: usize,
    pub column: usize,
    /// `group "g", rule 2, "Name"`, `group "g"`, or empty at file level.
    pub context: String,
}

type Abort = String;

/// The strict decode of the first document (`None`: empty stream).
pub(crate) fn decode(
    root: Option<&Node>,
    dialect: Dialect,
) -> Result<Vec<RawGroup>, (Failure, Option<Where>)> {
    let mut d = Dec {
        errs: Vec::new(),
        dialect,
        first: None,
        cur_group: None,
        cur_rule: None,
    };
    let groups = match root {
        None => Ok(Vec::new()),
        Some(r) => d.groups_file(r),
    };
    match groups {
        Err(abort) => Err((Failure::Abort(abort), d.first)),
        Ok(_) if !d.errs.is_empty() => Err((Failure::Unmarshal(d.errs), d.first)),
        Ok(g) => Ok(g),
    }
}

/// promtool's second, lenient decode into `ruleGroups{Groups []yaml.Node}`,
/// used there only to find group positions; it still fails on shapes.
pub(crate) fn shape_check(root: Option<&Node>) -> Option<Failure> {
    let root = root?;
    if root.is_null() {
        return None;
    }
    let Kind::Map(entries) = &root.kind else {
        return Some(Failure::Unmarshal(vec![type_error(
            root,
            "rulefmt.ruleGroups",
        )]));
    };
    for (k, v) in entries {
        if k.scalar() == Some("groups") && !v.is_null() && !matches!(v.kind, Kind::Seq(_)) {
            return Some(Failure::Unmarshal(vec![type_error(v, "[]yaml.Node")]));
        }
    }
    None
}

fn type_error(n: &Node, ty: &str) -> String {
    format!(
        "line {}: cannot unmarshal {} into {}",
        n.line,
        n.describe(),
        ty
    )
}

impl Dec {
    fn note(&mut self, n: &Node) {
        if self.first.is_none() {
            let context = match (&self.cur_group, &self.cur_rule) {
                (Some(g), Some((i, r))) => format!("group {g:?}, rule {i}, {r:?}"),
                (Some(g), None) => format!("group {g:?}"),
                _ => String::new(),
            };
            self.first = Some(Where {
                line: n.line,
                column: n.column,
                context,
            });
        }
    }

    fn push_err(&mut self, n: &Node, msg: String) {
        self.note(n);
        self.errs.push(msg);
    }

    /// The scalar under `key` of a mapping node, for error context.
    fn peek(n: &Node, key: &str) -> Option<String> {
        let Kind::Map(entries) = &n.kind else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .and_then(|(_, v)| v.scalar().map(str::to_string))
    }

    /// The mapping entries of a struct-typed node, with `<<` merge keys
    /// expanded (explicit keys win) and duplicates/unknown keys reported.
    fn fields<'a>(
        &mut self,
        n: &'a Node,
        ty: &str,
        known: &[&str],
    ) -> Option<Vec<(&'a str, &'a Node)>> {
        if n.is_null() {
            return Some(Vec::new());
        }
        let Kind::Map(entries) = &n.kind else {
            self.push_err(n, type_error(n, ty));
            return None;
        };
        let mut out: Vec<(&'a str, &'a Node, usize)> = Vec::new();
        let mut merged: Vec<(&'a str, &'a Node)> = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.scalar() else {
                self.push_err(k, type_error(k, "string"));
                continue;
            };
            if key == "<<" && k.tag.is_none() {
                let sources: Vec<&Node> = match &v.kind {
                    Kind::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for src in sources {
                    if let Kind::Map(m) = &src.kind {
                        for (mk, mv) in m {
                            if let Some(s) = mk.scalar() {
                                merged.push((s, mv));
                            }
                        }
                    } else {
                        self.push_err(
                            v,
                            format!(
                                "line {}: map merge requires map or sequence of maps as the value",
                                v.line
                            ),
                        );
                    }
                }
                continue;
            }
            if let Some((_, _, first)) = out.iter().find(|(name, _, _)| *name == key) {
                self.push_err(
                    k,
                    format!(
                        "line {}: mapping key {:?} already defined at line {}",
                        k.line, key, first
                    ),
                );
                continue;
            }
            if !known.contains(&key) {
                self.push_err(
                    k,
                    format!("line {}: field {} not found in type {}", k.line, key, ty),
                );
                continue;
            }
            out.push((key, v, k.line));
        }
        let mut result: Vec<(&str, &Node)> = Vec::new();
        for (key, v) in merged {
            if known.contains(&key)
                && !out.iter().any(|(k, _, _)| *k == key)
                && !result.iter().any(|(k, _)| *k == key)
            {
                result.push((key, v));
            }
        }
        result.extend(out.into_iter().map(|(k, v, _)| (k, v)));
        Some(result)
    }

    fn groups_file(&mut self, root: &Node) -> Result<Vec<RawGroup>, Abort> {
        let mut groups = Vec::new();
        let Some(fields) = self.fields(root, "rulefmt.RuleGroups", &["groups"]) else {
            return Ok(groups);
        };
        for (_, v) in fields {
            for item in self.seq(v, "[]rulefmt.RuleGroup") {
                if let Some(g) = self.group(item)? {
                    groups.push(g);
                }
            }
        }
        Ok(groups)
    }

    fn seq<'a>(&mut self, n: &'a Node, ty: &str) -> &'a [Node] {
        match &n.kind {
            Kind::Seq(items) => items,
            _ => {
                if !n.is_null() {
                    self.push_err(n, type_error(n, ty));
                }
                &[]
            }
        }
    }

    fn group(&mut self, n: &Node) -> Result<Option<RawGroup>, Abort> {
        let known: &[&str] = match self.dialect {
            Dialect::Prometheus2_42 => &["name", "interval", "limit", "rules"],
            Dialect::Prometheus3 | Dialect::Prometheus3Legacy => &[
                "name",
                "interval",
                "limit",
                "rules",
                "query_offset",
                "labels",
            ],
        };
        self.cur_group = Self::peek(n, "name");
        let g = self.group_fields(n, known);
        self.cur_group = None;
        g
    }

    fn group_fields(&mut self, n: &Node, known: &[&str]) -> Result<Option<RawGroup>, Abort> {
        let Some(fields) = self.fields(n, "rulefmt.RuleGroup", known) else {
            return Ok(None);
        };
        let mut g = RawGroup {
            line: n.line,
            column: n.column,
            name: String::new(),
            interval: None,
            query_offset: None,
            limit: 0,
            labels: None,
            rules: Vec::new(),
        };
        for (key, v) in fields {
            match key {
                "name" => g.name = self.string(v),
                "interval" => g.interval = self.duration(v)?,
                "query_offset" => g.query_offset = self.duration(v)?,
                "limit" => g.limit = self.int(v),
                "labels" => g.labels = self.string_map(v),
                _ => {
                    for (i, item) in self.seq(v, "[]rulefmt.RuleNode").iter().enumerate() {
                        let name = Self::peek(item, "alert")
                            .or_else(|| Self::peek(item, "record"))
                            .unwrap_or_default();
                        self.cur_rule = Some((i + 1, name));
                        let r = self.rule(item);
                        self.cur_rule = None;
                        if let Some(r) = r? {
                            g.rules.push(r);
                        }
                    }
                }
            }
        }
        Ok(Some(g))
    }

    fn rule(&mut self, n: &Node) -> Result<Option<RawRule>, Abort> {
        const KNOWN: &[&str] = &[
            "record",
            "alert",
            "expr",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
        ];
        let Some(fields) = self.fields(n, "rulefmt.RuleNode", KNOWN) else {
            return Ok(None);
        };
        let mut r = RawRule {
            line: n.line,
            column: n.column,
            for_at: None,
            record: None,
            alert: None,
            expr: None,
            for_: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            labels: None,
            annotations: None,
        };
        for (key, v) in fields {
            match key {
                "record" => r.record = Some(v.clone()),
                "alert" => r.alert = Some(v.clone()),
                "expr" => r.expr = Some(v.clone()),
                "for" => {
                    r.for_at = Some((v.line, v.column));
                    r.for_ = self.duration(v)?.unwrap_or_default()
                }
                "keep_firing_for" => r.keep_firing_for = self.duration(v)?.unwrap_or_default(),
                "labels" => r.labels = self.string_map(v),
                _ => r.annotations = self.string_map(v),
            }
        }
        Ok(Some(r))
    }

    fn string(&mut self, n: &Node) -> String {
        if n.is_null() {
            return String::new();
        }
        match n.scalar() {
            Some(s) => s.to_string(),
            None => {
                self.push_err(n, type_error(n, "string"));
                String::new()
            }
        }
    }

    /// Prometheus' `model.Duration`: a string, then `ParseDuration`, whose
    /// error aborts the whole decode.
    fn duration(&mut self, n: &Node) -> Result<Option<Duration>, Abort> {
        if n.is_null() {
            return Ok(None);
        }
        let Some(s) = n.scalar() else {
            self.push_err(n, type_error(n, "string"));
            return Ok(None);
        };
        let r = parse_duration(s).map(Some);
        if r.is_err() {
            self.note(n);
        }
        r
    }

    fn int(&mut self, n: &Node) -> i64 {
        if n.is_null() {
            return 0;
        }
        let parsed = match (&n.kind, n.short_tag()) {
            (Kind::Scalar { value, .. }, "!!int") => parse_int(value),
            (Kind::Scalar { value, .. }, "!!float") => value
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64),
            _ => None,
        };
        match parsed {
            Some(v) => v,
            None => {
                self.push_err(n, type_error(n, "int"));
                0
            }
        }
    }

    fn string_map(&mut self, n: &Node) -> Option<Vec<Entry>> {
        if n.is_null() {
            return None;
        }
        let Kind::Map(entries) = &n.kind else {
            self.push_err(n, type_error(n, "map[string]string"));
            return None;
        };
        let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = self.string(k);
            if let Some(first) = out.iter().find(|e| e.key == key) {
                self.push_err(
                    k,
                    format!(
                        "line {}: mapping key {:?} already defined at line {}",
                        k.line, key, first.line
                    ),
                );
                continue;
            }
            let value = self.string(v);
            out.push(Entry {
                key,
                value,
                line: k.line,
                column: k.column,
            });
        }
        Some(out)
    }
}
