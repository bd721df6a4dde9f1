//! A positioned YAML node tree built from serde-saphyr's event parser.
//!
//! Why not serde: promtool's messages come from Go's yaml.v3 decoding into
//! typed structs (`line 4: field intervall not found in type
//! rulefmt.RuleGroup`, `cannot unmarshal !!str `ten` into int`, duplicate
//! mapping keys). Reproducing them needs the raw scalar text, its style and
//! tag, and every key's position, which a node tree gives directly.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::collections::HashMap;

/// yaml.v3's nesting limit; deeper documents are rejected, not recursed into.
const MAX_DEPTH: usize = 10_000;
/// Upper bound on nodes materialised through aliases ("billion laughs").
const MAX_ALIAS_NODES: usize = 1_000_000;

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    /// 1-based, like yaml.v3's `Node.Line`/`Node.Column`.
    pub line: usize,
    pub column: usize,
    /// Explicit tag in yaml.v3's short form (`!!str`), if any.
    pub tag: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Scalar { value: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The resolved short tag, as yaml.v3 prints it in type errors.
    pub fn short_tag(&self) -> &str {
        if let Some(t) = &self.tag {
            return t;
        }
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { value, plain } => {
                if !plain {
                    "!!str"
                } else if is_null(value) {
                    "!!null"
                } else if matches!(
                    value.as_str(),
                    "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                ) {
                    "!!bool"
                } else if parse_int(value).is_some() {
                    "!!int"
                } else if is_float(value) {
                    "!!float"
                } else {
                    "!!str"
                }
            }
        }
    }

    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar { value, plain } => {
                self.tag.as_deref() == Some("!!null")
                    || (*plain && self.tag.is_none() && is_null(value))
            }
            _ => false,
        }
    }

    /// The scalar text, `None` for collections.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// yaml.v3's `Node.Value`: scalar text, empty for collections and nulls
    /// written as `~`/`null` keep their text (only an absent node is empty).
    pub fn value(&self) -> &str {
        self.scalar().unwrap_or("")
    }

    /// How yaml.v3 describes a node in "cannot unmarshal" messages: the tag,
    /// plus the value (shortened to 7 chars and `...` beyond 10) for scalars.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar { value, .. } => {
                let shown: String = if value.chars().count() > 10 {
                    let head: String = value.chars().take(7).collect();
                    format!("{head}...")
                } else {
                    value.clone()
                };
                format!("{} `{}`", self.short_tag(), shown)
            }
            _ => self.short_tag().to_string(),
        }
    }
}

fn is_null(v: &str) -> bool {
    matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

/// Integer in YAML 1.1/1.2 plain form as yaml.v3 resolves it.
pub(crate) fn parse_int(v: &str) -> Option<i64> {
    let s: String = v.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if body.is_empty() {
        return None;
    }
    let n = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = body.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

fn is_float(v: &str) -> bool {
    matches!(
        v,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | "-.Inf" | "+.Inf" | ".nan" | ".NaN" | ".NAN"
    ) || (v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
        && v.replace('_', "").parse::<f64>().is_ok())
}

/// A document-level failure, already worded like yaml.v3 (`line 3: ...`
/// where a line is known, without the `yaml: ` prefix).
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

enum Frame {
    Seq(Node, usize, Vec<Node>),
    Map(Node, usize, Vec<(Node, Node)>, Option<Node>),
}

fn pos(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

fn short_tag(handle: &str, suffix: &str) -> String {
    if handle == "tag:yaml.org,2002:" {
        format!("!!{suffix}")
    } else {
        format!("{handle}{suffix}")
    }
}

/// Parses the first document of `src` (yaml.v3's `Decode` and `Unmarshal`
/// read only one); `Ok(None)` for a stream without documents or an empty one.
pub(crate) fn parse_first_document(src: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut alias_budget = MAX_ALIAS_NODES;
    let mut seen_doc = false;
    while let Some(ev) = parser.next_event() {
        let (event, span) = ev.map_err(|e| syntax_error(&e))?;
        let (line, column) = pos(&span);
        let done: Option<(Node, usize)> = match event {
            Event::DocumentStart(..) => {
                seen_doc = true;
                None
            }
            Event::DocumentEnd | Event::StreamEnd => {
                if seen_doc || root.is_some() {
                    break;
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| short_tag(t.handle(), t.suffix()));
                let plain = style == ScalarStyle::Plain && tag.as_deref() != Some("!!str");
                Some((
                    Node {
                        kind: Kind::Scalar {
                            value: value.into_owned(),
                            plain,
                        },
                        line,
                        column,
                        tag,
                    },
                    anchor,
                ))
            }
            ev @ (Event::SequenceStart(..) | Event::MappingStart(..)) => {
                let is_seq = matches!(ev, Event::SequenceStart(..));
                let (Event::SequenceStart(_, anchor, tag) | Event::MappingStart(_, anchor, tag)) =
                    ev
                else {
                    continue;
                };
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: format!("line {line}: exceeded max depth of {MAX_DEPTH}"),
                    });
                }
                let node = Node {
                    kind: Kind::Scalar {
                        value: String::new(),
                        plain: true,
                    },
                    line,
                    column,
                    tag: tag.map(|t| short_tag(t.handle(), t.suffix())),
                };
                stack.push(if is_seq {
                    Frame::Seq(node, anchor, Vec::new())
                } else {
                    Frame::Map(node, anchor, Vec::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(mut n, a, items)) => {
                    n.kind = Kind::Seq(items);
                    Some((n, a))
                }
                Some(Frame::Map(mut n, a, entries, _)) => {
                    n.kind = Kind::Map(entries);
                    Some((n, a))
                }
                None => None,
            },
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: format!("line {line}: unknown anchor referenced"),
                    });
                };
                let size = count_nodes(target);
                if size > alias_budget {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "document contains excessive aliasing".to_string(),
                    });
                }
                alias_budget -= size;
                Some((target.clone(), 0))
            }
            _ => None,
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => *pending = Some(node),
            },
            None => root = Some(node),
        }
    }
    Ok(root)
}

