//! The inverted index: label name → label value → sorted series refs.
//!
//! Matchers are answered from postings, never by scanning every series: an
//! `=` is one lookup, a regex iterates the values of its own label name only,
//! and a regex that is a plain alternation of literals (`a|b|c`) is turned into
//! lookups. A matcher that matches the empty string also selects series
//! *without* the label, as in Prometheus' `PostingsForMatchers`: it is applied
//! by subtracting the series whose value it rejects.

use super::intern::{Sym, Symbols};
use super::mem::{block, hashmap_bytes, IdMap};
use crate::model::{MatchType, Matcher};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Postings {
    by_name: IdMap<Sym, IdMap<Sym, Vec<u64>>>,
    /// Every series, for selections whose matchers all match the empty string.
    all: Vec<u64>,
}

/// Inserts keeping the list sorted; refs arrive almost in order, so this is
/// nearly always a push. Grows by half, not double: most lists are tiny
/// (one series per `instance` value) and doubling would waste a lot of them.
fn insert_sorted(list: &mut Vec<u64>, r: u64) {
    if list.len() == list.capacity() {
        list.reserve_exact((list.len() / 2).max(1));
    }
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(i) = list.binary_search(&r) {
                list.insert(i, r);
            }
        }
        _ => list.push(r),
    }
}

/// Adds the ascending refs `new` to sorted `list` (duplicates dropped):
/// appended when they all come after it (growing by half, as
/// [`insert_sorted`]), merged otherwise.
fn merge_sorted(list: &mut Vec<u64>, new: impl ExactSizeIterator<Item = u64>) {
    let mut new = new.peekable();
    let Some(&first) = new.peek() else { return };
    if list.last().is_none_or(|&last| last < first) {
        let k = new.len();
        if list.capacity() - list.len() < k {
            list.reserve_exact((list.len() / 2).max(k));
        }
        let mut prev = None;
        for r in new {
            if prev != Some(r) {
                list.push(r);
            }
            prev = Some(r);
        }
        return;
    }
    // Only the part of the list from the batch's first ref on is merged:
    // batches applied on several threads interleave near the list's end.
    let cut = list.partition_point(|&x| x < first);
    let old = list.split_off(cut);
    let k = old.len() + new.len();
    if list.capacity() - list.len() < k {
        list.reserve_exact((list.len() / 2).max(k));
    }
    let mut old = old.into_iter().peekable();
    loop {
        let next = match (old.peek(), new.peek()) {
            (Some(&a), Some(&b)) if a <= b => old.next(),
            (Some(_), Some(_)) | (None, Some(_)) => new.next(),
            (Some(_), None) => old.next(),
            (None, None) => break,
        };
        if let Some(r) = next {
            if list.last() != Some(&r) {
                list.push(r);
            }
        }
    }
}

/// Removes the refs in sorted `gone` from sorted `list`.
pub(crate) fn subtract<T: Ord + Copy>(list: &mut Vec<T>, gone: &[T]) {
    let mut j = 0;
    list.retain(|r| {
        while j < gone.len() && gone[j] < *r {
            j += 1;
        }
        !(j < gone.len() && gone[j] == *r)
    });
}

