//! Unit tests: precedence, associativity, printing, every error message the
//! parser produces and its position.

use super::*;

fn p(s: &str) -> String {
    match parse(s) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("`{s}` failed: {e}"),
    }
}

fn err(s: &str) -> String {
    match parse(s) {
        Ok(e) => panic!("`{s}` parsed as `{e}`"),
        Err(e) => e.to_string(),
    }
}

/// Shows the tree shape with explicit parentheses around binary nodes.
fn shape(e: &Expr) -> String {
    match e {
        Expr::Binary(b) => format!("({} {} {})", shape(&b.lhs), b.op.as_str(), shape(&b.rhs)),
        Expr::Unary(u) => format!("(-{})", shape(&u.expr)),
        Expr::Paren(p) => format!("[{}]", shape(&p.expr)),
        other => other.to_string(),
    }
}

fn tree(s: &str) -> String {
    shape(&parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
}

#[test]
fn precedence_follows_prometheus() {
    assert_eq!(tree("a or b and c"), "(a or (b and c))");
    assert_eq!(tree("a and b unless c"), "((a and b) unless c)");
    assert_eq!(tree("a unless b > c"), "(a unless (b > c))");
    assert_eq!(tree("a > b + c"), "(a > (b + c))");
    assert_eq!(tree("a + b * c"), "(a + (b * c))");
    assert_eq!(tree("a * b ^ c"), "(a * (b ^ c))");
    assert_eq!(tree("a atan2 b + c"), "((a atan2 b) + c)");
    assert_eq!(tree("a % b / c"), "((a % b) / c)");
    assert_eq!(tree("a == b != c"), "((a == b) != c)");
}

#[test]
fn associativity() {
    assert_eq!(tree("a - b - c"), "((a - b) - c)");
    assert_eq!(tree("a / b / c"), "((a / b) / c)");
    assert_eq!(tree("a ^ b ^ c"), "(a ^ (b ^ c))");
    assert_eq!(tree("a or b or c"), "((a or b) or c)");
}

#[test]
fn unary_binds_like_multiplication() {
    assert_eq!(tree("-a ^ b"), "(-(a ^ b))");
    assert_eq!(tree("-a * b"), "((-a) * b)");
    assert_eq!(tree("-a + b"), "((-a) + b)");
    assert_eq!(p("-1"), "-1");
    assert_eq!(p("- 1 ^ 2"), "-1 ^ 2");
    assert_eq!(p("2 ^ -1"), "2 ^ -1");
    assert_eq!(p("+foo"), "+foo");
    assert_eq!(p("-foo offset 5m"), "-foo offset 5m");
}

#[test]
fn literals() {
    assert_eq!(p("1_000_000"), "1000000");
    assert_eq!(p("0x1F"), "31");
    assert_eq!(p("1e3"), "1000");
    assert_eq!(p(".5"), "0.5");
    assert_eq!(p("Inf"), "+Inf");
    assert_eq!(p("-inf"), "-Inf");
    assert_eq!(p("NaN"), "NaN");
    assert_eq!(p("5m"), "5m");
    assert_eq!(p("time() - 1h30m"), "time() - 1h30m");
    assert_eq!(p(r#""a\"b""#), r#""a\"b""#);
    assert_eq!(p(r"'it\'s'"), r#""it's""#);
    assert_eq!(p(r"`raw\n`"), r#""raw\\n""#);
    assert_eq!(p("\"\\u00e9\""), "\"é\"");
    assert_eq!(p("1 # trailing comment"), "1");
}

#[test]
fn selectors_and_modifiers() {
    assert_eq!(
        p(r#"foo{b="1", a!="2", c=~"x", d!~"y",}"#),
        r#"foo{a!="2",b="1",c=~"x",d!~"y"}"#
    );
    assert_eq!(p(r#"{__name__="up"}"#), r#"{__name__="up"}"#);
    assert_eq!(
        p(r#"{"my.metric", "label.name"="x"}"#),
        r#"{"label.name"="x",__name__="my.metric"}"#
    );
    assert_eq!(p("foo[5m]"), "foo[5m]");
    assert_eq!(p("foo[300]"), "foo[5m]");
    assert_eq!(p("foo[1h:5m]"), "foo[1h:5m]");
    assert_eq!(p("foo[1h:]"), "foo[1h:]");
    assert_eq!(p("foo offset -5m"), "foo offset -5m");
    assert_eq!(p("foo @ 100 offset 5m"), "foo @ 100.000 offset 5m");
    assert_eq!(p("foo offset 5m @ start()"), "foo @ start() offset 5m");
    assert_eq!(p("foo[5m] @ end() offset 1m"), "foo[5m] @ end() offset 1m");
    assert_eq!(
        p("rate(foo[5m])[1h:1m] offset 1d"),
        "rate(foo[5m])[1h:1m] offset 1d"
    );
    assert_eq!(p("foo @ 1m40s"), "foo @ 100.000");
    assert_eq!(p("sum"), "sum");
    assert_eq!(p("count > 0"), "count > 0");
}

#[test]
fn aggregations_and_calls() {
    assert_eq!(p("sum by (a, b) (x)"), "sum by (a, b) (x)");
    assert_eq!(p("sum(x) without (a)"), "sum without (a) (x)");
    assert_eq!(p("sum by () (x)"), "sum(x)");
    assert_eq!(p("topk(5, x)"), "topk(5, x)");
    assert_eq!(p(r#"count_values("v", x)"#), r#"count_values("v", x)"#);
    assert_eq!(p("sum by (on, by) (x)"), "sum by (on, by) (x)");
    assert_eq!(
        p("holt_winters(x[5m], 0.5, 0.5)"),
        "holt_winters(x[5m], 0.5, 0.5)"
    );
    assert_eq!(
        p(r#"label_join(x, "d", ",", "a", "b", "c")"#),
        r#"label_join(x, "d", ",", "a", "b", "c")"#
    );
    assert_eq!(p("round(x)"), "round(x)");
    assert_eq!(p("info(x, {k=~\".*\"})"), "info(x, {k=~\".*\"})");
}

#[test]
fn binary_modifiers() {
    assert_eq!(
        p("a + on(x, y) group_left(z) b"),
        "a + on (x, y) group_left (z) b"
    );
    assert_eq!(
        p("a * ignoring(x) group_right b"),
        "a * ignoring (x) group_right () b"
    );
    assert_eq!(p("a > bool b"), "a > bool b");
    assert_eq!(p("a and on() b"), "a and on () b");
    assert_eq!(p("1 + on() 2 > bool 1"), "1 + 2 > bool 1");
    assert_eq!(p("a + fill(0) b"), "a + fill (0) b");
    assert_eq!(
        p("a + fill_left(1) fill_right(2) b"),
        "a + fill_left (1) fill_right (2) b"
    );
    assert_eq!(p("fill + fill"), "fill + fill");
}

#[test]
fn value_types() {
    let t = |s: &str| {
        parse(s)
            .map(|e| e.value_type())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(t("1"), ValueType::Scalar);
    assert_eq!(t("1 + 2"), ValueType::Scalar);
    assert_eq!(t("x + 2"), ValueType::InstantVector);
    assert_eq!(t("x[5m]"), ValueType::RangeVector);
    assert_eq!(t("x[5m:]"), ValueType::RangeVector);
    assert_eq!(t("\"s\""), ValueType::String);
    assert_eq!(t("scalar(x)"), ValueType::Scalar);
    assert_eq!(t("(x)"), ValueType::InstantVector);
}

#[test]
fn spans() {
    let e = parse("sum(rate(x[5m])) by (a) + 1").expect("parse");
    assert_eq!(e.span(), (0, 27));
    let Expr::Binary(b) = &e else {
        panic!("binary")
    };
    assert_eq!(b.lhs.span(), (0, 23));
    assert_eq!(b.rhs.span(), (26, 27));
    let e = parse("foo{a=\"b\"} offset 5m").expect("parse");
    assert_eq!(e.span(), (0, 20));
    let e = parse("-foo @ 10 offset 1m").expect("parse");
    assert_eq!(e.span(), (0, 19));
    let e = parse("rate(x[5m:1m] @ 10)").expect("parse");
    let Expr::Call(c) = &e else { panic!("call") };
    assert_eq!(c.args[0].span(), (5, 18));
}

#[test]
fn error_messages_and_positions() {
    let cases: &[(&str, &str)] = &[
        ("", "1:1: parse error: no expression found in input"),
        ("# just a comment", "1:1: parse error: no expression found in input"),
        ("up ==", "1:6: parse error: unexpected end of input"),
        ("up by (job)", "1:4: parse error: unexpected <by>"),
        ("sum(x", "1:6: parse error: unclosed left parenthesis"),
        ("x)", "1:3: parse error: unexpected right parenthesis ')'"),
        ("x[5m", "1:5: parse error: unclosed left bracket"),
        ("x]", "1:2: parse error: unexpected right bracket ']'"),
        ("x[5m][", "1:7: parse error: bad duration syntax: \"\""),
        ("x[5m[", "1:5: parse error: unexpected left bracket '['"),
        ("x[5x]", "1:3: parse error: bad duration syntax: \"5\""),
        ("x[5m:fast]", "1:6: parse error: unexpected colon 'f'"),
        ("x[5m 1m]", "1:6: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\""),
        ("x[5m:1m 1m]", "1:9: parse error: unexpected duration \"1m\" in subquery selector, expected \"]\""),
        ("1 + 2x", "1:5: parse error: bad number or duration syntax: \"2\""),
        ("up{job=\"api} == 0", "1:8: parse error: unterminated quoted string"),
        ("`abc", "1:1: parse error: unterminated raw string"),
        ("\"\\q\"", "1:1: parse error: unknown escape sequence U+0071 'q'"),
        ("x{a=~\"(\"}", "1:3: parse error: error parsing regexp: missing closing ): `^(?:()$`"),
        ("x{a}", "1:4: parse error: unexpected \"}\" in label matching, expected label matching operator"),
        ("x{a=1}", "1:5: parse error: unexpected character inside braces: '1'"),
        ("x{a=\"b\" c}", "1:9: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""),
        ("x{=\"b\"}", "1:3: parse error: unexpected \"=\" in label matching, expected identifier or \"}\""),
        ("x{a=b}", "1:5: parse error: unexpected identifier \"b\" in label matching, expected string"),
        ("x{", "1:3: parse error: unexpected end of input inside braces"),
        ("x !! y", "1:3: parse error: unexpected character after '!': '!'"),
        ("x =~ y", "1:3: parse error: unexpected character after '=': '~'"),
        ("x $ y", "1:3: parse error: unexpected character: '$'"),
        ("{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("{job=~\".*\"} == 0", "1:1: parse error: vector selector must contain at least one non-empty matcher"),
        ("foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""),
        ("up + \"1\"", "1:6: parse error: binary expression must contain only scalar and instant vector types"),
        ("x[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
        ("1 and 2", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
        ("1 and x", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
        ("1 + on(a) x", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("x + bool y", "1:3: parse error: bool modifier can only be used on comparison operators"),
        ("x and on(a) group_left y", "1:1: parse error: no grouping allowed for \"and\" operation"),
        ("x + on(a) group_left(a) y", "1:3: parse error: label \"a\" must not occur in ON and GROUP clause at once"),
        ("x + fill(0) 1", "1:1: parse error: filling in missing series only allowed between instant vectors"),
        ("x or fill(0) y", "1:1: parse error: filling in missing series not allowed for set operators"),
        ("rate(x)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
        ("abs(x[5m])", "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector"),
        ("histogram_quantile(x)", "1:1: parse error: expected 2 argument(s) in call to \"histogram_quantile\", got 1"),
        ("label_join(x)", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1"),
        ("round(x, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3"),
        ("foo(x)", "1:1: parse error: unknown function with name \"foo\""),
        ("abs(x,)", "1:6: parse error: trailing commas not allowed in function call args"),
        ("info(x, y)", "1:9: parse error: expected label selectors only, got vector selector instead"),
        ("info(x, 1)", "1:1: parse error: expected type instant vector in call to function \"info\", got scalar"),
        ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
        ("topk(x, y)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
        ("count_values(1, y)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
        ("sum()", "1:1: parse error: no arguments for aggregate expression provided"),
        ("topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ("sum by job (x)", "1:8: parse error: unexpected identifier \"job\" in grouping opts, expected \"(\""),
        ("sum by (a b) (x)", "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
        ("sum by (1) (x)", "1:9: parse error: unexpected number \"1\" in grouping opts, expected label"),
        ("sum by (a) x", "1:12: parse error: unexpected identifier \"x\" in aggregation"),
        ("-x[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
        ("x[5m][1h:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("(x)[5m]", "1:4: parse error: ranges only allowed for vector selectors"),
        ("x offset 5m [5m]", "1:13: parse error: no offset modifiers allowed before range"),
        ("x @ 10 [5m]", "1:8: parse error: no @ modifiers allowed before range"),
        ("x offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"),
        ("x @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("sum(x) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("1 @ 5", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("x offset y", "1:10: parse error: unexpected identifier \"y\" in offset, expected duration"),
        ("x @ y", "1:5: parse error: unexpected identifier \"y\" in @, expected timestamp"),
        ("x @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("x[5mm]", "1:3: parse error: bad duration syntax: \"5mm\""),
        ("x[5m1h]", "1:3: parse error: not a valid duration string: \"5m1h\""),
        ("1e999", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e999\": value out of range"),
        ("x y", "1:3: parse error: unexpected identifier \"y\""),
        ("x 1234567890123", "1:3: parse error: unexpected number \"1234567890\"..."),
        ("(1 2)", "1:4: parse error: unexpected number \"2\""),
        ("foo\n  + bar baz", "2:9: parse error: unexpected identifier \"baz\""),
    ];
    let mut failures = Vec::new();
    for (input, want) in cases {
        let got = match parse(input) {
            Ok(e) => format!("accepted as `{e}`"),
            Err(e) => e.to_string(),
        };
        if got != *want {
            failures.push(format!("{input:?}\n   want {want}\n   got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parse_error_fields() {
    let e = parse("foo\n  + bar baz").expect_err("bad");
    assert_eq!((e.line, e.column, e.offset), (2, 9, 12));
    assert_eq!(err("up =="), "1:6: parse error: unexpected end of input");
}

/// Random token soup must never panic; whatever parses must print to text
/// that parses again to the same text.
#[test]
fn random_input_never_panics_and_round_trips() {
    const PIECES: &[&str] = &[
        "foo",
        "sum",
        "by",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "5m",
        ":",
        "1",
        "-",
        "+",
        "*",
        "/",
        "^",
        "==",
        "bool",
        "on",
        "group_left",
        "offset",
        "@",
        "start()",
        "rate",
        "a=\"b\"",
        ",",
        " ",
        "\"s\"",
        "'x'",
        "`r`",
        "=~",
        "!=",
        "#c\n",
        "0x1f",
        "1e3",
        "Inf",
        "and",
        "or",
        "unless",
        "topk",
        "without",
        "ignoring",
        "é",
        "\\",
        "1h30m",
        "count_values",
        "abs",
        "fill(0)",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut parsed = 0;
    for _ in 0..20_000 {
        let n = (next() % 12) as usize + 1;
        let s: String = (0..n)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        if let Ok(e) = parse(&s) {
            parsed += 1;
            let printed = e.to_string();
            let again = parse(&printed).unwrap_or_else(|err| panic!("`{s}` -> `{printed}`: {err}"));
            // Prometheus prints +Inf with its sign, which reparses as a unary
            // plus around a following `^`: not idempotent upstream either.
            if !printed.contains("Inf") {
                assert_eq!(again.to_string(), printed, "input `{s}`");
            }
        }
    }
    assert!(parsed > 100, "generator too weak: {parsed}");
}

#[test]
fn duration_expressions() {
    assert_eq!(p("rate(x[5m+1m])"), "rate(x[5m + 1m])");
    assert_eq!(p("x offset (1h*2)"), "x offset (1h * 2)");
    assert_eq!(p("x[step()]"), "x[step()]");
    assert_eq!(p("x[1h:step()*2]"), "x[1h:step() * 2]");
    assert_eq!(p("x[(5m)]"), "x[5m]");
    assert_eq!(p("x offset -2 ^ 2"), "x offset -2s ^ 2");
    assert_eq!(
        p("x[max_of(1m, min_of(step(), 1h))]"),
        "x[max_of(1m, min_of(step(), 1h))]"
    );
    assert_eq!(err("x[5m/0]"), "1:5: parse error: division by zero");
    assert_eq!(err("x[5m%0]"), "1:5: parse error: modulo by zero");
    let Ok(Expr::MatrixSelector(m)) = parse("x[2m*(10+5)]") else {
        panic!("matrix")
    };
    let de = m.range_expr.expect("expression kept");
    assert_eq!(de.eval_seconds(15.0, 0.0), 1800.0);
    let Ok(Expr::MatrixSelector(m)) = parse("x[step()+1m]") else {
        panic!("matrix")
    };
    assert_eq!(m.range_expr.expect("expr").eval_seconds(15.0, 0.0), 75.0);
}

#[test]
fn anchored_and_smoothed() {
    assert_eq!(p("increase(x[1m] anchored)"), "increase(x[1m] anchored)");
    assert_eq!(
        p("x @ 100 smoothed offset 1m"),
        "x @ 100.000 smoothed offset 1m"
    );
    assert_eq!(
        p("x[5m] smoothed @ 10 offset 1m"),
        "x[5m] smoothed @ 10.000 offset 1m"
    );
    assert_eq!(
        err("x[5m] anchored smoothed"),
        "1:1: parse error: anchored and smoothed modifiers cannot be used together"
    );
    assert_eq!(
        err("x[5m:1m] anchored"),
        "1:1: parse error: anchored modifier is not supported for subqueries"
    );
    assert_eq!(
        err("sum(x) smoothed"),
        "1:1: parse error: smoothed modifier not implemented"
    );
}

#[test]
fn regex_cache_keeps_label_names_and_kinds_apart() {
    assert_eq!(
        p(r#"x{a=~"v.*"} or y{b=~"v.*"}"#),
        r#"x{a=~"v.*"} or y{b=~"v.*"}"#
    );
    assert_eq!(
        p(r#"x{a!~"v.*"} or y{b=~"v.*"}"#),
        r#"x{a!~"v.*"} or y{b=~"v.*"}"#
    );
    let Ok(Expr::VectorSelector(vs)) = parse(r#"x{b!~"v.*"}"#) else {
        panic!("selector")
    };
    let m = &vs.matchers[0];
    assert_eq!(
        (m.name.as_str(), m.matches("vx"), m.matches("w")),
        ("b", false, true)
    );
}

/// Fuzz finding: a negative literal range printed as `metric[]`, which does
/// not parse. The sign is kept now, so the printed form round-trips.
#[test]
fn negative_literal_range_prints_with_its_sign() {
    assert_eq!(
        p("resets(metric[-1m] anchored)"),
        "resets(metric[-1m] anchored)"
    );
    assert_eq!(p(&p("metric[-90s]")), "metric[-1m30s]");
    assert_eq!(p("(metric)[-5m:-1m]"), "(metric)[-5m:-1m]");
    assert_eq!(
        crate::model::gofmt::format_duration(i64::MIN)
            .chars()
            .next(),
        Some('-')
    );
}

#[test]
fn quoted_utf8_names() {
    // A lone quoted string in braces is the metric name; the printer
    // writes it back as a `__name__` matcher, as Prometheus 3 does.
    assert_eq!(p(r#"{"my.metric"}"#), r#"{__name__="my.metric"}"#);
    assert_eq!(
        p(r#"{"my.metric", "label.name"="x"}"#),
        r#"{"label.name"="x",__name__="my.metric"}"#
    );
    assert_eq!(
        p(r#"{"label.name"=~"a.*", "my.metric"}"#),
        r#"{"label.name"=~"a.*",__name__="my.metric"}"#
    );
    // A quoted legacy name prints bare.
    assert_eq!(p(r#"{"foo"="bar"}"#), r#"{foo="bar"}"#);
    assert_eq!(p(r#"foo{"a"="1"}"#), r#"foo{a="1"}"#);
    assert_eq!(
        p(r#"rate({"http.requests", "ü"="1"}[5m])"#),
        r#"rate({"ü"="1",__name__="http.requests"}[5m])"#
    );
    assert_eq!(
        p(r#"sum by ("label.name", job) ({"my.metric"})"#),
        r#"sum by ("label.name", job) ({__name__="my.metric"})"#
    );
    assert_eq!(
        p(r#"a * on ("a.b") group_left ("c-d") b"#),
        r#"a * on ("a.b") group_left ("c-d") b"#
    );
    assert_eq!(
        p(r#"count without ("x y") (a)"#),
        r#"count without ("x y") (a)"#
    );
    // The name matcher is an ordinary equality matcher on `__name__`.
    let Expr::VectorSelector(vs) = parse(r#"{"my.metric", "a.b"!="c"}"#).unwrap() else {
        panic!("not a selector")
    };
    assert!(vs.name.is_none());
    let names: Vec<_> = vs.matchers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["__name__", "a.b"]);
    // Printing then parsing gives the same tree.
    for q in [
        r#"{"my.metric", "label.name"="x"} offset 5m"#,
        r#"sum by ("label.name") (rate({"a.b"}[1m]))"#,
    ] {
        let once = p(q);
        assert_eq!(p(&once), once);
    }
    // A quoted name needs a matcher operator, a comma or the closing brace
    // after it.
    assert!(
        err(r#"{"a.b" "c"}"#).contains("unexpected string"),
        "{}",
        err(r#"{"a.b" "c"}"#)
    );
    // A quoted name outside braces is a string literal, not a selector.
    assert!(parse(r#""my.metric"{a="b"}"#).is_err());
}
