//! Restoring alerts' `for` state at start from the datasource's
//! `ALERTS_FOR_STATE` series, with Prometheus' `RestoreForState` rules:
//! only rules whose `for` is at least the grace period, only series with a
//! sample within the outage tolerance, and the restored `activeAt` shifted
//! so that an alert that was still pending neither fires at once nor loses
//! the pending time it had already served.
//!
//! The local store is restored first and wins for an alert it already
//! holds, unless the datasource knows of a *later* activation (a larger
//! `activeAt`): an alert's `activeAt` only changes when it becomes active
//! anew, so the larger value is the more recent episode. Ties go to the
//! store, which also keeps `firedAt`, `keep_firing_for` and resolution
//! state that the series cannot carry, and which this process wrote itself
//! after every change (the datasource's copy arrives through remote write,
//! later). The datasource matters when the store is empty or stale: a new
//! replica, a lost disk, or the other member of a pair.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::format_duration;
use crate::model::{Labels, Timestamp};
use crate::rules::alert::{Alert, AlertState, ALERTS_FOR_STATE_METRIC};
use crate::rules::datasource::response::QueryData;
use crate::rules::datasource::DatasourceError;
use crate::rules::file::RuleKind;
use crate::rules::group::GroupState;

/// Prometheus' `--rules.alert.for-grace-period` and
/// `--rules.alert.for-outage-tolerance`.
#[derive(Clone, Copy, Debug)]
pub struct RestoreOptions {
    pub grace_period: Duration,
    pub outage_tolerance: Duration,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Prometheus' restored `activeAt` (ms) for an alert whose
/// `ALERTS_FOR_STATE` value is `active_at_s` (Unix seconds) and whose last
/// sample is at `last_ms`, restored at `now`. Both times are truncated to
/// seconds, as upstream does.
pub fn restored_active_at(
    active_at_s: f64,
    last_ms: Timestamp,
    hold_ms: i64,
    grace_ms: i64,
    now: Timestamp,
) -> Timestamp {
    let down_at = last_ms.div_euclid(1000) * 1000;
    let active = (active_at_s.trunc() as i64).saturating_mul(1000);
    let remaining = hold_ms - (down_at - active);
    if remaining <= 0 {
        // It was firing when the state was last written; the next
        // evaluation makes it fire again if it is still active.
        active
    } else if remaining < grace_ms {
        // Fire no earlier than one grace period from now.
        now + grace_ms - hold_ms
    } else {
        // Pending: the time the evaluator was away does not count.
        active + (now - down_at)
    }
}

/// A PromQL string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The range selector over one rule's `ALERTS_FOR_STATE` series: its name
/// plus the rule's static labels (templated ones cannot be matched before
/// expansion), over the outage tolerance.
pub fn selector(alertname: &str, rule_labels: &Labels, tolerance: Duration) -> String {
    let mut m = vec![format!("alertname={}", quote(alertname))];
    for l in rule_labels {
        if l.name != "alertname" && !l.value.contains("{{") {
            m.push(format!("{}={}", l.name, quote(&l.value)));
        }
    }
    format!(
        "{ALERTS_FOR_STATE_METRIC}{{{}}}[{}]",
        m.join(","),
        format_duration(tolerance)
    )
}

/// Whether an error means the datasource cannot be reached at all (as
/// opposed to one query being refused): restoring the other rules would
/// only wait for the same timeout again.
fn unreachable(e: &DatasourceError) -> bool {
    matches!(
        e,
        DatasourceError::Connect(_) | DatasourceError::Timeout(_) | DatasourceError::Request(_)
    )
}

/// Restores the alerts of one group from what `fetch` (an instant query at
/// `now`) returns; returns how many alerts were taken from it. A query the
/// datasource refuses is logged and skipped; an unreachable datasource
/// ends the restore (the error comes back).
pub fn restore_group<F>(
    g: &mut GroupState,
    fetch: &F,
    now: Timestamp,
    o: RestoreOptions,
) -> Result<usize, DatasourceError>
where
    F: Fn(&str, Timestamp) -> Result<QueryData, DatasourceError>,
{
    if o.outage_tolerance.is_zero() {
        return Ok(0);
    }
    let grace = ms(o.grace_period);
    let mut n = 0;
    let key = g.key();
    for (rule, st) in g.group.rules.iter().zip(g.rules.iter_mut()) {
        let RuleKind::Alert(name) = &rule.kind else {
            continue;
        };
        let hold = ms(rule.for_);
        if hold < grace {
            // Upstream: waiting the grace period would be longer than `for`.
            continue;
        }
        let q = selector(name, &rule.labels, o.outage_tolerance);
        let series = match fetch(&q, now) {
            Ok(QueryData::Matrix(m)) => m,
            Ok(_) => {
                tracing::warn!(group = %key, alert = %name, "restoring 'for' state: datasource did not return a matrix");
                continue;
            }
            Err(e) if unreachable(&e) => return Err(e),
            Err(e) => {
                // As upstream: no retry; the alert starts its `for` afresh.
                tracing::warn!(group = %key, alert = %name, error = %e, "restoring 'for' state from the datasource failed");
                continue;
            }
        };
        // The newest series per label set (two series can collapse to one
        // label set only through a misbehaving datasource).
        let mut latest: BTreeMap<Labels, (Timestamp, f64)> = BTreeMap::new();
        for (labels, points) in series {
            let Some(&(t, v)) = points.iter().rev().find(|(_, v)| !v.is_nan()) else {
                continue;
            };
            let mut b = labels.builder();
            b.del("__name__");
            let e = latest.entry(b.build()).or_insert((t, v));
            if t > e.0 {
                *e = (t, v);
            }
        }
        for (labels, (last, v)) in latest {
            let h = labels.hash64();
            if let Some(local) = st.alerts.active.get(&h) {
                if local.active_at.div_euclid(1000) as f64 >= v.trunc() {
                    continue;
                }
            }
            let active_at = restored_active_at(v, last, hold, grace, now);
            tracing::debug!(group = %key, alert = %labels, active_at, "'for' state restored from the datasource");
            st.alerts.active.insert(
                h,
                Alert {
                    labels,
                    annotations: BTreeMap::new(),
                    state: AlertState::Pending,
                    value: f64::NAN,
                    active_at,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
            n += 1;
        }
    }
    Ok(n)
}

/// [`restore_group`] over every group; run once at start, before the first
/// evaluation, after the local store's state is back.
pub fn restore_all<F>(
    groups: &[Arc<Mutex<GroupState>>],
    fetch: &F,
    now: Timestamp,
    o: RestoreOptions,
) -> usize
where
    F: Fn(&str, Timestamp) -> Result<QueryData, DatasourceError>,
{
    let mut n = 0;
    for g in groups {
        match restore_group(&mut g.lock(), fetch, now, o) {
            Ok(k) => n += k,
            Err(e) => {
                tracing::warn!(error = %e, restored = n, "datasource unavailable at start: 'for' state not restored from it");
                return n;
            }
        }
    }
    tracing::info!(alerts = n, "restored 'for' state from the datasource");
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::file::{parse_rule_file, Dialect};

    const MIN: i64 = 60_000;

    #[test]
    fn restored_active_at_follows_prometheus() {
        let now = 100 * MIN;
        // Firing when last written (pending 20m of a 10m `for`): kept.
        assert_eq!(
            restored_active_at(
                ((70 * MIN) / 1000) as f64,
                90 * MIN + 999,
                10 * MIN,
                5 * MIN,
                now
            ),
            70 * MIN
        );
        // 8m of 10m served, 2m left < 5m grace: fires 5m from now.
        assert_eq!(
            restored_active_at(((82 * MIN) / 1000) as f64, 90 * MIN, 10 * MIN, 5 * MIN, now),
            now + 5 * MIN - 10 * MIN
        );
        // 2m of 30m served: the 10m outage does not count.
        assert_eq!(
            restored_active_at(((88 * MIN) / 1000) as f64, 90 * MIN, 30 * MIN, 5 * MIN, now),
            88 * MIN + 10 * MIN
        );
    }

    #[test]
    fn selector_quotes_and_skips_templated_labels() {
        let l = Labels::from_pairs([("sev", "a\"b"), ("inst", "{{ $labels.x }}")]);
        assert_eq!(
            selector("Hi\\", &l, Duration::from_secs(3600)),
            r#"ALERTS_FOR_STATE{alertname="Hi\\",sev="a\"b"}[1h]"#
        );
    }

    fn group(for_: &str) -> GroupState {
        let text = format!(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: {for_}\n    labels: {{sev: page}}\n  - record: r\n    expr: up\n"
        );
        let rf = parse_rule_file("f.yml", text.as_bytes(), Dialect::Prometheus3).unwrap();
        GroupState::new(
            "f.yml",
            rf.groups.into_iter().next().unwrap(),
            Duration::from_secs(15),
            "http://x",
        )
    }

    fn series(inst: &str, active_s: i64, last_ms: i64) -> (Labels, Vec<(Timestamp, f64)>) {
        (
            Labels::from_pairs([
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "A"),
                ("sev", "page"),
                ("instance", inst),
            ]),
            vec![
                (last_ms - 15_000, active_s as f64),
                (last_ms, active_s as f64),
            ],
        )
    }

    #[test]
    fn restores_and_lets_a_newer_local_alert_win() {
        let now = 1_000 * MIN;
        let opts = RestoreOptions {
            grace_period: Duration::ZERO,
            outage_tolerance: Duration::from_secs(3600),
        };
        let mut g = group("10m");
        let local_labels =
            Labels::from_pairs([("alertname", "A"), ("sev", "page"), ("instance", "b")]);
        // The store holds instance b from a later episode than the datasource.
        g.rules[0].alerts.restore(Alert {
            labels: local_labels.clone(),
            annotations: BTreeMap::new(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: 990 * MIN,
            fired_at: Some(995 * MIN),
            resolved_at: None,
            last_sent_at: None,
            valid_until: None,
            keep_firing_since: None,
        });
        let queries = std::cell::RefCell::new(Vec::new());
        let fetch = |q: &str, t: Timestamp| {
            queries.borrow_mut().push((q.to_string(), t));
            Ok(QueryData::Matrix(vec![
                series("a", 900 * 60, now - 30_000),
                series("b", 980 * 60, now - 30_000),
            ]))
        };
        assert_eq!(restore_group(&mut g, &fetch, now, opts), Ok(1));
        // One query, for the alerting rule only, at `now`.
        assert_eq!(
            *queries.borrow(),
            vec![(
                r#"ALERTS_FOR_STATE{alertname="A",sev="page"}[1h]"#.to_string(),
                now
            )]
        );
        let got = g.active_alerts("A");
        assert_eq!(got.len(), 2);
        let a = got
            .iter()
            .find(|a| a.labels.get("instance") == Some("a"))
            .unwrap();
        assert_eq!((a.active_at, a.state), (900 * MIN, AlertState::Pending));
        assert_eq!(a.labels.get("__name__"), None);
        let b = got.iter().find(|a| a.labels == local_labels).unwrap();
        assert_eq!((b.active_at, b.fired_at), (990 * MIN, Some(995 * MIN)));

        // An older local alert gives way to a later datasource episode.
        let mut g = group("10m");
        g.rules[0].alerts.restore(Alert {
            active_at: 970 * MIN,
            ..(*b).clone()
        });
        assert_eq!(restore_group(&mut g, &fetch, now, opts), Ok(2));
        let b = g
            .active_alerts("A")
            .into_iter()
            .find(|a| a.labels == local_labels)
            .unwrap()
            .clone();
        assert_eq!((b.active_at, b.fired_at), (980 * MIN, None));
    }

    #[test]
    fn short_for_and_failures_restore_nothing() {
        let now = 1_000 * MIN;
        let opts = RestoreOptions {
            grace_period: Duration::from_secs(600),
            outage_tolerance: Duration::from_secs(3600),
        };
        let called = std::cell::Cell::new(0);
        let fetch = |_: &str, _: Timestamp| {
            called.set(called.get() + 1);
            Ok(QueryData::Matrix(vec![series("a", 900 * 60, now)]))
        };
        // `for` below the grace period: not even queried.
        assert_eq!(restore_group(&mut group("5m"), &fetch, now, opts), Ok(0));
        assert_eq!(called.get(), 0);
        // A refused query skips the rule; an unreachable datasource stops
        // the whole restore after one attempt.
        let refused = |_: &str, _: Timestamp| {
            called.set(called.get() + 1);
            Err(DatasourceError::Api {
                status: 400,
                error_type: "bad_data".into(),
                error: "x".into(),
            })
        };
        let mut g = group("10m");
        assert_eq!(restore_group(&mut g, &refused, now, opts), Ok(0));
        assert!(g.active_alerts("A").is_empty());
        called.set(0);
        let down = |_: &str, _: Timestamp| {
            called.set(called.get() + 1);
            Err(DatasourceError::Connect("refused".into()))
        };
        let groups: Vec<_> = (0..3).map(|_| Arc::new(Mutex::new(group("10m")))).collect();
        assert_eq!(restore_all(&groups, &down, now, opts), 0);
        assert_eq!(called.get(), 1);
    }
}
