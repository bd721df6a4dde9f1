// A small SVG line chart: time axis, value axis, one path per series, a
// legend by labels and a hover tooltip with the values at the pointer.
// Our own code (no library), so it works offline and under a strict CSP.

import { h, s, replace } from './dom.js';
import { fmtValue } from './time.js';

/** Series drawn at most. */
export const MAX_SERIES = 500;

const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b',
  '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#3b5bdb', '#e8590c',
];

/** Colour of the i-th series. */
export function color(i) {
  return PALETTE[i % PALETTE.length];
}

/** `name{a="b"}` for a series' metric object. */
export function seriesName(metric) {
  const m = metric || {};
  const name = m.__name__ || '';
  const rest = Object.keys(m).filter((k) => k !== '__name__').sort()
    .map((k) => `${k}="${m[k]}"`).join(', ');
  if (!rest) return name || '{}';
  return `${name}{${rest}}`;
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, count) {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  // The domain is widened to whole ticks so the top line is labelled.
  const first = Math.floor(lo / step) * step;
  const last = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    const v = first + i * step;
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return { ticks, lo: first, hi: last };
}

function timeLabel(sec, spanSec) {
  const d = new Date(sec * 1000);
  const p = (n) => String(n).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (spanSec <= 600) return `${hm}:${p(d.getSeconds())}`;
  if (spanSec <= 2 * 86400) return hm;
  return `${d.getMonth() + 1}-${p(d.getDate())} ${hm}`;
}

/**
 * Draws `series` ([{metric, values: [[t, "v"], ...]}]) for [start, end]
 * (Unix seconds) with `step` into `container`.
 */
export function drawChart(container, allSeries, { start, end, step }) {
  // Thousands of lines are unreadable and slow to draw; the table view
  // still lists every series.
  const series = allSeries.slice(0, MAX_SERIES);
  const width = Math.max(320, Math.round(container.clientWidth || 900));
  const height = width < 600 ? 240 : 340;
  const m = { left: 64, right: 12, top: 10, bottom: 28 };
  const w = width - m.left - m.right;
  const ht = height - m.top - m.bottom;
  let lo = Infinity;
  let hi = -Infinity;
  const parsed = series.map((sr) => (sr.values || []).map(([t, v]) => [Number(t), Number(v)]));
  for (const vals of parsed) {
    for (const [, v] of vals) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  const yt = niceTicks(lo, hi, 5);
  const x = (t) => m.left + ((t - start) / Math.max(1e-9, end - start)) * w;
  const y = (v) => m.top + ht - ((v - yt.lo) / Math.max(1e-12, yt.hi - yt.lo)) * ht;
  const xt = niceTicks(start, end, width < 600 ? 3 : 6);

  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': `Line chart of ${series.length} series`,
  });
  svg.append(s('g', { class: 'grid' },
    yt.ticks.map((v) => s('line', { x1: m.left, x2: m.left + w, y1: y(v), y2: y(v) }))));
  svg.append(s('g', { class: 'axis' },
    s('line', { x1: m.left, x2: m.left + w, y1: m.top + ht, y2: m.top + ht }),
    s('line', { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ht }),
    yt.ticks.map((v) => s('text', { x: m.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtValue(v))),
    xt.ticks.filter((t) => t >= start && t <= end).map((t) =>
      s('text', {
        x: x(t),
        y: m.top + ht + 18,
        // Labels at the edges stay inside the drawing.
        'text-anchor': x(t) > width - 40 ? 'end' : x(t) < m.left + 30 ? 'start' : 'middle',
      }, timeLabel(t, end - start)))));

  const gap = (step || 1) * 1.5;
  const lines = s('g', { class: 'lines', fill: 'none', 'stroke-width': 1.6 });
  parsed.forEach((vals, i) => {
    let d = '';
    let prev = null;
    for (const [t, v] of vals) {
      if (!Number.isFinite(v)) {
        prev = null;
        continue;
      }
      const cmd = prev !== null && t - prev <= gap ? 'L' : 'M';
      d += `${cmd}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = t;
    }
    lines.append(s('path', {
      d: d || `M${m.left},${m.top + ht}`,
      stroke: color(i),
      'data-testid': 'series-line',
      'data-series': seriesName(series[i].metric),
    }));
  });
  svg.append(lines);

  // Hover: a vertical line and the values of every series at that time.
  const hover = s('line', { class: 'hover-line', y1: m.top, y2: m.top + ht, visibility: 'hidden' });
  const dots = s('g', { class: 'dots' });
  const overlay = s('rect', { x: m.left, y: m.top, width: w, height: ht, fill: 'transparent' });
  svg.append(hover, dots, overlay);
  const tip = h('div', { class: 'tooltip', role: 'status', hidden: true });
  const box = h('div', { class: 'chart-box' }, svg, tip);
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    series.map((sr, i) => h('li', { 'data-testid': 'legend-item' },
      h('span', { class: 'swatch', 'data-color': color(i) }), seriesName(sr.metric))));
  // Swatch colours via CSSOM (allowed by the CSP, unlike style attributes).
  legend.querySelectorAll('.swatch').forEach((el) => { el.style.background = el.dataset.color; });

  const hide = () => {
    tip.hidden = true;
    hover.setAttribute('visibility', 'hidden');
    dots.replaceChildren();
  };
  overlay.addEventListener('mouseleave', hide);
  overlay.addEventListener('mousemove', (ev) => {
    const rect = svg.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * width;
    const t = start + ((px - m.left) / w) * (end - start);
    const rows = [];
    dots.replaceChildren();
    parsed.forEach((vals, i) => {
      let best = null;
      for (const p of vals) {
        if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      }
      if (best && Math.abs(best[0] - t) <= gap && Number.isFinite(best[1])) {
        rows.push({ i, t: best[0], v: best[1] });
        dots.append(s('circle', { cx: x(best[0]), cy: y(best[1]), r: 3, fill: color(i) }));
      }
    });
    if (!rows.length) {
      hide();
      return;
    }
    hover.setAttribute('x1', x(rows[0].t));
    hover.setAttribute('x2', x(rows[0].t));
    hover.setAttribute('visibility', 'visible');
    rows.sort((a, b) => b.v - a.v);
    replace(tip,
      h('div', { class: 'muted' }, new Date(rows[0].t * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z')),
      h('ul', null, rows.slice(0, 12).map((r) => h('li', null,
        h('span', { class: 'swatch', 'data-color': color(r.i) }),
        h('span', { class: 'mono' }, fmtValue(r.v)), ' ', seriesName(series[r.i].metric)))),
      rows.length > 12 ? h('div', { class: 'muted' }, `and ${rows.length - 12} more`) : null);
    tip.querySelectorAll('.swatch').forEach((el) => { el.style.background = el.dataset.color; });
    tip.hidden = false;
    const bx = box.getBoundingClientRect();
    const left = ev.clientX - bx.left + 14;
    tip.style.left = `${Math.min(left, Math.max(0, bx.width - 260))}px`;
    tip.style.top = `${ev.clientY - bx.top + 14}px`;
  });

  const note = allSeries.length > series.length
    ? h('p', { class: 'hint', id: 'graph-truncated' }, `Showing the first ${series.length} of ${allSeries.length} series; the table lists all.`)
    : null;
  replace(container, note, box, legend);
}
