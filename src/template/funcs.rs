//! Go's builtin template functions and Prometheus' template function map.

use super::exec::{State, Value};
use super::gofmt;
use super::QuerySample;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Parameter kinds, named after the Go parameter types.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum P {
    Any,
    Str,
    Sample,
    Vector,
}

impl P {
    pub fn go_name(self) -> &'static str {
        match self {
            P::Any => "interface {}",
            P::Str => "string",
            P::Sample => "*template.sample",
            P::Vector => "template.queryResult",
        }
    }
}

pub struct Spec {
    pub params: &'static [P],
    pub variadic: bool,
}

impl Spec {
    /// Kind of the i-th argument; variadic tails repeat `Any`.
    pub fn param(&self, i: usize) -> P {
        if self.variadic && i >= self.params.len() {
            return P::Any;
        }
        self.params.get(i).copied().unwrap_or(P::Any)
    }
}

const fn s(params: &'static [P], variadic: bool) -> Spec {
    Spec { params, variadic }
}

/// Signature of a function, or `None` when it is not defined.
pub fn spec(name: &str) -> Option<Spec> {
    use P::*;
    Some(match name {
        "and" | "or" => s(&[Any], true),
        "not" | "len" => s(&[Any], false),
        "index" => s(&[Any], true),
        "eq" => s(&[Any], true),
        "ne" | "lt" | "le" | "gt" | "ge" => s(&[Any, Any], false),
        "print" | "println" => s(&[], true),
        "printf" => s(&[Str], true),
        "urlquery" | "html" | "js" => s(&[], true),
        "query" => s(&[Str], false),
        "first" => s(&[Vector], false),
        "label" => s(&[Str, Sample], false),
        "value" | "strvalue" => s(&[Sample], false),
        "args" => s(&[], true),
        "join" => s(&[Str, Any], false),
        "stringSlice" => s(&[], true),
        "trimSpace" => s(&[Str], false),
        "reReplaceAll" => s(&[Str, Str, Str], false),
        "safeHtml" | "title" | "toUpper" | "toLower" | "graphLink" | "tableLink" | "stripPort"
        | "stripDomain" | "parseDuration" | "urlQueryEscape" => s(&[Str], false),
        "match" => s(&[Str, Str], false),
        "sortByLabel" => s(&[Str, Vector], false),
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" | "toTime" | "toDuration" => s(&[Any], false),
        "pathPrefix" | "externalURL" | "now" => s(&[], false),
        _ => return None,
    })
}

pub fn is_defined(name: &str) -> bool {
    spec(name).is_some() && !NOTIFY_ONLY.contains(&name)
}

/// Functions only Alertmanager's template map has.
const NOTIFY_ONLY: &[&str] = &["join", "stringSlice", "trimSpace"];

/// Alertmanager's function map (plus text/template's builtins).
pub fn is_notify_defined(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "len"
            | "index"
            | "eq"
            | "ne"
            | "lt"
            | "le"
            | "gt"
            | "ge"
            | "print"
            | "println"
            | "printf"
            | "urlquery"
            | "html"
            | "toUpper"
            | "toLower"
            | "title"
            | "trimSpace"
            | "join"
            | "match"
            | "safeHtml"
            | "reReplaceAll"
            | "stringSlice"
            | "humanizeDuration"
            | "urlQueryEscape"
    )
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Missing)
}

fn string(v: &Value) -> String {
    match v {
        Value::Str(s) | Value::Html(s) => s.clone(),
        other => gofmt::sprint_value(other),
    }
}

type F = Result<Value, String>;

