//! Byte-level scanners shared by both exposition formats.
//!
//! Everything here works on one line (`buf[start..end]`, newline excluded) and
//! reports failures as `(byte offset, message)`; the parser turns the offset into
//! line:column. No function allocates: the hot path of a scrape must not.

use std::ops::Range;

/// A scan failure: absolute byte offset into the input plus a message.
pub(crate) type ScanError = (usize, String);

pub(crate) type ScanResult<T> = Result<T, ScanError>;

/// Classic metric-name bytes: `[a-zA-Z0-9_:]`. Indexed by byte; a table is the
/// fastest way to run the name loop that every sample line starts with.
static METRIC_CHAR: [bool; 256] = build_table(true);
/// Classic label-name bytes: `[a-zA-Z0-9_]`.
static LABEL_CHAR: [bool; 256] = build_table(false);

const fn build_table(colon: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':');
        i += 1;
    }
    t
}

/// Length of the classic metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) starting at
/// `pos`, 0 if there is none.
#[inline]
pub(crate) fn metric_name_len(buf: &[u8], pos: usize, end: usize) -> usize {
    let s = match buf.get(pos..end) {
        Some(s) => s,
        None => return 0,
    };
    match s.first() {
        Some(c) if !c.is_ascii_digit() && METRIC_CHAR[*c as usize] => {}
        _ => return 0,
    }
    s.iter()
        .position(|c| !METRIC_CHAR[*c as usize])
        .unwrap_or(s.len())
}

/// Length of the classic label name (`[a-zA-Z_][a-zA-Z0-9_]*`) at `pos`.
#[inline]
pub(crate) fn label_name_len(buf: &[u8], pos: usize, end: usize) -> usize {
    let s = match buf.get(pos..end) {
        Some(s) => s,
        None => return 0,
    };
    match s.first() {
        Some(c) if !c.is_ascii_digit() && LABEL_CHAR[*c as usize] => {}
        _ => return 0,
    }
    s.iter()
        .position(|c| !LABEL_CHAR[*c as usize])
        .unwrap_or(s.len())
}

/// A quoted string found by [`quoted`]: its content (quotes excluded) and
/// whether it holds a backslash, i.e. whether decoding must allocate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quoted {
    pub content: (usize, usize),
    pub escaped: bool,
    /// Offset just after the closing quote.
    pub next: usize,
}

/// Scans a double-quoted string whose opening quote is at `pos`. A backslash
/// escapes the following byte (both formats keep unknown escapes verbatim when
/// decoding). The content must be valid UTF-8: Prometheus rejects anything else
/// in names and values, and checking here spares the lazy decoder from it.
#[inline]
pub(crate) fn quoted(buf: &[u8], pos: usize, end: usize) -> ScanResult<Quoted> {
    if buf.get(pos) != Some(&b'"') || pos >= end {
        return Err((pos, "expected '\"'".into()));
    }
    let start = pos + 1;
    let mut i = start;
    let mut escaped = false;
    loop {
        let rest = buf.get(i..end).unwrap_or(&[]);
        match memchr::memchr2(b'"', b'\\', rest) {
            None => return Err((pos, "unterminated quoted string".into())),
            Some(k) => {
                let at = i + k;
                if buf.get(at) == Some(&b'"') {
                    let content = buf.get(start..at).unwrap_or(&[]);
                    if let Err(e) = std::str::from_utf8(content) {
                        return Err((
                            start + e.valid_up_to(),
                            "invalid UTF-8 in quoted string".into(),
                        ));
                    }
                    return Ok(Quoted {
                        content: (start, at),
                        escaped,
                        next: at + 1,
                    });
                }
                // Backslash: the next byte belongs to the escape.
                escaped = true;
                if at + 1 >= end {
                    return Err((pos, "unterminated quoted string".into()));
                }
                i = at + 2;
            }
        }
    }
}

/// Decodes a label value or quoted name: `\\`, `\"` and `\n` are replaced,
/// any other backslash pair is kept as written (what Prometheus' replacer does).
pub(crate) fn unescape_into(s: &str, out: &mut String, quote: bool) {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
}

