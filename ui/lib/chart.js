// A small line chart: time axis, value axis, one line per series, a
// legend by labels (click to isolate a series), stacked or not, drag to
// select a time range, a hover tooltip with the values at the pointer, and
// exemplars as markers (lib/exemplars.js) that show their trace on hover,
// focus or click.
// Few series are SVG paths; many are drawn on a canvas in one raster pass
// (the axes, hover and selection stay SVG on top of it) with a legend that
// builds only the entries in sight. Our own code (no library), so it works
// offline and under a strict CSP.

import { h, s, replace } from './dom.js';
import { fmtValue } from './time.js';
import { EXEMPLAR_CAP, exemplarPoints, capExemplars, exemplarDetails, exemplarLabel, traceId } from './exemplars.js';

/** Points drawn over all series at most; beyond, each series is thinned. */
export const POINT_BUDGET = 1000000;

/**
 * Above this many series the lines go on a canvas and the legend is
 * virtualised: a thousand SVG paths and legend rows cost the browser
 * seconds of style, layout and paint.
 */
export const CANVAS_SERIES = 100;

/** Height of one legend row in the virtualised legend (px). */
const LEGEND_ROW = 20;

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
 * A series ({ts, vs}: times and values) thinned to about `max` points: per
 * stretch of consecutive points its first, lowest and highest, so spikes
 * survive. The same object when it is short enough.
 */
export function thin(sr, max) {
  const n = sr.ts.length;
  if (n <= max || max < 4) return sr;
  const per = Math.ceil(n / Math.floor(max / 3));
  const ts = [];
  const vs = [];
  for (let i = 0; i < n; i += per) {
    const end = Math.min(n, i + per);
    let lo = i;
    let hi = i;
    for (let j = i + 1; j < end; j++) {
      if (sr.vs[j] < sr.vs[lo]) lo = j;
      if (sr.vs[j] > sr.vs[hi]) hi = j;
    }
    const pick = [...new Set([i, lo, hi])].sort((x, y) => x - y);
    for (const k of pick) {
      ts.push(sr.ts[k]);
      vs.push(sr.vs[k]);
    }
  }
  return { ts: Float64Array.from(ts), vs: Float64Array.from(vs) };
}

/** Index of the time in `ts` (sorted) nearest to `t`, or -1. */
function nearest(ts, t) {
  let lo = 0;
  let hi = ts.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(ts[lo - 1] - t) <= Math.abs(ts[lo] - t)) return lo - 1;
  return lo;
}

/** A pixel coordinate as short path text (one decimal). */
function px(v) {
  return Math.round(v * 10) / 10;
}

/**
 * Draws `series` ([{metric, values: [[t, "v"], ...]}]) for [start, end]
 * (Unix seconds) with `step` into `container`. `stacked` stacks the
 * visible series; `onZoom(t0, t1)` is called after a drag over the plot.
 * `exemplars`, the answer of /api/v1/query_exemplars, adds a marker per
 * exemplar at its time and value, in the colour of the series it belongs
 * to (see lib/exemplars.js). Returns `{thinned, exemplars}`: whether points
 * were dropped to stay drawable, and how many exemplars the range holds.
 */