pub fn call(st: &mut State<'_, '_>, name: &str, args: Vec<Value>) -> F {
    let a0 = arg(&args, 0);
    Ok(match name {
        "not" => Value::Bool(!a0.truth()),
        "len" => Value::Int(match a0 {
            Value::Str(s) | Value::Html(s) => s.len() as i64,
            Value::Labels(l) => l.len() as i64,
            Value::Map(m) => m.len() as i64,
            Value::Vector(v) => v.len() as i64,
            Value::Slice(v) | Value::Alerts(v) => v.len() as i64,
            Value::Kv(l) => l.len() as i64,
            Value::Missing | Value::Nil => return Err("len of nil pointer".into()),
            other => return Err(format!("len of type {}", gofmt::type_name(other))),
        }),
        "index" => index(&args)?,
        "eq" => Value::Bool(eq(a0, &args[1.min(args.len())..])?),
        "ne" => Value::Bool(!eq(a0, &args[1.min(args.len())..])?),
        "lt" => Value::Bool(lt(a0, arg(&args, 1))?),
        "le" => Value::Bool(lt(a0, arg(&args, 1))? || eq(a0, &args[1..])?),
        "gt" => Value::Bool(!(lt(a0, arg(&args, 1))? || eq(a0, &args[1..])?)),
        "ge" => Value::Bool(!lt(a0, arg(&args, 1))?),
        "print" => Value::Str(gofmt::sprint(&args)),
        "println" => Value::Str(gofmt::sprintln(&args)),
        "printf" => Value::Str(gofmt::sprintf(&string(a0), &args[1..])),
        "urlquery" => Value::Str(query_escape(&gofmt::sprint(&args))),
        "html" => Value::Str(
            gofmt::sprint(&args)
                .replace('&', "&amp;")
                .replace('\'', "&#39;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\0', "\u{FFFD}"),
        ),
        "js" => return Err("js is not supported".into()),
        "query" => {
            let q = string(a0);
            let Some(f) = st.ctx.query else {
                return Err("no query engine available".into());
            };
            Value::Vector(Rc::new(f(&q)?))
        }
        "first" => match a0 {
            Value::Vector(v) => match v.first() {
                Some(s) => Value::Sample(Rc::new(s.clone())),
                None => return Err("first() called on vector with no elements".into()),
            },
            _ => return Err("first() called on vector with no elements".into()),
        },
        "label" => match arg(&args, 1) {
            Value::Sample(s) => Value::Str(s.labels.get(&string(a0)).unwrap_or("").to_string()),
            _ => {
                return Err(
                    "runtime error: invalid memory address or nil pointer dereference".into(),
                )
            }
        },
        "value" => match a0 {
            Value::Sample(s) => Value::Float(s.value),
            _ => {
                return Err(
                    "runtime error: invalid memory address or nil pointer dereference".into(),
                )
            }
        },
        "strvalue" => match a0 {
            Value::Sample(s) => Value::Str(s.labels.get("__value__").unwrap_or("").to_string()),
            _ => {
                return Err(
                    "runtime error: invalid memory address or nil pointer dereference".into(),
                )
            }
        },
        "args" => {
            let m: BTreeMap<String, Value> = args
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect();
            Value::Map(Rc::new(m))
        }
        "reReplaceAll" => {
            let re = compile(&string(a0))?;
            Value::Str(
                re.replace_all(&string(arg(&args, 2)), string(arg(&args, 1)).as_str())
                    .into_owned(),
            )
        }
        "match" => {
            let p = string(a0);
            let re = regex::Regex::new(&crate::config::goregex::translate(&p))
                .map_err(|e| go_re_err(&p, &e))?;
            Value::Bool(re.is_match(&string(arg(&args, 1))))
        }
        "safeHtml" => Value::Html(string(a0)),
        "trimSpace" => Value::Str(string(a0).trim().to_string()),
        "stringSlice" => Value::Slice(Rc::new(
            args.iter().map(|v| Value::Str(string(v))).collect(),
        )),
        // Alertmanager's `join` takes the separator first, so that
        // `{{ .Names | join "," }}` pipes the slice in last.
        "join" => match arg(&args, 1) {
            Value::Slice(v) => {
                Value::Str(v.iter().map(string).collect::<Vec<_>>().join(&string(a0)))
            }
            Value::Missing | Value::Nil => Value::Str(String::new()),
            other => {
                return Err(format!(
                    "wrong type for value; expected []string; got {}",
                    gofmt::type_name(other)
                ))
            }
        },
        "title" => Value::Str(title(&string(a0))),
        "toUpper" => Value::Str(string(a0).to_uppercase()),
        "toLower" => Value::Str(string(a0).to_lowercase()),
        "graphLink" => Value::Str(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(&string(a0))
        )),
        "tableLink" => Value::Str(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(&string(a0))
        )),
        "urlQueryEscape" => Value::Str(query_escape(&string(a0))),
        "sortByLabel" => {
            let l = string(a0);
            let mut v: Vec<QuerySample> = match arg(&args, 1) {
                Value::Vector(v) => v.as_ref().clone(),
                _ => vec![],
            };
            v.sort_by(|x, y| {
                x.labels
                    .get(&l)
                    .unwrap_or("")
                    .cmp(y.labels.get(&l).unwrap_or(""))
            });
            Value::Vector(Rc::new(v))
        }
        "humanize" => Value::Str(humanize(to_float(a0)?)),
        "humanize1024" => Value::Str(humanize1024(to_float(a0)?)),
        "humanizeDuration" => Value::Str(humanize_duration(to_float(a0)?)),
        "humanizePercentage" => Value::Str(format!("{}%", g4(to_float(a0)? * 100.0))),
        "humanizeTimestamp" => {
            let v = to_float(a0)?;
            if !v.is_finite() {
                Value::Str(g4(v))
            } else {
                Value::Str(gofmt::time_string(float_to_time(v)?))
            }
        }
        "toTime" => {
            let v = to_float(a0)?;
            if !v.is_finite() {
                return Err("value is NaN or Inf".into());
            }
            Value::Time(float_to_time(v)?)
        }
        "toDuration" => {
            let v = to_float(a0)?;
            if !v.is_finite() {
                return Err("value is NaN or Inf".into());
            }
            let ns = v * 1e9;
            if ns >= i64::MAX as f64 || ns < i64::MIN as f64 {
                return Err(format!(
                    "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
                    gofmt::float_v(v)
                ));
            }
            Value::Duration(((ns as i64) / 1_000_000) * 1_000_000)
        }
        "pathPrefix" => Value::Str(url_path(st.ctx.external_url)),
        "externalURL" => Value::Str(st.ctx.external_url.to_string()),
        "parseDuration" => {
            let d = crate::config::parse_duration(&string(a0))?;
            Value::Float(d.as_secs_f64())
        }
        "stripPort" => Value::Str(strip_port(&string(a0))),
        "stripDomain" => Value::Str(strip_domain(&string(a0))),
        "now" => Value::Float(st.ctx.now_ms as f64 / 1000.0),
        other => return Err(format!("function {other:?} not implemented")),
    })
}

