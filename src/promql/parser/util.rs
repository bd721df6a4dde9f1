//! Small helpers that reproduce Go/Prometheus formatting and parsing rules
//! (durations, number literals, `strconv.Quote`), because the printed forms
//! must match Prometheus byte for byte.

const MS_PER_UNIT: [(&str, i64); 7] = [
    ("y", 1000 * 60 * 60 * 24 * 365),
    ("w", 1000 * 60 * 60 * 24 * 7),
    ("d", 1000 * 60 * 60 * 24),
    ("h", 1000 * 60 * 60),
    ("m", 1000 * 60),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration (`1h30m`, `5m`, `500ms`, `0`) into
/// milliseconds. Units must appear at most once and in decreasing order, as
/// `model.ParseDuration` requires. The error text matches Prometheus.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    if s == "0" {
        return Ok(0);
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(s));
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0; // index into MS_PER_UNIT that the next unit may use
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let n: i64 = s[start..i].parse().map_err(|_| invalid())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = MS_PER_UNIT[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(invalid)?;
        let (_, mult) = MS_PER_UNIT[next_unit + pos];
        next_unit += pos + 1;
        let add = n
            .checked_mul(mult)
            .ok_or_else(|| "duration out of range".to_string())?;
        total = total
            .checked_add(add)
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    // time.Duration is nanoseconds in an int64.
    if total > i64::MAX / 1_000_000 {
        return Err("duration out of range".to_string());
    }
    Ok(total)
}

/// Formats milliseconds like Prometheus' `model.Duration.String()`: years and
/// weeks only when they divide evenly, `0s` for zero. A negative value (a
/// literal range such as `[-1m]`, which the grammar accepts) keeps its sign:
/// printing it as nothing made the printed query unparseable (found by the
/// PromQL fuzz target).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    // Unsigned so that `i64::MIN` has a magnitude too.
    let mut rest = ms.unsigned_abs();
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    for (i, (unit, mult)) in MS_PER_UNIT.iter().enumerate() {
        let mult = mult.unsigned_abs();
        let exact = i < 2;
        if exact && !rest.is_multiple_of(mult) {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(unit);
            rest -= v * mult;
        }
    }
    out
}

/// Formats a float like Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Formats a float like Go's `%v` (shortest `%g`: exponent form from 1e6
/// up and below 1e-4, e.g. `1e+06`, `1e-05`).
pub fn format_go_v(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format_float(v);
    }
    let exp = v.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        return format_float(v);
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Parses a PromQL number literal as Prometheus does: first as a Go integer
/// literal with base prefix (so `0x1f`, `017` octal and `1_000` work), then
/// as a float. Errors read like Go's `strconv` errors.
pub fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(v) = parse_go_int(s) {
        return Ok(v);
    }
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    match clean.parse::<f64>() {
        Ok(v) if v.is_infinite() && !lower.contains("inf") => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go `strconv.ParseInt(s, 0, 64)` converted to f64; `None` where Go fails
/// (the caller then falls back to float parsing, as Prometheus does).
fn parse_go_int(s: &str) -> Option<f64> {
    let (radix, digits) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, r.strip_prefix('_').unwrap_or(r))
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&clean, radix).ok().map(|v| v as f64)
}

/// Whether `s` is a label name under the legacy rules `[a-zA-Z_][a-zA-Z0-9_]*`;
/// other names are printed quoted.
pub fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub use crate::model::gofmt::{go_quote, go_quote_rune, go_quote_truncated, go_unicode_verb};

/// Removes the quotes of a string token and resolves escapes the way
/// Prometheus' `strutil.Unquote` does. The lexer has already rejected bad
/// escapes, so errors here only guard against misuse.
pub fn unquote(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let quote = chars.next().ok_or("invalid syntax")?;
    if s.len() < 2 || !s.ends_with(quote) {
        return Err("invalid syntax".into());
    }
    let body = &s[quote.len_utf8()..s.len() - quote.len_utf8()];
    if quote == '`' {
        return Ok(body.to_string());
    }
    if quote != '"' && quote != '\'' {
        return Err("invalid syntax".into());
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = it.next() {
        if c != '\\' {
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it.next().ok_or("invalid syntax")?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (n, radix) = match e {
            '0'..='7' => (3, 8),
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => return Err("invalid syntax".into()),
        };
        let mut digits = String::new();
        if e.is_ascii_digit() {
            digits.push(e);
        }
        while digits.len() < n {
            digits.push(it.next().ok_or("invalid syntax")?);
        }
        let v = u32::from_str_radix(&digits, radix).map_err(|_| "invalid syntax")?;
        if e == 'x' || e.is_ascii_digit() {
            // Byte escapes produce raw bytes, as in Go.
            bytes.push(u8::try_from(v).map_err(|_| "invalid syntax")?);
        } else {
            let c = char::from_u32(v).ok_or("invalid syntax")?;
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5m1h").is_err());
        assert!(parse_duration("5mm").is_err());
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "not a valid duration string: \"5x\""
        );
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90 * 86_400_000), "90d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(365 * 86_400_000), "1y");
        assert_eq!(format_duration(1500), "1s500ms");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn numbers_follow_go_rules() {
        assert_eq!(parse_number("0x1f"), Ok(31.0));
        assert_eq!(parse_number("017"), Ok(15.0));
        assert_eq!(parse_number("1_000_000"), Ok(1e6));
        assert_eq!(parse_number("1e3"), Ok(1000.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("09"), Ok(9.0));
        assert!(parse_number("Inf").unwrap().is_infinite());
        assert!(parse_number("nan").unwrap().is_nan());
        assert!(parse_number("1e999")
            .unwrap_err()
            .contains("value out of range"));
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(0.1), "0.1");
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote_rune(Some('f')), "'f'");
        assert_eq!(go_quote_rune(Some('\'')), "'\\''");
        assert_eq!(unquote("'a\\'b'").unwrap(), "a'b");
        assert_eq!(unquote("\"\\u00e9\\x41\\101\"").unwrap(), "éAA");
        assert_eq!(unquote("`a\\n`").unwrap(), "a\\n");
    }
}
