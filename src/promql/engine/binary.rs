//! Binary operators: scalar/vector arithmetic and comparisons, vector
//! matching (`on`, `ignoring`, `group_left`, `group_right`) and the set
//! operators, with Prometheus' error texts.

use std::collections::{HashMap, HashSet};

use super::eval::{Evaluator, StepValue};
use super::native::{hist_elem, Note};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::labels::METRIC_NAME;
use crate::model::Labels;
use crate::promql::parser::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};

/// Applies an arithmetic operator (`None` for comparisons and set ops).
pub(crate) fn arith(op: BinaryOp, l: f64, r: f64) -> Option<f64> {
    use BinaryOp::*;
    Some(match op {
        Add => l + r,
        Sub => l - r,
        Mul => l * r,
        Div => l / r,
        Mod => l % r,
        Pow => l.powf(r),
        Atan2 => l.atan2(r),
        _ => return None,
    })
}

/// Applies a comparison operator (`None` for other operators).
pub(crate) fn compare(op: BinaryOp, l: f64, r: f64) -> Option<bool> {
    use BinaryOp::*;
    Some(match op {
        Eql => l == r,
        Neq => l != r,
        Gtr => l > r,
        Lss => l < r,
        Gte => l >= r,
        Lte => l <= r,
        _ => return None,
    })
}

/// `(value, keep)` for one pair of operands, as Prometheus' element binop:
/// comparisons keep the left value and filter.
pub(crate) fn elem(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    if let Some(v) = arith(op, l, r) {
        return (v, true);
    }
    match compare(op, l, r) {
        Some(k) => (l, k),
        None => (f64::NAN, false),
    }
}

/// Whether the operator drops the metric name (Prometheus'
/// `shouldDropMetricName`): arithmetic, not comparisons, set or trim
/// operators.
pub(crate) fn is_arith(op: BinaryOp) -> bool {
    !op.is_comparison() && !op.is_set() && !op.is_trim()
}

/// The match signature of a label set: the `on` labels, or everything but
/// the `ignoring` labels and the metric name.
pub(crate) fn signature(l: &Labels, on: bool, names: &[String]) -> u64 {
    // A hash, as Prometheus uses: no allocation per sample and step.
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for lab in l.iter() {
        let listed = names.iter().any(|n| n == &lab.name);
        let take = if on {
            listed
        } else {
            !listed && lab.name != METRIC_NAME
        };
        if take {
            h.update(lab.name.as_bytes());
            h.update(&[0xff]);
            h.update(lab.value.as_bytes());
            h.update(&[0xfe]);
        }
    }
    h.digest()
}

/// Go's `labels.Labels.String()`: every label in braces, name included.
fn go_labels(l: &Labels) -> String {
    l.go_string()
}

fn match_labels(l: &Labels, on: bool, names: &[String]) -> Labels {
    let mut b = l.builder();
    b.retain(|lab| {
        let listed = names.iter().any(|n| n == &lab.name);
        if on {
            listed
        } else {
            !listed && lab.name != METRIC_NAME
        }
    });
    b.build()
}

/// The operator's vector matching: as written, or the default (one-to-one,
/// many-to-many for set operators).
pub(crate) fn matching_of(b: &BinaryExpr) -> std::borrow::Cow<'_, VectorMatching> {
    match &b.matching {
        Some(m) => std::borrow::Cow::Borrowed(m),
        None => std::borrow::Cow::Owned(default_matching(b.op)),
    }
}

fn default_matching(op: BinaryOp) -> VectorMatching {
    VectorMatching {
        card: if op.is_set() {
            Cardinality::ManyToMany
        } else {
            Cardinality::OneToOne
        },
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
        fill_lhs: None,
        fill_rhs: None,
        fill_both: false,
    }
}

