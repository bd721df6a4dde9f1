//! Arbitrary PromQL through the tenant matcher injection: every selector of
//! the injected tree carries the matcher (also after printing and parsing
//! back), and evaluating it over a head holding two tenants gives exactly
//! what it gives over a head holding only the caller's tenant — no input
//! reaches the other tenant's series.
#![no_main]

use std::sync::OnceLock;

use klaxon::model::Labels;
use klaxon::ops::tenants::{check_injection, Scope};
use klaxon::promql::engine::Query;
use klaxon::promql::Engine;
use klaxon::tsdb::Head;
use libfuzzer_sys::fuzz_target;

const END: i64 = 30 * 60_000;

const MINE: &[&[(&str, &str)]] = &[
    &[("__name__", "tm"), ("tenant", "a"), ("i", "1")],
    &[("__name__", "other"), ("tenant", "a"), ("job", "x")],
];
const FOREIGN: &[&[(&str, &str)]] = &[
    &[("__name__", "tm"), ("tenant", "b"), ("i", "1")],
    &[("__name__", "secret_b"), ("tenant", "b")],
    &[("__name__", "tm"), ("tenant", "a|b"), ("i", "2")],
    &[("__name__", "other"), ("job", "x")],
];

fn fill(head: &Head, series: &[&[(&str, &str)]]) {
    for (k, pairs) in series.iter().enumerate() {
        let (r, _) = head.get_or_create(&Labels::from_pairs(pairs.iter().copied()));
        let mut t = 0;
        while t <= END {
            let _ = head.append(r, t, ((t / 15_000) as usize % 17 + k) as f64);
            t += 15_000;
        }
    }
}

fn heads() -> &'static (Head, Head) {
    static H: OnceLock<(Head, Head)> = OnceLock::new();
    H.get_or_init(|| {
        let only = Head::default();
        fill(&only, MINE);
        let both = Head::default();
        fill(&both, MINE);
        fill(&both, FOREIGN);
        (only, both)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scope = Scope::new("tenant", &["a".to_string()]).expect("one tenant");
    let e = match check_injection(&scope, text) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(escape) => panic!("{escape}"),
    };
    let (only, both) = heads();
    let engine = Engine::default();
    let run = |h: &Head| {
        format!(
            "{:?}",
            engine
                .range(h, Query::Parsed(&e, None), 0, END, 300_000)
                .map(|r| r.value)
        )
    };
    let (a, b) = (run(only), run(both));
    assert_eq!(
        a, b,
        "{text:?}: the other tenant's series changed the answer"
    );
});
