//! Arbitrary text through Alertmanager's matcher parser (route `matchers:`,
//! amtool filters, the v2 API's `filter`). A parsed list printed the way
//! Alertmanager prints it must parse back to the same matchers.
#![no_main]

use klaxon::notify::matchers::{matchers_string, parse_matchers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ms) = parse_matchers(s) else {
        return;
    };
    let printed = matchers_string(&ms);
    let again = parse_matchers(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (from {s:?}) does not parse back: {e}"));
    assert_eq!(again, ms, "{printed:?} from {s:?}");
    let labels = klaxon::model::Labels::from_pairs([("alertname", s), ("a", "")]);
    let _ = klaxon::notify::matchers::matches_all(&ms, &labels);
});