impl Evaluator<'_> {
    pub(crate) fn binary(&mut self, b: &BinaryExpr, t: i64) -> EvalResult<StepValue> {
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        let op = b.op;
        match (lhs, rhs) {
            (StepValue::Scalar(l), StepValue::Scalar(r)) => {
                let v = match compare(op, l, r) {
                    Some(k) => {
                        if k {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    None => arith(op, l, r).unwrap_or(f64::NAN),
                };
                Ok(StepValue::Scalar(v))
            }
            (StepValue::Vector(v), StepValue::Scalar(s)) => {
                let mut notes = Vec::new();
                let out = vector_scalar(op, v, s, false, b.return_bool, &mut notes);
                self.add_notes(notes, b.span.0);
                Ok(StepValue::Vector(out))
            }
            (StepValue::Scalar(s), StepValue::Vector(v)) => {
                let mut notes = Vec::new();
                let out = vector_scalar(op, v, s, true, b.return_bool, &mut notes);
                self.add_notes(notes, b.span.0);
                Ok(StepValue::Vector(out))
            }
            (StepValue::Vector(l), StepValue::Vector(r)) => {
                let m = matching_of(b);
                let m = &*m;
                let mut notes = Vec::new();
                let out = match op {
                    BinaryOp::And => vector_and(l, r, m),
                    BinaryOp::Or => vector_or(l, r, m),
                    BinaryOp::Unless => vector_unless(l, r, m),
                    _ => vector_binop(
                        op,
                        l,
                        r,
                        m,
                        b.return_bool,
                        self.delayed_name_removal,
                        &mut notes,
                    )?,
                };
                self.add_notes(notes, b.span.0);
                Ok(StepValue::Vector(out))
            }
            (l, r) => Err(EvalError::exec(format!(
                "unsupported operand types {} and {} for binary operator {}",
                l.type_name(),
                r.type_name(),
                op.as_str()
            ))),
        }
    }
}

fn vector_scalar(
    op: BinaryOp,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    ret_bool: bool,
    notes: &mut Vec<Note>,
) -> Vec<Sample> {
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        if let Some(h) = smp.h.take() {
            let (lh, rh) = if swap {
                (None, Some(&*h))
            } else {
                (Some(&*h), None)
            };
            let Some((f, h, keep)) = hist_elem(op, s, s, lh, rh, notes) else {
                continue;
            };
            if ret_bool {
                smp.value = if keep { 1.0 } else { 0.0 };
            } else if !keep {
                continue;
            } else {
                smp.value = f;
                smp.h = h;
            }
            if is_arith(op) || ret_bool {
                smp.drop_name = true;
            }
            out.push(smp);
            continue;
        }
        let (l, r) = if swap { (s, smp.value) } else { (smp.value, s) };
        if op.is_trim() {
            // Trims apply to histograms only: the float drops out (noted).
            let _ = hist_elem(op, l, r, None, None, notes);
            continue;
        }
        let (mut val, keep) = elem(op, l, r);
        if op.is_comparison() {
            val = smp.value;
        }
        if ret_bool {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        smp.value = val;
        if is_arith(op) || ret_bool {
            smp.drop_name = true;
        }
        out.push(smp);
    }
    out
}

fn vector_and(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let right: HashSet<u64> = r
        .iter()
        .map(|s| signature(&s.labels, m.on, &m.labels))
        .collect();
    l.into_iter()
        .filter(|s| right.contains(&signature(&s.labels, m.on, &m.labels)))
        .collect()
}

fn vector_unless(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let right: HashSet<u64> = r
        .iter()
        .map(|s| signature(&s.labels, m.on, &m.labels))
        .collect();
    l.into_iter()
        .filter(|s| !right.contains(&signature(&s.labels, m.on, &m.labels)))
        .collect()
}

fn vector_or(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let left: HashSet<u64> = l
        .iter()
        .map(|s| signature(&s.labels, m.on, &m.labels))
        .collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !left.contains(&signature(&s.labels, m.on, &m.labels))),
    );
    out
}

pub(crate) fn result_labels(ls: &Labels, rs: &Labels, m: &VectorMatching) -> Labels {
    let mut b = ls.builder();
    if m.card == Cardinality::OneToOne {
        if m.on {
            b.retain(|l| m.labels.iter().any(|n| n == &l.name));
        } else {
            b.retain(|l| !m.labels.iter().any(|n| n == &l.name));
        }
    }
    for n in &m.include {
        match rs.get(n) {
            Some(v) => {
                b.set(n.clone(), v.to_string());
            }
            None => {
                b.del(n);
            }
        }
    }
    b.build()
}

/// One result element built from a filled operand.
fn fill_result(
    op: BinaryOp,
    vl: f64,
    vr: f64,
    ret_bool: bool,
    labels: Labels,
    drop: bool,
) -> Option<Sample> {
    let (mut val, keep) = elem(op, vl, vr);
    if ret_bool {
        val = if keep { 1.0 } else { 0.0 };
    } else if !keep {
        return None;
    }
    Some(Sample {
        labels: labels.into(),
        t: 0,
        value: val,
        drop_name: drop || is_arith(op) || ret_bool,
        h: None,
    })
}

