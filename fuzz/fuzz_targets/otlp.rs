//! Arbitrary bytes through the OTLP receiver's protobuf decoder and the
//! Prometheus translation: a request or an error naming offset and field,
//! never a panic; every translated series has a metric name and only
//! non-empty label names, under every translation strategy.
#![no_main]

use klaxon::otlp::decode::ExportRequest;
use klaxon::otlp::translate::translate;
use klaxon::otlp::{OtlpConfig, TranslationStrategy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = match ExportRequest::decode(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(e.offset <= data.len(), "{e}");
            return;
        }
    };
    for strategy in [
        TranslationStrategy::UnderscoreEscapingWithSuffixes,
        TranslationStrategy::NoUTF8EscapingWithSuffixes,
        TranslationStrategy::NoTranslation,
    ] {
        let cfg = OtlpConfig {
            translation_strategy: strategy,
            promote_all_resource_attributes: true,
            ..Default::default()
        };
        let out = translate(&req, &cfg);
        for s in &out.samples {
            assert!(!s.labels.metric_name().is_empty(), "{}", s.labels);
            assert!(s.labels.iter().all(|l| !l.name.is_empty()), "{}", s.labels);
        }
    }
});
