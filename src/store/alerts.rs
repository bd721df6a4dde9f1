//! Alert state across restarts: the active alerts of every
//! alerting rule, so that after a restart a `for: 10m` alert that was firing
//! is firing again at once and keeps its `activeAt`. It is handed to the
//! dispatcher again at the first evaluation (with the same `startsAt`); the
//! dispatcher's persisted notification log is what prevents a second page.
//!
//! Rows are keyed by (rule file, group, rule name, rule expression, alert
//! fingerprint): a rule whose expression changed is a different rule, and
//! its old alerts are not restored onto it. A group is always written whole
//! in one transaction, so a crash never leaves half of a group's alerts.

use super::pg::sql;
use super::row::{lite_rows, pg_rows, FromRow, Row};
use super::{Store, StoreError};
use crate::model::rule_alert::{Alert, AlertState};
use crate::model::Labels;
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

/// The same, as PostgreSQL migration 1.
pub(crate) const PG_SCHEMA: &str = "
CREATE TABLE rule_alerts (
    file TEXT NOT NULL,
    grp TEXT NOT NULL,
    rule TEXT NOT NULL,
    expr TEXT NOT NULL,
    fingerprint BIGINT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    value_bits BIGINT NOT NULL,
    active_at BIGINT NOT NULL,
    fired_at BIGINT,
    resolved_at BIGINT,
    keep_firing_since BIGINT,
    last_sent_at BIGINT,
    valid_until BIGINT,
    PRIMARY KEY (file, grp, rule, expr, fingerprint)
);
";

const DELETE_GROUP: &str = "DELETE FROM rule_alerts WHERE file = ?1 AND grp = ?2";
const INSERT: &str = "INSERT INTO rule_alerts (file, grp, rule, expr, fingerprint, labels,
    annotations, state, value_bits, active_at, fired_at, resolved_at,
    keep_firing_since, last_sent_at, valid_until)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
    ON CONFLICT (file, grp, rule, expr, fingerprint) DO UPDATE SET labels = excluded.labels,
    annotations = excluded.annotations, state = excluded.state, value_bits = excluded.value_bits,
    active_at = excluded.active_at, fired_at = excluded.fired_at, resolved_at = excluded.resolved_at,
    keep_firing_since = excluded.keep_firing_since, last_sent_at = excluded.last_sent_at,
    valid_until = excluded.valid_until";
const LOAD: &str =
    "SELECT file, grp, rule, expr, labels, annotations, state, value_bits, active_at,
    fired_at, resolved_at, keep_firing_since, last_sent_at, valid_until
    FROM rule_alerts ORDER BY file, grp, rule, expr, fingerprint";
const GROUPS: &str = "SELECT DISTINCT file, grp FROM rule_alerts";

/// One row as stored, either backend.
struct RawRow {
    file: String,
    group: String,
    rule: String,
    expr: String,
    labels: String,
    annotations: String,
    state: String,
    value_bits: i64,
    times: [Option<i64>; 6],
}

impl FromRow for RawRow {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        Ok(RawRow {
            file: r.col(0)?,
            group: r.col(1)?,
            rule: r.col(2)?,
            expr: r.col(3)?,
            labels: r.col(4)?,
            annotations: r.col(5)?,
            state: r.col(6)?,
            value_bits: r.col(7)?,
            times: [
                Some(r.col(8)?),
                r.col(9)?,
                r.col(10)?,
                r.col(11)?,
                r.col(12)?,
                r.col(13)?,
            ],
        })
    }
}

/// The columns of one saved alert, in `INSERT` order after the group.
struct Flat {
    rule: String,
    expr: String,
    fingerprint: i64,
    labels: String,
    annotations: String,
    state: &'static str,
    value_bits: i64,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    keep_firing_since: Option<i64>,
    last_sent_at: Option<i64>,
    valid_until: Option<i64>,
}