export function drawChart(container, allSeries, { start, end, step, stacked, onZoom, exemplars }) {
  const series = allSeries;
  const width = Math.max(320, Math.round(container.clientWidth || 900));
  const height = width < 600 ? 240 : 340;
  const m = { left: 64, right: 12, top: 10, bottom: 28 };
  const w = width - m.left - m.right;
  const ht = height - m.top - m.bottom;
  const perSeries = Math.max(4, Math.min(Math.floor(POINT_BUDGET / Math.max(1, series.length)), 4 * w));
  let thinned = false;
  const parsed = series.map((sr) => {
    const vals = sr.values || [];
    const full = { ts: new Float64Array(vals.length), vs: new Float64Array(vals.length) };
    for (let k = 0; k < vals.length; k++) {
      full.ts[k] = Number(vals[k][0]);
      full.vs[k] = Number(vals[k][1]);
    }
    const t = thin(full, perSeries);
    if (t !== full) thinned = true;
    return t;
  });
  const names = series.map((sr) => seriesName(sr.metric));
  const ex = exemplars ? exemplarPoints(exemplars, series.map((sr) => sr.metric), start, end) : null;
  const exNote = h('p', { class: 'hint', 'data-testid': 'exemplars-not-drawn', hidden: true });
  const hidden = new Set();
  const gap = (step || 1) * 1.5;
  const x = (t) => m.left + ((t - start) / Math.max(1e-9, end - start)) * w;
  const xt = niceTicks(start, end, width < 600 ? 3 : 6);

  const box = h('div', { class: 'chart-box' });
  const tip = h('div', { class: 'tooltip', role: 'status', hidden: true });
  // Escape in a pinned tooltip closes it (set per paint).
  let closeTip = () => {};
  tip.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeTip();
  });
  const useCanvas = series.length > CANVAS_SERIES;
  const legend = useCanvas
    ? h('div', { class: 'legend legend-virtual', 'aria-label': 'Legend', 'data-testid': 'legend' })
    : h('ul', { class: 'legend', 'aria-label': 'Legend', 'data-testid': 'legend' });
  // Per drawn series: {i, ts, top, base}: its times, the drawn values
  // (stacked: the running sum) and what each sits on (0 unstacked).
  let plotted = [];
  let y = (v) => v;

  const paint = () => {
    // Stacking adds each visible series onto the ones before it, per time.
    const cum = new Map();
    plotted = [];
    let lo = Infinity;
    let hi = -Infinity;
    parsed.forEach(({ ts, vs }, i) => {
      if (hidden.has(i)) return;
      let top = vs;
      let base = null;
      if (stacked) {
        top = new Float64Array(vs.length);
        base = new Float64Array(vs.length);
        for (let k = 0; k < vs.length; k++) {
          const v = vs[k];
          if (!Number.isFinite(v)) {
            top[k] = NaN;
            base[k] = NaN;
            continue;
          }
          base[k] = cum.get(ts[k]) || 0;
          top[k] = base[k] + v;
          cum.set(ts[k], top[k]);
          if (base[k] < lo) lo = base[k];
        }
      }
      for (let k = 0; k < top.length; k++) {
        const v = top[k];
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      plotted.push({ i, ts, top, base });
    });
    // Exemplars of the series in sight (and of none), capped; the value
    // axis takes them in, so every marker is on the plot.
    const exVisible = ex ? ex.points.filter((p) => p.i < 0 || !hidden.has(p.i)) : [];
    const exShown = capExemplars(exVisible, EXEMPLAR_CAP, start, end);
    for (const p of exShown) {
      if (p.v < lo) lo = p.v;
      if (p.v > hi) hi = p.v;
    }
    const notDrawn = exVisible.length - exShown.length + (ex ? ex.unplaced : 0);
    exNote.hidden = notDrawn === 0;
    exNote.textContent = exVisible.length > exShown.length
      ? `${notDrawn.toLocaleString('en')} more exemplars not drawn: a graph draws at most ${EXEMPLAR_CAP}, the lowest and highest of each stretch of time. Narrow the range or the expression to see every one.`
      : `${notDrawn.toLocaleString('en')} more exemplars not drawn: their value or time is not a number in range.`;
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    const yt = niceTicks(lo, hi, 5);
    y = (v) => m.top + ht - ((v - yt.lo) / Math.max(1e-12, yt.hi - yt.lo)) * ht;
    const svg = s('svg', {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-label': `Line chart of ${plotted.length} series${stacked ? ', stacked' : ''}`,
      'data-start': start,
      'data-end': end,
      'data-stacked': String(Boolean(stacked)),
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

    const kx = w / Math.max(1e-9, end - start);
    const x0 = m.left - start * kx;
    const ky = ht / Math.max(1e-12, yt.hi - yt.lo);
    const y0 = m.top + ht + yt.lo * ky;
    let canvas = null;
    if (useCanvas) {
      canvas = drawCanvas(plotted, { width, height, m, w, ht, x0, kx, y0, ky, gap });
      svg.classList.add('over-canvas');
      svg.dataset.lines = String(plotted.length);
    } else {
      const areas = stacked ? s('g', { class: 'areas' }) : null;
      const lines = s('g', { class: 'lines', fill: 'none', 'stroke-width': 1.6 });
      for (const { i, ts, top, base } of plotted) {
        const parts = [];
        let area = '';
        let segFrom = -1;
        let prev = null;
        let last = null;
        // The filled band of a stacked series, per joined stretch [from, to).
        const closeArea = (to) => {
          if (base && segFrom >= 0 && to - segFrom > 1) {
            const up = [];
            const down = [];
            for (let k = segFrom; k < to; k++) up.push(`${px(x0 + ts[k] * kx)},${px(y0 - top[k] * ky)}`);
            for (let k = to - 1; k >= segFrom; k--) down.push(`${px(x0 + ts[k] * kx)},${px(y0 - base[k] * ky)}`);
            area += `M${up.join('L')}L${down.join('L')}Z`;
          }
          segFrom = -1;
        };
        for (let k = 0; k < ts.length; k++) {
          const t = ts[k];
          const v = top[k];
          if (!Number.isFinite(v)) {
            prev = null;
            closeArea(k);
            continue;
          }
          const joined = prev !== null && t - prev <= gap;
          if (!joined) {
            closeArea(k);
            segFrom = k;
          }
          parts.push(`${joined ? 'L' : 'M'}${px(x0 + t * kx)},${px(y0 - v * ky)}`);
          prev = t;
          last = v;
        }
        closeArea(ts.length);
        if (areas && area) areas.append(s('path', { d: area, fill: color(i), 'fill-opacity': 0.25, stroke: 'none' }));
        lines.append(s('path', {
          d: parts.length ? parts.join('') : `M${m.left},${m.top + ht}`,
          stroke: color(i),
          'data-testid': 'series-line',
          'data-series': names[i],
          'data-last': last === null ? '' : String(last),
        }));
      }
      if (areas) svg.append(areas);
      svg.append(lines);
    }

    // Hover: a vertical line and the values of every series at that time;
    // a drag selects a new time range.
    const hover = s('line', { class: 'hover-line', y1: m.top, y2: m.top + ht, visibility: 'hidden' });
    const dots = s('g', { class: 'dots' });
    const sel = s('rect', { class: 'zoom-select', y: m.top, height: ht, x: 0, width: 0, visibility: 'hidden' });
    const overlay = s('rect', { class: 'overlay', x: m.left, y: m.top, width: w, height: ht, fill: 'transparent', 'data-testid': 'chart-overlay' });
    svg.append(hover, dots, sel, overlay);
    // A pinned tooltip (an exemplar clicked, or Enter on one) stays, and
    // takes the pointer, until closed, Escape, or a press on the plot.
    let pinned = false;
    tip.hidden = true;
    tip.classList.remove('pinned');
    closeTip = () => hide(true);
    const toPx = (ev) => {
      const rect = svg.getBoundingClientRect();
      return Math.min(m.left + w, Math.max(m.left, ((ev.clientX - rect.left) / rect.width) * width));
    };
    const toTime = (px) => start + ((px - m.left) / w) * (end - start);
    const hide = (unpin) => {
      hover.setAttribute('visibility', 'hidden');
      dots.replaceChildren();
      if (pinned && !unpin) return;
      pinned = false;
      tip.classList.remove('pinned');
      tip.hidden = true;
    };
    let dragFrom = null;
    overlay.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || !onZoom) return;
      dragFrom = toPx(ev);
      overlay.setPointerCapture(ev.pointerId);
      hide(true);
    });
    overlay.addEventListener('pointerup', (ev) => {
      if (dragFrom === null) return;
      const a = Math.min(dragFrom, toPx(ev));
      const b = Math.max(dragFrom, toPx(ev));
      dragFrom = null;
      sel.setAttribute('visibility', 'hidden');
      // A click, not a drag, keeps the range.
      if (b - a >= 5) onZoom(toTime(a), toTime(b));
    });
    overlay.addEventListener('pointerleave', () => { if (dragFrom === null) hide(); });
    overlay.addEventListener('pointermove', (ev) => {
      const px = toPx(ev);
      if (dragFrom !== null) {
        sel.setAttribute('x', Math.min(dragFrom, px));
        sel.setAttribute('width', Math.abs(px - dragFrom));
        sel.setAttribute('visibility', 'visible');
        return;
      }
      if (pinned) return;
      const t = toTime(px);
      // Nearest point of every drawn series (a binary search per series).
      const rows = [];
      for (const { i, ts, top, base } of plotted) {
        const k = nearest(ts, t);
        if (k < 0) continue;
        if (Math.abs(ts[k] - t) <= gap && Number.isFinite(top[k])) {
          rows.push({ i, t: ts[k], v: base ? top[k] - base[k] : top[k], top: top[k] });
        }
      }
      if (!rows.length) {
        hide();
        return;
      }
      hover.setAttribute('x1', x(rows[0].t));
      hover.setAttribute('x2', x(rows[0].t));
      hover.setAttribute('visibility', 'visible');
      rows.sort((a, b) => b.v - a.v);
      // A dot per listed series (all of them for a small chart).
      dots.replaceChildren(...rows.slice(0, useCanvas ? 12 : rows.length).map((r) =>
        s('circle', { cx: x(r.t), cy: y(r.top), r: 3, fill: color(r.i) })));
      replace(tip,
        h('div', { class: 'muted' }, new Date(rows[0].t * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z')),
        h('ul', null, rows.slice(0, 12).map((r) => h('li', null,
          h('span', { class: 'swatch', 'data-color': color(r.i) }),
          h('span', { class: 'mono' }, fmtValue(r.v)), ' ', names[r.i]))),
        rows.length > 12 ? h('div', { class: 'muted' }, `and ${rows.length - 12} more`) : null);
      tip.querySelectorAll('.swatch').forEach((el) => { el.style.background = el.dataset.color; });
      tip.hidden = false;
      const bx = box.getBoundingClientRect();
      const left = ev.clientX - bx.left + 14;
      tip.style.left = `${Math.min(left, Math.max(0, bx.width - 260))}px`;
      tip.style.top = `${ev.clientY - bx.top + 14}px`;
    });
    if (exShown.length) svg.append(exemplarLayer(exShown, { x, y, names, box, tip, hide, pin: (on) => { pinned = on; } }));
    replace(box, canvas, svg, tip);
    legendView.refresh();
  };

  // Click isolates a series (click again shows all); Ctrl/Cmd+click adds
  // or removes one, as in Prometheus' UI.
  const toggle = (i, additive) => {
    if (additive) {
      if (hidden.has(i)) hidden.delete(i);
      else hidden.add(i);
    } else if (hidden.size === series.length - 1 && !hidden.has(i)) {
      hidden.clear();
    } else {
      hidden.clear();
      series.forEach((_, k) => { if (k !== i) hidden.add(k); });
    }
    paint();
  };
  const legendView = useCanvas
    ? virtualLegend(legend, names, hidden)
    : fullLegend(legend, names, hidden);
  legend.addEventListener('click', (ev) => {
    const li = ev.target.closest('li[data-index]');
    if (li) toggle(Number(li.dataset.index), ev.ctrlKey || ev.metaKey);
  });
  paint();
  const total = series.reduce((n, sr) => n + (sr.values || []).length, 0);
  const note = thinned
    ? h('p', { class: 'hint', 'data-testid': 'chart-thinned' },
      `Downsampled for drawing: ${total.toLocaleString('en')} points are more than a browser draws smoothly; each series shows about ${perSeries.toLocaleString('en')} (the lowest and highest of each stretch are kept). The table lists exact values.`)
    : null;
  replace(container, note, box, exNote, legend);
  return { thinned, exemplars: ex ? ex.points.length + ex.unplaced : 0 };
}

/**
 * The markers of `shown` (sorted by time): a diamond each, in its series'
 * colour, over everything else so the pointer reaches it. One tab stop for
 * the lot; arrow keys, Home and End move between markers. Hover and focus
 * show an exemplar's details in `tip`; a click, Enter or Space keeps them
 * open (`pin`) so the trace id can be selected and copied; Escape closes.
 */
function exemplarLayer(shown, { x, y, names, box, tip, hide, pin }) {
  const layer = s('g', {
    class: 'exemplars',
    role: 'group',
    'aria-label': `${shown.length} exemplar${shown.length === 1 ? '' : 's'}: arrow keys move between them, Enter keeps the details open`,
  });
  shown.forEach((p, k) => {
    const cx = px(x(p.t));
    const cy = px(y(p.v));
    layer.append(s('path', {
      class: p.i < 0 ? 'exemplar unmatched' : 'exemplar',
      d: `M${cx},${px(cy - 5)}l5,5l-5,5l-5,-5z`,
      fill: p.i < 0 ? null : color(p.i),
      tabindex: k === 0 ? 0 : -1,
      role: 'button',
      'aria-label': exemplarLabel(p),
      'data-testid': 'exemplar',
      'data-k': k,
      'data-ts': p.t,
      'data-value': p.value,
      'data-x': cx,
      'data-y': cy,
      'data-series': seriesName(p.series),
      'data-graph-series': p.i < 0 ? '' : names[p.i],
      'data-trace-id': traceId(p.labels),
    }));
  });
  const marker = (ev) => (ev.target instanceof Element ? ev.target.closest('[data-testid=exemplar]') : null);
  const show = (el, keep) => {
    const p = shown[Number(el.dataset.k)];
    hide(true);
    let close = null;
    if (keep) {
      close = h('button', { type: 'button', class: 'tip-close', 'aria-label': 'Close exemplar details' }, '×');
      close.addEventListener('click', () => {
        hide(true);
        el.focus();
      });
    }
    replace(tip, exemplarDetails(p, seriesName, p.i < 0 ? '' : names[p.i], close));
    pin(keep);
    tip.classList.toggle('pinned', keep);
    tip.dataset.exemplar = String(el.dataset.k);
    tip.hidden = false;
    // Beside the marker, within the chart's width (phones included).
    const r = el.getBoundingClientRect();
    const bx = box.getBoundingClientRect();
    tip.style.maxWidth = `${Math.max(160, Math.min(420, bx.width))}px`;
    tip.style.left = '0px';
    tip.style.left = `${Math.max(0, Math.min(r.right - bx.left + 8, bx.width - tip.offsetWidth))}px`;
    tip.style.top = `${r.bottom - bx.top + 6}px`;
  };
  const shownFor = (el) => !tip.hidden && tip.dataset.exemplar === el.dataset.k;
  const pinnedNow = () => tip.classList.contains('pinned');
  layer.addEventListener('pointerover', (ev) => {
    const el = marker(ev);
    if (el && !pinnedNow()) show(el, false);
  });
  layer.addEventListener('pointerout', (ev) => {
    if (marker(ev)) hide(false);
  });
  layer.addEventListener('focusin', (ev) => {
    const el = marker(ev);
    if (el && !shownFor(el)) show(el, false);
  });
  layer.addEventListener('focusout', (ev) => {
    if (!tip.contains(ev.relatedTarget)) hide(false);
  });
  layer.addEventListener('click', (ev) => {
    const el = marker(ev);
    if (el) show(el, !(shownFor(el) && pinnedNow()));
  });
  layer.addEventListener('keydown', (ev) => {
    const el = marker(ev);
    if (!el) return;
    const k = Number(el.dataset.k);
    const last = shown.length - 1;
    const to = { ArrowRight: k + 1, ArrowDown: k + 1, ArrowLeft: k - 1, ArrowUp: k - 1, Home: 0, End: last }[ev.key];
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      show(el, !(shownFor(el) && pinnedNow()));
    } else if (ev.key === 'Escape') {
      hide(true);
    } else if (to !== undefined) {
      ev.preventDefault();
      const next = layer.children[Math.max(0, Math.min(last, to))];
      el.setAttribute('tabindex', '-1');
      next.setAttribute('tabindex', '0');
      next.focus();
    }
  });
  return layer;
}

