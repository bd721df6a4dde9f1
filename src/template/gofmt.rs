//! Go's `fmt` and `strconv` number and value formatting, as far as templates
//! reach it: Prometheus prints `$value` with `%v` and humanizes with `%.4g`,
//! and users write `printf` verbs, so every digit must match Go's output.

use super::exec::Value;
use crate::model::gofmt::hex_float;
pub use crate::model::gofmt::{
    duration_string, format_go_v as float_v, strconv_float as format_float, time_format,
    time_string,
};

pub fn quote(s: &str) -> String {
    crate::model::gofmt::go_quote(s)
}

pub fn quote_rune(c: char) -> String {
    crate::model::gofmt::go_quote_rune(Some(c))
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
