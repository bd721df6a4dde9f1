// The graph page's state in its URL, in Prometheus' classic format: one
// panel per `gN.` prefix (`g0.expr=…&g0.tab=1&g0.range_input=1h&g1.expr=…`),
// so a link from Prometheus, Alertmanager or Grafana opens the same panels
// here, and a link copied from here opens them in Prometheus.

import { parseDuration } from './time.js';

/** Prometheus' panel defaults: table tab, one hour, ending now. */
export function defaultPanel() {
  return { expr: '', tab: 'table', stacked: false, exemplars: false, range: 3600, end: null, step: null };
}

/** Seconds → Prometheus' duration text (`1h`, `5m30s`, `90d`, `2w`). */
export function formatDuration(sec) {
  let ms = Math.round(Number(sec) * 1000);
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  let out = '';
  const unit = (name, size, exact) => {
    if (exact && ms % size !== 0) return;
    const n = Math.floor(ms / size);
    if (n > 0) {
      out += `${n}${name}`;
      ms -= n * size;
    }
  };
  unit('y', 31536000000, true);
  unit('w', 604800000, true);
  unit('d', 86400000, false);
  unit('h', 3600000, false);
  unit('m', 60000, false);
  unit('s', 1000, false);
  unit('ms', 1, false);
  return out;
}

/** Unix seconds → `2026-12-06 10:49:19` (UTC), Prometheus' `end_input`. */
export function formatTime(sec) {
  return new Date(sec * 1000).toISOString().replace('T', ' ').replace(/(\.\d+)?Z$/, '');
}

/**
 * `end_input` text → Unix seconds, or null. Prometheus writes
 * `YYYY-MM-DD HH:mm:ss` in UTC; RFC 3339 and Unix seconds are accepted too.
 */
export function parseTime(text) {
  const t = String(text || '').trim();
  if (!t) return null;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?)?$/.exec(t);
  if (m) {
    const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]),
      Number(m[4] || 0), Number(m[5] || 0), Number(m[6] || 0));
    return Number.isFinite(ms) ? ms / 1000 : null;
  }
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

function applyOption(p, field, value) {
  switch (field) {
    case 'expr':
      p.expr = value;
      break;
    case 'tab':
      // 2.x writes 0 (graph) / 1 (table); 3.x writes the names.
      p.tab = value === '0' || value === 'graph' ? 'graph' : 'table';
      break;
    case 'stacked':
      p.stacked = value === '1';
      break;
    case 'show_exemplars':
      p.exemplars = value === '1';
      break;
    case 'range_input': {
      const r = parseDuration(value);
      if (r && r > 0) p.range = r;
      break;
    }
    case 'end_input':
    case 'moment_input': {
      const t = parseTime(value);
      if (t !== null) p.end = t;
      break;
    }
    case 'step_input': {
      const s = parseDuration(value);
      if (s && s > 0) p.step = s;
      break;
    }
    default:
      break;
  }
}

/**
 * The panels a URL query describes, in panel-number order. Classic keys
 * (`gN.expr`, `gN.tab`, …) make one panel each N that has an `expr`;
 * without any, the short form this UI's own links use (`expr`, `range`,
 * `step`, `tab=table`) makes one panel that opens on the graph.
 */
export function parsePanels(params) {
  const byNum = new Map();
  for (const [k, v] of params) {
    const m = /^g(\d+)\.(.+)$/.exec(k);
    if (!m) continue;
    const n = Number(m[1]);
    if (!byNum.has(n)) byNum.set(n, []);
    byNum.get(n).push([m[2], v]);
  }
  const panels = [...byNum.keys()].sort((a, b) => a - b)
    .map((n) => byNum.get(n))
    .filter((fields) => fields.some(([f]) => f === 'expr'))
    .map((fields) => {
      const p = defaultPanel();
      // end_input wins over moment_input, whatever their order.
      const order = (f) => (f === 'end_input' ? 1 : 0);
      [...fields].sort((a, b) => order(a[0]) - order(b[0]))
        .forEach(([f, v]) => applyOption(p, f, v));
      return p;
    });
  if (panels.length) return panels;
  const p = defaultPanel();
  p.tab = params.get('tab') === 'table' ? 'table' : 'graph';
  p.expr = params.get('expr') || '';
  const r = parseDuration(params.get('range'));
  if (r && r > 0) p.range = r;
  const s = parseDuration(params.get('step'));
  if (s && s > 0) p.step = s;
  const e = parseTime(params.get('end'));
  if (e !== null) p.end = e;
  return [p];
}

/** The URL query for `panels`, as Prometheus' UI writes it. */
export function encodePanels(panels) {
  const q = new URLSearchParams();
  panels.forEach((p, i) => {
    const g = `g${i}.`;
    q.set(`${g}expr`, p.expr);
    q.set(`${g}tab`, p.tab === 'graph' ? '0' : '1');
    q.set(`${g}stacked`, p.stacked ? '1' : '0');
    q.set(`${g}show_exemplars`, p.exemplars ? '1' : '0');
    q.set(`${g}range_input`, formatDuration(p.range));
    if (p.end !== null && p.end !== undefined) {
      q.set(`${g}end_input`, formatTime(p.end));
      q.set(`${g}moment_input`, formatTime(p.end));
    }
    if (p.step) q.set(`${g}step_input`, String(p.step));
  });
  return q;
}
