//! Parser throughput on real rule expressions (the upstream rule corpora)
//! and on one large synthetic query. After the first iteration regex
//! matchers come from the parser's per-thread cache; a cold regex costs
//! about 100 µs to compile (the `regex` crate), far more than parsing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use klaxon::promql::parse;

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

fn corpus() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora/rules");
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in rd.flatten().map(|e| e.path()) {
            if p.is_dir() {
                if !p.ends_with("bad") {
                    stack.push(p);
                }
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if let Ok(rf) = serde_saphyr::from_str::<RuleFile>(&text) {
                    out.extend(
                        rf.groups
                            .into_iter()
                            .flat_map(|g| g.rules)
                            .filter_map(|r| r.expr),
                    );
                }
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let exprs = corpus();
    let bytes: usize = exprs.iter().map(|e| e.len()).sum();
    let mut g = c.benchmark_group("promql_parse");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("rule_corpus_{}_exprs", exprs.len()), |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for e in &exprs {
                ok += parse(e).is_ok() as usize;
            }
            ok
        })
    });
    let big = (0..120)
        .map(|i| {
            format!("sum by (job) (rate(http_requests_total{{job=\"api-{i}\",code=~\"5..\"}}[5m]))")
        })
        .collect::<Vec<_>>()
        .join(" or ");
    g.throughput(Throughput::Bytes(big.len() as u64));
    // Regexes are compiled once and then served from the parser's cache.
    g.bench_function("or_chain_120_terms_cached_regex", |b| {
        b.iter(|| parse(&big).is_ok())
    });
    let plain = big.replace("=~", "=");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("or_chain_120_terms_no_regex", |b| {
        b.iter(|| parse(&plain).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
