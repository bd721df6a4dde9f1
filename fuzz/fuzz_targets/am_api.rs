//! Arbitrary bytes as the Alertmanager v2 API's JSON bodies: `POST
//! /api/v2/alerts` (postableAlerts) and `POST /api/v2/silences`. Parsing
//! must answer alerts and errors or an error, never panic; an accepted
//! silence must survive its own JSON round trip (the store keeps that JSON).
#![no_main]

use klaxon::api::alertmanager::parse_postable_alerts;
use klaxon::notify::silence::Silence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((alerts, errs)) = parse_postable_alerts(data, 1_700_000_000_000) {
        for a in &alerts {
            assert!(!a.labels.is_empty());
            if let Some(e) = a.ends_at {
                assert!(e >= a.starts_at);
            }
        }
        let _ = errs;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(s) = Silence::from_json(&v) {
        let again = Silence::from_json(&s.to_json(1_700_000_000_000))
            .expect("a silence's own JSON parses back");
        assert_eq!(again.matchers, s.matchers);
        assert_eq!((again.starts_at, again.ends_at), (s.starts_at, s.ends_at));
    }
});
