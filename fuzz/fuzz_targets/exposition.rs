//! Arbitrary bytes through both exposition formats: the parser must return
//! entries or an error, never panic, and every sample's labels must decode.
#![no_main]

use klaxon::scrape::parser::{Entry, Format, Parser, Validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (format, validation) in [
        (Format::PrometheusText, Validation::Strict),
        (Format::OpenMetrics, Validation::Strict),
        (Format::OpenMetrics, Validation::PrometheusCompatible),
    ] {
        let mut p = Parser::with_validation(data, format, validation);
        // Bounded: every successful call consumes at least one line.
        for _ in 0..=data.len() {
            match p.next() {
                Ok(Some(Entry::Sample(s))) => {
                    let l = s.labels();
                    assert_eq!(l.metric_name(), s.metric_name());
                    assert!(s.series.len() <= data.len());
                    if let Some(e) = &s.exemplar {
                        let _ = e.labels();
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        // Fused: nothing after the end or an error.
        assert!(matches!(p.next(), Ok(None)));
    }
});
