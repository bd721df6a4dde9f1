//! Translation of Go (RE2) regex syntax into an equivalent pattern for the
//! `regex` crate.
//!
//! The two dialects agree on almost everything, but not on a few details a
//! Prometheus user can hit: Go's `\d \w \s \b` are ASCII-only while the
//! `regex` crate's are Unicode-aware; Go supports `\Q…\E` literal quoting;
//! inside a character class Go treats `[`, `&&`, `~~` literally where the
//! `regex` crate reads nested classes and set operations. Rewriting those
//! spots keeps relabel matching byte-for-byte identical to Prometheus.

/// Rewrites a Go regex so the `regex` crate matches exactly what Go would.
/// Invalid patterns stay invalid (the compiler reports them).
pub fn translate(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut in_class = false;
    // Position right after the `[` / `[^` that opened the current class,
    // where a `]` is a literal.
    let mut class_start = false;
    let mut it = p.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let at_class_start = class_start;
        class_start = false;
        match c {
            '\\' => match it.next() {
                None => out.push('\\'),
                Some((_, e)) => match e {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str(r"[\t\n\x0C\r ]"),
                    'S' => out.push_str(r"[^\t\n\x0C\r ]"),
                    'b' if !in_class => out.push_str(r"(?-u:\b)"),
                    'B' if !in_class => out.push_str(r"(?-u:\B)"),
                    'Q' if !in_class => {
                        let rest = &p[i + 2..];
                        let (lit, consumed) = match rest.find(r"\E") {
                            Some(end) => (&rest[..end], end + 2),
                            None => (rest, rest.len()),
                        };
                        out.push_str(&regex::escape(lit));
                        // Skip the consumed characters.
                        let stop = i + 2 + consumed;
                        while it.peek().is_some_and(|(j, _)| *j < stop) {
                            it.next();
                        }
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                },
            },
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if it.peek().is_some_and(|(_, n)| *n == '^') {
                    it.next();
                    out.push('^');
                }
            }
            '[' => {
                // `[:alpha:]` is a POSIX class in both dialects; any other `[`
                // inside a class is a literal in Go.
                let rest = &p[i..];
                if let Some(end) = rest.strip_prefix("[:").and_then(|r| r.find(":]")) {
                    let whole = &rest[..end + 4];
                    out.push_str(whole);
                    let stop = i + whole.len();
                    while it.peek().is_some_and(|(j, _)| *j < stop) {
                        it.next();
                    }
                } else {
                    out.push_str(r"\[");
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::translate;
    use regex::Regex;

    fn full(p: &str) -> Regex {
        Regex::new(&format!("^(?s:{})$", translate(p))).unwrap()
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(full(r"\d+").is_match("123"));
        assert!(!full(r"\d+").is_match("١٢٣")); // Arabic-Indic digits: not \d in Go
        assert!(full(r"\w+").is_match("ab_9"));
        assert!(!full(r"\w+").is_match("é"));
        assert!(!full(r"\s").is_match("\u{a0}"));
        assert!(full(r"[\d.]+").is_match("1.2"));
        assert!(full(r"[^\D]").is_match("7"));
        assert!(full(r"\D\W\S").is_match("a-b"));
    }

    #[test]
    fn quoting_and_literal_brackets() {
        assert!(full(r"\Qa.b*\E+").is_match("a.b*"));
        assert!(!full(r"\Qa.b\E").is_match("axb"));
        assert!(full(r"[[]").is_match("["));
        assert!(full(r"[]a]+").is_match("]a"));
        assert!(full(r"[a&&b]+").is_match("a&b"));
        assert!(full(r"[[:digit:]x]+").is_match("1x"));
        assert!(full(r"\\d").is_match(r"\d"));
        assert!(full(r"a\bb|a\b").is_match("a"));
    }

    #[test]
    fn ordinary_patterns_unchanged() {
        for p in [
            "(.*)", "foo_(.+)", "a|b", "(?P<n>x)", "[a-z]+", r"\.", r"\p{L}",
        ] {
            assert_eq!(translate(p), p);
        }
    }
}
