//! Go's `fmt` and `strconv` number and value formatting, as far as templates
//! reach it: Prometheus prints `$value` with `%v` and humanizes with `%.4g`,
//! and users write `printf` verbs, so every digit must match Go's output.

use super::exec::Value;

pub fn quote(s: &str) -> String {
    crate::model::gofmt::go_quote(s)
}

pub fn quote_rune(c: char) -> String {
    crate::model::gofmt::go_quote_rune(Some(c))
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
pub fn format_float(v: f64, verb: char, prec: i32) -> String {
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

/// Go's `%v` of a float64.
pub fn float_v(v: f64) -> String {
    format_float(v, 'g', -1)
}

/// Go's type name of a value, as it appears in `%!d(float64=1)` and errors.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Missing | Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Html(_) => "template.HTML",
        Value::Labels(_) => "map[string]string",
        Value::Map(_) => "map[string]interface {}",
        Value::Sample(_) => "*template.sample",
        Value::Vector(_) => "template.queryResult",
        Value::Time(_) => "*time.Time",
        Value::Duration(_) => "*time.Duration",
        Value::Data(_) => "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }",
        Value::Slice(_) => "[]interface {}",
        Value::Alerts(_) => "template.Alerts",
        Value::Kv(_) => "template.KV",
        Value::Struct(s) => s.type_name,
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

/// `fmt.Sprint` of one value (what `{{ x }}` writes).
pub fn sprint_value(v: &Value) -> String {
    match v {
        Value::Missing => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_v(*f),
        Value::Str(s) | Value::Html(s) => s.clone(),
        Value::Labels(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|l| format!("{}:{}", l.name, l.value))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", sprint_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Sample(s) => format!(
            "{{{} {}}}",
            sprint_value(&Value::Labels(std::rc::Rc::new(s.labels.clone()))),
            float_v(s.value)
        ),
        Value::Vector(v) => {
            let parts: Vec<String> = v
                .iter()
                .map(|s| sprint_value(&Value::Sample(std::rc::Rc::new(s.clone()))))
                .collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Time(ns) => time_string(*ns),
        Value::Duration(ns) => duration_string(*ns),
        Value::Data(s) => s.to_string(),
        Value::Slice(v) | Value::Alerts(v) => {
            let parts: Vec<String> = v.iter().map(sprint_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Kv(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|l| format!("{}:{}", l.name, l.value))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Struct(s) => {
            let parts: Vec<String> = s.fields.iter().map(|(_, v)| sprint_value(v)).collect();
            format!("{{{}}}", parts.join(" "))
        }
    }
}

fn is_string(v: &Value) -> bool {
    matches!(v, Value::Str(_) | Value::Html(_))
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !is_string(a) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&sprint_value(a));
    }
    out
}

/// `fmt.Sprintln(args...)`.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(sprint_value).collect();
    format!("{}\n", parts.join(" "))
}

#[derive(Default, Clone, Copy)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, f: &Flags, allow_zero: bool) -> String {
    let Some(w) = f.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if f.minus {
        return format!("{s}{}", " ".repeat(fill));
    }
    if f.zero && allow_zero {
        let (sign, rest) = match s.strip_prefix(['-', '+', ' ']) {
            Some(r) => (&s[..1], r),
            None => ("", s.as_str()),
        };
        return format!("{sign}{}{rest}", "0".repeat(fill));
    }
    format!("{}{s}", " ".repeat(fill))
}

fn bad_verb(verb: char, v: &Value, f: &Flags) -> String {
    match v {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        // Go prints the operand with %v and the verb's flags, width and precision.
        _ => format!("%!{verb}({}={})", type_name(v), fmt_one(v, 'v', f)),
    }
}

fn sign(s: String, f: &Flags, neg: bool) -> String {
    if neg {
        s
    } else if f.plus {
        format!("+{s}")
    } else if f.space {
        format!(" {s}")
    } else {
        s
    }
}

fn fmt_int(i: i64, verb: char, f: &Flags) -> Option<String> {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut body = match verb {
        'd' | 'v' => u.to_string(),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'o' => format!("{u:o}"),
        'b' => format!("{u:b}"),
        'c' => return Some(char::from_u32(i as u32).unwrap_or('\u{FFFD}').to_string()),
        'q' => return Some(quote_rune(char::from_u32(i as u32).unwrap_or('\u{FFFD}'))),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => return None,
        _ => return None,
    };
    if let Some(p) = f.prec {
        if body.len() < p {
            body = format!("{}{body}", "0".repeat(p - body.len()));
        }
        if p == 0 && u == 0 {
            body.clear();
        }
    }
    if f.sharp {
        match verb {
            'x' => body = format!("0x{body}"),
            'X' => body = format!("0X{body}"),
            'o' => body = format!("0{body}"),
            _ => {}
        }
    }
    let body = if neg { format!("-{body}") } else { body };
    Some(pad(sign(body, f, neg), f, f.prec.is_none()))
}