/// Go's `regexp/syntax` error text for the common mistakes, from the
/// `regex` crate's error (whose wording differs).
fn go_re_err(p: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or("").trim().to_string();
    let code = if text.contains("unclosed group") {
        format!("missing closing ): {}", backquote(p))
    } else if text.contains("unopened group") {
        format!("unexpected ): {}", backquote(p))
    } else if text.contains("unclosed character class") {
        let from = p.rfind('[').map(|i| &p[i..]).unwrap_or(p);
        format!("missing closing ]: {}", backquote(from))
    } else if text.contains("repetition operator missing expression") {
        let op = p
            .chars()
            .find(|c| matches!(c, '*' | '+' | '?'))
            .unwrap_or('*');
        format!(
            "missing argument to repetition operator: {}",
            backquote(&op.to_string())
        )
    } else {
        last
    };
    format!("error parsing regexp: {code}")
}

/// Go's `regexp` quoting: backquoted when possible.
fn backquote(s: &str) -> String {
    if s.contains('`') || s.chars().any(|c| c.is_control() && c != '\t') {
        gofmt::quote(s)
    } else {
        format!("`{s}`")
    }
}

fn compile(p: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&crate::config::goregex::translate(p))
        .map_err(|e| format!("regexp: Compile({}): {}", backquote(p), go_re_err(p, &e)))
}