/// Decoded form of escaped text, borrowed when there is nothing to decode.
pub(crate) fn unescape(s: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    if !s.as_bytes().contains(&b'\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    unescape_into(s, &mut out, quote);
    std::borrow::Cow::Owned(out)
}

/// Bytes as `&str`; callers only pass bytes already checked to be UTF-8, the
/// empty fallback exists so that no path can panic.
#[inline]
pub(crate) fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// Parses a sample value. Plain integers of up to 15 digits (most values in real
/// payloads) take an exact fast path; everything else goes through the standard
/// library, whose grammar (decimal, exponent, `Inf`/`Infinity`/`NaN` in any case)
/// matches Go's `ParseFloat` once hex floats and `_` separators are excluded, as
/// Prometheus excludes them.
#[inline]
pub(crate) fn parse_float(tok: &[u8]) -> Option<f64> {
    if !tok.is_empty() && tok.len() <= 15 && tok.iter().all(u8::is_ascii_digit) {
        let mut v: u64 = 0;
        for c in tok {
            v = v * 10 + u64::from(c - b'0');
        }
        return Some(v as f64);
    }
    if tok
        .iter()
        .any(|c| matches!(c, b'_' | b'p' | b'P' | b'x' | b'X'))
    {
        return None;
    }
    let v = std::str::from_utf8(tok).ok()?.parse::<f64>().ok()?;
    // Go's ParseFloat reports overflow ("1e400") as an error where Rust rounds
    // to infinity; Prometheus fails the scrape, so do we.
    if v.is_infinite() && tok.iter().any(u8::is_ascii_digit) {
        return None;
    }
    Some(v)
}

/// Parses a text-format timestamp: decimal digits only (the Prometheus lexer
/// accepts nothing else), milliseconds, must fit an `i64`.
#[inline]
pub(crate) fn parse_int_timestamp(tok: &[u8]) -> Option<i64> {
    if tok.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for c in tok {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(v)
}

/// Converts OpenMetrics float seconds to milliseconds, truncating toward zero
/// like Prometheus' `int64(ts*1000)`; NaN and infinities are not timestamps.
pub(crate) fn seconds_to_millis(secs: f64) -> Option<i64> {
    if !secs.is_finite() {
        return None;
    }
    Some((secs * 1000.0) as i64)
}

/// A name/value pair seen while scanning a label set, as offsets into the input.
#[derive(Clone, Debug, Default)]
pub(crate) struct LabelSpan {
    pub name: (usize, usize),
    pub value: (usize, usize),
    pub value_escaped: bool,
}

impl LabelSpan {
    pub fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.name.0..self.name.1).unwrap_or(&[])
    }
    pub fn value<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.value.0..self.value.1).unwrap_or(&[])
    }
}

/// What [`series`] found: the metric name and the label set of a sample line.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    /// Metric name content (quotes excluded) and whether it holds escapes.
    pub name: (usize, usize),
    pub name_escaped: bool,
    /// The label-set content between the braces, empty range if absent.
    pub labels: Range<usize>,
    /// Offset just after the name / closing brace.
    pub end: usize,
}

/// Format-dependent rules of the label-set grammar.
#[derive(Clone, Copy)]
pub(crate) struct Dialect {
    /// Text format: blanks allowed between tokens and a trailing comma accepted.
    pub lenient: bool,
}

