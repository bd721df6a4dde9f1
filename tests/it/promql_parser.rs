//! Acceptance tests of the PromQL parser against real corpora:
//! differential against the `promql-parser` crate (oracle), promtool's
//! verdicts on the bad rule corpus, and robustness on hostile input.

use std::path::{Path, PathBuf};

use klaxon::promql::parser::{parse, MAX_DEPTH};

use crate::common;
use common::data_dir;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[derive(serde::Deserialize)]
struct RuleFile {
    #[serde(default)]
    groups: Vec<Group>,
}
#[derive(serde::Deserialize)]
struct Group {
    #[serde(default)]
    rules: Vec<Rule>,
}
#[derive(serde::Deserialize)]
struct Rule {
    #[serde(default)]
    expr: Option<String>,
}

/// Every `expr:` of the upstream rule files (not `bad/`), with its origin.
fn rule_exprs(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut out = Vec::new();
    for f in files {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !(ext == "yml" || ext == "yaml") || f.components().any(|c| c.as_os_str() == "bad") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(rf) = serde_saphyr::from_str::<RuleFile>(&text) else {
            eprintln!("note: not a parseable rule file: {}", f.display());
            continue;
        };
        for (gi, g) in rf.groups.iter().enumerate() {
            for (ri, r) in g.rules.iter().enumerate() {
                if let Some(e) = &r.expr {
                    out.push((format!("{} group {gi} rule {ri}", f.display()), e.clone()));
                }
            }
        }
    }
    out
}

/// The expression of an `eval*` line of a promqltest script.
fn eval_expr(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if !words.first()?.starts_with("eval") {
        return None;
    }
    // eval instant at <t> <expr>  |  eval range from <a> to <b> step <s> <expr>
    let skip = match *words.get(1)? {
        "instant" => 4,
        "range" => 8,
        _ => return None,
    };
    // Re-find the expression in the original text to keep its spacing.
    let mut rest = line.trim_start();
    for _ in 0..skip {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    let e = rest.trim();
    (!e.is_empty()).then(|| e.to_string())
}

fn test_file_exprs(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut out = Vec::new();
    for f in files {
        if f.extension().and_then(|e| e.to_str()) != Some("test") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(e) = eval_expr(line.trim()) {
                out.push((format!("{}:{}", f.display(), i + 1), e));
            }
        }
    }
    out
}

