//! A series' references to its chunks in the head chunk files, packed.
//!
//! Every full chunk written out leaves a file reference and a time span in
//! memory for as long as the head holds it; as [`MappedChunk`]s that is 24
//! bytes per chunk, the largest part of the head's growth per sample. The
//! list here keeps them as varints, newest last:
//!
//! * the newest chunk (the anchor) as `mint`, `maxt - mint` and its file
//!   reference, absolute;
//! * every older chunk as its distance to the next newer one: the reference
//!   delta, the gap from its `maxt` to the newer `mint`, and its length
//!   `maxt - mint`; gap and length are left out (a flag bit) when they equal
//!   the newer chunk's, as they do for regularly scraped series.
//!
//! Each varint is little-endian base 128 (LEB128), whose last byte is the
//! only one without the high bit, so the list reads backwards from the end:
//! the newest chunks, which queries over recent data want, are decoded
//! first and a lookup stops at the first chunk older than its range. A
//! regular series costs about 4 bytes per chunk.

use super::head_chunks::MappedChunk;

/// Gap to the newer chunk equals the newer chunk's own gap.
const SAME_GAP: u128 = 1;
/// Length equals the newer chunk's.
const SAME_LEN: u128 = 2;
const FLAG_BITS: u32 = 2;

/// A series' chunks in the head chunk files, oldest first (see the module
/// docs for the layout).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MappedList {
    bytes: Box<[u8]>,
}

impl MappedList {
    /// Packs `chunks` (oldest first).
    pub fn from_chunks(chunks: &[MappedChunk]) -> MappedList {
        let Some(newest) = chunks.last() else {
            return MappedList::default();
        };
        let mut out = Vec::with_capacity(chunks.len() * 5 + 16);
        // Entry `i` is read after entry `i + 1`, so it may refer to that
        // one's gap and length.
        let gap = |i: usize| i128::from(chunks[i + 1].mint) - i128::from(chunks[i].maxt);
        let len = |c: &MappedChunk| i128::from(c.maxt) - i128::from(c.mint);
        for (i, w) in chunks.windows(2).enumerate() {
            let (c, newer) = (&w[0], &w[1]);
            let mut flags = 0;
            if i + 2 < chunks.len() && gap(i + 1) == gap(i) {
                flags |= SAME_GAP;
            } else {
                put(&mut out, zigzag(gap(i)));
            }
            if len(c) == len(newer) {
                flags |= SAME_LEN;
            } else {
                put(&mut out, zigzag(len(c)));
            }
            let dref = i128::from(newer.r) - i128::from(c.r);
            put(&mut out, zigzag(dref) << FLAG_BITS | flags);
        }
        put(&mut out, zigzag(i128::from(newest.mint)));
        put(&mut out, zigzag(len(newest)));
        put(&mut out, u128::from(newest.r));
        MappedList {
            bytes: out.into_boxed_slice(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of chunks (decodes the whole list).
    pub fn len(&self) -> usize {
        self.iter_rev().count()
    }

    /// Heap bytes of the packed list.
    pub fn packed_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The newest chunk (reads only the anchor).
    pub fn last(&self) -> Option<MappedChunk> {
        self.iter_rev().next()
    }

    /// The oldest chunk (decodes the whole list).
    pub fn first(&self) -> Option<MappedChunk> {
        self.iter_rev().last()
    }

    /// Chunks newest first.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            bytes: &self.bytes,
            end: self.bytes.len(),
            newer: None,
        }
    }

    /// Every chunk, oldest first.
    pub fn to_vec(&self) -> Vec<MappedChunk> {
        let mut v: Vec<MappedChunk> = self.iter_rev().collect();
        v.reverse();
        v
    }

    /// Chunks overlapping `[mint, maxt]`, oldest first; decodes only the
    /// chunks from the newest back to the first one ending before `mint`.
    pub fn overlapping(&self, mint: i64, maxt: i64) -> Vec<MappedChunk> {
        let mut v: Vec<MappedChunk> = self
            .iter_rev()
            .take_while(|m| m.maxt >= mint)
            .filter(|m| m.mint <= maxt)
            .collect();
        v.reverse();
        v
    }

    /// Appends chunks newer than every one held.
    pub fn extend(&mut self, add: &[MappedChunk]) {
        if add.is_empty() {
            return;
        }
        let mut v = self.to_vec();
        v.extend_from_slice(add);
        *self = MappedList::from_chunks(&v);
    }

    /// Appends those of `chunks` (oldest first, as read back from the
    /// files) that are newer than every chunk held and end before `before`
    /// (the oldest sample held in memory); returns them.
    pub fn restore(&mut self, chunks: Vec<MappedChunk>, before: i64) -> Vec<MappedChunk> {
        let mut last = self.last().map_or(i64::MIN, |m| m.maxt);
        let mut add = Vec::new();
        for c in chunks {
            if c.mint > last && c.maxt < before {
                last = c.maxt;
                add.push(c);
            }
        }
        self.extend(&add);
        add
    }

    /// Drops the oldest chunks whose `maxt` is before `cutoff`; returns how
    /// many went.
    pub fn truncate_before(&mut self, cutoff: i64) -> usize {
        let v = self.to_vec();
        let gone = v.iter().take_while(|m| m.maxt < cutoff).count();
        if gone > 0 {
            *self = MappedList::from_chunks(&v[gone..]);
        }
        gone
    }
}

/// Newest-first decoder over a [`MappedList`].
pub struct RevIter<'a> {
    bytes: &'a [u8],
    end: usize,
    /// The chunk decoded last and its gap to the one after it.
    newer: Option<(MappedChunk, Option<i128>)>,
}

