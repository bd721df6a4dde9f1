//! Measures generated anomaly rules on synthetic series with klaxon's own
//! rule engine: daily-seasonal signals with noise, anomalies injected at
//! known times (spikes, drops, level shifts, slow drifts), and the alerts of
//! each detector scored against that truth. The same run scores fixed
//! 3-sigma rules for comparison (`benches/anomaly_eval.rs` prints the table
//! of docs/benchmarks.md).
//!
//! Scoring is by event: an injected anomaly is caught when an alert of its
//! series fires between its start and [`GRACE_MS`] after its end; an alert
//! episode (a run of evaluations with an alert of the series firing) is a
//! true positive when it overlaps such a window, a false positive otherwise.

use crate::model::Labels;
use crate::promql::Engine;
use crate::rules::alert::AlertState;
use crate::rules::file::{parse_rule_file, Dialect, RuleKind};
use crate::rules::group::GroupState;
use crate::tsdb::Head;
use std::collections::BTreeMap;
use std::time::Duration;

pub const GENERATED: &str = "generated rules (daily seasonality)";
const MIN: i64 = 60_000;
const DAY: i64 = 1440 * MIN;
/// How long after an anomaly ends an alert still counts as catching it:
/// the alert's `for` plus the smoothing window plus a margin.
pub const GRACE_MS: i64 = 30 * MIN;

/// What is generated and evaluated.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Days before scoring starts (history for the seasons).
    pub warmup_days: i64,
    /// Days scored.
    pub days: i64,
    /// Sample and evaluation step.
    pub step_ms: i64,
    /// Clean series (no anomaly) first, then one series per anomaly kind,
    /// repeated `rounds` times.
    pub clean: usize,
    pub rounds: usize,
    /// Noise standard deviation relative to the series' mean.
    pub noise: f64,
    pub seed: u64,
    /// Also score the fixed 3-sigma rules.
    pub compare: bool,
}

impl Scenario {
    /// The benchmark: 4 days of history, 7 scored days, 1m steps, 4 clean
    /// series and 3 rounds of the four anomaly kinds (12 series, 3
    /// anomalies each on different days).
    pub fn full() -> Scenario {
        Scenario {
            warmup_days: 4,
            days: 7,
            step_ms: MIN,
            clean: 4,
            rounds: 3,
            noise: 0.03,
            seed: 42,
            compare: true,
        }
    }

    /// Small enough for a debug-build test: 5m steps, 2 scored days after
    /// the three seasons are in, one series of each kind, the generated
    /// rules only.
    pub fn small() -> Scenario {
        Scenario {
            warmup_days: 4,
            days: 2,
            step_ms: 5 * MIN,
            clean: 1,
            rounds: 1,
            noise: 0.03,
            seed: 7,
            compare: false,
        }
    }
}

/// The anomaly kinds, in the order series are assigned to them.
pub const KINDS: [&str; 4] = ["spike", "drop", "level shift", "slow drift"];

/// One injected anomaly: series index, kind, [start, end) in ms.
#[derive(Debug, Clone)]
pub struct Injected {
    pub series: usize,
    pub kind: &'static str,
    pub start: i64,
    pub end: i64,
}

/// One detector's score.
#[derive(Debug, Clone)]
pub struct DetectorResult {
    pub name: String,
    /// Per injected anomaly (same order as [`Report::injected`]): caught?
    pub caught: Vec<bool>,
    pub episodes: usize,
    pub false_positives: usize,
    /// False positives on the series without any injected anomaly.
    pub false_positives_clean: usize,
    kinds: Vec<&'static str>,
}

