//! Arbitrary text through the YAML loaders (prometheus.yml with its klaxon
//! sections, alertmanager.yml) and the redactor that serves them. Loading
//! answers a config or positioned errors, never a panic; redaction answers
//! text, and redacting its own output changes nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = klaxon::config::load_str(s, "fuzz.yml") {
        let _ = klaxon::config::redact_secrets(c.to_yaml());
    }
    let _ = klaxon::notify::config::load_str(s, "fuzz.yml", None);
    let once = klaxon::config::redact_secrets(s);
    let twice = klaxon::config::redact_secrets(&once);
    assert_eq!(once, twice, "redaction is not stable for {s:?}");
});
