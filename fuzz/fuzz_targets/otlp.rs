//! Arbitrary bytes through the OTLP receiver's decoders (protobuf, and the
//! same bytes as OTLP/JSON) and the Prometheus translation: a request or
//! an error naming an offset within the input and a field, never a panic;
//! every translated series (float or native histogram) has a metric name
//! and only non-empty label names, under every translation strategy, with
//! explicit-bucket histograms classic and as custom buckets; every
//! translated histogram validates or is refused by validation (no panic),
//! and converts to float counts.
//!
//! Seeds: `fuzz/seeds/otlp/` (`fuzz/seeds/otlp_seeds.py` writes the
//! protobuf ones with the OpenTelemetry Python package's messages).
#![no_main]

use klaxon::otlp::decode::{decode, DecodeError, ExportRequest};
use klaxon::otlp::json::decode_json;
use klaxon::otlp::translate::translate;
use klaxon::otlp::{OtlpConfig, TranslationStrategy};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], res: Result<ExportRequest, DecodeError>) {
    let req = match res {
        Ok(r) => r,
        Err(e) => {
            assert!(e.offset <= data.len(), "{e}");
            assert!(!e.field.is_empty(), "{e}");
            return;
        }
    };
    for (strategy, nhcb) in [
        (TranslationStrategy::UnderscoreEscapingWithSuffixes, false),
        (TranslationStrategy::NoUTF8EscapingWithSuffixes, true),
        (TranslationStrategy::NoTranslation, false),
    ] {
        let cfg = OtlpConfig {
            translation_strategy: strategy,
            promote_all_resource_attributes: true,
            convert_histograms_to_nhcb: nhcb,
            ..Default::default()
        };
        let out = translate(&req, &cfg);
        let labels = out
            .samples
            .iter()
            .map(|s| &s.labels)
            .chain(out.histograms.iter().map(|h| &h.labels));
        for l in labels {
            assert!(!l.metric_name().is_empty(), "{l}");
            assert!(l.iter().all(|l| !l.name.is_empty()), "{l}");
        }
        for h in &out.histograms {
            let _ = h.h.validate();
            let _ = h.h.to_float();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, decode(data));
    check(data, decode_json(data));
});
