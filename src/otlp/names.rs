//! OTLP metric and attribute names to Prometheus names, as Prometheus 3's
//! OTLP translation does (the `otlptranslator` rules): unit and type
//! suffixes (`_seconds`, `_per_second`, `_total`, `_ratio`), escaping of
//! characters outside the legacy sets to `_` unless the strategy keeps
//! UTF-8, `key_` before a label starting with a digit.

use super::config::TranslationStrategy;

/// The metric kinds that choose suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    MonotonicCounter,
    NonMonotonicCounter,
    Histogram,
    ExponentialHistogram,
    Summary,
}

/// A name that cannot be used, with the reason in Prometheus' words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The main and per-unit suffixes of a UCUM unit (`"By/s"` →
/// `("bytes", "per_second")`); annotations in braces give no suffix.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if !main.is_empty() && !main.contains(['{', '}']) {
        unit_word(main).to_string()
    } else {
        String::new()
    };
    let per = match parts.next() {
        Some(p) if !p.is_empty() => {
            let p = p.trim();
            if !p.is_empty() && !p.contains(['{', '}']) {
                let w = per_unit_word(p);
                if w.is_empty() {
                    String::new()
                } else {
                    format!("per_{w}")
                }
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    (main, per)
}

/// `[a-zA-Z0-9:]`: what survives in an escaped metric name token.
fn metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Every character outside [`metric_char`] to `_`, runs of `_` collapsed,
/// a leading `_` dropped.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(s) => s.to_string(),
        None => out,
    }
}

/// The Prometheus metric name for an OTLP metric.
pub fn metric_name(
    name: &str,
    unit: &str,
    kind: Kind,
    strategy: TranslationStrategy,
) -> Result<String, NameError> {
    let out = if !strategy.escapes() {
        utf8_metric_name(name, unit, kind, strategy.adds_suffixes())
    } else if strategy.adds_suffixes() {
        escaped_with_suffixes(name, unit, kind)
    } else {
        let mut s = name
            .split(|c: char| !metric_char(c) && c != '_')
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            s.insert(0, '_');
        }
        s
    };
    if out.is_empty() {
        return Err(NameError(format!(
            "normalization for metric {name:?} resulted in empty name"
        )));
    }
    if strategy.escapes() && out != name && out.chars().all(|c| c == '_') {
        return Err(NameError(format!(
            "normalization for metric {name:?} resulted in invalid name {out:?}"
        )));
    }
    Ok(out)
}

fn escaped_with_suffixes(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (main, per) = unit_suffixes(unit);
    let mut main = clean_unit(&main);
    let mut per = clean_unit(&per);
    if tokens.contains(&main) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if let Some(p) = per.strip_suffix('_') {
            per = p.to_string();
        }
        if tokens.contains(&per) {
            per.clear();
        }
    }
    if !per.is_empty() {
        if let Some(m) = main.strip_suffix('_') {
            main = m.to_string();
        }
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == Kind::MonotonicCounter {
        tokens.retain(|t| t != "total");
        tokens.push("total".into());
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".into());
    }
    let mut s = tokens.join("_");
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// `name` without `_suffix` at its end (only when something is left).
fn trim_suffix<'a>(name: &'a str, suffix: &str) -> &'a str {
    if name.len() > suffix.len() + 1 && name.ends_with(suffix) {
        &name[..name.len() - suffix.len() - 1]
    } else {
        name
    }
}

fn utf8_metric_name(name: &str, unit: &str, kind: Kind, suffixes: bool) -> String {
    if !suffixes {
        return name.to_string();
    }
    let ratio = unit == "1" && kind == Kind::Gauge;
    let total = kind == Kind::MonotonicCounter;
    let mut n = name;
    if ratio {
        n = trim_suffix(n, "ratio");
    }
    if total {
        n = trim_suffix(n, "total");
    }
    let (main, per) = unit_suffixes(unit);
    if !per.is_empty() {
        n = trim_suffix(n, &per);
    }
    let mut out = n.to_string();
    if !main.is_empty() && !out.ends_with(&main) {
        out.push('_');
        out.push_str(&main);
    }
    if !per.is_empty() {
        out.push('_');
        out.push_str(&per);
    }
    if total {
        out.push_str("_total");
    }
    if ratio {
        out.push_str("_ratio");
    }
    out
}