/// Prometheus' `convertToFloat`.
pub fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float(s),
        Value::Duration(ns) => Ok(*ns as f64 / 1e9),
        Value::Missing | Value::Nil => Err("can't convert <nil> to float".into()),
        other => Err(format!(
            "can't convert {} to float",
            gofmt::type_name(other)
        )),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` including its error text.
pub fn parse_float(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let ok_chars = body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
        || matches!(body, "inf" | "infinity" | "nan");
    let parsed = if ok_chars && !body.is_empty() && lower.matches(['+', '-']).count() <= 2 {
        s.parse::<f64>().ok()
    } else {
        None
    };
    match parsed {
        Some(v) if v.is_infinite() && !body.starts_with("inf") => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            gofmt::quote(s)
        )),
        Some(v) => Ok(v),
        None => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            gofmt::quote(s)
        )),
    }
}

fn g4(v: f64) -> String {
    gofmt::format_float(v, 'g', 4)
}

pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `floatToTime`: seconds to a UTC time with millisecond
/// precision (it goes through `model.Time`), returned as nanoseconds.
fn float_to_time(v: f64) -> Result<i128, String> {
    let ts = v * 1e9;
    if ts >= i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::float_v(v)
        ));
    }
    let ms = (ts as i64) / 1_000_000;
    Ok(ms as i128 * 1_000_000)
}

/// Go's `strings.Title`: upper-cases the first letter of each word, words
/// being separated by anything but letters, digits, `_` and `'`.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        };
    }
    out
}

pub use crate::model::url::query_escape;

fn url_path(u: &str) -> String {
    let rest = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u.split(['?', '#']).next().unwrap_or("").to_string(),
    };
    match rest.find('/') {
        Some(i) => rest[i..].split(['?', '#']).next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// Go's `net.SplitHostPort` host part, or the input when it has no port.
fn split_host_port(s: &str) -> Option<(String, String)> {
    let i = s.rfind(':')?;
    let (host, port) = (&s[..i], &s[i + 1..]);
    if let Some(h) = host.strip_prefix('[') {
        let h = h.strip_suffix(']')?;
        if h.contains(['[', ']']) {
            return None;
        }
        return Some((h.to_string(), port.to_string()));
    }
    if host.contains([':', '[', ']']) || port.contains([']', '[']) {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

pub fn strip_port(s: &str) -> String {
    match split_host_port(s) {
        Some((h, _)) => h,
        None => s.to_string(),
    }
}

pub fn strip_domain(s: &str) -> String {
    let (host, port) = match split_host_port(s) {
        Some((h, p)) => (h, Some(p)),
        None => (s.to_string(), None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let short = host.split('.').next().unwrap_or("").to_string();
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short,
    }
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Html(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for b in rest {
        let (ka, kb) = (kind(a), kind(b));
        let t = if ka != kb {
            let valid = |v: &Value| !matches!(v, Value::Missing);
            if valid(a) && valid(b) {
                return Err("incompatible types for comparison".into());
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x == y,
                (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
                (Value::Sample(x), Value::Sample(y)) => Rc::ptr_eq(x, y),
                (Value::Labels(_) | Value::Map(_) | Value::Vector(_), _) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        gofmt::sprint_value(b),
                        gofmt::type_name(b)
                    ))
                }
                _ => false,
            }
        };
        if t {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    if ka == Kind::Other || kb == Kind::Other {
        return Err("invalid type for comparison".into());
    }
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x < y,
        _ => return Err("invalid type for comparison".into()),
    })
}

fn index(args: &[Value]) -> F {
    let mut item = arg(args, 0).clone();
    for ix in args.iter().skip(1) {
        item = match (&item, ix) {
            (Value::Labels(l) | Value::Kv(l), Value::Str(k)) => {
                Value::Str(l.get(k).unwrap_or("").to_string())
            }
            (Value::Slice(v) | Value::Alerts(v), Value::Int(i)) => {
                match usize::try_from(*i).ok().and_then(|i| v.get(i)) {
                    Some(x) => x.clone(),
                    None => return Err(format!("index out of range: {i}")),
                }
            }
            (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
            (Value::Labels(_) | Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    gofmt::type_name(other)
                ))
            }
            (Value::Vector(v), Value::Int(i)) => {
                match usize::try_from(*i).ok().and_then(|i| v.get(i)) {
                    Some(s) => Value::Sample(Rc::new(s.clone())),
                    None => return Err(format!("index out of range: {i}")),
                }
            }
            (Value::Str(s), Value::Int(i)) => {
                match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                    Some(b) => Value::Int(*b as i64),
                    None => return Err(format!("index out of range: {i}")),
                }
            }
            (Value::Vector(_) | Value::Str(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    gofmt::type_name(other)
                ))
            }
            (Value::Missing | Value::Nil, _) => return Err("index of untyped nil".into()),
            (other, _) => {
                return Err(format!(
                    "can't index item of type {}",
                    gofmt::type_name(other)
                ))
            }
        };
    }
    Ok(item)
}
