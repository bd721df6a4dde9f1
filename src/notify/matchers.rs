//! Alertmanager's matcher syntax (`matchers:` in routes and inhibit rules,
//! `amtool` filters, the `filter` parameter of the v2 API).
//!
//! Alertmanager 0.25 accepts `name<op>value` with the value bare or in
//! double quotes, a list separated by commas and optionally wrapped in
//! braces. The parser follows its rules exactly because users paste the same
//! strings into both tools: a quoted value may contain commas; inside it `\"`,
//! `\\` and `\n` are escapes and any other backslash is literal.

use crate::model::{MatchType, Matcher};
use std::fmt;

/// Why a matcher string was rejected; the message names the offending input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatcherParseError(pub String);

/// Parses a whole matcher list, e.g. `{alertname="Foo", env=~"prod|stage"}`.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherParseError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses one `name<op>value` matcher.
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherParseError> {
    let bad = || MatcherParseError(format!("bad matcher format: {s}"));
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|&(i, c)| {
            if i == 0 {
                !is_name_start(c)
            } else {
                !is_name_char(c)
            }
        })
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    if name_len == 0 {
        return Err(bad());
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start();
    let (kind, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::RegexMatch, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::RegexNoMatch, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(bad());
    };
    let raw_shown = rest.trim();
    let value = unquote(raw_shown)?;
    Matcher::new(kind, name, value).map_err(|e| MatcherParseError(e.to_string()))
}

/// Alertmanager's value unescaping: an optional surrounding pair of quotes,
/// `\n`, `\"` and `\\` escapes, other backslashes kept.
fn unquote(raw: &str) -> Result<String, MatcherParseError> {
    let unescaped_quote = || {
        MatcherParseError(format!(
            "matcher value contains unescaped double quote: {raw}"
        ))
    };
    let (body, mut expect_trailing) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let mut out = String::with_capacity(body.len());
    let mut escaped = false;
    let mut it = body.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let is_last = it.peek().is_none();
        if escaped {
            escaped = false;
            match c {
                'n' => out.push('\n'),
                '"' | '\\' => out.push(c),
                _ => {
                    out.push('\\');
                    out.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !is_last => escaped = true,
            '\\' => out.push('\\'),
            '"' => {
                if !expect_trailing || i + 1 < body.len() {
                    return Err(unescaped_quote());
                }
                expect_trailing = false;
            }
            _ => out.push(c),
        }
    }
    if expect_trailing {
        return Err(unescaped_quote());
    }
    Ok(out)
}

/// One matcher as Alertmanager prints it (`name="value"`, value escaped).
pub struct AmMatcher<'a>(pub &'a Matcher);

impl fmt::Display for AmMatcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.0.name, self.0.kind.as_str())?;
        for c in self.0.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                _ => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A matcher list as in a route's group key: `{a="1",b=~"x"}` (no space).
pub fn matchers_string(ms: &[Matcher]) -> String {
    let mut s = String::from("{");
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&AmMatcher(m).to_string());
    }
    s.push('}');
    s
}

/// Alertmanager's matcher order (name, then value, then type), used for a
/// route's matchers so the group key does not depend on how they were written.
pub fn sort_matchers(ms: &mut [Matcher]) {
    fn rank(k: MatchType) -> u8 {
        match k {
            MatchType::Equal => 0,
            MatchType::NotEqual => 1,
            MatchType::RegexMatch => 2,
            MatchType::RegexNoMatch => 3,
        }
    }
    ms.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.value.cmp(&b.value))
            .then_with(|| rank(a.kind).cmp(&rank(b.kind)))
    });
}

/// True when every matcher accepts the label set (absent labels are "").
pub fn matches_all(ms: &[Matcher], labels: &crate::model::Labels) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Matcher {
        let v = parse_matchers(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn bare_and_quoted_values() {
        let m = one("foo=bar");
        assert_eq!(
            (m.name.as_str(), m.kind, m.value.as_str()),
            ("foo", MatchType::Equal, "bar")
        );
        let m = one(r#"foo =~ "a,b\"c""#);
        assert_eq!(
            (m.kind, m.value.as_str()),
            (MatchType::RegexMatch, "a,b\"c")
        );
        let m = one(r#"{foo!="x\ny\\z\q"}"#);
        assert_eq!(m.value, "x\\ny\\z\\q".replace("\\n", "\n"));
        let m = one("foo!=");
        assert_eq!((m.kind, m.value.as_str()), (MatchType::NotEqual, ""));
    }

    #[test]
    fn lists_split_outside_quotes_only() {
        let v = parse_matchers(r#"{a="1,2", b=~"x|y",c!=3}"#).unwrap();
        let shown: Vec<String> = v.iter().map(|m| AmMatcher(m).to_string()).collect();
        assert_eq!(shown, [r#"a="1,2""#, r#"b=~"x|y""#, r#"c!="3""#]);
        assert!(parse_matchers("").unwrap().is_empty());
    }

    #[test]
    fn errors_like_alertmanager() {
        assert_eq!(
            parse_matchers("a=1,,b=2").unwrap_err().0,
            "bad matcher format: "
        );
        assert!(parse_matcher("1a=b")
            .unwrap_err()
            .0
            .starts_with("bad matcher format"));
        assert!(parse_matcher(r#"a="b"#)
            .unwrap_err()
            .0
            .contains("unescaped double quote"));
        assert!(parse_matcher(r#"a=b"c"#)
            .unwrap_err()
            .0
            .contains("unescaped double quote"));
        assert!(parse_matcher("a=~(").is_err());
    }

    #[test]
    fn sorted_key_string() {
        let mut v = parse_matchers(r#"b="2", a=~"x", a="x""#).unwrap();
        sort_matchers(&mut v);
        assert_eq!(matchers_string(&v), r#"{a="x",a=~"x",b="2"}"#);
    }
}
