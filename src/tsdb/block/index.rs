//! The block `index` file, format version 2 as Prometheus 2.x writes it:
//! symbol table, series (16-byte aligned, id = offset / 16) with their
//! chunk metas, one label index per label name and its offset table (2.42
//! still writes them), postings (the all-series list under the empty
//! name/value first) and the postings offset table, then the TOC.

use super::enc::{
    self, pad, put_section, put_str, put_uvarint, put_varint, Dec, DecError, DecResult,
};
use crate::model::{Label, Labels};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const MAGIC: u32 = 0xBAAA_D700;
pub(crate) const FORMAT_V2: u8 = 2;
const TOC_LEN: usize = 6 * 8 + 4;
const HEADER_LEN: usize = 5;

/// Where one chunk of a series is, and the time range it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    /// `segment index << 32 | offset` in `chunks/`.
    pub r#ref: u64,
}

/// Builds an index file in memory. Series must come sorted by label set.
pub(crate) fn write_index(series: &[(Labels, Vec<ChunkMeta>)]) -> Result<Vec<u8>, String> {
    // The empty string is always a symbol, as in blocks Prometheus writes
    // from its head (the all-postings key), so symbol numbers match.
    let mut symbols: BTreeSet<&str> = BTreeSet::from([""]);
    for (ls, _) in series {
        for l in ls.iter() {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    let sym_ix: BTreeMap<&str, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();

    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.push(FORMAT_V2);

    // Symbol table.
    let toc_symbols = out.len() as u64;
    let mut body = Vec::new();
    body.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
    for s in &symbols {
        put_str(&mut body, s);
    }
    put_section(&mut out, &body);

    // Series.
    let toc_series = out.len() as u64;
    // name → value → series ids
    let mut postings: BTreeMap<&str, BTreeMap<&str, Vec<u32>>> = BTreeMap::new();
    let mut all = Vec::with_capacity(series.len());
    let mut prev: Option<&Labels> = None;
    for (ls, chunks) in series {
        if prev.is_some_and(|p| p >= ls) {
            return Err(format!("series out of order or duplicate: {ls:?}"));
        }
        prev = Some(ls);
        pad(&mut out, 16);
        let id = u32::try_from(out.len() / 16)
            .map_err(|_| "index too large: series id exceeds 32 bits".to_string())?;
        all.push(id);
        let mut b = Vec::new();
        put_uvarint(&mut b, ls.len() as u64);
        for l in ls.iter() {
            put_uvarint(&mut b, u64::from(sym_ix[l.name.as_str()]));
            put_uvarint(&mut b, u64::from(sym_ix[l.value.as_str()]));
            postings
                .entry(&l.name)
                .or_default()
                .entry(&l.value)
                .or_default()
                .push(id);
        }
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some(c0) = chunks.first() {
            put_varint(&mut b, c0.min_time);
            put_uvarint(&mut b, c0.max_time.wrapping_sub(c0.min_time) as u64);
            put_uvarint(&mut b, c0.r#ref);
            let (mut t0, mut r0) = (c0.max_time, c0.r#ref as i64);
            for c in &chunks[1..] {
                put_uvarint(&mut b, c.min_time.wrapping_sub(t0) as u64);
                put_uvarint(&mut b, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut b, (c.r#ref as i64).wrapping_sub(r0));
                t0 = c.max_time;
                r0 = c.r#ref as i64;
            }
        }
        put_uvarint(&mut out, b.len() as u64);
        out.extend_from_slice(&b);
        out.extend_from_slice(&enc::crc(&b).to_be_bytes());
    }

    // Label indices: one per name, values as symbol numbers.
    let toc_label_indices = out.len() as u64;
    let mut label_index_offsets = Vec::new();
    for (name, values) in &postings {
        pad(&mut out, 4);
        label_index_offsets.push((*name, out.len() as u64));
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&(values.len() as u32).to_be_bytes());
        for v in values.keys() {
            b.extend_from_slice(&sym_ix[v].to_be_bytes());
        }
        put_section(&mut out, &b);
    }

    // Postings, the all-series list first.
    let toc_postings = out.len() as u64;
    let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::new();
    let mut put_postings = |out: &mut Vec<u8>, name, value, ids: &[u32]| {
        pad(out, 4);
        postings_offsets.push((name, value, out.len() as u64));
        let mut b = Vec::with_capacity(4 + 4 * ids.len());
        b.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            b.extend_from_slice(&id.to_be_bytes());
        }
        put_section(out, &b);
    };
    put_postings(&mut out, "", "", &all);
    for (name, values) in &postings {
        for (value, ids) in values {
            put_postings(&mut out, name, value, ids);
        }
    }

    let toc_label_table = out.len() as u64;
    let mut b = Vec::new();
    b.extend_from_slice(&(label_index_offsets.len() as u32).to_be_bytes());
    for (name, off) in &label_index_offsets {
        put_uvarint(&mut b, 1);
        put_str(&mut b, name);
        put_uvarint(&mut b, *off);
    }
    put_section(&mut out, &b);

    let toc_postings_table = out.len() as u64;
    let mut b = Vec::new();
    b.extend_from_slice(&(postings_offsets.len() as u32).to_be_bytes());
    for (name, value, off) in &postings_offsets {
        put_uvarint(&mut b, 2);
        put_str(&mut b, name);
        put_str(&mut b, value);
        put_uvarint(&mut b, *off);
    }
    put_section(&mut out, &b);

    let toc_at = out.len();
    for x in [
        toc_symbols,
        toc_series,
        toc_label_indices,
        toc_label_table,
        toc_postings,
        toc_postings_table,
    ] {
        out.extend_from_slice(&x.to_be_bytes());
    }
    let sum = enc::crc(&out[toc_at..]);
    out.extend_from_slice(&sum.to_be_bytes());
    Ok(out)
}

/// One series read from the index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSeries {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// A parsed index file. The file stays in memory; symbols and the postings
/// offset table are decoded once, series and postings on demand (each
/// checked against its CRC when read).
pub(crate) struct IndexReader {
    data: Vec<u8>,
    symbols: Vec<String>,
    /// name → sorted (value, postings offset).
    postings: BTreeMap<String, Vec<(String, u64)>>,
}

impl IndexReader {
    pub fn new(data: Vec<u8>) -> DecResult<IndexReader> {
        let mut d = Dec::new(&data, 0);
        if data.len() < HEADER_LEN + TOC_LEN {
            return d.err(format!("index too short ({} bytes)", data.len()));
        }
        let magic = d.be32()?;
        if magic != MAGIC {
            return enc::fail(0, format!("invalid index magic number {magic:#x}"));
        }
        let version = d.byte()?;
        if version != FORMAT_V2 {
            return enc::fail(
                4,
                format!("unsupported index format version {version} (only 2 is read)"),
            );
        }
        let toc_at = data.len() - TOC_LEN;
        let mut t = Dec::new(&data[toc_at..], toc_at as u64);
        let body = t.bytes(48)?;
        let want = t.be32()?;
        if enc::crc(body) != want {
            return enc::fail(toc_at as u64, "table of contents: checksum mismatch");
        }
        let mut t = Dec::new(body, toc_at as u64);
        let symbols_at = t.be64()?;
        let _series = t.be64()?;
        let _label_indices = t.be64()?;
        let _label_table = t.be64()?;
        let _postings = t.be64()?;
        let postings_table_at = t.be64()?;

        let mut symbols = Vec::new();
        if symbols_at != 0 {
            let mut s = enc::section(&data, symbols_at, "symbol table")?;
            let n = s.be32()?;
            let mut prev: Option<&str> = None;
            for _ in 0..n {
                let at = s.offset();
                let x = s.str()?;
                if prev.is_some_and(|p| p >= x) {
                    return Err(DecError {
                        offset: at,
                        msg: "symbol table: symbols not sorted".into(),
                    });
                }
                prev = Some(x);
                symbols.push(x.to_string());
            }
        }

        let mut postings: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        if postings_table_at != 0 {
            let mut s = enc::section(&data, postings_table_at, "postings offset table")?;
            let n = s.be32()?;
            for _ in 0..n {
                let at = s.offset();
                if s.uvarint()? != 2 {
                    return Err(DecError {
                        offset: at,
                        msg: "postings offset table: unexpected key count".into(),
                    });
                }
                let name = s.str()?.to_string();
                let value = s.str()?.to_string();
                let off = s.uvarint()?;
                let list = postings.entry(name).or_default();
                if list.last().is_some_and(|(v, _)| *v >= value) {
                    return Err(DecError {
                        offset: at,
                        msg: "postings offset table: entries not sorted".into(),
                    });
                }
                list.push((value, off));
            }
        }
        Ok(IndexReader {
            data,
            symbols,
            postings,
        })
    }

    fn symbol(&self, d: &Dec<'_>, i: u32) -> DecResult<&str> {
        match self.symbols.get(i as usize) {
            Some(s) => Ok(s),
            None => d.err(format!("symbol reference {i} out of range")),
        }
    }

    /// The series with id `id` (its offset / 16).
    pub fn series(&self, id: u32) -> DecResult<IndexSeries> {
        let off = u64::from(id) * 16;
        let start = off as usize;
        let mut d = Dec::new(self.data.get(start..).unwrap_or(&[]), off);
        if start >= self.data.len() {
            return d.err("series reference beyond end of index");
        }
        let len = usize::try_from(d.uvarint()?).unwrap_or(usize::MAX);
        let body_at = d.offset();
        let body = d.bytes(len)?;
        let want = d.be32()?;
        if enc::crc(body) != want {
            return enc::fail(off, "series: checksum mismatch");
        }
        let mut d = Dec::new(body, body_at);
        let n = d.uvarint()?;
        let mut labels = Vec::with_capacity(n.min(256) as usize);
        for _ in 0..n {
            let name = d.uvarint32()?;
            let value = d.uvarint32()?;
            labels.push(Label::new(self.symbol(&d, name)?, self.symbol(&d, value)?));
        }
        if labels.windows(2).any(|w| w[0].name >= w[1].name) {
            return d.err("series: label names not sorted");
        }
        let n = d.uvarint()?;
        let mut chunks = Vec::with_capacity(n.min(4096) as usize);
        if n > 0 {
            let min_time = d.varint()?;
            let max_time = min_time.wrapping_add(d.uvarint()? as i64);
            let r = d.uvarint()?;
            chunks.push(ChunkMeta {
                min_time,
                max_time,
                r#ref: r,
            });
            let (mut t0, mut r0) = (max_time, r as i64);
            for _ in 1..n {
                let min_time = t0.wrapping_add(d.uvarint()? as i64);
                let max_time = min_time.wrapping_add(d.uvarint()? as i64);
                r0 = r0.wrapping_add(d.varint()?);
                t0 = max_time;
                chunks.push(ChunkMeta {
                    min_time,
                    max_time,
                    r#ref: r0 as u64,
                });
            }
        }
        if !d.is_empty() {
            return d.err("series: trailing bytes");
        }
        Ok(IndexSeries {
            labels: Labels::from_sorted_unchecked(labels),
            chunks,
        })
    }

    fn read_postings(&self, off: u64) -> DecResult<Vec<u32>> {
        let mut d = enc::section(&self.data, off, "postings")?;
        let n = d.be32()?;
        let mut ids = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            ids.push(d.be32()?);
        }
        if !d.is_empty() {
            return d.err("postings: trailing bytes");
        }
        Ok(ids)
    }

    /// Every series id, sorted.
    pub fn all_postings(&self) -> DecResult<Vec<u32>> {
        match self.postings.get("").and_then(|v| v.first()) {
            Some((_, off)) => self.read_postings(*off),
            None => Ok(Vec::new()),
        }
    }

    /// Sorted label names (excluding the all-postings key).
    pub fn label_names(&self) -> Vec<String> {
        self.postings
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }

    /// Sorted values of a label name.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        if name.is_empty() {
            return Vec::new();
        }
        self.postings
            .get(name)
            .map(|v| v.iter().map(|(v, _)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// Union of the postings of `name`'s values that `keep` accepts.
    pub fn postings_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> DecResult<Vec<u32>> {
        let mut out: Vec<u32> = Vec::new();
        if name.is_empty() {
            return Ok(out);
        }
        let Some(values) = self.postings.get(name) else {
            return Ok(out);
        };
        let mut lists = 0;
        for (v, off) in values {
            if keep(v) {
                out.extend(self.read_postings(*off)?);
                lists += 1;
            }
        }
        if lists > 1 {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    /// Every postings section, for a full check.
    pub fn postings_offsets(&self) -> impl Iterator<Item = u64> + '_ {
        self.postings.values().flatten().map(|(_, off)| *off)
    }

    pub fn check_postings(&self, off: u64) -> DecResult<Vec<u32>> {
        self.read_postings(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn an_index_round_trips_series_postings_and_label_values() {
        let series = vec![
            (
                l(&[("__name__", "a"), ("job", "x")]),
                vec![
                    ChunkMeta {
                        min_time: -5,
                        max_time: 10,
                        r#ref: 8,
                    },
                    ChunkMeta {
                        min_time: 11,
                        max_time: 20,
                        r#ref: 40,
                    },
                ],
            ),
            (l(&[("__name__", "a"), ("job", "y")]), vec![]),
            (
                l(&[("__name__", "b")]),
                vec![ChunkMeta {
                    min_time: 0,
                    max_time: 0,
                    r#ref: 1 << 32 | 8,
                }],
            ),
        ];
        let data = write_index(&series).unwrap();
        let r = IndexReader::new(data).unwrap();
        let all = r.all_postings().unwrap();
        assert_eq!(all.len(), 3);
        for (id, (ls, chunks)) in all.iter().zip(&series) {
            let s = r.series(*id).unwrap();
            assert_eq!(&s.labels, ls);
            assert_eq!(&s.chunks, chunks);
        }
        assert_eq!(r.label_names(), ["__name__", "job"]);
        assert_eq!(r.label_values("job"), ["x", "y"]);
        assert_eq!(
            r.postings_where("__name__", |v| v == "a").unwrap(),
            &all[..2]
        );
        assert!(r.postings_where("nope", |_| true).unwrap().is_empty());
    }

    #[test]
    fn unsorted_series_are_refused() {
        let a = (l(&[("a", "2")]), vec![]);
        let b = (l(&[("a", "1")]), vec![]);
        assert!(write_index(&[a, b]).is_err());
    }
}