/// How attribute keys become label names when escaping (Prometheus'
/// `otlp.label_name_underscore_sanitization` and
/// `otlp.label_name_preserve_multiple_underscores`, both on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelOptions {
    pub strategy: TranslationStrategy,
    /// `key` before a name starting with a single `_`.
    pub underscore_sanitization: bool,
    /// Runs of `_` kept (else collapsed to one, `__x__` kept reserved).
    pub preserve_multiple_underscores: bool,
}

impl From<TranslationStrategy> for LabelOptions {
    fn from(strategy: TranslationStrategy) -> Self {
        LabelOptions {
            strategy,
            underscore_sanitization: true,
            preserve_multiple_underscores: true,
        }
    }
}

fn underscores_only(s: &str) -> bool {
    s.chars().all(|c| c == '_')
}

fn single_underscore(s: &str) -> bool {
    s.starts_with('_') && !s.starts_with("__")
}

/// `__x__` (at least four bytes): its inner part.
fn reserved_inner(s: &str) -> Option<&str> {
    (s.len() >= 4 && s.starts_with("__") && s.ends_with("__")).then(|| &s[2..s.len() - 2])
}

/// Already a valid escaped label name: nothing to change.
fn label_fast_path(key: &str, o: LabelOptions) -> bool {
    if key.starts_with(|c: char| c.is_ascii_digit())
        || (o.underscore_sanitization && single_underscore(key))
    {
        return false;
    }
    let body = match reserved_inner(key) {
        Some(inner) if !o.preserve_multiple_underscores => inner,
        _ => key,
    };
    let mut prev_underscore = false;
    let mut other = false;
    for b in body.bytes() {
        if b == b'_' {
            if !o.preserve_multiple_underscores && prev_underscore {
                return false;
            }
            prev_underscore = true;
        } else if b.is_ascii_alphanumeric() {
            prev_underscore = false;
            other = true;
        } else {
            return false;
        }
    }
    other
}

fn sanitize_label(key: &str, preserve_multiple: bool) -> String {
    if preserve_multiple {
        return key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
    }
    let (reserved, body) = match reserved_inner(key) {
        Some(inner) => (true, inner),
        None => (false, key),
    };
    let mut out = String::with_capacity(key.len());
    if reserved {
        out.push_str("__");
    }
    let mut prev_underscore = false;
    for c in body.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_underscore = false;
        } else if !prev_underscore {
            out.push('_');
            prev_underscore = true;
        }
    }
    if reserved {
        out.push_str("__");
    }
    out
}

