//! Arbitrary bytes as a length-delimited protobuf exposition payload: the
//! decoder and converter return families or an error naming an offset inside
//! the payload, never panic; converted text always parses as Prometheus text
//! with one sample per line, and re-encoding the decoded families decodes to
//! the same families.
#![no_main]

use klaxon::scrape::parser::protobuf::{convert, encode_delimited, families, Options};
use klaxon::scrape::parser::{Entry, Format, Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoded = Vec::new();
    for f in families(data) {
        match f {
            Ok((at, mf)) => {
                assert!(at < data.len());
                decoded.push(mf);
            }
            Err(e) => {
                assert!(e.offset < data.len());
                break;
            }
        }
    }
    let again: Vec<_> = families(&encode_delimited(&decoded))
        .map(|r| r.map(|(_, f)| f))
        .collect::<Result<_, _>>()
        .expect("re-encoded families decode");
    assert_eq!(again.len(), decoded.len());
    for native_histograms in [false, true] {
        let opts = Options {
            native_histograms,
            always_classic: native_histograms,
            convert_to_nhcb: native_histograms,
        };
        match convert(data, opts) {
            Ok(c) => {
                let mut p = Parser::new(&c.text, Format::PrometheusText);
                let mut n = 0u32;
                loop {
                    match p.next() {
                        Ok(Some(Entry::Sample(s))) => {
                            let _ = s.labels();
                            n += 1;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => panic!("converted text does not parse: {e}"),
                    }
                }
                assert_eq!(n, c.samples);
                assert!(c.exemplars.iter().all(|(i, _)| *i < c.samples));
            }
            Err(e) => assert!(e.offset < data.len()),
        }
    }
});
