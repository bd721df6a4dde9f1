//! Label matchers (`=`, `!=`, `=~`, `!~`), shared by the PromQL parser and the
//! TSDB index.

use regex::Regex;
use std::fmt;

/// The four matcher kinds PromQL has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::RegexMatch => "=~",
            MatchType::RegexNoMatch => "!~",
        }
    }
}

/// One matcher. Regexes are fully anchored, as in Prometheus: `a.*` must match
/// the whole value.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub kind: MatchType,
    pub value: String,
    regex: Option<Regex>,
}

/// Error for a matcher whose regex does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {value:?}: {reason}")]
pub struct MatcherError {
    pub value: String,
    pub reason: String,
}

/// Most bytes a compiled regex program may take; bounds memory for hostile input.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

impl Matcher {
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let value = value.into();
        let regex = match kind {
            MatchType::RegexMatch | MatchType::RegexNoMatch => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError {
                        value: value.clone(),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            kind,
            value,
            regex,
        })
    }

    /// Whether a label value (`""` for an absent label) satisfies the matcher.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher selects series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.kind == o.kind && self.value == o.value
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            self.kind.as_str(),
            super::labels::escape_label_value(&self.value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchType::RegexMatch, "job", "a.*").unwrap();
        assert!(m.matches("abc"));
        assert!(!m.matches("xabc"));
        let m = Matcher::new(MatchType::RegexNoMatch, "job", "a|b").unwrap();
        assert!(m.matches("ab"));
        assert!(!m.matches("a"));
        assert!(m.matches_empty());
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchType::RegexMatch, "x", "(").is_err());
    }
}