fn fmt_float(v: f64, verb: char, f: &Flags) -> Option<String> {
    let prec = f.prec.map(|p| p as i32);
    let s = match verb {
        'v' | 'g' | 'G' => format_float(v, if verb == 'G' { 'G' } else { 'g' }, prec.unwrap_or(-1)),
        'e' | 'E' => format_float(v, verb, prec.unwrap_or(6)),
        'f' | 'F' => format_float(v, 'f', prec.unwrap_or(6)),
        'x' | 'X' => hex_float(v, verb == 'X'),
        _ => return None,
    };
    if v.is_nan() {
        let s = if f.plus {
            "+NaN".to_string()
        } else if f.space {
            " NaN".into()
        } else {
            s
        };
        return Some(pad(s, f, false));
    }
    if v.is_infinite() {
        let s = if v > 0.0 && !f.plus {
            if f.space {
                " Inf".into()
            } else {
                "+Inf".into()
            }
        } else {
            s
        };
        return Some(pad(s, f, false));
    }
    Some(pad(sign(s, f, v.is_sign_negative()), f, true))
}

fn fmt_str(s: &str, verb: char, f: &Flags) -> Option<String> {
    let s: String = match f.prec {
        // Go truncates the operand to the precision for %s, %q and %x alike.
        Some(p) => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    let body = match verb {
        's' | 'v' => s,
        'q' => {
            if f.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                quote(&s)
            }
        }
        'x' | 'X' => {
            let sep = if f.space { " " } else { "" };
            let hex: Vec<String> = s
                .bytes()
                .map(|b| {
                    let h = if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    };
                    if f.sharp {
                        format!("0{verb}{h}")
                    } else {
                        h
                    }
                })
                .collect();
            hex.join(sep)
        }
        _ => return None,
    };
    // Go zero-pads strings too when asked (`%03s` is `00a`), sign or not.
    match f.width {
        Some(w) if f.zero && !f.minus && body.chars().count() < w => {
            Some(format!("{}{body}", "0".repeat(w - body.chars().count())))
        }
        _ => Some(pad(body, f, false)),
    }
}

fn fmt_one(v: &Value, verb: char, f: &Flags) -> String {
    if verb == 'T' {
        let t = match v {
            Value::Missing | Value::Nil => "<nil>",
            other => type_name(other),
        };
        return pad(t.to_string(), f, false);
    }
    let r = match v {
        Value::Int(i) => fmt_int(*i, verb, f),
        Value::Float(x) => fmt_float(*x, verb, f),
        Value::Str(s) | Value::Html(s) => fmt_str(s, verb, f),
        Value::Bool(b) if verb == 't' || verb == 'v' => Some(pad(b.to_string(), f, false)),
        Value::Missing | Value::Nil if verb == 'v' => Some(pad("<nil>".into(), f, false)),
        Value::Time(_) | Value::Duration(_) if matches!(verb, 'v' | 's' | 'q') => {
            fmt_str(&sprint_value(v), verb, f)
        }
        // fmt shows a pointer to a struct as `&{...}` (printing it as an
        // action dereferences it first, so `{{ . }}` has no `&`).
        Value::Sample(_) if verb == 'v' => Some(pad(format!("&{}", sprint_value(v)), f, false)),
        Value::Labels(_)
        | Value::Map(_)
        | Value::Vector(_)
        | Value::Data(_)
        | Value::Slice(_)
        | Value::Alerts(_)
        | Value::Kv(_)
        | Value::Struct(_)
            if verb == 'v' =>
        {
            Some(pad(sprint_value(v), f, false))
        }
        _ => None,
    };
    r.unwrap_or_else(|| bad_verb(verb, v, f))
}

/// `fmt.Sprintf(format, args...)` for the verbs templates use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut argi = 0usize;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut f = Flags::default();
        while let Some(&c) = it.peek() {
            match c {
                '-' => f.minus = true,
                '+' => f.plus = true,
                '#' => f.sharp = true,
                ' ' => f.space = true,
                '0' => f.zero = !f.minus,
                _ => break,
            }
            it.next();
        }
        let num = |it: &mut std::iter::Peekable<std::str::Chars<'_>>,
                   argi: &mut usize|
         -> Option<usize> {
            if it.peek() == Some(&'*') {
                it.next();
                let v = args.get(*argi);
                *argi += 1;
                return match v {
                    Some(Value::Int(i)) => Some((*i).clamp(0, 1_000_000) as usize),
                    _ => None,
                };
            }
            let mut n: Option<usize> = None;
            while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(1_000_000),
                );
                it.next();
            }
            n
        };
        f.width = num(&mut it, &mut argi);
        if it.peek() == Some(&'.') {
            it.next();
            f.prec = Some(num(&mut it, &mut argi).unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&fmt_one(v, verb, &f)),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let parts: Vec<String> = args[argi..]
            .iter()
            .map(|v| match v {
                Value::Missing | Value::Nil => "<nil>".to_string(),
                _ => format!("{}={}", type_name(v), sprint_value(v)),
            })
            .collect();
        out.push_str(&parts.join(", "));
        out.push(')');
    }
    out
}

/// Go's `%x` of a float64 (`strconv.FormatFloat(v, 'x', -1, 64)`): shortest
/// hexadecimal mantissa, binary exponent with at least two digits.
fn hex_float(v: f64, upper: bool) -> String {
    if !v.is_finite() {
        return format_float(v, 'g', -1);
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
mod time_format_tests {
    use super::time_format;

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
}
