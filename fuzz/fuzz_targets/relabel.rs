//! A relabel_config built from fuzz input, loaded through the config loader
//! (so only what Prometheus would accept reaches the engine), applied to a
//! label set also taken from the input. The engine must answer labels or a
//! drop: no panic, and every label it leaves has a valid name.
//!
//! Input layout: fields separated by NUL bytes: action, regex, source
//! labels (`;`-separated), separator, target_label, replacement, modulus,
//! then label name/value pairs.
#![no_main]

use klaxon::config::relabel::is_valid_label_name;
use klaxon::model::Labels;
use libfuzzer_sys::fuzz_target;

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let f: Vec<&str> = s.split('\0').collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let sources: Vec<String> = get(2)
        .split(';')
        .filter(|x| !x.is_empty())
        .map(q)
        .collect();
    let mut rc = format!(
        "action: {}\n      regex: {}\n      source_labels: [{}]\n      separator: {}\n      replacement: {}\n",
        q(get(0)),
        q(get(1)),
        sources.join(", "),
        q(get(3)),
        q(get(5)),
    );
    if !get(4).is_empty() {
        rc.push_str(&format!("      target_label: {}\n", q(get(4))));
    }
    if let Ok(m) = get(6).parse::<u64>() {
        rc.push_str(&format!("      modulus: {m}\n"));
    }
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n    static_configs: [{{targets: [\"h:1\"]}}]\n    metric_relabel_configs:\n    - {rc}"
    );
    let Ok(cfg) = klaxon::config::load_str(&yaml, "fuzz.yml") else {
        return;
    };
    let Some(sc) = cfg.scrape_config("j") else {
        return;
    };
    let pairs: Vec<(&str, &str)> = f
        .get(7..)
        .unwrap_or(&[])
        .chunks(2)
        .filter(|c| c.len() == 2 && is_valid_label_name(c[0]))
        .map(|c| (c[0], c[1]))
        .collect();
    let labels = Labels::from_pairs(pairs);
    if let Some(out) = klaxon::scrape::relabel::process(&labels, &sc.metric_relabel_configs) {
        for l in out.iter() {
            assert!(is_valid_label_name(&l.name), "{:?} from {yaml}", l.name);
        }
    }
});