#[inline]
fn skip_blanks(buf: &[u8], mut i: usize, end: usize, d: Dialect) -> usize {
    if d.lenient {
        while i < end && matches!(buf.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
    }
    i
}

/// A metric name found inside a label set (`{"name", ...}`), with escapes flag.
pub(crate) type NameSlot = Option<((usize, usize), bool)>;

/// Scans a series (`name`, `name{labels}` or `{"name", labels}`) starting at
/// `pos`. Label spans are appended to `spans` (cleared first) so that format
/// checks can look at `le`, `quantile` or duplicates without decoding.
pub(crate) fn series(
    buf: &[u8],
    pos: usize,
    end: usize,
    d: Dialect,
    spans: &mut Vec<LabelSpan>,
) -> ScanResult<Series> {
    spans.clear();
    let mut name: NameSlot = None;
    let mut i = pos;
    let n = metric_name_len(buf, i, end);
    if n > 0 {
        name = Some(((i, i + n), false));
        i += n;
    }
    let brace = skip_blanks(buf, i, end, d);
    if buf.get(brace) != Some(&b'{') || brace >= end {
        return match name {
            Some((nm, esc)) => Ok(Series {
                name: nm,
                name_escaped: esc,
                labels: i..i,
                end: i,
            }),
            None => Err((pos, "expected metric name".into())),
        };
    }
    let lstart = brace + 1;
    let close = label_set(buf, lstart, end, d, spans, Some(&mut name))?;
    match name {
        Some((nm, esc)) if nm.0 < nm.1 => Ok(Series {
            name: nm,
            name_escaped: esc,
            labels: lstart..close,
            end: close + 1,
        }),
        Some(_) => Err((pos, "empty metric name".into())),
        None => Err((pos, "expected metric name".into())),
    }
}

/// Scans label pairs from `lstart` (just after `{`) to the closing brace, whose
/// offset is returned. With `name` given, a quoted string not followed by `=` is
/// taken as the metric name (Prometheus 3 UTF-8 syntax); without, it is an error.
pub(crate) fn label_set(
    buf: &[u8],
    lstart: usize,
    end: usize,
    d: Dialect,
    spans: &mut Vec<LabelSpan>,
    mut name: Option<&mut NameSlot>,
) -> ScanResult<usize> {
    let mut i = lstart;
    let mut need_sep = false;
    loop {
        i = skip_blanks(buf, i, end, d);
        let c = match buf.get(i) {
            Some(c) if i < end => *c,
            _ => return Err((i, "unterminated label set, expected '}'".into())),
        };
        if c == b'}' {
            if !d.lenient && !need_sep && i > lstart {
                return Err((i, "trailing comma in label set".into()));
            }
            break;
        }
        if need_sep {
            if c != b',' {
                return Err((i, "expected ',' or '}' in label set".into()));
            }
            i = skip_blanks(buf, i + 1, end, d);
            if !d.lenient && matches!(buf.get(i), Some(b',' | b'}')) {
                return Err((i, "expected label name after ','".into()));
            }
            need_sep = false;
            continue;
        }
        // A label name, or (quoted, without '=') the metric name.
        let (lname, quoted_name) = if c == b'"' {
            let q = quoted(buf, i, end)?;
            i = q.next;
            (q, true)
        } else {
            let n = label_name_len(buf, i, end);
            if n == 0 {
                return Err((i, "invalid label name".into()));
            }
            let q = Quoted {
                content: (i, i + n),
                escaped: false,
                next: i + n,
            };
            i += n;
            (q, false)
        };
        i = skip_blanks(buf, i, end, d);
        if quoted_name && matches!(buf.get(i), Some(b',' | b'}')) && i < end {
            match name.as_deref_mut() {
                Some(slot) if slot.is_none() => *slot = Some((lname.content, lname.escaped)),
                Some(_) => return Err((lname.content.0, "metric name given twice".into())),
                None => return Err((lname.content.0, "expected '=' after label name".into())),
            }
            need_sep = true;
            continue;
        }
        if buf.get(i) != Some(&b'=') || i >= end {
            return Err((i, "expected '=' after label name".into()));
        }
        i = skip_blanks(buf, i + 1, end, d);
        if buf.get(i) != Some(&b'"') || i >= end {
            return Err((i, "expected quoted label value".into()));
        }
        let v = quoted(buf, i, end)?;
        i = v.next;
        let span = LabelSpan {
            name: lname.content,
            value: v.content,
            value_escaped: v.escaped,
        };
        let nm = span.name(buf);
        if nm.is_empty() {
            return Err((lname.content.0, "empty label name".into()));
        }
        // Linear duplicate check while sets are small (the usual case); huge
        // sets are checked once at the end by sorting, to stay O(n log n).
        if nm == b"__name__" || (spans.len() < 32 && spans.iter().any(|s| s.name(buf) == nm)) {
            return Err((
                lname.content.0,
                format!("duplicate label name {:?}", as_str(nm)),
            ));
        }
        spans.push(span);
        need_sep = true;
    }
    if spans.len() > 32 {
        let mut names: Vec<&[u8]> = spans.iter().map(|s| s.name(buf)).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err((lstart, format!("duplicate label name {:?}", as_str(w[0]))));
        }
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_grammar() {
        assert_eq!(parse_float(b"12"), Some(12.0));
        assert_eq!(parse_float(b"-1.5e3"), Some(-1500.0));
        assert_eq!(parse_float(b"+Inf"), Some(f64::INFINITY));
        assert!(parse_float(b"NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float(b"0x1p-3"), None);
        assert_eq!(parse_float(b"1_000"), None);
        assert_eq!(parse_float(b""), None);
        assert_eq!(parse_float(b"1e400"), None);
        assert_eq!(parse_float(b"-1e400"), None);
        assert_eq!(parse_float(b"1e-400"), Some(0.0));
        assert_eq!(parse_float(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"9007199254740993"), Some(9007199254740992.0));
    }

    #[test]
    fn unescape_keeps_unknown_escapes() {
        assert_eq!(unescape(r#"a\\b\"c\nd\z"#, true), "a\\b\"c\nd\\z");
        assert_eq!(unescape(r#"a\"b"#, false), "a\\\"b");
    }
}
