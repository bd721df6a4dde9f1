//! Arbitrary bytes through the remote-write decoders: both the protobuf
//! decoder and the snappy wrapper must return a request or an error, never
//! panic or allocate more than the input allows; whatever decodes must
//! survive an encode/decode round trip unchanged.
#![no_main]

use klaxon::remote::proto::{decode_snappy, encode_snappy, WriteRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = WriteRequest::decode(data) {
        let mut buf = Vec::new();
        req.encode(&mut buf);
        let back = WriteRequest::decode(&buf).expect("re-decoding our own encoding");
        assert_eq!(format!("{req:?}"), format!("{back:?}"));
        let via_snappy = decode_snappy(&encode_snappy(&req), buf.len()).expect("snappy round trip");
        assert_eq!(format!("{req:?}"), format!("{via_snappy:?}"));
    }
    // A 1 MiB cap: a header declaring more is refused before allocation.
    let _ = decode_snappy(data, 1 << 20);
});
