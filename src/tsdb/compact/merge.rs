//! Block merges series by series, as Prometheus' `populateBlock`: a
//! chunk that lies inside the new block, is not cut by a tombstone and
//! overlaps no other parent's chunk of the same series is copied as it is;
//! only overlapping or partly deleted chunks are decoded, merged and
//! encoded again.

use super::SAMPLES_PER_CHUNK;
use crate::model::Labels;
use crate::tsdb::block::{
    self, Block, BlockError, BlockSeries, ChunkCursor, ChunkMeta, Decoded, EncodedChunk,
    IndexSeries,
};
use crate::tsdb::storage::{merge_by_time, merge_samples};
use std::sync::Arc;

/// Chunks a merge copied and chunks it decoded to merge or trim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub copied: u64,
    pub reencoded: u64,
}

/// A parent block failed its checks while being read: its position in
/// the parents and the error.
pub(super) struct Damage {
    pub parent: usize,
    pub error: BlockError,
}

/// One chunk of a series in a parent.
struct Piece<'a> {
    parent: usize,
    meta: ChunkMeta,
    /// The series' deleted intervals in that parent.
    ivs: &'a [(i64, i64)],
    /// Inside the new block and not touched by a tombstone.
    whole: bool,
}

/// Merges the series of `parents` over `[mint, maxt)`, tombstones
/// applied; on equal timestamps in overlapping chunks the earlier parent
/// wins.
pub(super) fn merge_blocks(
    parents: &[Arc<Block>],
    mint: i64,
    maxt: i64,
) -> Result<(Vec<BlockSeries>, MergeStats), Damage> {
    let damage = |parent| move |error| Damage { parent, error };
    let mut lists: Vec<Vec<(u32, IndexSeries)>> = Vec::with_capacity(parents.len());
    for (i, b) in parents.iter().enumerate() {
        lists.push(b.all_series().map_err(damage(i))?);
    }
    let stones: Vec<_> = parents.iter().map(|b| b.tombstones()).collect();
    let mut cursors: Vec<ChunkCursor<'_>> = parents.iter().map(|b| b.chunk_cursor()).collect();
    let mut pos = vec![0usize; parents.len()];
    let mut out = Vec::new();
    let mut stats = MergeStats::default();
    loop {
        // The smallest label set among the parents' next series.
        let mut next: Option<&Labels> = None;
        for (list, &p) in lists.iter().zip(&pos) {
            if let Some((_, s)) = list.get(p) {
                if next.is_none_or(|n| s.labels < *n) {
                    next = Some(&s.labels);
                }
            }
        }
        let Some(labels) = next.cloned() else {
            break;
        };
        let mut pieces = Vec::new();
        for (i, list) in lists.iter().enumerate() {
            let Some((id, s)) = list.get(pos[i]).filter(|(_, s)| s.labels == labels) else {
                continue;
            };
            pos[i] += 1;
            let ivs = stones[i].get(id).map(Vec::as_slice).unwrap_or(&[]);
            for c in &s.chunks {
                let outside = c.max_time < mint || c.min_time >= maxt;
                let gone = ivs
                    .iter()
                    .any(|(a, b)| *a <= c.min_time && c.max_time <= *b);
                if outside || gone {
                    continue;
                }
                let cut = ivs
                    .iter()
                    .any(|(a, b)| *a <= c.max_time && c.min_time <= *b);
                pieces.push(Piece {
                    parent: i,
                    meta: *c,
                    ivs,
                    whole: !cut && c.min_time >= mint && c.max_time < maxt,
                });
            }
        }
        // Stable: a parent's chunks keep their order.
        pieces.sort_by_key(|p| (p.meta.min_time, p.parent));
        let mut chunks = Vec::new();
        let mut i = 0;
        while i < pieces.len() {
            let mut end = pieces[i].meta.max_time;
            let mut j = i + 1;
            while j < pieces.len() && pieces[j].meta.min_time <= end {
                end = end.max(pieces[j].meta.max_time);
                j += 1;
            }
            let run = &pieces[i..j];
            i = j;
            if let [p] = run {
                if p.whole {
                    let (encoding, data) =
                        cursors[p.parent].raw(&p.meta).map_err(damage(p.parent))?;
                    chunks.push(EncodedChunk {
                        encoding,
                        min_time: p.meta.min_time,
                        max_time: p.meta.max_time,
                        data: data.to_vec(),
                    });
                    stats.copied += 1;
                    continue;
                }
            }
            let mut merged = Vec::new();
            let mut merged_hist = Vec::new();
            for (parent, cursor) in cursors.iter_mut().enumerate() {
                let mut samples = Vec::new();
                let mut hists = Vec::new();
                for p in run.iter().filter(|p| p.parent == parent) {
                    let keep = |t: i64| t >= mint && t < maxt && !block::deleted(p.ivs, t);
                    match cursor.samples(&p.meta).map_err(damage(parent))? {
                        Decoded::Floats(d) => samples.extend(d.into_iter().filter(|s| keep(s.0))),
                        Decoded::Histograms(d) => hists.extend(d.into_iter().filter(|s| keep(s.0))),
                    }
                }
                merged = merge_samples(merged, samples);
                merged_hist = merge_by_time(merged_hist, hists);
            }
            stats.reencoded += run.len() as u64;
            chunks.extend(block::encode_series(
                &merged,
                &merged_hist,
                SAMPLES_PER_CHUNK,
            ));
        }
        if !chunks.is_empty() {
            out.push(BlockSeries { labels, chunks });
        }
    }
    Ok((out, stats))
}