/// The Prometheus label name for an attribute key: as is when the strategy
/// keeps UTF-8, else escaped to `[a-zA-Z0-9_]` with `key_` before a leading
/// digit (and `key` before a single leading `_`).
pub fn label_name(key: &str, opts: impl Into<LabelOptions>) -> Result<String, NameError> {
    let o = opts.into();
    if key.is_empty() {
        return Err(NameError("label name is empty".into()));
    }
    if !o.strategy.escapes() {
        if underscores_only(key) {
            return Err(NameError(format!(
                "label name {key:?} contains only underscores"
            )));
        }
        return Ok(key.to_string());
    }
    if label_fast_path(key, o) {
        return Ok(key.to_string());
    }
    let mut out = sanitize_label(key, o.preserve_multiple_underscores);
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if o.underscore_sanitization && single_underscore(&out) {
        out.insert_str(0, "key");
    }
    if underscores_only(&out) {
        return Err(NameError(format!(
            "normalization for label name {key:?} resulted in invalid name {out:?}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TranslationStrategy::*;

    fn m(name: &str, unit: &str, kind: Kind) -> String {
        metric_name(name, unit, kind, UnderscoreEscapingWithSuffixes).unwrap()
    }

    #[test]
    fn escaped_names_get_unit_and_type_suffixes() {
        assert_eq!(
            m("http.server.duration", "s", Kind::Histogram),
            "http_server_duration_seconds"
        );
        assert_eq!(m("requests", "1", Kind::MonotonicCounter), "requests_total");
        assert_eq!(
            m("requests_total", "", Kind::MonotonicCounter),
            "requests_total"
        );
        assert_eq!(
            m("system.cpu.utilization", "1", Kind::Gauge),
            "system_cpu_utilization_ratio"
        );
        assert_eq!(
            m("net.io", "By/s", Kind::NonMonotonicCounter),
            "net_io_bytes_per_second"
        );
        assert_eq!(m("queue.size", "{items}", Kind::Gauge), "queue_size");
        assert_eq!(m("latency_seconds", "s", Kind::Gauge), "latency_seconds");
        assert_eq!(
            m("2xx.count", "", Kind::MonotonicCounter),
            "_2xx_count_total"
        );
        assert_eq!(m("a..b__c", "ms", Kind::Summary), "a_b_c_milliseconds");
        assert_eq!(m("temp", "Cel", Kind::Gauge), "temp_celsius");
        assert_eq!(m("x", "foo/bar", Kind::Gauge), "x_foo_per_bar");
        assert_eq!(m("mem", "MiBy", Kind::Gauge), "mem_mebibytes");
    }

    #[test]
    fn utf8_strategies_keep_the_name() {
        let u = |n, unit, k| metric_name(n, unit, k, NoUTF8EscapingWithSuffixes).unwrap();
        assert_eq!(
            u("http.server.duration", "s", Kind::Histogram),
            "http.server.duration_seconds"
        );
        assert_eq!(
            u("requests.total", "", Kind::MonotonicCounter),
            "requests_total"
        );
        assert_eq!(u("cpu.ratio", "1", Kind::Gauge), "cpu_ratio");
        assert_eq!(
            u("net.io", "By/s", Kind::MonotonicCounter),
            "net.io_bytes_per_second_total"
        );
        assert_eq!(
            metric_name("http.server.duration", "s", Kind::Histogram, NoTranslation).unwrap(),
            "http.server.duration"
        );
        assert_eq!(
            metric_name(
                "a.b",
                "s",
                Kind::MonotonicCounter,
                UnderscoreEscapingWithoutSuffixes
            )
            .unwrap(),
            "a_b"
        );
    }

    #[test]
    fn unusable_metric_names_are_errors() {
        let e = metric_name("...", "", Kind::Gauge, UnderscoreEscapingWithSuffixes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "normalization for metric \"...\" resulted in empty name"
        );
        let e = metric_name("", "", Kind::Gauge, NoTranslation).unwrap_err();
        assert_eq!(
            e.to_string(),
            "normalization for metric \"\" resulted in empty name"
        );
    }

    #[test]
    fn label_names_escape_as_prometheus_does() {
        let l = |k| label_name(k, UnderscoreEscapingWithSuffixes).unwrap();
        assert_eq!(l("http.method"), "http_method");
        assert_eq!(l("host.name"), "host_name");
        assert_eq!(l("a..b"), "a__b");
        assert_eq!(l("0day"), "key_0day");
        assert_eq!(l("_private"), "key_private");
        assert_eq!(l("__reserved__"), "__reserved__");
        assert_eq!(l("ünicode"), "key_nicode");
        assert_eq!(l("le"), "le");
        assert_eq!(
            label_name("___", UnderscoreEscapingWithSuffixes)
                .unwrap_err()
                .to_string(),
            "normalization for label name \"___\" resulted in invalid name \"___\""
        );
        assert_eq!(
            label_name("http.method", NoUTF8EscapingWithSuffixes).unwrap(),
            "http.method"
        );
        assert_eq!(
            label_name("", NoTranslation).unwrap_err().to_string(),
            "label name is empty"
        );
        let plain = LabelOptions {
            strategy: UnderscoreEscapingWithSuffixes,
            underscore_sanitization: false,
            preserve_multiple_underscores: false,
        };
        assert_eq!(label_name("a..b", plain).unwrap(), "a_b");
        assert_eq!(label_name("_private", plain).unwrap(), "_private");
        assert_eq!(label_name("__a..b__", plain).unwrap(), "__a_b__");
        assert_eq!(label_name("0x", plain).unwrap(), "key_0x");
    }
}
