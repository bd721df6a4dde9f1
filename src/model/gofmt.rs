//! Go's `fmt`, `strconv` and `time` formatting and parsing, reproduced
//! because what klaxon prints (PromQL, durations, numbers in templates and
//! errors) must match Prometheus and Alertmanager byte for byte: Prometheus
//! durations, Go number literals and float formats, `strconv.Quote`,
//! `time.Time.String()`/`Format` and `time.Duration.String()`.

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
/// literal range such as `[-1m]`, which the grammar accepts) keeps its sign,
/// so that the printed query parses again.
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

/// Go's `unicode.IsPrint`, approximated: letters, marks, numbers,
/// punctuation, symbols and the ASCII space.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c as u32, 0xAD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
        || (0xE000..=0xF8FF).contains(&(c as u32))
        || (0xF0000..).contains(&(c as u32)))
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if is_print(c) => out.push(c),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` of a rune (`strconv.QuoteRune`); `None` stands for Go's EOF
/// rune (-1), which Go prints as the replacement character.
pub fn go_quote_rune(c: Option<char>) -> String {
    let c = c.unwrap_or('\u{FFFD}');
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// Go's `%#U` of a rune: `U+0027 '''`.
pub fn go_unicode_verb(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Go's `%.10q`: quote at most the first ten runes.
pub fn go_quote_truncated(s: &str) -> String {
    let short: String = s.chars().take(10).collect();
    go_quote(&short)
}

/// Removes the quotes of a string token and resolves escapes the way
/// Prometheus' `strutil.Unquote` does. The lexer has already rejected bad
/// escapes, so errors here only guard against misuse.
pub fn unquote(s: &str) -> Result<String, String> {
    Ok(match unquote_bytes(s)? {
        Ok(v) => v,
        Err(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// [`unquote`] keeping what Go keeps: a string whose byte escapes
/// (`\xc5`, `\305`) make it invalid UTF-8 comes back as its raw bytes
/// (`Err`), valid text as `Ok`.
pub fn unquote_bytes(s: &str) -> Result<Result<String, Vec<u8>>, String> {
    let mut chars = s.chars();
    let quote = chars.next().ok_or("invalid syntax")?;
    if s.len() < 2 || !s.ends_with(quote) {
        return Err("invalid syntax".into());
    }
    let body = &s[quote.len_utf8()..s.len() - quote.len_utf8()];
    if quote == '`' {
        return Ok(Ok(body.to_string()));
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
    Ok(String::from_utf8(bytes).map_err(|e| e.into_bytes()))
}

/// Go's `strconv.Quote` of a byte string that need not be UTF-8: the
/// valid parts as [`go_quote`], each invalid byte as `\xNN`.
pub fn go_quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c, '"');
        }
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out.push('"');
    out
}

/// Decimal digits of a finite, non-negative float: `digits` without
/// trailing zeros and the decimal point position `dp` (value = 0.d × 10^dp).
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// `prec` significant digits, or the shortest round-trip digits for `None`.
fn digits(v: f64, prec: Option<usize>) -> Digits {
    if v == 0.0 {
        return Digits { d: vec![], dp: 0 };
    }
    let s = match prec {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v),
        None => format!("{v:e}"),
    };
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    let mut d: Vec<u8> = m
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    while d.last() == Some(&0) {
        d.pop();
    }
    Digits { d, dp: exp + 1 }
}

fn fmt_e(dg: &Digits, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    let first = dg.d.first().copied().unwrap_or(0);
    out.push((b'0' + first) as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push((b'0' + dg.d.get(i).copied().unwrap_or(0)) as char);
        }
    }
    let exp = if dg.d.is_empty() { 0 } else { dg.dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fmt_f(dg: &Digits, prec: usize) -> String {
    let mut out = String::new();
    if dg.dp > 0 {
        for i in 0..dg.dp as usize {
            out.push((b'0' + dg.d.get(i).copied().unwrap_or(0)) as char);
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            let j = dg.dp + i;
            let c = if j < 0 {
                0
            } else {
                dg.d.get(j as usize).copied().unwrap_or(0)
            };
            out.push((b'0' + c) as char);
        }
    }
    out
}

/// `strconv.FormatFloat(v, fmt, prec, 64)` for fmt in e/E/f/g/G; prec -1 is shortest.
pub fn strconv_float(v: f64, verb: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let shortest = prec < 0;
    let body = match verb {
        'e' | 'E' => {
            let dg = digits(
                a,
                if shortest {
                    None
                } else {
                    Some(prec as usize + 1)
                },
            );
            let p = if shortest {
                dg.d.len().saturating_sub(1)
            } else {
                prec as usize
            };
            fmt_e(&dg, p, verb == 'E')
        }
        'f' | 'F' => {
            if shortest {
                let dg = digits(a, None);
                fmt_f(&dg, (dg.d.len() as i32 - dg.dp).max(0) as usize)
            } else {
                format!("{:.*}", prec as usize, a)
            }
        }
        _ => {
            let mut p = if shortest {
                0
            } else if prec == 0 {
                1
            } else {
                prec as usize
            };
            let dg = digits(a, if shortest { None } else { Some(p) });
            if shortest {
                p = dg.d.len();
            }
            let nd = dg.d.len();
            let mut eprec = p as i32;
            if eprec > nd as i32 && nd as i32 >= dg.dp {
                eprec = nd as i32;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dg.dp - 1;
            if exp < -4 || exp >= eprec {
                let pp = p.min(nd);
                fmt_e(&dg, pp.saturating_sub(1), verb == 'G')
            } else {
                let pp = if p as i32 > dg.dp {
                    nd as i32
                } else {
                    p as i32
                };
                fmt_f(&dg, (pp - dg.dp).max(0) as usize)
            }
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `time.Time.String()` for a UTC time given in nanoseconds.
pub fn time_string(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = crate::model::time::civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's `time.Duration.String()`.
pub fn duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_str(u, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let s = rem % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h{m}m"));
        } else if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac_str(s, 1_000_000_000));
        out.push('s');
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn frac_str(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Go's `%x` of a float64 (`strconv.FormatFloat(v, 'x', -1, 64)`): shortest
/// hexadecimal mantissa, binary exponent with at least two digits.
pub fn hex_float(v: f64, upper: bool) -> String {
    if !v.is_finite() {
        return strconv_float(v, 'g', -1);
    }
    let neg = v.is_sign_negative();
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    let s = if exp == 0 && mant == 0 {
        "0x0p+00".to_string()
    } else {
        if exp == 0 {
            // Subnormal: shift the leading one into the implicit position.
            exp = 1;
            while mant & (1u64 << 52) == 0 {
                mant <<= 1;
                exp -= 1;
            }
            mant &= (1u64 << 52) - 1;
        }
        let e = exp - 1023;
        let digits = format!("{mant:013x}");
        let digits = digits.trim_end_matches('0');
        let sign = if e < 0 { '-' } else { '+' };
        let frac = if digits.is_empty() {
            String::new()
        } else {
            format!(".{digits}")
        };
        format!("0x1{frac}p{sign}{:02}", e.unsigned_abs())
    };
    let s = if upper { s.to_uppercase() } else { s };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `time.Time.Format(layout)` for a UTC time in nanoseconds, with
/// Go's reference-time layout (`2006-01-02 15:04:05.000 MST`). Templates
/// call it as `{{ .StartsAt.Format "..." }}`.
pub fn time_format(ns: i128, layout: &str) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = crate::model::time::civil_from_days(days);
    let (h, min, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let yday = days - crate::model::time::days_from_civil(y, 1, 1) + 1;
    let wday = (days + 4).rem_euclid(7) as usize;
    let month = MONTHS[(m as usize).saturating_sub(1).min(11)];
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let b = layout.as_bytes();
    let mut out = String::with_capacity(layout.len() + 8);
    let mut i = 0;
    let rest = |i: usize| &layout[i..];
    while i < b.len() {
        let r = rest(i);
        let (text, n): (String, usize) = if r.starts_with("January") {
            (month.to_string(), 7)
        } else if r.starts_with("Jan") {
            (month[..3].to_string(), 3)
        } else if r.starts_with("Monday") {
            (DAYS[wday].to_string(), 6)
        } else if r.starts_with("Mon") {
            (DAYS[wday][..3].to_string(), 3)
        } else if r.starts_with("MST") {
            ("UTC".into(), 3)
        } else if r.starts_with("2006") {
            (format!("{y:04}"), 4)
        } else if r.starts_with("002") {
            (format!("{yday:03}"), 3)
        } else if r.starts_with("01") {
            (format!("{m:02}"), 2)
        } else if r.starts_with("02") {
            (format!("{d:02}"), 2)
        } else if r.starts_with("03") {
            (format!("{h12:02}"), 2)
        } else if r.starts_with("04") {
            (format!("{min:02}"), 2)
        } else if r.starts_with("05") {
            (format!("{s:02}"), 2)
        } else if r.starts_with("06") {
            (format!("{:02}", y.rem_euclid(100)), 2)
        } else if r.starts_with("15") {
            (format!("{h:02}"), 2)
        } else if r.starts_with("__2") {
            (format!("{yday:>3}"), 3)
        } else if r.starts_with("_2") && !r.starts_with("_2006") {
            (format!("{d:>2}"), 2)
        } else if r.starts_with("PM") {
            ((if h >= 12 { "PM" } else { "AM" }).into(), 2)
        } else if r.starts_with("pm") {
            ((if h >= 12 { "pm" } else { "am" }).into(), 2)
        } else if let Some(z) = ["Z07:00:00", "Z070000", "Z07:00", "Z0700", "Z07"]
            .iter()
            .find(|z| r.starts_with(**z))
        {
            ("Z".into(), z.len())
        } else if let Some(z) = ["-07:00:00", "-070000", "-07:00", "-0700", "-07"]
            .iter()
            .find(|z| r.starts_with(**z))
        {
            let t = match *z {
                "-07:00:00" => "+00:00:00",
                "-070000" => "+000000",
                "-07:00" => "+00:00",
                "-0700" => "+0000",
                _ => "+00",
            };
            (t.into(), z.len())
        } else if (b[i] == b'.' || b[i] == b',') && matches!(b.get(i + 1), Some(b'0') | Some(b'9'))
        {
            let digit = b[i + 1];
            let mut j = i + 1;
            while j < b.len() && b[j] == digit {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                (char::from(b[i]).to_string(), 1)
            } else {
                let width = j - i - 1;
                let full = format!("{nanos:09}");
                let mut f = full[..width.min(9)].to_string();
                if digit == b'9' {
                    f = f.trim_end_matches('0').to_string();
                }
                let t = if f.is_empty() {
                    String::new()
                } else {
                    format!("{}{f}", char::from(b[i]))
                };
                (t, j - i)
            }
        } else if b[i] == b'1' {
            (m.to_string(), 1)
        } else if b[i] == b'2' {
            (d.to_string(), 1)
        } else if b[i] == b'3' {
            (h12.to_string(), 1)
        } else if b[i] == b'4' {
            (min.to_string(), 1)
        } else if b[i] == b'5' {
            (s.to_string(), 1)
        } else {
            let c = r.chars().next().unwrap_or(' ');
            (c.to_string(), c.len_utf8())
        };
        out.push_str(&text);
        i += n;
    }
    out
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
        // Byte escapes that leave invalid UTF-8: the raw bytes, quoted back
        // as Go's strconv.Quote does.
        let raw = unquote_bytes("\"a\\xc5z\"").unwrap().unwrap_err();
        assert_eq!(raw, b"a\xc5z");
        assert_eq!(go_quote_bytes(&raw), "\"a\\xc5z\"");
        assert_eq!(go_quote_bytes("é\n".as_bytes()), go_quote("é\n"));
        assert_eq!(unquote("\"a\\xc5z\"").unwrap(), "a\u{fffd}z");
    }

    #[test]
    fn go_layouts() {
        // 2023-11-14T22:13:20.120Z, a Tuesday, day 318.
        let ns = 1_700_000_000_120_000_000i128;
        assert_eq!(
            time_format(ns, "2006-01-02 15:04:05"),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            time_format(ns, "2006-01-02T15:04:05.000Z07:00"),
            "2023-11-14T22:13:20.120Z"
        );
        assert_eq!(
            time_format(ns, "Mon Jan _2 3:04PM MST"),
            "Tue Nov 14 10:13PM UTC"
        );
        assert_eq!(
            time_format(ns, "Monday, 2 January 06 -0700 .999 002"),
            "Tuesday, 14 November 23 +0000 .12 318"
        );
        assert_eq!(time_format(ns, "15h04"), "22h13");
    }

    #[test]
    fn go_v_is_shortest_g() {
        // `format_go_v` takes a shortcut through Rust's shortest formatting;
        // it must agree with the general `strconv_float(v, 'g', -1)`.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut vals = vec![
            0.0,
            -0.0,
            1e6,
            999_999.0,
            1e-4,
            9.9e-5,
            1e21,
            1e20,
            1_234_567.0,
            0.1,
            5e-324,
            -2.5e-7,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                vals.push(v);
            }
            vals.push((x % 100_000_000) as f64 / 1000.0);
        }
        for v in vals {
            assert_eq!(format_go_v(v), strconv_float(v, 'g', -1), "{v:e}");
        }
    }
}
