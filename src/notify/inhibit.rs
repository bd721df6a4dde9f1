//! Inhibition: while a source alert fires, target alerts with the same values
//! of the `equal` labels are muted.
//!
//! As Alertmanager: each rule keeps the firing alerts that match its source
//! matchers; a label set that matches the target matchers is inhibited by any
//! of them that is still firing and agrees on `equal` (absent labels agree
//! with absent labels). When the label set matches the source matchers too,
//! source alerts that also match the target are ignored, so an alert never
//! inhibits itself and two alerts matching both sides do not mute each other.

use crate::model::{Labels, Timestamp};
use crate::notify::config::InhibitRule;
use crate::notify::matchers::matches_all;
use parking_lot::RwLock;
use std::collections::HashMap;

/// A source alert as a rule remembers it.
struct Source {
    labels: Labels,
    /// Resolved from this instant on (`None` = firing until told).
    ends_at: Option<Timestamp>,
}

pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    /// Per rule: fingerprint → source alert.
    sources: Vec<RwLock<HashMap<u64, Source>>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Inhibitor {
        let sources = rules.iter().map(|_| RwLock::new(HashMap::new())).collect();
        Inhibitor { rules, sources }
    }

    /// Records an alert's latest state (called for every accepted alert).
    pub fn observe(&self, fp: u64, labels: &Labels, ends_at: Option<Timestamp>) {
        for (r, cache) in self.rules.iter().zip(&self.sources) {
            if matches_all(&r.source_matchers, labels) {
                cache.write().insert(
                    fp,
                    Source {
                        labels: labels.clone(),
                        ends_at,
                    },
                );
            }
        }
    }

    /// Forgets an alert (garbage-collected by the dispatcher).
    pub fn forget(&self, fp: u64) {
        for cache in &self.sources {
            cache.write().remove(&fp);
        }
    }

    /// The fingerprints of the firing alerts that inhibit `labels` at `now`.
    pub fn inhibited_by(&self, labels: &Labels, now: Timestamp) -> Vec<u64> {
        let mut out = Vec::new();
        for (r, cache) in self.rules.iter().zip(&self.sources) {
            if !matches_all(&r.target_matchers, labels) {
                continue;
            }
            let two_sided = matches_all(&r.source_matchers, labels);
            for (fp, s) in cache.read().iter() {
                if matches!(s.ends_at, Some(e) if e <= now) {
                    continue;
                }
                if two_sided && matches_all(&r.target_matchers, &s.labels) {
                    continue;
                }
                if r.equal.iter().all(|n| s.labels.get(n) == labels.get(n)) {
                    out.push(*fp);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::matchers::parse_matchers;

    fn rule(src: &str, tgt: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source_matchers: parse_matchers(src).unwrap(),
            target_matchers: parse_matchers(tgt).unwrap(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn source_mutes_target_with_equal_labels() {
        let i = Inhibitor::new(vec![rule(
            "severity=critical",
            "severity=warning",
            &["alertname", "zone"],
        )]);
        let crit = Labels::from_pairs([("alertname", "X"), ("severity", "critical")]);
        i.observe(1, &crit, None);
        let warn = Labels::from_pairs([("alertname", "X"), ("severity", "warning")]);
        assert_eq!(i.inhibited_by(&warn, 10), [1]);
        let other = Labels::from_pairs([("alertname", "Y"), ("severity", "warning")]);
        assert!(i.inhibited_by(&other, 10).is_empty());
        // Resolved sources stop inhibiting.
        i.observe(1, &crit, Some(5));
        assert!(i.inhibited_by(&warn, 10).is_empty());
    }

    #[test]
    fn alert_does_not_inhibit_itself() {
        let i = Inhibitor::new(vec![rule("a=1", "b=2", &[])]);
        let both = Labels::from_pairs([("a", "1"), ("b", "2")]);
        i.observe(7, &both, None);
        assert!(i.inhibited_by(&both, 0).is_empty());
        let target_only = Labels::from_pairs([("b", "2")]);
        assert_eq!(i.inhibited_by(&target_only, 0), [7]);
    }
}
