//! Arbitrary text through the template engine: as an alert rule's
//! label/annotation template (Prometheus' function map) and as a
//! notification template (Alertmanager's). Parse and execute must answer
//! text or an error: no panic, no stack overflow on recursion.
#![no_main]

use klaxon::model::Labels;
use klaxon::rules::template::{Template, TemplateContext, TemplateSet, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let labels = Labels::from_pairs([("__name__", "up"), ("instance", "h:9"), ("job", "j")]);
    let ext = Labels::from_pairs([("cluster", "c")]);
    let ctx = TemplateContext {
        labels: &labels,
        external_labels: &ext,
        external_url: "http://klaxon.example",
        value: 1.5,
        now_ms: 1_700_000_000_000,
        query: None,
    };
    if let Ok(t) = Template::parse("fuzz", s) {
        let _ = t.execute(&ctx);
    }
    let mut set = TemplateSet::new();
    let _ = set.add("fuzz.tmpl", s);
    let _ = set.render(s, &Value::Kv(std::rc::Rc::new(labels.clone())), false);
    let _ = set.render(s, &Value::Str("x".into()), true);
});