/// Sorted intersection; binary-searches the larger list when sizes differ a lot.
pub(crate) fn intersect<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len().saturating_mul(16) < big.len() {
        let mut lo = 0;
        for &r in small {
            match big[lo..].binary_search(&r) {
                Ok(i) => {
                    out.push(r);
                    lo += i + 1;
                }
                Err(i) => lo += i,
            }
        }
    } else {
        let (mut i, mut j) = (0, 0);
        while i < small.len() && j < big.len() {
            match small[i].cmp(&big[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.push(small[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    out
}

fn is_regex_meta(c: char) -> bool {
    "\\.+*?()[]{}^$|".contains(c)
}

/// The alternatives of a regex that is only literals joined by `|`, if it is.
fn literal_alternatives(re: &str) -> Option<std::str::Split<'_, char>> {
    (!re.chars().any(|c| c != '|' && is_regex_meta(c))).then(|| re.split('|'))
}

/// The prefix of a regex of the form `literal.*`, which (anchored, with `.`
/// matching newlines as Prometheus compiles it) is a plain prefix test.
fn literal_prefix(re: &str) -> Option<&str> {
    re.strip_suffix(".*")
        .filter(|p| !p.chars().any(is_regex_meta))
}

impl Postings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes series `r` with labels given as `[name, value, name, value, ...]`.
    pub fn add(&mut self, r: u64, labels: &[Sym]) {
        for pair in labels.chunks_exact(2) {
            let list = self
                .by_name
                .entry(pair[0])
                .or_default()
                .entry(pair[1])
                .or_default();
            insert_sorted(list, r);
        }
        insert_sorted(&mut self.all, r);
    }

    /// Indexes a batch of series (`(ref, labels)`, any order). Each touched
    /// list takes the batch's refs in one merge, so a batch whose refs fall
    /// between ones already indexed (replay applies records on several
    /// threads) costs one pass per list instead of a shift per ref.
    pub fn add_batch(&mut self, series: &[(u64, &[Sym])]) {
        let mut pairs: Vec<(Sym, Sym, u64)> = series
            .iter()
            .flat_map(|(r, l)| l.chunks_exact(2).map(move |p| (p[0], p[1], *r)))
            .collect();
        pairs.sort_unstable();
        for group in pairs.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (n, v, _) = group[0];
            let list = self.by_name.entry(n).or_default().entry(v).or_default();
            merge_sorted(list, group.iter().map(|g| g.2));
        }
        let mut all: Vec<u64> = series.iter().map(|(r, _)| *r).collect();
        all.sort_unstable();
        merge_sorted(&mut self.all, all.into_iter());
    }

    /// Unindexes a batch of series in one pass per touched list, so dropping
    /// many series of a big list (`job="node"`) is not quadratic.
    pub fn remove<'a>(&mut self, removed: impl IntoIterator<Item = (u64, &'a [Sym])>) {
        let mut by_key: HashMap<(Sym, Sym), Vec<u64>> = HashMap::new();
        let mut all_gone = Vec::new();
        for (r, labels) in removed {
            for pair in labels.chunks_exact(2) {
                by_key.entry((pair[0], pair[1])).or_default().push(r);
            }
            all_gone.push(r);
        }
        for ((n, v), mut gone) in by_key {
            gone.sort_unstable();
            let Some(values) = self.by_name.get_mut(&n) else {
                continue;
            };
            if let Some(list) = values.get_mut(&v) {
                subtract(list, &gone);
                if list.is_empty() {
                    values.remove(&v);
                } else if list.capacity() > list.len() * 2 {
                    list.shrink_to_fit();
                }
            }
            if values.is_empty() {
                self.by_name.remove(&n);
            }
        }
        all_gone.sort_unstable();
        subtract(&mut self.all, &all_gone);
    }

    /// Label name ids present in the index.
    pub fn names(&self) -> impl Iterator<Item = Sym> + '_ {
        self.by_name.keys().copied()
    }

    /// Value ids of one label name.
    pub fn values(&self, name: Sym) -> impl Iterator<Item = Sym> + '_ {
        self.by_name
            .get(&name)
            .into_iter()
            .flat_map(|m| m.keys().copied())
    }

    /// Every (name, value, series count) triple, for cardinality reports.
    pub fn pair_counts(&self) -> impl Iterator<Item = (Sym, Sym, usize)> + '_ {
        self.by_name
            .iter()
            .flat_map(|(n, vals)| vals.iter().map(move |(v, list)| (*n, *v, list.len())))
    }

    #[cfg(test)]
    pub fn num_series(&self) -> usize {
        self.all.len()
    }

    /// Sorted refs of the series that satisfy every matcher.
    pub fn select(&self, matchers: &[Matcher], syms: &Symbols) -> Vec<u64> {
        let mut positive: Vec<Vec<u64>> = Vec::new();
        let mut negative: Vec<Vec<u64>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                let rejected = self.union_where(m, syms, false);
                if !rejected.is_empty() {
                    negative.push(rejected);
                }
            } else {
                let accepted = self.union_where(m, syms, true);
                if accepted.is_empty() {
                    return Vec::new();
                }
                positive.push(accepted);
            }
        }
        positive.sort_by_key(Vec::len);
        let mut iter = positive.into_iter();
        let mut result = match iter.next() {
            Some(first) => iter.fold(first, |acc, p| intersect(&acc, &p)),
            None => self.all.clone(),
        };
        for n in &negative {
            if result.is_empty() {
                break;
            }
            subtract(&mut result, n);
        }
        result
    }

    /// Union of the postings of `m.name`'s values `v` with `m.matches(v) == want`.
    fn union_where(&self, m: &Matcher, syms: &Symbols, want: bool) -> Vec<u64> {
        let Some(values) = syms.lookup(&m.name).and_then(|n| self.by_name.get(&n)) else {
            return Vec::new();
        };
        let list_of = |s: &str| syms.lookup(s).and_then(|v| values.get(&v));
        let mut lists: Vec<&Vec<u64>> = Vec::new();
        match (m.kind, want) {
            (MatchType::Equal, true) | (MatchType::NotEqual, false) => {
                lists.extend(list_of(&m.value));
            }
            (MatchType::RegexMatch, true) | (MatchType::RegexNoMatch, false)
                if literal_alternatives(&m.value).is_some() =>
            {
                let mut alts: Vec<&str> = literal_alternatives(&m.value)
                    .into_iter()
                    .flatten()
                    .collect();
                alts.sort_unstable();
                alts.dedup();
                lists.extend(alts.into_iter().filter_map(list_of));
            }
            _ => {
                let prefix = match m.kind {
                    MatchType::RegexMatch | MatchType::RegexNoMatch => literal_prefix(&m.value),
                    _ => None,
                };
                let negated = m.kind == MatchType::RegexNoMatch;
                for (v, list) in values {
                    let Some(s) = syms.resolve(*v) else { continue };
                    let hit = match prefix {
                        Some(p) => s.starts_with(p) != negated,
                        None => m.matches(s),
                    };
                    if hit == want {
                        lists.push(list);
                    }
                }
            }
        }
        match lists.as_slice() {
            [] => Vec::new(),
            [one] => one.to_vec(),
            _ => {
                // Lists of one name's values are disjoint: a series has one value.
                let mut out: Vec<u64> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
                for l in lists {
                    out.extend_from_slice(l);
                }
                out.sort_unstable();
                out
            }
        }
    }

    /// Estimated heap bytes of the maps and lists.
    pub fn memory_bytes(&self) -> usize {
        let inner: usize = self
            .by_name
            .values()
            .map(|vals| {
                hashmap_bytes::<Sym, Vec<u64>>(vals.capacity())
                    + vals
                        .values()
                        .map(|l| block(l.capacity() * 8))
                        .sum::<usize>()
            })
            .sum();
        hashmap_bytes::<Sym, IdMap<Sym, Vec<u64>>>(self.by_name.capacity())
            + inner
            + block(self.all.capacity() * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), [3, 7]);
        let big: Vec<u64> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), [5, 500]);
        let mut l = vec![1, 2, 3, 4, 5];
        subtract(&mut l, &[0, 2, 5, 6]);
        assert_eq!(l, [1, 3, 4]);
        let mut l = vec![];
        for r in [5, 1, 3, 3, 9] {
            insert_sorted(&mut l, r);
        }
        assert_eq!(l, [1, 3, 5, 9]);
    }

    #[test]
    fn batches_merge_into_sorted_lists() {
        let mut syms = Symbols::new();
        let (job, a, b) = (syms.acquire("job"), syms.acquire("a"), syms.acquire("b"));
        let (la, lb) = ([job, a], [job, b]);
        let mut p = Postings::new();
        p.add(4, &la);
        // Appended, interleaved, duplicated and unordered refs.
        p.add_batch(&[(10, &la[..]), (6, &lb[..]), (2, &la[..]), (4, &la[..])]);
        p.add_batch(&[(8, &lb[..]), (12, &la[..])]);
        let m = |v: &str| Matcher::new(MatchType::Equal, "job", v).unwrap();
        assert_eq!(p.select(&[m("a")], &syms), [2, 4, 10, 12]);
        assert_eq!(p.select(&[m("b")], &syms), [6, 8]);
        assert_eq!(p.num_series(), 6);
        let mut l = vec![1, 5];
        merge_sorted(&mut l, [0, 1, 3, 7, 7].into_iter());
        assert_eq!(l, [0, 1, 3, 5, 7]);
        merge_sorted(&mut l, [9, 9, 11].into_iter());
        assert_eq!(l, [0, 1, 3, 5, 7, 9, 11]);
        // Into the middle: only the tail from the first new ref moves.
        merge_sorted(&mut l, [5, 6, 8, 8, 12].into_iter());
        assert_eq!(l, [0, 1, 3, 5, 6, 7, 8, 9, 11, 12]);
        merge_sorted(&mut l, [2].into_iter());
        assert_eq!(l, [0, 1, 2, 3, 5, 6, 7, 8, 9, 11, 12]);
    }

    #[test]
    fn literal_detection() {
        let alts: Vec<&str> = literal_alternatives("a|b-c|d_e")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(alts, ["a", "b-c", "d_e"]);
        assert!(literal_alternatives("a.*").is_none());
        assert!(literal_alternatives("(?i)a").is_none());
        assert_eq!(literal_prefix("host-1.*"), Some("host-1"));
        assert_eq!(literal_prefix(".*"), Some(""));
        assert_eq!(literal_prefix("a|b.*"), None);
        assert_eq!(literal_prefix("a.b.*"), None);
    }

    #[test]
    fn removal_drops_empty_entries() {
        let mut syms = Symbols::new();
        let mut p = Postings::new();
        let a = [syms.acquire("job"), syms.acquire("x")];
        let b = [syms.acquire("job"), syms.acquire("y")];
        p.add(1, &a);
        p.add(2, &b);
        p.remove([(1, &a[..])]);
        assert_eq!(p.values(a[0]).collect::<Vec<_>>(), [b[1]]);
        p.remove([(2, &b[..])]);
        assert_eq!(p.names().count(), 0);
        assert_eq!(p.num_series(), 0);
    }
}
