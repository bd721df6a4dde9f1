//! Label sets.
//!
//! A [`Labels`] is a list of name/value pairs sorted by name with unique names,
//! the same invariant Prometheus keeps, so two equal sets compare and hash equal
//! regardless of the order they were written in.

use std::fmt;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of labels with unique names. Empty values are not stored: as in
/// Prometheus, a label with an empty value is the same as an absent label.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The label set as the JSON object Prometheus' and Alertmanager's APIs
    /// use: `{"name": "value"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.iter()
                .map(|x| (x.name.clone(), serde_json::Value::String(x.value.clone())))
                .collect(),
        )
    }

    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a set from pairs in any order. Later duplicates win; empty values
    /// are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.into(), v.into());
        }
        b.build()
    }

    /// Wraps labels that the caller guarantees are sorted, unique and non-empty.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
        Labels(v)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The value of `__name__`, or "" when there is none.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME).unwrap_or("")
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// A stable 64-bit hash of the set (xxh64 over names and values with
    /// separators), used for sharding and target offsets.
    pub fn hash64(&self) -> u64 {
        hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// A 128-bit hash of the set over the same bytes as [`Self::hash64`]
    /// (xxh3), for caches keyed by the hash alone, where 64 bits would
    /// risk a collision among millions of sets.
    pub fn hash128(&self) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        feed_pairs(
            self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            |b| h.update(b),
        );
        h.digest128()
    }

    /// Go's `labels.Labels.String()` as Prometheus 3 writes it: every
    /// label in braces, `__name__` included, values Go-quoted and names
    /// outside the legacy set quoted too: `{__name__="a.b", "my.l"="x"}`.
    pub fn go_string(&self) -> String {
        use crate::model::gofmt::{go_quote, is_legacy_label_name};
        let mut out = String::from("{");
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if is_legacy_label_name(&l.name) {
                out.push_str(&l.name);
            } else {
                out.push_str(&go_quote(&l.name));
            }
            out.push('=');
            out.push_str(&go_quote(&l.value));
        }
        out.push('}');
        out
    }

    /// A builder seeded with these labels.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.clone(),
        }
    }
}

/// [`Labels::hash64`] of a label set given as sorted `(name, value)` pairs
/// (a set held in another form hashes the same).
pub fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    feed_pairs(pairs, |b| h.update(b));
    h.digest()
}

/// The bytes both label-set hashes read: each name and value followed by
/// 0xff, which no UTF-8 text contains, so `a="bc"` and `ab="c"` differ.
fn feed_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, mut update: impl FnMut(&[u8])) {
    for (name, value) in pairs {
        update(name.as_bytes());
        update(&[0xff]);
        update(value.as_bytes());
        update(&[0xff]);
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Formats as Prometheus does: `name{a="1", b="2"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.get(METRIC_NAME);
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let rest: Vec<&Label> = self.0.iter().filter(|l| l.name != METRIC_NAME).collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, l) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"{}\"", l.name, escape_label_value(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Escapes `\`, `"` and newline the way the exposition format and PromQL expect.
pub fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// Mutable form of [`Labels`]: set and delete by name, then [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        LabelsBuilder { labels: Vec::new() }
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.labels.binary_search_by(|l| l.name.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .map(|i| self.labels[i].value.as_str())
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(i, Label { name, value }),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.position(name) {
            self.labels.remove(i);
        }
        self
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn build(self) -> Labels {
        Labels(self.labels)
    }

    /// Builds without consuming, for callers that reuse the builder.
    pub fn labels(&self) -> Labels {
        Labels(self.labels.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn go_string_quotes_names_outside_the_legacy_set() {
        let l = Labels::from_pairs([
            ("__name__", "my.metric"),
            ("job", "a\"b"),
            ("my.label", "x"),
        ]);
        assert_eq!(
            l.go_string(),
            r#"{__name__="my.metric", job="a\"b", "my.label"="x"}"#
        );
        assert_eq!(Labels::empty().go_string(), "{}");
    }

    #[test]
    fn display_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b"), ("instance", "x")]);
        assert_eq!(l.to_string(), r#"up{instance="x", job="a\"b"}"#);
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
        assert_eq!(Labels::from_pairs([("a", "1")]).to_string(), r#"{a="1"}"#);
    }

    #[test]
    fn hash_is_order_independent() {
        let a = Labels::from_pairs([("x", "1"), ("y", "2")]);
        let b = Labels::from_pairs([("y", "2"), ("x", "1")]);
        assert_eq!(a.hash64(), b.hash64());
        assert_ne!(a.hash64(), Labels::from_pairs([("x", "12")]).hash64());
    }
}