impl RevIter<'_> {
    fn take(&mut self) -> Option<u128> {
        let (v, start) = get_back(self.bytes, self.end)?;
        self.end = start;
        Some(v)
    }
}

impl Iterator for RevIter<'_> {
    type Item = MappedChunk;

    fn next(&mut self) -> Option<MappedChunk> {
        if self.end == 0 {
            return None;
        }
        let c = match self.newer {
            None => {
                let r = self.take()?;
                let len = unzigzag(self.take()?);
                let mint = unzigzag(self.take()?);
                let c = MappedChunk {
                    r: u64::try_from(r).ok()?,
                    mint: i64::try_from(mint).ok()?,
                    maxt: i64::try_from(mint + len).ok()?,
                };
                self.newer = Some((c, None));
                c
            }
            Some((newer, newer_gap)) => {
                let head = self.take()?;
                let flags = head & ((1 << FLAG_BITS) - 1);
                let dref = unzigzag(head >> FLAG_BITS);
                let len = if flags & SAME_LEN != 0 {
                    i128::from(newer.maxt) - i128::from(newer.mint)
                } else {
                    unzigzag(self.take()?)
                };
                let gap = if flags & SAME_GAP != 0 {
                    newer_gap?
                } else {
                    unzigzag(self.take()?)
                };
                let maxt = i128::from(newer.mint) - gap;
                let c = MappedChunk {
                    r: u64::try_from(i128::from(newer.r) - dref).ok()?,
                    mint: i64::try_from(maxt - len).ok()?,
                    maxt: i64::try_from(maxt).ok()?,
                };
                self.newer = Some((c, Some(gap)));
                c
            }
        };
        Some(c)
    }
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(v: u128) -> i128 {
    (v >> 1) as i128 ^ -((v & 1) as i128)
}

fn put(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The varint ending at `end` and where it starts.
fn get_back(bytes: &[u8], end: usize) -> Option<(u128, usize)> {
    let last = end.checked_sub(1)?;
    if bytes[last] & 0x80 != 0 {
        return None;
    }
    let mut start = last;
    while start > 0 && bytes[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    let mut v: u128 = 0;
    for (i, b) in bytes[start..end].iter().enumerate() {
        let shift = 7 * i as u32;
        if shift >= 128 {
            return None;
        }
        v |= u128::from(b & 0x7f) << shift;
    }
    Some((v, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mc(r: u64, mint: i64, maxt: i64) -> MappedChunk {
        MappedChunk { r, mint, maxt }
    }

    /// Regular chunks: 120 samples 15 s apart, written to the files in
    /// rounds with other series' chunks between.
    fn regular(n: usize) -> Vec<MappedChunk> {
        (0..n as i64)
            .map(|i| {
                let mint = 1_700_000_000_000 + i * 120 * 15_000;
                mc(
                    (3 + i as u64 / 50) << 32 | (8 + (i as u64 % 50) * 2_000_000),
                    mint,
                    mint + 119 * 15_000,
                )
            })
            .collect()
    }

    #[test]
    fn round_trips_and_packs_regular_chunks_small() {
        for n in [0, 1, 2, 3, 10, 120] {
            let v = regular(n);
            let l = MappedList::from_chunks(&v);
            assert_eq!(l.to_vec(), v, "{n} chunks");
            assert_eq!(l.len(), n);
            assert_eq!(l.first(), v.first().copied());
            assert_eq!(l.last(), v.last().copied());
        }
        let l = MappedList::from_chunks(&regular(120));
        // Anchor ~20 bytes, then the reference delta and flags per chunk.
        assert!(
            l.packed_bytes() <= 20 + 119 * 5,
            "{} bytes",
            l.packed_bytes()
        );
    }

    #[test]
    fn round_trips_irregular_and_extreme_values() {
        let v = vec![
            mc(0, i64::MIN, i64::MIN + 5),
            mc(u64::MAX, -10, -10),
            mc(7, -9, i64::MAX - 1),
            mc(1 << 40, i64::MAX, i64::MAX),
        ];
        assert_eq!(MappedList::from_chunks(&v).to_vec(), v);
        // Gaps and lengths that change, repeat, then change back.
        let w = vec![
            mc(10, 0, 100),
            mc(20, 110, 210),
            mc(30, 220, 320),
            mc(25, 330, 331),
            mc(40, 1000, 1100),
            mc(50, 1110, 1210),
        ];
        assert_eq!(MappedList::from_chunks(&w).to_vec(), w);
    }

    #[test]
    fn overlapping_extend_and_truncate() {
        let v = regular(10);
        let mut l = MappedList::default();
        l.extend(&v[..3]);
        l.extend(&[]);
        l.extend(&v[3..]);
        assert_eq!(l.to_vec(), v);
        let span = |a: usize, b: usize| l.overlapping(v[a].mint + 1, v[b].mint);
        assert_eq!(span(2, 4), v[2..=4].to_vec());
        assert_eq!(l.overlapping(v[9].maxt + 1, i64::MAX), []);
        assert_eq!(l.overlapping(i64::MIN, v[0].mint - 1), []);
        assert_eq!(l.overlapping(i64::MIN, i64::MAX), v);
        assert_eq!(l.truncate_before(v[3].maxt), 3);
        assert_eq!(l.to_vec(), v[3..].to_vec());
        assert_eq!(l.truncate_before(i64::MIN), 0);
        assert_eq!(l.truncate_before(i64::MAX), 7);
        assert!(l.is_empty());
        assert_eq!(l.last(), None);
    }
}
