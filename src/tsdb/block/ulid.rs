//! ULIDs, the names of block directories: 48 bits of milliseconds and 80
//! random bits in Crockford's base32 (26 characters).

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID for time `ms`.
pub fn new(ms: u64) -> String {
    let random = uuid::Uuid::new_v4().as_u128() & ((1u128 << 80) - 1);
    encode((u128::from(ms & ((1 << 48) - 1)) << 80) | random)
}

fn encode(v: u128) -> String {
    (0..26)
        .map(|i| ALPHABET[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Parses a ULID (case-insensitive); `None` if `s` is not one.
pub fn parse(s: &str) -> Option<u128> {
    if s.len() != 26 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, c) in s.bytes().enumerate() {
        let c = c.to_ascii_uppercase();
        let d = ALPHABET.iter().position(|a| *a == c)? as u128;
        if i == 0 && d > 7 {
            return None;
        }
        v = (v << 5) | d;
    }
    Some(v)
}

/// The milliseconds part of a ULID.
pub fn time_ms(v: u128) -> u64 {
    (v >> 80) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_round_trip_and_sort_by_time() {
        let a = new(1_600_000_000_000);
        let b = new(1_600_000_000_001);
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert_eq!(time_ms(parse(&a).unwrap()), 1_600_000_000_000);
        // A ULID Prometheus wrote.
        let p = parse("01BKGV7JBM69T2G1BGBGM6KB12").unwrap();
        assert_eq!(encode(p), "01BKGV7JBM69T2G1BGBGM6KB12");
        assert_eq!(time_ms(p), 1_498_435_275_124);
        assert!(parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ").is_none());
        assert!(parse("wal").is_none());
    }
}