fn count_nodes(n: &Node) -> usize {
    let mut count = 0;
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        count += 1;
        match &n.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => todo.extend(items.iter()),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    todo.push(k);
                    todo.push(v);
                }
            }
        }
    }
    count
}

/// Words a scanner/parser error the way libyaml (via yaml.v3) does for the
/// common cases; others keep the parser's own wording. The parser's nesting
/// limits (hundreds of levels, far beyond any rule file) are lower than
/// yaml.v3's 10000; hitting them is reported with yaml.v3's "too deep"
/// wording because it is the same verdict for the same reason.
fn syntax_error(e: &ScanError) -> SyntaxError {
    let m = e.marker();
    let line = m.line();
    let info = e.info();
    let lower = info.to_ascii_lowercase();
    let message = if lower.contains("recursion limit") {
        format!("line {line}: exceeded max depth of {MAX_DEPTH}")
    } else if lower.contains("tab") {
        format!("line {line}: found character that cannot start any token")
    } else if lower.contains("mapping values are not allowed") {
        "mapping values are not allowed in this context".to_string()
    } else if lower.contains("expected ',' or ']'")
        || lower.contains("flow sequence")
        || lower.contains("unclosed bracket '['")
    {
        format!("line {line}: did not find expected ',' or ']'")
    } else if lower.contains("expected ',' or '}'")
        || lower.contains("flow mapping")
        || lower.contains("unclosed bracket '{'")
    {
        format!("line {line}: did not find expected ',' or '}}'")
    } else {
        format!("line {line}: {info}")
    };
    SyntaxError {
        line,
        column: m.col() + 1,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        parse_first_document(src)
            .expect("valid")
            .expect("a document")
    }

    #[test]
    fn positions_are_one_based_like_yaml_v3() {
        let n = root("groups:\n  - name: x\n    rules: []\n");
        let Kind::Map(top) = &n.kind else {
            panic!("map")
        };
        let Kind::Seq(groups) = &top[0].1.kind else {
            panic!("seq")
        };
        assert_eq!((groups[0].line, groups[0].column), (2, 5));
        let Kind::Map(g) = &groups[0].kind else {
            panic!("map")
        };
        assert_eq!((g[0].1.line, g[0].1.column), (2, 11));
    }

    #[test]
    fn tags_and_descriptions_follow_yaml_v3() {
        let n = root("[ten, 10, 1.5, true, ~, 'x', all-my-groups, !!str 3]");
        let Kind::Seq(items) = &n.kind else {
            panic!("seq")
        };
        let d: Vec<String> = items.iter().map(Node::describe).collect();
        assert_eq!(
            d,
            [
                "!!str `ten`",
                "!!int `10`",
                "!!float `1.5`",
                "!!bool `true`",
                "!!null `~`",
                "!!str `x`",
                "!!str `all-my-...`",
                "!!str `3`"
            ]
        );
        assert!(items[4].is_null());
        assert!(!items[5].is_null());
    }

    #[test]
    fn only_the_first_document_counts() {
        let n = root("a: 1\n---\n[unclosed\n");
        assert!(matches!(n.kind, Kind::Map(_)));
        assert!(parse_first_document("").expect("empty").is_none());
        assert!(parse_first_document("# only a comment\n")
            .expect("ok")
            .is_none());
    }

    #[test]
    fn aliases_are_resolved_to_copies() {
        let n = root("a: &x {k: v}\nb: *x\n");
        let Kind::Map(m) = &n.kind else { panic!("map") };
        let Kind::Map(b) = &m[1].1.kind else {
            panic!("alias resolved to a map")
        };
        assert_eq!(b[0].1.value(), "v");
    }

    #[test]
    fn ints_parse_as_yaml_resolves_them() {
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("ten"), None);
        assert_eq!(parse_int("-"), None);
    }
}
