//! The relabeling engine: applies `relabel_config` steps to a label set with
//! Prometheus' exact semantics (2.42 … 3.x), for target relabeling, metric
//! relabeling and alert relabeling alike.

use crate::config::relabel::{is_valid_label_name, Action, RelabelConfig};
use crate::model::{Labels, LabelsBuilder};
use md5::{Digest, Md5};
use regex::{Captures, Regex};

/// Applies `cfgs` in order; `None` when a step drops the label set.
///
/// An empty result (every label removed) also counts as dropped, because a
/// series or target without labels cannot exist.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut b = labels.builder();
    if !process_builder(&mut b, cfgs) {
        return None;
    }
    let out = b.build();
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// Applies `cfgs` to a builder in place (the hot path: the caller reuses the
/// builder). Returns false as soon as a step drops the labels; the builder's
/// contents are unspecified then.
pub fn process_builder(b: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    let mut joined = String::new();
    for cfg in cfgs {
        if !apply(cfg, b, &mut joined) {
            return false;
        }
    }
    true
}

/// Joins the source label values with the separator; a missing label counts
/// as the empty string.
fn join_sources(cfg: &RelabelConfig, b: &LabelsBuilder, out: &mut String) {
    out.clear();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            out.push_str(&cfg.separator);
        }
        out.push_str(b.get(name).unwrap_or(""));
    }
}

fn apply(cfg: &RelabelConfig, b: &mut LabelsBuilder, val: &mut String) -> bool {
    // Actions that only look at label names need no joined value.
    match cfg.action {
        Action::LabelMap => {
            label_map(cfg, b);
            return true;
        }
        Action::LabelDrop => {
            b.retain(|l| !cfg.regex.is_match(&l.name));
            return true;
        }
        Action::LabelKeep => {
            b.retain(|l| cfg.regex.is_match(&l.name));
            return true;
        }
        _ => {}
    }
    join_sources(cfg, b, val);
    let val = val.as_str();
    match cfg.action {
        Action::Drop => !cfg.regex.is_match(val),
        Action::Keep => cfg.regex.is_match(val),
        Action::DropEqual => b.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => b.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => {
            replace(cfg, b, val);
            true
        }
        Action::Lowercase => {
            let v: String = val.chars().flat_map(char::to_lowercase).collect();
            b.set(cfg.target_label.as_str(), v);
            true
        }
        Action::Uppercase => {
            let v: String = val.chars().flat_map(char::to_uppercase).collect();
            b.set(cfg.target_label.as_str(), v);
            true
        }
        Action::HashMod => {
            let m = hash_mod(val, cfg.modulus);
            b.set(cfg.target_label.as_str(), m.to_string());
            true
        }
        Action::LabelMap | Action::LabelDrop | Action::LabelKeep => true,
    }
}

/// md5 of the value, last 8 bytes as a big-endian integer, modulo `modulus`
/// (identical to upstream so sharding decisions agree with Prometheus).
pub fn hash_mod(val: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(val.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..16]);
    let n = u64::from_be_bytes(tail);
    n.checked_rem(modulus).unwrap_or(0)
}

fn replace(cfg: &RelabelConfig, b: &mut LabelsBuilder, val: &str) {
    let re = cfg.regex.regex();
    let Some(caps) = re.captures(val) else {
        return;
    };
    // A literal target was validated when the config was loaded; only a
    // templated one needs expanding and re-checking per label set.
    let target = if cfg.target_label.contains('$') {
        let mut t = String::new();
        expand(re, &caps, &cfg.target_label, &mut t);
        if !is_valid_label_name(&t) {
            return;
        }
        t
    } else {
        cfg.target_label.clone()
    };
    let mut res = String::new();
    expand(re, &caps, &cfg.replacement, &mut res);
    // An empty result removes the target label (a builder set to "" deletes).
    if res.is_empty() {
        b.del(&target);
    } else {
        b.set(target, res);
    }
}

