//! Unit tests per function and construct. Expected strings follow Go's
//! documented fmt/strconv/text-template behaviour and Prometheus'
//! template.go semantics (the promtool oracle lives in tests/it/rules_template.rs).

use super::*;

fn labels() -> Labels {
    Labels::from_pairs([
        ("__name__", "up"),
        ("instance", "db-1.example.org:9100"),
        ("job", "node"),
    ])
}

fn with_ctx<T>(value: f64, f: impl FnOnce(&TemplateContext<'_>) -> T) -> T {
    let l = labels();
    let ext = Labels::from_pairs([("cluster", "eu")]);
    let q = |q: &str| -> Result<Vec<QuerySample>, String> {
        if q == "fail" {
            return Err("bad query".into());
        }
        if q == "none" {
            return Ok(vec![]);
        }
        Ok(vec![
            QuerySample {
                labels: Labels::from_pairs([("instance", "b"), ("k", "2")]),
                value: 2048.0,
            },
            QuerySample {
                labels: Labels::from_pairs([("instance", "a"), ("k", "1")]),
                value: 0.5,
            },
        ])
    };
    let ctx = TemplateContext {
        labels: &l,
        external_labels: &ext,
        external_url: "https://prom.example.org/prefix",
        value,
        now_ms: 1_700_000_000_500,
        query: Some(&q),
    };
    f(&ctx)
}

fn r(text: &str, value: f64) -> String {
    with_ctx(value, |c| render(text, c)).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    with_ctx(1.0, |c| render(text, c))
        .expect_err(text)
        .to_string()
}

#[test]
fn value_prints_like_go_v() {
    assert_eq!(r("{{ $value }}", 1e6), "1e+06");
    assert_eq!(r("{{ $value }}", 0.1), "0.1");
    assert_eq!(r("{{ $value }}", 3.0), "3");
    assert_eq!(r("{{ $value }}", f64::NAN), "NaN");
    assert_eq!(r("{{ $value }}", f64::INFINITY), "+Inf");
    assert_eq!(r("{{ .Value }}", 123456.0), "123456");
    assert_eq!(r("{{ $value }}", 1.5e-7), "1.5e-07");
}

#[test]
fn labels_and_external_data() {
    assert_eq!(
        r("{{ $labels.job }}/{{ .Labels.instance }}", 0.0),
        "node/db-1.example.org:9100"
    );
    assert_eq!(r("[{{ $labels.missing }}]", 0.0), "[]");
    assert_eq!(
        r("{{ $externalLabels.cluster }} {{ $externalURL }}", 0.0),
        "eu https://prom.example.org/prefix"
    );
    assert_eq!(
        r("{{ .ExternalURL }}", 0.0),
        "https://prom.example.org/prefix"
    );
    assert_eq!(
        r("{{ externalURL }} {{ pathPrefix }}", 0.0),
        "https://prom.example.org/prefix /prefix"
    );
}

#[test]
fn humanize_family() {
    assert_eq!(r("{{ humanize 1234567.0 }}", 0.0), "1.235M");
    assert_eq!(r("{{ humanize 0.00123 }}", 0.0), "1.23m");
    assert_eq!(r("{{ humanize1024 1536 }}", 0.0), "1.5ki");
    assert_eq!(r("{{ humanizeDuration 3725 }}", 0.0), "1h 2m 5s");
    assert_eq!(r("{{ humanizeDuration 0.25 }}", 0.0), "250ms");
    assert_eq!(r("{{ humanizePercentage 0.5 }}", 0.0), "50%");
    assert_eq!(
        r("{{ humanizeTimestamp 1700000000 }}", 0.0),
        "2023-11-14 22:13:20 +0000 UTC"
    );
    assert_eq!(
        r("{{ toTime 1.5 }}", 0.0),
        "1970-01-01 00:00:01.5 +0000 UTC"
    );
}

#[test]
fn printf_verbs() {
    assert_eq!(
        r(
            r#"{{ printf "%.2f|%5.1f|%-4d|%04d" 3.14159 2.0 7 42 }}"#,
            0.0
        ),
        "3.14|  2.0|7   |0042"
    );
    assert_eq!(
        r(r#"{{ printf "%s %q %v %x %X" "a" "b" 1 255 "hi" }}"#, 0.0),
        "a \"b\" 1 ff 6869"
    );
    assert_eq!(
        r(r#"{{ printf "%e %E %g" 1234.5 0.5 0.00001 }}"#, 0.0),
        "1.234500e+03 5.000000E-01 1e-05"
    );
    assert_eq!(r(r#"{{ printf "%d" "x" }}"#, 0.0), "%!d(string=x)");
    assert_eq!(r(r#"{{ printf "%d %d" 1 }}"#, 0.0), "1 %!d(MISSING)");
    assert_eq!(r(r#"{{ printf "%d" 1 2 }}"#, 0.0), "1%!(EXTRA int=2)");
    assert_eq!(
        r(r#"{{ printf "%.3g|%g|%v" 1234.5678 100000.0 1e21 }}"#, 0.0),
        "1.23e+03|100000|1e+21"
    );
    assert_eq!(
        r(r#"{{ printf "%+.1f|% d|%x" -0.05 5 -255 }}"#, 0.0),
        "-0.1| 5|-ff"
    );
}

#[test]
fn string_functions() {
    assert_eq!(
        r(
            r#"{{ title "hello wORLD-x" }} {{ toUpper "ab" }} {{ toLower "AB" }}"#,
            0.0
        ),
        "Hello WORLD-X AB ab"
    );
    assert_eq!(
        r(r#"{{ reReplaceAll "(a+)(b)" "${2}$1" "aab ab" }}"#, 0.0),
        "baa ba"
    );
    assert_eq!(
        r(r#"{{ match "^a.c$" "abc" }} {{ match "^a" "b" }}"#, 0.0),
        "true false"
    );
    assert_eq!(
        r(
            r#"{{ stripPort "h:1" }} {{ stripPort "[::1]:2" }} {{ stripDomain "a.b.c:3" }}"#,
            0.0
        ),
        "h ::1 a:3"
    );
    assert_eq!(
        r(r#"{{ graphLink "up == 0" }}"#, 0.0),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
    assert_eq!(
        r(r#"{{ tableLink "a/b" }}"#, 0.0),
        "/graph?g0.expr=a%2Fb&g0.tab=1"
    );
    assert_eq!(r(r#"{{ safeHtml "<b>" }}"#, 0.0), "<b>");
    assert_eq!(r(r#"{{ parseDuration "1m30s" }}"#, 0.0), "90");
}

#[test]
fn newer_prometheus_functions() {
    // Present in Prometheus 3.x (not in promtool 2.42, so not in the oracle).
    assert_eq!(r(r#"{{ urlQueryEscape "a b&c/d" }}"#, 0.0), "a+b%26c%2Fd");
    assert_eq!(
        r("{{ toDuration 90 }} {{ toDuration 0.25 }}", 0.0),
        "1m30s 250ms"
    );
    assert_eq!(r("{{ now }}", 0.0), "1.7000000005e+09");
    assert_eq!(
        r("{{ now | humanizeTimestamp }}", 0.0),
        "2023-11-14 22:13:20.5 +0000 UTC"
    );
}

#[test]
fn query_functions() {
    assert_eq!(
        r(
            r#"{{ with query "x" }}{{ . | first | value | humanize1024 }}{{ end }}"#,
            0.0
        ),
        "2ki"
    );
    assert_eq!(
        r(
            r#"{{ range query "x" }}{{ .Labels.instance }}={{ .Value }};{{ end }}"#,
            0.0
        ),
        "b=2048;a=0.5;"
    );
    assert_eq!(
        r(
            r#"{{ range sortByLabel "instance" (query "x") }}{{ label "k" . }}{{ end }}"#,
            0.0
        ),
        "12"
    );
    assert_eq!(
        r(r#"{{ range query "none" }}x{{ else }}empty{{ end }}"#, 0.0),
        "empty"
    );
    assert!(err(r#"{{ query "fail" }}"#).ends_with("error calling query: bad query"));
    assert!(
        err(r#"{{ query "none" | first }}"#).ends_with("first() called on vector with no elements")
    );
    let l = labels();
    let ctx = TemplateContext {
        labels: &l,
        external_labels: &l,
        external_url: "",
        value: 0.0,
        now_ms: 0,
        query: None,
    };
    assert!(render(r#"{{ query "x" }}"#, &ctx).is_err());
}

#[test]
fn control_structures() {
    let t = "{{ if lt $value 0.05 }}crit{{ else if lt $value 0.5 }}warn{{ else }}ok{{ end }}";
    assert_eq!(r(t, 0.01), "crit");
    assert_eq!(r(t, 0.1), "warn");
    assert_eq!(r(t, 1.0), "ok");
    assert_eq!(
        r(
            "{{ with $labels.job }}<{{ . }}>{{ else }}none{{ end }}",
            0.0
        ),
        "<node>"
    );
    assert_eq!(
        r("{{ with $labels.nope }}x{{ else }}none{{ end }}", 0.0),
        "none"
    );
    assert_eq!(
        r("{{ range $k, $v := $labels }}{{ $k }};{{ end }}", 0.0),
        "__name__;instance;job;"
    );
    assert_eq!(
        r("{{ range $k, $v := $labels }}{{ if eq $k \"job\" }}{{ break }}{{ end }}{{ if eq $k \"__name__\" }}{{ continue }}{{ end }}{{ $k }}{{ end }}", 0.0),
        "instance"
    );
    assert_eq!(
        r(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            0.0
        ),
        "2"
    );
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(
        r(
            r#"{{ eq 1 1 }} {{ ne "a" "b" }} {{ lt 1.5 2.0 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1 2 }}"#,
            0.0
        ),
        "true true true true true false"
    );
    assert_eq!(r(r#"{{ eq $labels.job "x" "node" }}"#, 0.0), "true");
    assert!(
        err("{{ lt $value 1 }}").ends_with("error calling lt: incompatible types for comparison")
    );
    assert_eq!(
        r(r#"{{ and 1 0 }} {{ or 0 "x" }} {{ not "" }}"#, 0.0),
        "0 x true"
    );
    // `and` stops at the first false value, so the failing call never runs.
    assert_eq!(r(r#"{{ and false (humanize "x") }}"#, 0.0), "false");
}

#[test]
fn builtins() {
    assert_eq!(
        r(
            r#"{{ len $labels }} {{ len "abc" }} {{ index $labels "job" }}"#,
            0.0
        ),
        "3 3 node"
    );
    assert_eq!(
        r(r#"{{ print 1 2 "a" 3 }}|{{ println 1 "b" }}"#, 0.0),
        "1 2a3|1 b\n"
    );
    assert_eq!(r(r#"{{ (args 1 "x").arg1 }}"#, 0.0), "x");
    assert_eq!(
        r(r#"{{ html "<a&b>" }} {{ urlquery "a b" }}"#, 0.0),
        "&lt;a&amp;b&gt; a+b"
    );
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(r("a  {{- 1 -}}  b", 0.0), "a1b");
    assert_eq!(r("a {{/* note */}} b", 0.0), "a  b");
    assert_eq!(r("a {{- /* note */ -}} b", 0.0), "ab");
    assert_eq!(r("{{ 3 -}}\n\t x", 0.0), "3x");
    assert_eq!(r("{{-3}}", 0.0), "-3");
}

#[test]
fn pipelines_and_literals() {
    assert_eq!(
        r(r#"{{ $value | printf "%.1f" | printf "[%s]" }}"#, 2.25),
        "[2.2]"
    );
    assert_eq!(
        r(
            r#"{{ "q" }} {{ `raw\n` }} {{ 0x10 }} {{ 1e3 }} {{ 'a' }} {{ true }}"#,
            0.0
        ),
        "q raw\\n 16 1000 97 true"
    );
    assert_eq!(r("{{ (1) }}", 0.0), "1");
}

#[test]
fn parse_errors_read_like_go() {
    // `tmpl` exists only for console templates; promtool 2.42 rejects it in rules.
    assert_eq!(
        err("{{ tmpl \"x\" . }}"),
        "template: __alert_:1: function \"tmpl\" not defined"
    );
    assert_eq!(
        err("{{ nosuch }}"),
        "template: __alert_:1: function \"nosuch\" not defined"
    );
    assert_eq!(
        err("{{ $nope }}"),
        "template: __alert_:1: undefined variable \"$nope\""
    );
    assert_eq!(
        err("{{ if true }}x"),
        "template: __alert_:1: unexpected EOF"
    );
    assert_eq!(err("{{ end }}"), "template: __alert_:1: unexpected {{end}}");
    assert_eq!(
        err("{{ if }}{{ end }}"),
        "template: __alert_:1: missing value for if"
    );
    assert_eq!(err("{{/* x"), "template: __alert_:1: unclosed comment");
    assert_eq!(
        err("{{ /* x */}}"),
        "template: __alert_:1: unexpected \"/\" in command"
    );
    assert_eq!(
        err("{{ 1 / 2 }}"),
        "template: __alert_:1: unexpected \"/\" in operand"
    );
    assert_eq!(
        err("{{ 1 \u{7f} }}"),
        "template: __alert_:1: unrecognized character in action: U+007F"
    );
    assert_eq!(err("{{ 1 "), "template: __alert_:1: unclosed action");
    // Go's lexer runs lazily: the parser trips over the undefined function
    // before the lexer reaches the missing "}}".
    assert_eq!(
        err("{{ $labels.instance is down"),
        "template: __alert_:1: function \"is\" not defined"
    );
}

#[test]
fn exec_errors_read_like_go() {
    // The alert definitions prefix is 112 bytes, so "{{ " puts the action at column 115.
    assert_eq!(
        err(r#"{{ humanize "x" }}"#),
        "template: __alert_:1:115: executing \"__alert_\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        err("x\n{{ toUpper 1 }}"),
        "template: __alert_:2:11: executing \"__alert_\" at <1>: expected string; found 1"
    );
}

#[test]
fn alert_helper_wraps_errors_like_prometheus() {
    let got = with_ctx(1.0, |c| {
        expand_for_alert("HighLatency", r#"{{ humanize "x" }}"#, c)
    });
    assert_eq!(
        got,
        "<error expanding template: error executing template __alert_HighLatency: template: __alert_HighLatency:1:115: executing \"__alert_HighLatency\" at <humanize \"x\">: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax>"
    );
    let t = Template::parse("__alert_A", "{{ $value }}").expect("parse");
    assert_eq!(with_ctx(2.0, |c| execute_for_alert(&t, c)), "2");
    assert_eq!(t.name(), "__alert_A");
}

#[test]
fn go_float_formatting() {
    use gofmt::format_float as f;
    assert_eq!(f(0.0, 'g', 4), "0");
    assert_eq!(f(1000.0, 'g', 4), "1000");
    assert_eq!(f(999.99, 'g', 4), "1000");
    assert_eq!(f(1234567.0, 'g', 4), "1.235e+06");
    assert_eq!(f(0.1, 'g', 4), "0.1");
    assert_eq!(f(100000.0, 'g', -1), "100000");
    assert_eq!(f(1e21, 'g', -1), "1e+21");
    assert_eq!(f(-0.00001, 'g', -1), "-1e-05");
    assert_eq!(f(2.5, 'f', 0), "2");
    assert_eq!(f(1.0, 'e', 2), "1.00e+00");
    assert_eq!(gofmt::duration_string(90_000_000_000), "1m30s");
    assert_eq!(gofmt::duration_string(3_600_000_000_000), "1h0m0s");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&deep).contains("nested deeper"));
    let ifs = format!(
        "{}x{}",
        "{{ if true }}".repeat(5000),
        "{{ end }}".repeat(5000)
    );
    assert!(err(&ifs).contains("nested deeper"));
    let ok = format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50));
    assert_eq!(r(&ok, 0.0), "1");
}