/// Expressions where our verdict differs from the `promql-parser` oracle on
/// purpose, with the reason. Matched by the exact expression text, so a new
/// mismatch in a similar expression is a failure, not excused.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("holt_winters(http_requests[1m], 0.01, 0.1)", HOLT),
    (r#"info(metric, {__name__!="target_info"})"#, INFO),
    (r#"info(metric, {__name__!~".+_info", data=~".*"})"#, INFO),
    (r#"info(metric, {data=~".*"})"#, INFO),
    (r#"info(metric, {non_existent=~".*"})"#, INFO),
    (r#"info(metric_not_matching_target_info, {data=~".*"})"#, INFO),
    ("predict_linear(http_requests_histogram[60m], 50m)", DURATION_NUMBER),
    ("predict_linear(testcounter_reset_middle_mix[60m], 50m)", DURATION_NUMBER),
    ("predict_linear(testcounter_reset_middle_total[50m], 1h)", DURATION_NUMBER),
    ("predict_linear(testcounter_reset_middle_total[55m] @ 3000, 1h)", DURATION_NUMBER),
    (r#"+http_requests_total{job="api-server",instance="0",group="production"}"#, UNARY_PLUS),
    (r#"+http_requests{job="api-server",instance="0",group="production"}"#, UNARY_PLUS),
    ("left_vector + fill(NaN) right_vector", "Prometheus prints `fill (NaN)` (it compares the fill pointers); the oracle compares values and NaN != NaN splits it"),
    (r#"count_values("a\xc5z", version)"#, RAW_BYTE),
    (r#"label_replace(testmetric, "\xff", "", "src", "(.*)")"#, RAW_BYTE),
];
const HOLT: &str = "2.x function (renamed double_exponential_smoothing in 3.0); kept so older rule files parse; the oracle only knows 3.x";
const INFO: &str = "Prometheus exempts info()'s second argument from the non-empty-matcher rule (BypassEmptyMatcherCheck); the oracle rejects it";
const DURATION_NUMBER: &str = "a number written as a duration prints back as a duration in Prometheus (NumberLiteral.Duration); the oracle prints seconds";
const UNARY_PLUS: &str =
    "Prometheus keeps unary plus on a vector as a UnaryExpr and prints `+`; the oracle drops it";
const RAW_BYTE: &str = "Go keeps the raw byte of a \\x escape (invalid UTF-8); Rust strings cannot, we substitute U+FFFD, the oracle a Latin-1 char: all differ from Go";

/// Experimental Prometheus 3.x syntax that we implement and the oracle
/// does not.
fn experimental_syntax(origin: &str, expr: &str) -> bool {
    origin.contains("duration_expression.test")
        || expr.contains("anchored")
        || expr.contains("smoothed")
        // The native-histogram trim operators (3.x), unknown to the oracle.
        || expr.contains("</")
        || expr.contains(">/")
}

fn known_difference(expr: &str) -> Option<&'static str> {
    KNOWN_DIFFERENCES
        .iter()
        .find(|(known, _)| expr == *known)
        .map(|(_, why)| *why)
}

/// Puts explicit parentheses around every operand of a binary or unary
/// operator that is itself an operator expression, so that printing shows
/// the tree's shape: `a - b - c` prints `(a - b) - c`, and a precedence or
/// associativity difference between the parsers shows up as different text.
fn parenthesise(e: &mut klaxon::promql::parser::Expr) {
    use klaxon::promql::parser::{Expr, ParenExpr};
    fn wrap(e: &mut Expr) {
        if matches!(e, Expr::Binary(_))
            || matches!(e, Expr::Unary(u) if !matches!(u.expr, Expr::NumberLiteral(_)))
        {
            let inner = std::mem::replace(
                e,
                Expr::NumberLiteral(klaxon::promql::parser::NumberLiteral {
                    value: 0.0,
                    duration: false,
                    span: (0, 0),
                }),
            );
            *e = Expr::Paren(Box::new(ParenExpr {
                expr: inner,
                span: (0, 0),
            }));
        }
    }
    match e {
        Expr::Binary(b) => {
            parenthesise(&mut b.lhs);
            parenthesise(&mut b.rhs);
            wrap(&mut b.lhs);
            wrap(&mut b.rhs);
        }
        Expr::Unary(u) => {
            parenthesise(&mut u.expr);
            wrap(&mut u.expr);
        }
        Expr::Paren(p) => parenthesise(&mut p.expr),
        Expr::SubqueryExpr(q) => parenthesise(&mut q.expr),
        Expr::Call(c) => c.args.iter_mut().for_each(parenthesise),
        Expr::Aggregate(a) => {
            parenthesise(&mut a.expr);
            if let Some(p) = &mut a.param {
                parenthesise(p);
            }
        }
        _ => {}
    }
}

/// [`parenthesise`] for the oracle's tree.
fn parenthesise_oracle(e: &mut promql_parser::parser::Expr) {
    use promql_parser::parser::{Expr, ParenExpr};
    fn wrap(e: &mut Box<Expr>) {
        if matches!(**e, Expr::Binary(_))
            || matches!(&**e, Expr::Unary(u) if !matches!(*u.expr, Expr::NumberLiteral(_)))
        {
            let inner = std::mem::replace(e, Box::new(Expr::from(0.0)));
            **e = Expr::Paren(ParenExpr { expr: inner });
        }
    }
    match e {
        Expr::Binary(b) => {
            parenthesise_oracle(&mut b.lhs);
            parenthesise_oracle(&mut b.rhs);
            wrap(&mut b.lhs);
            wrap(&mut b.rhs);
        }
        Expr::Unary(u) => {
            parenthesise_oracle(&mut u.expr);
            wrap(&mut u.expr);
        }
        Expr::Paren(p) => parenthesise_oracle(&mut p.expr),
        Expr::Subquery(q) => parenthesise_oracle(&mut q.expr),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| parenthesise_oracle(a)),
        Expr::Aggregate(a) => {
            parenthesise_oracle(&mut a.expr);
            if let Some(p) = &mut a.param {
                parenthesise_oracle(p);
            }
        }
        _ => {}
    }
}

#[test]
fn parenthesised_print_shows_the_tree() {
    let mut ours = parse("a - b - c * d ^ e ^ f").expect("parse");
    parenthesise(&mut ours);
    assert_eq!(ours.to_string(), "(a - b) - (c * (d ^ (e ^ f)))");
    let mut oracle = promql_parser::parser::parse("a - b - c * d ^ e ^ f").expect("oracle parse");
    parenthesise_oracle(&mut oracle);
    assert_eq!(oracle.to_string(), ours.to_string());
}

#[test]
fn differential_against_oracle() {
    let Some(rules) = data_dir("corpora/rules") else {
        return;
    };
    let Some(promql) = data_dir("upstream/prometheus/promql") else {
        return;
    };
    let mut exprs = rule_exprs(&rules);
    let n_rules = exprs.len();
    exprs.extend(test_file_exprs(&promql));
    if let Some(old) = data_dir("upstream/prometheus/promql-v2.42") {
        exprs.extend(test_file_exprs(&old));
    }
    assert!(n_rules > 500, "too few rule expressions found: {n_rules}");
    let (mut agree, mut known, mut both_reject, mut experimental) = (0, 0, 0, 0);
    let mut unsupported_trim = 0;
    let mut failures = Vec::new();
    for (origin, e) in &exprs {
        let ours = parse(e);
        let oracle = promql_parser::parser::parse(e);
        let verdict = match (&ours, &oracle) {
            (Ok(a), Ok(b)) => {
                // Both trees printed with every operator operand in
                // parentheses: the texts agree only if the shapes do.
                let (mut a, mut b) = (a.clone(), b.clone());
                parenthesise(&mut a);
                parenthesise_oracle(&mut b);
                let ours_s = a.to_string();
                match parse(&b.to_string()) {
                    Ok(b2) if b2.to_string() == ours_s => Ok(()),
                    Ok(b2) => Err(format!("print differs: ours `{ours_s}` oracle `{b2}`")),
                    Err(err) => Err(format!("oracle print `{b}` does not reparse: {err}")),
                }
            }
            // Every corpus expression is valid for some Prometheus version,
            // so a shared rejection must be syntax neither side implements:
            // the native-histogram trim operators `</`, `>/` (experimental).
            (Err(a), Err(_)) => {
                both_reject += 1;
                if e.contains("</") || e.contains(">/") {
                    unsupported_trim += 1;
                    Ok(())
                } else {
                    Err(format!("both reject; ours: {a}"))
                }
            }
            (Ok(a), Err(b)) => Err(format!("we accept (`{a}`), oracle rejects: {b}")),
            (Err(a), Ok(_)) => Err(format!("we reject: {a}; oracle accepts")),
        };
        // Duration expressions, the anchored/smoothed modifiers and the trim
        // operators are newer than the oracle, which rejects them
        // all. For those we check that our print reparses to the same text.
        let verdict = match (verdict, &ours, &oracle) {
            (Err(_), Ok(a), Err(_)) if experimental_syntax(origin, e) => {
                experimental += 1;
                let printed = a.to_string();
                match parse(&printed) {
                    Ok(again) if again.to_string() == printed => {
                        known += 1;
                        continue;
                    }
                    other => Err(format!("`{printed}` does not round-trip: {other:?}")),
                }
            }
            (v, _, _) => v,
        };
        match verdict {
            Ok(()) => agree += 1,
            Err(why) => match known_difference(e) {
                Some(_) => known += 1,
                None => failures.push(format!("{origin}: `{e}`: {why}")),
            },
        }
    }
    println!(
        "promql corpus: {} expressions ({} from rule files), {} agree ({} rejected by both), {} known differences ({} of them syntax the oracle lacks: duration expressions, anchored/smoothed, trim operators), {} unexplained",
        exprs.len(),
        n_rules,
        agree,
        both_reject,
        known,
        experimental,
        failures.len()
    );
    println!(
        "promql corpus: rejected by both (unsupported experimental syntax): {unsupported_trim} histogram trim operators (`</`, `>/`)"
    );
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} unexplained differences",
        failures.len()
    );
}

/// Splits promtool's message column into its ` | `-joined lines.
fn promtool_parse_errors(message: &str) -> Vec<(String, String)> {
    // Each line reads `<file>: L:C: group "<g>", rule <n>, "<name>": could not parse expression: <err>`.
    let mut out = Vec::new();
    for part in message.split(" | ") {
        let Some((head, err)) = part.split_once(": could not parse expression: ") else {
            continue;
        };
        let Some(gstart) = head.find("group \"") else {
            continue;
        };
        let rest = &head[gstart + 7..];
        let Some((group, after)) = rest.split_once("\", rule ") else {
            continue;
        };
        let idx: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        out.push((format!("{group}\u{0}{idx}"), err.to_string()));
    }
    out
}

#[derive(serde::Deserialize)]
struct NamedRuleFile {
    #[serde(default)]
    groups: Vec<NamedGroup>,
}
#[derive(serde::Deserialize)]
struct NamedGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[test]
fn bad_corpus_messages_match_promtool() {
    let Some(bad) = data_dir("corpora/rules/bad") else {
        return;
    };
    let tsv = std::fs::read_to_string(bad.join("promtool-verdicts.tsv")).expect("verdicts tsv");
    let (mut checked, mut matched) = (0, 0);
    let mut mismatches = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        let [path, _code, message] = cols[..] else {
            continue;
        };
        let errors = promtool_parse_errors(message);
        if errors.is_empty() {
            continue;
        }
        let file = bad.join(path.trim_start_matches("bad/"));
        let text = std::fs::read_to_string(&file).expect("bad corpus file");
        let rf: NamedRuleFile =
            serde_saphyr::from_str(&text).expect("bad file with PromQL errors is valid YAML");
        for (key, want) in errors {
            let (group, idx) = key.split_once('\u{0}').unwrap_or_default();
            let idx: usize = idx.parse().unwrap_or(0);
            // Groups may repeat a name; take the first whose rule fails.
            let expr = rf
                .groups
                .iter()
                .filter(|g| g.name == group)
                .filter_map(|g| {
                    g.rules
                        .get(idx.wrapping_sub(1))
                        .and_then(|r| r.expr.clone())
                })
                .find(|e| parse(e).is_err());
            checked += 1;
            let got = match expr.as_deref().map(parse) {
                Some(Err(e)) => e.to_string(),
                Some(Ok(_)) => "accepted".into(),
                None => "expression not found".into(),
            };
            if got == want {
                matched += 1;
            } else {
                mismatches.push(format!(
                    "{path} group {group} rule {idx}: promtool `{want}`, ours `{got}`"
                ));
            }
        }
    }
    println!("bad corpus: {checked} PromQL parse errors from promtool, {matched} identical (message and position)");
    for m in &mismatches {
        println!("MISMATCH {m}");
    }
    assert!(
        checked >= 14,
        "expected the PromQL cases of the bad corpus, found {checked}"
    );
    assert!(
        mismatches.is_empty(),
        "{} messages differ from promtool",
        mismatches.len()
    );
}

/// promtool 2.42 accepts these (its yacc parser has no depth limit); we
/// reject them on purpose with a clean depth error instead of risking the
/// stack. Listed so the difference is explicit.
#[test]
fn bad_corpus_huge_nesting_is_a_clean_error() {
    let Some(bad) = data_dir("corpora/rules/bad") else {
        return;
    };
    for f in [
        "huge-nesting-promql.yml",
        "huge-nesting-promql-functions.yml",
    ] {
        let text = std::fs::read_to_string(bad.join(f)).expect("file");
        let rf: NamedRuleFile = serde_saphyr::from_str(&text).expect("yaml");
        let expr = rf.groups[0].rules[0].expr.clone().expect("expr");
        let err = parse(&expr).expect_err("deeper than MAX_DEPTH");
        assert!(err.message.contains("nested too deeply"), "{f}: {err}");
        println!("known difference: {f}: promtool accepts, we report `{err}`");
    }
}

#[test]
fn eval_fail_cases() {
    let Some(promql) = data_dir("upstream/prometheus/promql") else {
        return;
    };
    let mut files = Vec::new();
    walk(&promql, &mut files);
    if let Some(old) = data_dir("upstream/prometheus/promql-v2.42") {
        walk(&old, &mut files);
    }
    let (mut total, mut with_message) = (0, 0);
    for f in files
        .iter()
        .filter(|f| f.extension().and_then(|e| e.to_str()) == Some("test"))
    {
        let text = std::fs::read_to_string(f).expect("test file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("eval_fail") {
                continue;
            }
            let Some(expr) = eval_expr(line) else {
                continue;
            };
            total += 1;
            // The block that follows may pin the message.
            let expected = lines[i + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix("expected_fail_message").map(str::trim));
            match expected {
                Some(msg) => {
                    with_message += 1;
                    if let Err(e) = parse(&expr) {
                        assert_eq!(e.message, msg, "{}:{}", f.display(), i + 1);
                    }
                }
                // Without a message these fail at evaluation time: they must parse.
                None => assert!(
                    parse(&expr).is_ok(),
                    "{}:{}: `{expr}`: {:?}",
                    f.display(),
                    i + 1,
                    parse(&expr).err()
                ),
            }
        }
    }
    println!(
        "eval_fail: {total} cases, {with_message} with an expected message (all others must parse)"
    );
    assert!(total > 0);
}

#[test]
fn deep_nesting_and_long_input_fail_cleanly() {
    // Run on a thread with the default 2 MiB stack to prove the limit fits.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let deep = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
            let err = parse(&deep).expect_err("too deep");
            assert!(err.message.contains("nested too deeply"), "{err}");
            let deep_fn = format!("{}x{}", "abs(".repeat(5_000), ")".repeat(5_000));
            assert!(parse(&deep_fn).is_err());
            let deep_unary = format!("{}1", "-".repeat(50_000));
            assert!(parse(&deep_unary).is_err());
            // Just inside the limit still parses and prints.
            let ok_depth = MAX_DEPTH / 2 - 2;
            let fine = format!("{}x{}", "(".repeat(ok_depth), ")".repeat(ok_depth));
            let e = parse(&fine).expect("within the limit");
            assert_eq!(e.to_string(), fine);
            let long = "a + ".repeat(300_000) + "a";
            let err = parse(&long).expect_err("too long");
            assert!(err.message.contains("query too long"), "{err}");
            // Long flat chains build left-deep trees: limited the same way.
            let wide = vec!["a"; 50_000].join(" + ");
            let err = parse(&wide).expect_err("chain too long");
            assert!(err.message.contains("nested too deeply"), "{err}");
            let ok_chain = vec!["a"; MAX_DEPTH / 2].join(" or ");
            let e = parse(&ok_chain).expect("chain within the limit");
            assert_eq!(e.to_string(), ok_chain);
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

/// Prometheus 3's UTF-8 selector syntax: every form parses, prints with the
/// quotes where a name is outside the legacy set, and the printed text
/// parses to the same tree.
#[test]
fn utf8_quoted_names_parse_and_print() {
    let cases = [
        (r#"{"my.metric"}"#, r#"{__name__="my.metric"}"#),
        (
            r#"{"my.metric", "label.name"="x"}"#,
            r#"{"label.name"="x",__name__="my.metric"}"#,
        ),
        (
            r#"{"my.metric", job!~"a|b"}[5m]"#,
            r#"{__name__="my.metric",job!~"a|b"}[5m]"#,
        ),
        (
            r#"sum by ("label.name") (rate({"my.metric"}[5m]))"#,
            r#"sum by ("label.name") (rate({__name__="my.metric"}[5m]))"#,
        ),
        (
            r#"a / on ("k8s.pod") group_left ("k8s.node") b"#,
            r#"a / on ("k8s.pod") group_left ("k8s.node") b"#,
        ),
        (
            r#"topk without ("ü") (3, x)"#,
            r#"topk without ("ü") (3, x)"#,
        ),
        (r#"x{"plain"="v"}"#, r#"x{plain="v"}"#),
    ];
    for (q, want) in cases {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "{q}");
        let again = parse(want).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(again.to_string(), want, "{q}");
    }
    for bad in [r#"{"a.b" "c"}"#, r#"{"a.b"=}"#, r#"sum by ("a" "b") (x)"#] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