fn label_map(cfg: &RelabelConfig, b: &mut LabelsBuilder) {
    // Iterate over a snapshot: labels added by this step are not themselves
    // re-mapped, as upstream ranges over the set as it was before the step.
    let snapshot: Vec<(String, String)> = b
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    let re = cfg.regex.regex();
    let mut name = String::new();
    for (n, v) in snapshot {
        if let Some(caps) = re.captures(&n) {
            // The regex is anchored, so replacing "all" matches is one
            // expansion of the template.
            name.clear();
            expand(re, &caps, &cfg.replacement, &mut name);
            // `$1` can still expand to a name starting with a digit: such a
            // label is skipped, as `replace` skips an invalid target.
            if crate::config::relabel::is_valid_label_name(&name) {
                b.set(name.as_str(), v);
            }
        }
    }
}

/// Expands `$1`, `${1}`, `$name`, `${name}` and `$$` in `template` exactly like
/// Go's `regexp.Expand`: a name is the longest run of letters, digits and
/// `_` (so `$1x` means the group named `1x`, which is empty), an unknown or
/// unmatched group expands to nothing, a malformed reference keeps its `$`.
pub fn expand(re: &Regex, caps: &Captures<'_>, template: &str, dst: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        dst.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            dst.push('$');
            rest = r;
            continue;
        }
        match extract(rest) {
            None => dst.push('$'),
            Some((name, num, after)) => {
                rest = after;
                let m = match num {
                    Some(n) => caps.get(n),
                    None => re
                        .capture_names()
                        .position(|x| x == Some(name))
                        .and_then(|i| caps.get(i)),
                };
                if let Some(m) = m {
                    dst.push_str(m.as_str());
                }
            }
        }
    }
    dst.push_str(rest);
}