impl DetectorResult {
    pub fn recall(&self) -> f64 {
        ratio(
            self.caught.iter().filter(|c| **c).count(),
            self.caught.len(),
        )
    }
    pub fn precision(&self) -> f64 {
        ratio(self.episodes - self.false_positives, self.episodes)
    }
    /// (caught, injected) of one kind.
    pub fn recall_of(&self, kind: &str) -> (usize, usize) {
        let mut hit = 0;
        let mut total = 0;
        for (c, k) in self.caught.iter().zip(&self.kinds) {
            if *k == kind {
                total += 1;
                hit += usize::from(*c);
            }
        }
        (hit, total)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub injected: Vec<Injected>,
    pub series: usize,
    pub detectors: Vec<DetectorResult>,
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next(), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// The anomaly's effect on a value at `t` (`base` is the series' mean).
fn apply(a: &Injected, t: i64, v: f64, base: f64) -> f64 {
    if t < a.start || t >= a.end {
        return v;
    }
    match a.kind {
        "spike" => v + 0.6 * base,
        "drop" => v * 0.4,
        "level shift" => v + 0.3 * base,
        // Rises linearly to +50% of the mean, then stops at once.
        _ => v + 0.5 * base * (t - a.start) as f64 / (a.end - a.start) as f64,
    }
}

fn duration(kind: &str) -> i64 {
    match kind {
        "spike" => 20 * MIN,
        "drop" => 30 * MIN,
        "level shift" => 6 * 60 * MIN,
        _ => 12 * 60 * MIN,
    }
}

/// The synthetic data: per series (labels `series="<i>"`), its samples.
fn synthesize(sc: &Scenario) -> (Vec<Vec<(i64, f64)>>, Vec<Injected>) {
    let mut rng = Rng(sc.seed.max(1));
    let n = sc.clean + KINDS.len() * sc.rounds;
    let end = (sc.warmup_days + sc.days) * DAY;
    let mut injected = Vec::new();
    for i in sc.clean..n {
        let kind = KINDS[(i - sc.clean) % KINDS.len()];
        // One anomaly every other scored day, at a random time of day that
        // leaves it inside the day.
        let mut day = sc.warmup_days;
        while day < sc.warmup_days + sc.days {
            let room = DAY - duration(kind) - GRACE_MS;
            let at = day * DAY + ((rng.next() * room as f64) as i64 / MIN) * MIN;
            injected.push(Injected {
                series: i,
                kind,
                start: at,
                end: at + duration(kind),
            });
            day += 2;
        }
    }
    let mut data = Vec::with_capacity(n);
    for i in 0..n {
        let base = 100.0 * (i as f64 + 1.0);
        let phase = rng.next() * std::f64::consts::TAU;
        let mine: Vec<&Injected> = injected.iter().filter(|a| a.series == i).collect();
        let mut s = Vec::new();
        let mut t = 0;
        while t <= end {
            let season = (std::f64::consts::TAU * t as f64 / DAY as f64 + phase).sin();
            let mut v = base * (1.0 + 0.5 * season) + base * sc.noise * rng.normal();
            for a in &mine {
                v = apply(a, t, v, base);
            }
            s.push((t, v.max(0.0)));
            t += sc.step_ms;
        }
        data.push(s);
    }
    (data, injected)
}

/// The detectors: the generated rules for one signal reading `synthetic`,
/// and fixed 3-sigma rules over 1h and 1d, all with the same smoothing and
/// `for`.
pub fn detectors() -> Vec<(String, String)> {
    let spec = super::parse(
        "service: bench\nsignals:\n  - name: synthetic\n    type: requests\n    query: synthetic\n    by: [series]\n",
        "bench.anomaly.yml",
    )
    .map(|s| super::generate(&s, "bench.anomaly.yml").rules)
    .unwrap_or_default();
    let sigma = |w: &str| {
        format!(
            "groups:\n  - name: three-sigma-{w}\n    rules:\n      - record: bench:smooth\n        expr: avg_over_time(synthetic[5m])\n        labels:\n          window: {w}\n      - alert: ThreeSigma\n        expr: abs(bench:smooth{{window=\"{w}\"}} - ignoring(window) avg_over_time(synthetic[{w}])) > ignoring(window) 3 * stddev_over_time(synthetic[{w}])\n        for: 10m\n"
        )
    };
    vec![
        (GENERATED.to_string(), spec),
        ("fixed 3-sigma, 1d window".to_string(), sigma("1d")),
        ("fixed 3-sigma, 1h window".to_string(), sigma("1h")),
    ]
}

/// Generates the data, evaluates every detector's rules at every step and
/// scores them.
pub fn run(sc: &Scenario) -> Result<Report, String> {
    let (data, injected) = synthesize(sc);
    let end = (sc.warmup_days + sc.days) * DAY;
    let score_from = sc.warmup_days * DAY;
    let mut results = Vec::new();
    for (name, text) in detectors().into_iter().take(if sc.compare { 3 } else { 1 }) {
        let head = Head::default();
        for (i, s) in data.iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "synthetic".to_string()),
                ("series", i.to_string()),
            ]);
            let (r, _) = head.get_or_create(&l);
            for (t, v) in s {
                // Fresh series in time order: an append cannot fail.
                let _ = head.append(r, *t, *v);
            }
        }
        let mut groups: Vec<GroupState> =
            match parse_rule_file(&name, text.as_bytes(), Dialect::default()) {
                Ok(f) => f
                    .groups
                    .into_iter()
                    .map(|g| {
                        GroupState::new(&name, g, Duration::from_millis(sc.step_ms as u64), "")
                    })
                    .collect(),
                Err(e) => return Err(format!("{name}: the rules do not load: {e}")),
            };
        let alert_names: Vec<String> = groups
            .iter()
            .flat_map(|g| g.group.rules.iter())
            .filter_map(|r| match &r.kind {
                RuleKind::Alert(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        let engine = Engine::default();
        let none = Labels::empty();
        // series -> start of the current episode
        let mut open: BTreeMap<usize, i64> = BTreeMap::new();
        let mut episodes: Vec<(usize, i64, i64)> = Vec::new();
        let mut t = 0;
        while t <= end {
            for g in &mut groups {
                g.eval_group(&head, &engine, t, &none);
            }
            if t >= score_from {
                let mut firing = std::collections::BTreeSet::new();
                for g in &groups {
                    for a in &alert_names {
                        for al in g.active_alerts(a) {
                            if al.state == AlertState::Firing {
                                if let Some(s) =
                                    al.labels.get("series").and_then(|s| s.parse().ok())
                                {
                                    firing.insert(s);
                                }
                            }
                        }
                    }
                }
                for s in &firing {
                    open.entry(*s).or_insert(t);
                }
                let closed: Vec<usize> = open
                    .keys()
                    .filter(|s| !firing.contains(*s))
                    .copied()
                    .collect();
                for s in closed {
                    if let Some(start) = open.remove(&s) {
                        episodes.push((s, start, t));
                    }
                }
            }
            t += sc.step_ms;
        }
        for (s, start) in open {
            episodes.push((s, start, end));
        }
        let window = |a: &Injected| (a.start, a.end + GRACE_MS);
        let caught: Vec<bool> = injected
            .iter()
            .map(|a| {
                let (from, to) = window(a);
                episodes
                    .iter()
                    .any(|(s, b, e)| *s == a.series && *b <= to && *e >= from)
            })
            .collect();
        let wrong: Vec<usize> = episodes
            .iter()
            .filter(|(s, b, e)| {
                !injected.iter().any(|a| {
                    let (from, to) = window(a);
                    a.series == *s && *b <= to && *e >= from
                })
            })
            .map(|(s, _, _)| *s)
            .collect();
        let false_positives = wrong.len();
        let false_positives_clean = wrong.iter().filter(|s| **s < sc.clean).count();
        results.push(DetectorResult {
            name,
            caught,
            episodes: episodes.len(),
            false_positives,
            false_positives_clean,
            kinds: injected.iter().map(|a| a.kind).collect(),
        });
    }
    Ok(Report {
        series: data.len(),
        injected,
        detectors: results,
    })
}