fn vector_binop(
    op: BinaryOp,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: &VectorMatching,
    ret_bool: bool,
    delayed_name_removal: bool,
    notes: &mut Vec<Note>,
) -> EvalResult<Vec<Sample>> {
    // Nothing can match: no matching errors either (Prometheus'
    // short-circuit), unless a fill modifier makes up the missing side.
    if (lhs.is_empty() || rhs.is_empty()) && m.fill_lhs.is_none() && m.fill_rhs.is_none() {
        return Ok(Vec::new());
    }
    let swapped = m.card == Cardinality::OneToMany;
    let (lhs, rhs) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<u64, usize> = HashMap::with_capacity(rhs.len());
    for (i, rs) in rhs.iter().enumerate() {
        let sig = signature(&rs.labels, m.on, &m.labels);
        if let Some(&j) = right.get(&sig) {
            let dup = rhs.get(j).map(|s| go_labels(&s.labels)).unwrap_or_default();
            return Err(EvalError::exec(format!(
                "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels(&match_labels(&rs.labels, m.on, &m.labels)),
                if swapped { "left" } else { "right" },
                // Sorted, as 3.x does (2.42 printed them in meeting order).
                dup.clone().min(go_labels(&rs.labels)),
                dup.max(go_labels(&rs.labels))
            )));
        }
        right.insert(sig, i);
    }
    let mut matched: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut out = Vec::new();
    let empty = Sample {
        labels: Labels::empty().into(),
        t: 0,
        value: 0.0,
        drop_name: false,
        h: None,
    };
    let mut seen_sigs: HashSet<u64> = HashSet::new();
    for ls in lhs {
        let sig = signature(&ls.labels, m.on, &m.labels);
        let filled;
        let rs = match right.get(&sig).and_then(|&i| rhs.get(i)) {
            Some(rs) => {
                if m.fill_lhs.is_some() {
                    seen_sigs.insert(sig);
                }
                rs
            }
            // `fill_right(v)`: a missing right operand takes the value v.
            None => match m.fill_rhs {
                Some(v) => {
                    filled = Sample {
                        value: v,
                        ..empty.clone()
                    };
                    let (vl, vr) = if swapped {
                        (v, ls.value)
                    } else {
                        (ls.value, v)
                    };
                    if let Some(s) = fill_result(
                        op,
                        vl,
                        vr,
                        ret_bool,
                        result_labels(&ls.labels, &filled.labels, m),
                        ls.drop_name,
                    ) {
                        out.push(s);
                    }
                    continue;
                }
                None => continue,
            },
        };
        // Histogram operands the operator does not apply to drop out
        // before matching is checked, as upstream.
        let hist = if ls.h.is_some() || rs.h.is_some() || op.is_trim() {
            let (l, r) = if swapped { (rs, &ls) } else { (&ls, rs) };
            match hist_elem(op, l.value, r.value, l.h.as_deref(), r.h.as_deref(), notes) {
                Some(x) => Some(x),
                None => continue,
            }
        } else {
            None
        };
        // Matching errors are raised before comparisons filter anything.
        let labels = result_labels(&ls.labels, &rs.labels, m);
        let entry = matched.entry(sig);
        match m.card {
            Cardinality::OneToOne => {
                if let std::collections::hash_map::Entry::Occupied(_) = entry {
                    return Err(EvalError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                entry.or_default();
            }
            _ => {
                // The result's label set as it leaves the operator: without
                // the name where the operator drops it (unless delayed).
                let drops = ls.drop_name || is_arith(op) || ret_bool;
                let sig = if drops && !delayed_name_removal {
                    super::eval::drop_metric_name(&std::sync::Arc::new(labels.clone())).hash64()
                } else {
                    labels.hash64()
                };
                let set = entry.or_default();
                if !set.insert(sig) {
                    return Err(EvalError::exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
        }
        let (vl, vr) = if swapped {
            (rs.value, ls.value)
        } else {
            (ls.value, rs.value)
        };
        let (mut val, keep, mut h) = match hist {
            Some((f, h, keep)) => (f, keep, h),
            None => {
                let (val, keep) = elem(op, vl, vr);
                (val, keep, None)
            }
        };
        if ret_bool {
            val = if keep { 1.0 } else { 0.0 };
            h = None;
        } else if !keep {
            continue;
        }
        out.push(Sample {
            labels: labels.into(),
            t: ls.t,
            value: val,
            drop_name: ls.drop_name || is_arith(op) || ret_bool,
            h,
        });
    }
    // `fill_left(v)`: right operands nothing matched get a left value v and
    // the labels of their match group.
    if let Some(v) = m.fill_lhs {
        for rs in &rhs {
            let sig = signature(&rs.labels, m.on, &m.labels);
            if seen_sigs.contains(&sig) {
                continue;
            }
            let (vl, vr) = if swapped {
                (rs.value, v)
            } else {
                (v, rs.value)
            };
            if let Some(s) = fill_result(
                op,
                vl,
                vr,
                ret_bool,
                match_labels(&rs.labels, m.on, &m.labels),
                false,
            ) {
                out.push(s);
            }
        }
    }
    Ok(out)
}
