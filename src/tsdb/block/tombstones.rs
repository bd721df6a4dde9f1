//! The block `tombstones` file: magic 0x0130BA30, version 1, then
//! (series id uvarint, mint varint, maxt varint) per deleted interval, and
//! a CRC32 over the intervals (the version byte excluded, as Prometheus).

use super::enc::{self, put_uvarint, put_varint, Dec, DecResult};
use std::collections::BTreeMap;

pub(crate) const MAGIC: u32 = 0x0130_BA30;
const FORMAT_V1: u8 = 1;

/// Deleted intervals (inclusive) by series id.
pub type Tombstones = BTreeMap<u32, Vec<(i64, i64)>>;

pub(crate) fn encode(t: &Tombstones) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(FORMAT_V1);
    let body_at = out.len();
    for (id, ivs) in t {
        for (a, b) in ivs {
            put_uvarint(&mut out, u64::from(*id));
            put_varint(&mut out, *a);
            put_varint(&mut out, *b);
        }
    }
    let sum = enc::crc(&out[body_at..]);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

pub(crate) fn decode(b: &[u8]) -> DecResult<Tombstones> {
    if b.len() < 9 {
        return enc::fail(0, format!("tombstones file too short ({} bytes)", b.len()));
    }
    let mut d = Dec::new(&b[..b.len() - 4], 0);
    let magic = d.be32()?;
    if magic != MAGIC {
        return enc::fail(0, format!("invalid tombstones magic number {magic:#x}"));
    }
    let v = d.byte()?;
    let body = &b[5..b.len() - 4];
    let want = enc::trailing_be32(b);
    if enc::crc(body) != want {
        return enc::fail((b.len() - 4) as u64, "tombstones: checksum mismatch");
    }
    if v != FORMAT_V1 {
        return enc::fail(4, format!("unsupported tombstones format version {v}"));
    }
    let mut d = Dec::new(body, 5);
    let mut out = Tombstones::new();
    while !d.is_empty() {
        let id = d.uvarint32()?;
        let a = d.varint()?;
        let z = d.varint()?;
        out.entry(id).or_default().push((a, z));
    }
    Ok(out)
}

/// Adds an interval, merging it with the ones it overlaps or touches
/// (Prometheus' `Intervals.Add`); the list stays sorted.
pub(crate) fn add_interval(ivs: &mut Vec<(i64, i64)>, iv: (i64, i64)) {
    ivs.push(iv);
    ivs.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ivs.len());
    for &(a, b) in ivs.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *ivs = out;
}

/// Whether `t` falls in one of the deleted intervals.
pub(crate) fn deleted(ivs: &[(i64, i64)], t: i64) -> bool {
    ivs.iter().any(|(a, b)| *a <= t && t <= *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_round_trip_and_an_empty_file_is_nine_bytes() {
        assert_eq!(encode(&Tombstones::new()).len(), 9);
        let mut t = Tombstones::new();
        t.insert(3, vec![(-5, 10), (20, 30)]);
        t.insert(7, vec![(i64::MIN, i64::MAX)]);
        let b = encode(&t);
        assert_eq!(decode(&b).unwrap(), t);
        let mut bad = b.clone();
        bad[6] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(deleted(&t[&3], 25) && !deleted(&t[&3], 15));
    }

    #[test]
    fn intervals_merge_when_they_overlap_or_touch() {
        let mut ivs = vec![(10, 20)];
        add_interval(&mut ivs, (30, 40));
        assert_eq!(ivs, [(10, 20), (30, 40)]);
        add_interval(&mut ivs, (21, 25));
        assert_eq!(ivs, [(10, 25), (30, 40)]);
        add_interval(&mut ivs, (0, 35));
        assert_eq!(ivs, [(0, 40)]);
        add_interval(&mut ivs, (i64::MIN, i64::MAX));
        assert_eq!(ivs, [(i64::MIN, i64::MAX)]);
    }
}
