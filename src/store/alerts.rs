//! Alert state across restarts (issue 4): the active alerts of every
//! alerting rule, so that after a restart a `for: 10m` alert that was firing
//! is firing again at once and keeps its `activeAt`. It is handed to the
//! dispatcher again at the first evaluation (with the same `startsAt`); the
//! dispatcher's persisted notification log is what prevents a second page.
//!
//! Rows are keyed by (rule file, group, rule name, rule expression, alert
//! fingerprint): a rule whose expression changed is a different rule, and
//! its old alerts are not restored onto it. A group is always written whole
//! in one transaction, so a crash never leaves half of a group's alerts.

use super::{Store, StoreError};
use crate::model::{Labels, Timestamp};
use crate::rules::alert::{Alert, AlertState};
use rusqlite::params;
use std::collections::BTreeMap;

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rule_alerts (
    file TEXT NOT NULL,
    grp TEXT NOT NULL,
    rule TEXT NOT NULL,
    expr TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    value_bits INTEGER NOT NULL,
    active_at INTEGER NOT NULL,
    fired_at INTEGER,
    resolved_at INTEGER,
    keep_firing_since INTEGER,
    last_sent_at INTEGER,
    valid_until INTEGER,
    PRIMARY KEY (file, grp, rule, expr, fingerprint)
);
";

/// The alerts of one rule, as saved and restored.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleAlerts {
    pub rule: String,
    pub expr: String,
    pub alerts: Vec<Alert>,
}

/// All saved alerts of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAlerts {
    pub file: String,
    pub group: String,
    pub rules: Vec<RuleAlerts>,
}

fn state_text(s: AlertState) -> &'static str {
    s.as_str()
}

fn parse_state(s: &str) -> Result<AlertState, StoreError> {
    match s {
        "inactive" => Ok(AlertState::Inactive),
        "pending" => Ok(AlertState::Pending),
        "firing" => Ok(AlertState::Firing),
        other => Err(StoreError::Data(format!(
            "rule_alerts.state: unknown alert state {other:?}"
        ))),
    }
}

fn labels_text(l: &Labels) -> String {
    l.to_json().to_string()
}

fn parse_map(field: &str, s: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Data(format!("rule_alerts.{field}: {e}")))
}

