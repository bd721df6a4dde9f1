// Exemplars on the graph: the answer of /api/v1/query_exemplars turned
// into points on a chart's series, thinned to what a chart can draw, and
// the details shown for one of them.

import { h } from './dom.js';
import { fmtValue } from './time.js';

/**
 * Exemplar markers a chart draws at most. Each is a focusable SVG shape
 * with its own label; a few hundred cost a few milliseconds to build and
 * lay out, while 100,000 (Prometheus' default store size) would freeze the
 * tab for seconds and cover the plot anyway: at a plot ~900 px wide, 500
 * markers already leave under 2 px of time apiece.
 */
export const EXEMPLAR_CAP = 500;

/** The labels naming a trace, in the order they are looked for. */
const TRACE_LABELS = ['trace_id', 'traceID', 'traceId', 'trace-id'];

/** The label holding an exemplar's trace id, or undefined. */
function traceKey(labels) {
  return TRACE_LABELS.find((k) => labels && labels[k]);
}

/** The trace id among an exemplar's labels, or ''. */
export function traceId(labels) {
  const k = traceKey(labels);
  return k ? labels[k] : '';
}

/**
 * Index of the graph series each exemplar series belongs to: the one whose
 * every label (its metric name included, when it has one) the exemplar
 * series has with the same value, the most specific (most labels) first.
 * `rate(x_bucket[5m])` keeps all labels but the name; `sum by (le) (...)`
 * keeps `le`; `histogram_quantile(...)` of one group keeps none, so every
 * exemplar of its selectors belongs to it. -1 when none fits.
 *
 * Graph series are grouped by their label names (a query's results share
 * a few name sets), so matching costs a map lookup per group.
 */
export function seriesMatcher(metrics) {
  const groups = new Map();
  metrics.forEach((m, i) => {
    const names = Object.keys(m || {}).sort();
    const sig = names.join('\u0000');
    if (!groups.has(sig)) groups.set(sig, { names, byKey: new Map() });
    const key = names.map((n) => m[n]).join('\u0000');
    const g = groups.get(sig);
    if (!g.byKey.has(key)) g.byKey.set(key, i);
  });
  const ordered = [...groups.values()].sort((a, b) => b.names.length - a.names.length);
  return (labels) => {
    const l = labels || {};
    for (const g of ordered) {
      if (!g.names.every((n) => n in l)) continue;
      const i = g.byKey.get(g.names.map((n) => l[n]).join('\u0000'));
      if (i !== undefined) return i;
    }
    return -1;
  };
}

/**
 * The exemplars of `data` (the API's `[{seriesLabels, exemplars}]`) within
 * [start, end] as points `{i, t, v, value, labels, series}` sorted by time:
 * `i` the index into `metrics` (the graph's series) or -1, `t`/`v` numbers,
 * `value` the API's text. Values that are not finite numbers cannot be
 * placed and are counted in `unplaced`.
 */
export function exemplarPoints(data, metrics, start, end) {
  const match = seriesMatcher(metrics);
  const points = [];
  let unplaced = 0;
  for (const se of Array.isArray(data) ? data : []) {
    const i = match(se.seriesLabels);
    for (const e of se.exemplars || []) {
      const t = Number(e.timestamp);
      const v = Number(e.value);
      if (!Number.isFinite(t) || !Number.isFinite(v) || t < start || t > end) {
        unplaced++;
        continue;
      }
      points.push({ i, t, v, value: String(e.value), labels: e.labels || {}, series: se.seriesLabels || {} });
    }
  }
  points.sort((a, b) => a.t - b.t || a.v - b.v);
  return { points, unplaced };
}

/**
 * At most `cap` of `points` (sorted by time): when there are more, the
 * range is cut into cap/2 stretches and each keeps its lowest and highest
 * exemplar, so the outliers one looks for traces of stay, spread over the
 * whole range. Linear in the number of points.
 */
export function capExemplars(points, cap, start, end) {
  if (points.length <= cap) return points;
  const cols = Math.max(1, Math.floor(cap / 2));
  const span = Math.max(1e-9, end - start);
  const lo = new Int32Array(cols).fill(-1);
  const hi = new Int32Array(cols).fill(-1);
  points.forEach((p, k) => {
    const c = Math.min(cols - 1, Math.max(0, Math.floor(((p.t - start) / span) * cols)));
    if (lo[c] < 0 || p.v < points[lo[c]].v) lo[c] = k;
    if (hi[c] < 0 || p.v > points[hi[c]].v) hi[c] = k;
  });
  const keep = [];
  for (let c = 0; c < cols; c++) {
    if (lo[c] >= 0) keep.push(lo[c]);
    if (hi[c] >= 0 && hi[c] !== lo[c]) keep.push(hi[c]);
  }
  return keep.sort((a, b) => a - b).map((k) => points[k]);
}

/** `2026-12-07 10:49:19.123Z`. */
export function exemplarTime(t) {
  return new Date(t * 1000).toISOString().replace('T', ' ');
}

/** `a="b", c="d"` of a label set. */
function labelText(l) {
  return Object.keys(l).sort().map((k) => `${k}="${l[k]}"`).join(', ');
}

/** The accessible name of a marker: what it is, its trace, value and time. */
export function exemplarLabel(p) {
  const id = traceId(p.labels);
  return `Exemplar${id ? ` trace ${id}` : ''}, value ${fmtValue(p.value)} at ${exemplarTime(p.t)}`;
}

/**
 * The details of one exemplar: its time and value, its labels (a trace id
 * first, in a box that selects whole with one click, to copy into a
 * tracing UI) and the series it was recorded on. `graphSeries` is the name
 * of the graph series it is drawn on ('' for none).
 */
export function exemplarDetails(p, seriesName, graphSeries, close) {
  const key = traceKey(p.labels);
  const other = {};
  Object.keys(p.labels).filter((k) => k !== key).forEach((k) => { other[k] = p.labels[k]; });
  return [
    h('div', { class: 'tip-head' }, h('strong', null, 'Exemplar'), close),
    h('div', { class: 'muted' }, exemplarTime(p.t)),
    h('dl', { class: 'kv' },
      key ? [h('dt', null, key), h('dd', null, h('code', { class: 'trace-id', 'data-testid': 'exemplar-trace-id' }, p.labels[key]))] : null,
      h('dt', null, 'value'), h('dd', { class: 'mono' }, p.value),
      Object.keys(other).length ? [h('dt', null, 'labels'), h('dd', { class: 'mono' }, labelText(other))] : null,
      h('dt', null, 'series'), h('dd', { class: 'mono', 'data-testid': 'exemplar-series' }, seriesName(p.series)),
      graphSeries ? null : [h('dt', null, 'drawn'), h('dd', null, 'not on a series of this graph')]),
  ];
}