/** A legend entry: a button with the series' colour and name. */
function legendItem(names, hidden, i) {
  const sw = h('span', { class: 'swatch' });
  // Swatch colours via CSSOM (allowed by the CSP, unlike style attributes).
  sw.style.background = color(i);
  return h('li', {
    'data-testid': 'legend-item',
    'data-index': i,
    'data-series': names[i],
    'data-hidden': String(hidden.has(i)),
  }, h('button', {
    type: 'button',
    class: 'legend-button',
    title: 'Click to show only this series, Ctrl+click to show or hide it',
  }, sw, names[i]));
}

/** Every entry in the list `ul`; `refresh` marks the hidden ones. */
function fullLegend(ul, names, hidden) {
  ul.append(...names.map((_, i) => legendItem(names, hidden, i)));
  return {
    refresh() {
      ul.querySelectorAll('li').forEach((li) => {
        li.dataset.hidden = String(hidden.has(Number(li.dataset.index)));
      });
    },
  };
}

/**
 * A legend of many entries in the scrolling `box`: fixed-height rows, of
 * which only those in sight (and a few around) exist, rebuilt on scroll.
 */
function virtualLegend(box, names, hidden) {
  const sizer = h('div', { class: 'legend-sizer' });
  sizer.style.height = `${names.length * LEGEND_ROW}px`;
  const ul = h('ul', { class: 'legend-rows' });
  sizer.append(ul);
  box.append(sizer);
  let from = -1;
  let to = -1;
  const render = (force) => {
    const view = box.clientHeight || 320;
    const a = Math.max(0, Math.floor(box.scrollTop / LEGEND_ROW) - 10);
    const b = Math.min(names.length, Math.ceil((box.scrollTop + view) / LEGEND_ROW) + 10);
    if (!force && a === from && b === to) return;
    from = a;
    to = b;
    ul.style.top = `${a * LEGEND_ROW}px`;
    const items = [];
    for (let i = a; i < b; i++) items.push(legendItem(names, hidden, i));
    ul.replaceChildren(...items);
  };
  box.addEventListener('scroll', () => render(false), { passive: true });
  return { refresh: () => render(true) };
}