/// Replaces the saved alerts of group (`file`, `group`) by `rules`, in one
/// transaction. An empty `rules` forgets the group.
pub fn save_group(
    store: &Store,
    file: &str,
    group: &str,
    rules: &[RuleAlerts],
) -> Result<(), StoreError> {
    store.with_conn(|c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM rule_alerts WHERE file = ?1 AND grp = ?2",
            params![file, group],
        )?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO rule_alerts (file, grp, rule, expr, fingerprint, labels,
                 annotations, state, value_bits, active_at, fired_at, resolved_at,
                 keep_firing_since, last_sent_at, valid_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for r in rules {
                for a in &r.alerts {
                    let annotations = serde_json::to_string(&a.annotations)
                        .map_err(|e| StoreError::Data(e.to_string()))?;
                    ins.execute(params![
                        file,
                        group,
                        r.rule,
                        r.expr,
                        a.labels.hash64() as i64,
                        labels_text(&a.labels),
                        annotations,
                        state_text(a.state),
                        a.value.to_bits() as i64,
                        a.active_at,
                        a.fired_at,
                        a.resolved_at,
                        a.keep_firing_since,
                        a.last_sent_at,
                        a.valid_until,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    })
}

/// Every saved alert, grouped by group and rule, in key order.
pub fn load_all(store: &Store) -> Result<Vec<GroupAlerts>, StoreError> {
    store.with_conn(|c| {
        let mut st = c.prepare(
            "SELECT file, grp, rule, expr, labels, annotations, state, value_bits, active_at,
             fired_at, resolved_at, keep_firing_since, last_sent_at, valid_until
             FROM rule_alerts ORDER BY file, grp, rule, expr, fingerprint",
        )?;
        let mut rows = st.query([])?;
        let mut out: Vec<GroupAlerts> = Vec::new();
        while let Some(row) = rows.next()? {
            let file: String = row.get(0)?;
            let group: String = row.get(1)?;
            let rule: String = row.get(2)?;
            let expr: String = row.get(3)?;
            let labels: String = row.get(4)?;
            let annotations: String = row.get(5)?;
            let state: String = row.get(6)?;
            let value_bits: i64 = row.get(7)?;
            let alert = Alert {
                labels: Labels::from_pairs(parse_map("labels", &labels)?),
                annotations: parse_map("annotations", &annotations)?,
                state: parse_state(&state)?,
                value: f64::from_bits(value_bits as u64),
                active_at: row.get::<_, Timestamp>(8)?,
                fired_at: row.get(9)?,
                resolved_at: row.get(10)?,
                keep_firing_since: row.get(11)?,
                last_sent_at: row.get(12)?,
                valid_until: row.get(13)?,
            };
            let g = match out.last_mut() {
                Some(g) if g.file == file && g.group == group => g,
                _ => {
                    out.push(GroupAlerts {
                        file,
                        group,
                        rules: Vec::new(),
                    });
                    let Some(g) = out.last_mut() else {
                        continue;
                    };
                    g
                }
            };
            match g.rules.last_mut() {
                Some(r) if r.rule == rule && r.expr == expr => r.alerts.push(alert),
                _ => g.rules.push(RuleAlerts {
                    rule,
                    expr,
                    alerts: vec![alert],
                }),
            }
        }
        Ok(out)
    })
}

/// Forgets every group not in `keep` (`(file, group)` pairs): the state of
/// groups that were removed from the configuration.
pub fn retain_groups(store: &Store, keep: &[(String, String)]) -> Result<usize, StoreError> {
    store.with_conn(|c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Vec<(String, String)> = {
            let mut st = tx.prepare("SELECT DISTINCT file, grp FROM rule_alerts")?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            v
        };
        let mut n = 0;
        for (f, g) in existing {
            if !keep.iter().any(|(kf, kg)| *kf == f && *kg == g) {
                n += tx.execute(
                    "DELETE FROM rule_alerts WHERE file = ?1 AND grp = ?2",
                    params![f, g],
                )?;
            }
        }
        tx.commit()?;
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(inst: &str, state: AlertState) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", inst)]),
            annotations: BTreeMap::from([("summary".to_string(), format!("down {inst}"))]),
            state,
            value: f64::NAN,
            active_at: 1_000,
            fired_at: Some(61_000),
            resolved_at: None,
            last_sent_at: Some(61_000),
            valid_until: Some(301_000),
            keep_firing_since: None,
        }
    }

    #[test]
    fn saves_and_loads_a_group_whole() {
        let s = Store::open_in_memory().unwrap();
        let rules = vec![
            RuleAlerts {
                rule: "A".into(),
                expr: "up == 0".into(),
                alerts: vec![
                    alert("a", AlertState::Firing),
                    alert("b", AlertState::Pending),
                ],
            },
            RuleAlerts {
                rule: "B".into(),
                expr: "x > 1".into(),
                alerts: vec![alert("c", AlertState::Inactive)],
            },
        ];
        save_group(&s, "f.yml", "g", &rules).unwrap();
        let got = load_all(&s).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].file.as_str(), got[0].group.as_str()),
            ("f.yml", "g")
        );
        assert_eq!(got[0].rules.len(), 2);
        assert_eq!(got[0].rules[0].rule, "A");
        assert_eq!(got[0].rules[0].alerts.len(), 2);
        let a = got[0].rules[0]
            .alerts
            .iter()
            .find(|a| a.labels.get("instance") == Some("a"))
            .unwrap();
        assert_eq!(a.state, AlertState::Firing);
        assert!(a.value.is_nan());
        assert_eq!(a.fired_at, Some(61_000));
        assert_eq!(a.annotations["summary"], "down a");
        assert_eq!(got[0].rules[1].alerts[0].state, AlertState::Inactive);

        // Saving again replaces the group, it does not add to it.
        save_group(&s, "f.yml", "g", &rules[1..]).unwrap();
        let got = load_all(&s).unwrap();
        assert_eq!(got[0].rules.len(), 1);
        assert_eq!(got[0].rules[0].rule, "B");
    }

    #[test]
    fn retain_drops_removed_groups() {
        let s = Store::open_in_memory().unwrap();
        let r = vec![RuleAlerts {
            rule: "A".into(),
            expr: "up == 0".into(),
            alerts: vec![alert("a", AlertState::Firing)],
        }];
        save_group(&s, "f.yml", "g1", &r).unwrap();
        save_group(&s, "f.yml", "g2", &r).unwrap();
        let n = retain_groups(&s, &[("f.yml".into(), "g2".into())]).unwrap();
        assert_eq!(n, 1);
        let got = load_all(&s).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].group, "g2");
    }

    #[test]
    fn a_corrupt_state_is_an_error_not_a_panic() {
        let s = Store::open_in_memory().unwrap();
        save_group(
            &s,
            "f",
            "g",
            &[RuleAlerts {
                rule: "A".into(),
                expr: "1".into(),
                alerts: vec![alert("a", AlertState::Firing)],
            }],
        )
        .unwrap();
        s.with_conn(|c| {
            c.execute("UPDATE rule_alerts SET state = 'bogus'", [])?;
            Ok(())
        })
        .unwrap();
        let e = load_all(&s).unwrap_err().to_string();
        assert!(e.contains("rule_alerts.state"), "{e}");
    }
}