fn flatten(rules: &[RuleAlerts]) -> Result<Vec<Flat>, StoreError> {
    let mut out = Vec::new();
    for r in rules {
        for a in &r.alerts {
            out.push(Flat {
                rule: r.rule.clone(),
                expr: r.expr.clone(),
                fingerprint: a.labels.hash64() as i64,
                labels: labels_text(&a.labels),
                annotations: serde_json::to_string(&a.annotations)
                    .map_err(|e| StoreError::Data(e.to_string()))?,
                state: state_text(a.state),
                value_bits: a.value.to_bits() as i64,
                active_at: a.active_at,
                fired_at: a.fired_at,
                resolved_at: a.resolved_at,
                keep_firing_since: a.keep_firing_since,
                last_sent_at: a.last_sent_at,
                valid_until: a.valid_until,
            });
        }
    }
    Ok(out)
}

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
    let flat = flatten(rules)?;
    if let Some(pg) = store.pg() {
        let (f2, g2) = (file.to_string(), group.to_string());
        return pg.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                tx.execute(&sql(DELETE_GROUP), &[&f2, &g2]).await?;
                let ins = tx.prepare(&sql(INSERT)).await?;
                for a in &flat {
                    tx.execute(
                        &ins,
                        &[
                            &f2,
                            &g2,
                            &a.rule,
                            &a.expr,
                            &a.fingerprint,
                            &a.labels,
                            &a.annotations,
                            &a.state,
                            &a.value_bits,
                            &a.active_at,
                            &a.fired_at,
                            &a.resolved_at,
                            &a.keep_firing_since,
                            &a.last_sent_at,
                            &a.valid_until,
                        ],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        });
    }
    store.with_conn(|c| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(DELETE_GROUP, params![file, group])?;
        {
            let mut ins = tx.prepare_cached(INSERT)?;
            for a in &flat {
                ins.execute(params![
                    file,
                    group,
                    a.rule,
                    a.expr,
                    a.fingerprint,
                    a.labels,
                    a.annotations,
                    a.state,
                    a.value_bits,
                    a.active_at,
                    a.fired_at,
                    a.resolved_at,
                    a.keep_firing_since,
                    a.last_sent_at,
                    a.valid_until,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    })
}

/// Every saved alert, grouped by group and rule, in key order.
pub fn load_all(store: &Store) -> Result<Vec<GroupAlerts>, StoreError> {
    let raw: Vec<RawRow> = store.dispatch(
        |c| lite_rows(&mut c.prepare(LOAD)?, []),
        |c| Box::pin(async move { pg_rows(&c.query(LOAD, &[]).await?) }),
    )?;
    let mut out: Vec<GroupAlerts> = Vec::new();
    for row in raw {
        let [active_at, fired_at, resolved_at, keep_firing_since, last_sent_at, valid_until] =
            row.times;
        let alert = Alert {
            labels: Labels::from_pairs(parse_map("labels", &row.labels)?),
            annotations: parse_map("annotations", &row.annotations)?,
            state: parse_state(&row.state)?,
            value: f64::from_bits(row.value_bits as u64),
            active_at: active_at.unwrap_or_default(),
            fired_at,
            resolved_at,
            keep_firing_since,
            last_sent_at,
            valid_until,
        };
        let g = match out.last_mut() {
            Some(g) if g.file == row.file && g.group == row.group => g,
            _ => {
                out.push(GroupAlerts {
                    file: row.file,
                    group: row.group,
                    rules: Vec::new(),
                });
                let Some(g) = out.last_mut() else {
                    continue;
                };
                g
            }
        };
        match g.rules.last_mut() {
            Some(r) if r.rule == row.rule && r.expr == row.expr => r.alerts.push(alert),
            _ => g.rules.push(RuleAlerts {
                rule: row.rule,
                expr: row.expr,
                alerts: vec![alert],
            }),
        }
    }
    Ok(out)
}

/// Forgets every group not in `keep` (`(file, group)` pairs): the state of
/// groups that were removed from the configuration.
pub fn retain_groups(store: &Store, keep: &[(String, String)]) -> Result<usize, StoreError> {
    let keep2 = keep.to_vec();
    let gone = |existing: Vec<(String, String)>, keep: &[(String, String)]| {
        existing
            .into_iter()
            .filter(|(f, g)| !keep.iter().any(|(kf, kg)| kf == f && kg == g))
            .collect::<Vec<_>>()
    };
    store.dispatch(
        |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Vec<(String, String)> = lite_rows(&mut tx.prepare(GROUPS)?, [])?;
            let mut n = 0;
            for (f, g) in gone(existing, keep) {
                n += tx.execute(DELETE_GROUP, params![f, g])?;
            }
            tx.commit()?;
            Ok(n)
        },
        move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                let existing: Vec<(String, String)> = pg_rows(&tx.query(GROUPS, &[]).await?)?;
                let mut n = 0;
                for (f, g) in gone(existing, &keep2) {
                    n += tx.execute(&sql(DELETE_GROUP), &[&f, &g]).await? as usize;
                }
                tx.commit().await?;
                Ok(n)
            })
        },
    )
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