/**
 * The lines (and stacked bands) of `plotted` on a canvas the size of the
 * chart, in one pass: a path per series, stroked once.
 */
function drawCanvas(plotted, { width, height, m, w, ht, x0, kx, y0, ky, gap }) {
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const canvas = h('canvas', {
    class: 'chart-canvas',
    width: Math.round(width * dpr),
    height: Math.round(height * dpr),
    'data-testid': 'chart-canvas',
    'data-lines': plotted.length,
    'aria-hidden': 'true',
  });
  const ctx = canvas.getContext('2d');
  if (!ctx) return canvas;
  if (!plotted.some((p) => p.base)) {
    rasterLines(ctx, plotted, { m, w, ht, x0, kx, y0, ky, gap, dpr });
    return canvas;
  }
  ctx.scale(dpr, dpr);
  ctx.beginPath();
  ctx.rect(m.left, m.top, w, ht);
  ctx.clip();
  ctx.lineWidth = 1.2;
  ctx.lineJoin = 'round';
  for (const { i, ts, top, base } of plotted) {
    const c = color(i);
    if (base) {
      // Stacked: the band between the series and what it sits on, per
      // joined stretch.
      ctx.beginPath();
      let k = 0;
      while (k < ts.length) {
        while (k < ts.length && !Number.isFinite(top[k])) k++;
        const from = k;
        k++;
        while (k < ts.length && Number.isFinite(top[k]) && ts[k] - ts[k - 1] <= gap) k++;
        if (k - from > 1) {
          ctx.moveTo(x0 + ts[from] * kx, y0 - top[from] * ky);
          for (let j = from + 1; j < k; j++) ctx.lineTo(x0 + ts[j] * kx, y0 - top[j] * ky);
          for (let j = k - 1; j >= from; j--) ctx.lineTo(x0 + ts[j] * kx, y0 - base[j] * ky);
          ctx.closePath();
        }
      }
      ctx.globalAlpha = 0.25;
      ctx.fillStyle = c;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    ctx.beginPath();
    let prev = null;
    for (let k = 0; k < ts.length; k++) {
      const v = top[k];
      if (!Number.isFinite(v)) {
        prev = null;
        continue;
      }
      const t = ts[k];
      if (prev !== null && t - prev <= gap) ctx.lineTo(x0 + t * kx, y0 - v * ky);
      else ctx.moveTo(x0 + t * kx, y0 - v * ky);
      prev = t;
    }
    ctx.strokeStyle = c;
    ctx.stroke();
  }
  return canvas;
}

/** `#rrggbb` as a pixel of an RGBA ImageData seen as 32-bit words. */
function pixel(hex) {
  const n = parseInt(hex.slice(1), 16);
  const r = (n >> 16) & 255;
  const g = (n >> 8) & 255;
  const b = n & 255;
  const le = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 4;
  return le ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
}

/**
 * Unstacked lines straight into the canvas' pixels: one-pixel lines
 * stepped along their longer axis, clipped to the plot, then one
 * putImageData. Rasterising a thousand anti-aliased paths through the
 * 2D context costs the browser most of a second at paint time; this loop
 * costs tens of milliseconds.
 */
function rasterLines(ctx, plotted, { m, w, ht, x0, kx, y0, ky, gap, dpr }) {
  const W = ctx.canvas.width;
  const H = ctx.canvas.height;
  const img = ctx.createImageData(W, H);
  const buf = new Uint32Array(img.data.buffer);
  const left = Math.max(0, Math.floor(m.left * dpr));
  const right = Math.min(W - 1, Math.ceil((m.left + w) * dpr));
  const top = Math.max(0, Math.floor(m.top * dpr));
  const bottom = Math.min(H - 1, Math.ceil((m.top + ht) * dpr));
  const cx0 = x0 * dpr;
  const ckx = kx * dpr;
  const cy0 = y0 * dpr;
  const cky = ky * dpr;
  const limit = 4 * (W + H);
  for (const { i, ts, top: vs } of plotted) {
    const c = pixel(color(i));
    let prev = null;
    let px = 0;
    let py = 0;
    for (let k = 0; k < ts.length; k++) {
      const v = vs[k];
      if (!Number.isFinite(v)) {
        prev = null;
        continue;
      }
      const t = ts[k];
      const x = cx0 + t * ckx;
      const y = cy0 - v * cky;
      if (prev !== null && t - prev <= gap) {
        const dx = x - px;
        const dy = y - py;
        const n = Math.min(limit, Math.ceil(Math.max(Math.abs(dx), Math.abs(dy))));
        for (let s = 1; s <= n; s++) {
          const xi = Math.round(px + (dx * s) / n);
          const yi = Math.round(py + (dy * s) / n);
          if (xi >= left && xi <= right && yi >= top && yi <= bottom) buf[yi * W + xi] = c;
        }
      } else {
        const xi = Math.round(x);
        const yi = Math.round(y);
        if (xi >= left && xi <= right && yi >= top && yi <= bottom) buf[yi * W + xi] = c;
      }
      prev = t;
      px = x;
      py = y;
    }
  }
  ctx.putImageData(img, 0, 0);
}