/// Parses a reference after `$`: `name` or `{name}`. Returns the name, its
/// group number if it is a plain decimal without leading zero, and the rest.
fn extract(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut after = &body[end..];
    if brace {
        after = after.strip_prefix('}')?;
    }
    let num = if name.bytes().all(|c| c.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'))
        && name.len() <= 9
    {
        name.parse::<usize>().ok()
    } else {
        None
    };
    Some((name, num, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(action: Action) -> RelabelConfig {
        RelabelConfig {
            action,
            ..RelabelConfig::default()
        }
    }

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    /// Relabel configs from YAML, through the config's own validation, so
    /// the tables below read like the `relabel_configs` users write.
    fn rc(yaml: &str) -> Vec<RelabelConfig> {
        match crate::config::relabel::parse_relabel_configs(yaml, "t.yml") {
            Ok(c) => c,
            Err(e) => panic!("bad test config:\n{yaml}\n{e}"),
        }
    }

    /// (name, input labels, relabel configs as YAML, expected output or None = dropped)
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<&'static [(&'static str, &'static str)]>,
    );

    const CASES: &[Case] = &[
        (
            "labelmap skips names a capture makes invalid",
            &[("a1", "x"), ("ab", "y")],
            "- action: labelmap\n  regex: a(.*)\n  replacement: $1",
            Some(&[("a1", "x"), ("ab", "y"), ("b", "y")]),
        ),
        (
            "replace with groups in replacement",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
        ),
        (
            "replace joins sources with separator",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- source_labels: [a, b]\n  regex: f(.*);(.*)r\n  target_label: a\n  replacement: b${1}${2}m",
            Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz")]),
        ),
        (
            "custom separator",
            &[("a", "foo"), ("b", "bar")],
            "- source_labels: [a, b]\n  separator: '|'\n  target_label: c",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "foo|bar")]),
        ),
        (
            "sequence: later steps see earlier results",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- source_labels: [c]\n  regex: (b).*\n  target_label: d\n  replacement: $1\n- source_labels: [d]\n  regex: (b)\n  target_label: e\n  replacement: ${1}x",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "b"), ("e", "bx")]),
        ),
        (
            "replace does nothing when the regex does not match",
            &[("a", "foo")],
            "- source_labels: [a]\n  regex: bar\n  target_label: b\n  replacement: x",
            Some(&[("a", "foo")]),
        ),
        (
            "regex is anchored at both ends",
            &[("a", "foo")],
            "- source_labels: [a]\n  regex: o\n  target_label: b\n  replacement: x",
            Some(&[("a", "foo")]),
        ),
        (
            "empty replacement result deletes the target",
            &[("a", "foo"), ("b", "bar")],
            "- source_labels: [a]\n  regex: (f).*\n  target_label: b\n  replacement: $2",
            Some(&[("a", "foo")]),
        ),
        (
            "$1x names group 1x, which is empty",
            &[("a", "foo"), ("b", "bar")],
            "- source_labels: [a]\n  regex: (f).*\n  target_label: b\n  replacement: $1x",
            Some(&[("a", "foo")]),
        ),
        (
            "named groups and templated target label",
            &[("a", "some-name-value")],
            "- source_labels: [a]\n  regex: some-(?P<n>[^-]+)-(?P<v>.*)\n  target_label: ${n}\n  replacement: ${v}",
            Some(&[("a", "some-name-value"), ("name", "value")]),
        ),
        (
            "templated target that expands to an invalid name is skipped",
            &[("a", "some-1bad-value")],
            "- source_labels: [a]\n  regex: some-([^-]+)-(.*)\n  target_label: ${1}\n  replacement: ${2}",
            Some(&[("a", "some-1bad-value")]),
        ),
        (
            "missing source label is the empty string",
            &[("a", "foo")],
            "- source_labels: [missing]\n  regex: ''\n  target_label: b\n  replacement: empty",
            Some(&[("a", "foo"), ("b", "empty")]),
        ),
        (
            "default regex with constant replacement sets a label",
            &[("a", "foo")],
            "- target_label: b\n  replacement: constant",
            Some(&[("a", "foo"), ("b", "constant")]),
        ),
        (
            "drop on match",
            &[("a", "foo"), ("b", "bar")],
            "- source_labels: [a]\n  regex: .*o.*\n  action: drop",
            None,
        ),
        (
            "drop keeps non-matching",
            &[("a", "abc")],
            "- source_labels: [a]\n  regex: f(.*)\n  action: drop",
            Some(&[("a", "abc")]),
        ),
        (
            "keep drops non-matching",
            &[("a", "foo")],
            "- source_labels: [a]\n  regex: no-match\n  action: keep",
            None,
        ),
        (
            "keep keeps matching",
            &[("a", "foo")],
            "- source_labels: [a]\n  regex: f.*\n  action: keep",
            Some(&[("a", "foo")]),
        ),
        (
            "keep with empty regex keeps targets lacking the label",
            &[("a", "foo")],
            "- source_labels: [b]\n  regex: ''\n  action: Keep",
            Some(&[("a", "foo")]),
        ),
        (
            "dot matches newline (Prometheus 3 (?s))",
            &[("a", "x\ny")],
            "- source_labels: [a]\n  regex: x.y\n  action: keep",
            Some(&[("a", "x\ny")]),
        ),
        (
            "hashmod as upstream (md5 tail, big endian)",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod",
            Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
        ),
        (
            "hashmod then keep: sharding",
            &[("__address__", "foo")],
            "- source_labels: [__address__]\n  target_label: __tmp_hash\n  modulus: 1000\n  action: hashmod\n- source_labels: [__tmp_hash]\n  regex: '696'\n  action: keep",
            Some(&[("__address__", "foo"), ("__tmp_hash", "696")]),
        ),
        (
            "labelmap copies matching labels under new names",
            &[("a", "foo"), ("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc")],
            "- regex: __meta_(my.*)\n  replacement: ${1}\n  action: labelmap",
            Some(&[("a", "foo"), ("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc"), ("my_bar", "aaa"), ("my_baz", "bbb")]),
        ),
        (
            "labelmap works on a snapshot, not on labels it adds",
            &[("a", "1")],
            "- regex: (.*)\n  replacement: x${1}\n  action: labelmap",
            Some(&[("a", "1"), ("xa", "1")]),
        ),
        (
            "labelmap overwrites existing labels",
            &[("__meta_a", "new"), ("a", "old")],
            "- regex: __meta_(.*)\n  action: labelmap",
            Some(&[("__meta_a", "new"), ("a", "new")]),
        ),
        (
            "labeldrop",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- regex: (b|c)\n  action: labeldrop",
            Some(&[("a", "foo")]),
        ),
        (
            "labeldrop is anchored",
            &[("abc", "1"), ("b", "2")],
            "- regex: b\n  action: labeldrop",
            Some(&[("abc", "1")]),
        ),
        (
            "labelkeep",
            &[("a", "foo"), ("b", "bar"), ("c", "baz")],
            "- regex: (a|c)\n  action: labelkeep",
            Some(&[("a", "foo"), ("c", "baz")]),
        ),
        (
            "labelkeep of nothing drops the whole set",
            &[("a", "foo")],
            "- regex: zzz\n  action: labelkeep",
            None,
        ),
        (
            "lowercase",
            &[("foo", "BaR"), ("x", "ÄÖ")],
            "- source_labels: [foo, x]\n  target_label: low\n  action: lowercase",
            Some(&[("foo", "BaR"), ("low", "bar;äö"), ("x", "ÄÖ")]),
        ),
        (
            "uppercase",
            &[("foo", "BaR")],
            "- source_labels: [foo]\n  target_label: foo\n  action: uppercase",
            Some(&[("foo", "BAR")]),
        ),
        (
            "lowercase of a missing label deletes the target",
            &[("foo", "BaR"), ("t", "x")],
            "- source_labels: [missing]\n  target_label: t\n  action: lowercase",
            Some(&[("foo", "BaR")]),
        ),
        (
            "keepequal keeps when equal",
            &[("__tmp_port", "9100"), ("port", "9100")],
            "- source_labels: [__tmp_port]\n  target_label: port\n  action: keepequal",
            Some(&[("__tmp_port", "9100"), ("port", "9100")]),
        ),
        (
            "keepequal drops when different",
            &[("__tmp_port", "9100"), ("port", "80")],
            "- source_labels: [__tmp_port]\n  target_label: port\n  action: keepequal",
            None,
        ),
        (
            "dropequal drops when equal",
            &[("a", "x"), ("b", "x")],
            "- source_labels: [a]\n  target_label: b\n  action: dropequal",
            None,
        ),
        (
            "dropequal keeps when different, missing target is empty",
            &[("a", "x")],
            "- source_labels: [a]\n  target_label: b\n  action: dropequal",
            Some(&[("a", "x")]),
        ),
        (
            "keepequal: missing source and target are both empty",
            &[("a", "x")],
            "- source_labels: [m]\n  target_label: n\n  action: keepequal",
            Some(&[("a", "x")]),
        ),
    ];

    #[test]
    fn relabel_table() {
        for (name, input, yaml, want) in CASES {
            let cfgs = rc(yaml);
            let got = process(&ls(input), &cfgs);
            let want = want.map(ls);
            assert_eq!(got, want, "case {name:?}");
            // The builder path must agree with the owned path.
            let mut b = ls(input).builder();
            let kept = process_builder(&mut b, &cfgs);
            match &want {
                Some(w) => {
                    assert!(kept, "case {name:?} (builder)");
                    assert_eq!(&b.build(), w, "case {name:?} (builder)");
                }
                None => {
                    let out = b.build();
                    assert!(!kept || out.is_empty(), "case {name:?} (builder)");
                }
            }
        }
    }

    #[test]
    fn go_expand_semantics() {
        let re = Regex::new("^(?P<first>a+)(b+)$").unwrap();
        let caps = re.captures("aabbb").unwrap();
        let e = |t: &str| {
            let mut s = String::new();
            expand(&re, &caps, t, &mut s);
            s
        };
        assert_eq!(e("$1"), "aa");
        assert_eq!(e("${1}"), "aa");
        assert_eq!(e("$2-$1"), "bbb-aa");
        assert_eq!(e("$first"), "aa");
        assert_eq!(e("${first}x"), "aax");
        assert_eq!(e("$1x"), ""); // group named "1x" does not exist
        assert_eq!(e("${1}x"), "aax");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(e("$"), "$");
        assert_eq!(e("a$-b"), "a$-b");
        assert_eq!(e("${1"), "${1");
        assert_eq!(e("$9"), "");
        assert_eq!(e("$01"), ""); // leading zero: a name, not a number
        assert_eq!(e("plain"), "plain");
    }

    #[test]
    fn hashmod_matches_upstream() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; tail ed ef 65 4f cc c4 a4 d8.
        let tail = u64::from_be_bytes([0xed, 0xef, 0x65, 0x4f, 0xcc, 0xc4, 0xa4, 0xd8]);
        assert_eq!(hash_mod("foo", 1000), tail % 1000);
        let c = RelabelConfig {
            source_labels: vec!["a".into()],
            target_label: "h".into(),
            modulus: 1000,
            ..cfg(Action::HashMod)
        };
        let out = process(&ls(&[("a", "foo")]), &[c]).unwrap();
        assert_eq!(out.get("h"), Some((tail % 1000).to_string().as_str()));
    }
}
