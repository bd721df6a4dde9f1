//! Label matchers for selectors: Prometheus-worded regex errors and a
//! cache of compiled regexes.

use super::parser::{perr, PResult};
use crate::model::{MatchType, Matcher};

/// Most compiled regex matchers kept per thread for reuse.
const REGEX_CACHE_MAX: usize = 4096;

thread_local! {
    /// Compiled regex matchers by (negated, pattern). Compiling a regex costs
    /// ~100 µs while parsing the rest of a selector takes ~1 µs, and rule
    /// files repeat the same patterns, so reloads reuse them. `Regex` clones
    /// share the compiled program.
    static REGEX_CACHE: std::cell::RefCell<std::collections::HashMap<(bool, String), Matcher>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Builds a matcher, turning regex failures into Prometheus-style messages.
pub(super) fn new_matcher(
    kind: MatchType,
    name: String,
    value: String,
    pos: usize,
) -> PResult<Matcher> {
    let regex = matches!(kind, MatchType::RegexMatch | MatchType::RegexNoMatch);
    if !regex {
        return Matcher::new(kind, name, value).map_err(|e| perr(pos, e.to_string()));
    }
    let key = (kind == MatchType::RegexNoMatch, value);
    if let Some(mut m) = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned()) {
        m.name = name;
        return Ok(m);
    }
    let value = key.1.clone();
    if let Some(msg) = go_regexp_error(&value) {
        return Err(perr(pos, msg));
    }
    let m = Matcher::new(kind, name, value.clone()).map_err(|e| {
        perr(
            pos,
            format!(
                "error parsing regexp: {}: `^(?:{value})$`",
                first_line(&e.reason)
            ),
        )
    })?;
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(key, m.clone());
    });
    Ok(m)
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_else(|| s.lines().next().unwrap_or(s))
}

/// The parenthesis errors of Go's regexp parser, with its wording, for the
/// anchored form Prometheus 2.42 compiles (`^(?:<re>)$`).
fn go_regexp_error(re: &str) -> Option<String> {
    let full = format!("^(?:{re})$");
    let mut depth: i64 = 0;
    let mut chars = re.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth < 0 {
                    return Some(format!("error parsing regexp: unexpected ): `{full}`"));
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Some(format!("error parsing regexp: missing closing ): `{full}`"));
    }
    None
}
