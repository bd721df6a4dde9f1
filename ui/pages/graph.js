// Graph: panels of PromQL expressions, each drawn over a time range
// (query_range) or listed at one instant (instant query). The panels live
// in the URL in Prometheus' classic format (lib/panels.js), so links from
// Prometheus' world open here and the page is shareable as it stands.
// Parser errors show where.

import { apiData, qs } from '../lib/api.js';
import { h, replace, table, scrollable } from '../lib/dom.js';
import { drawChart, seriesName } from '../lib/chart.js';
import { parseDuration, fmtValue, fmtDuration } from '../lib/time.js';
import { parsePanels, encodePanels, defaultPanel, formatDuration, formatTime, parseTime } from '../lib/panels.js';
import { attachCompletion, LabelSource } from '../lib/complete.js';
import { metricBrowser } from '../lib/metric-browser.js';

/** Points per series the automatic step aims at. */
const TARGET_POINTS = 250;
/** Prometheus' limit on points per series in a range query. */
export const MAX_POINTS = 11000;
/** Series a panel shows at most; a larger result is refused, not drawn. */
export const MAX_SERIES = 10000;

/** The step for a range: the user's, else range / 250 rounded, ≥ 1 s. */
export function autoStep(rangeSec, given) {
  const g = Number(given);
  if (given !== '' && given !== null && given !== undefined && Number.isFinite(g) && g > 0) return g;
  return Math.max(1, Math.round(rangeSec / TARGET_POINTS));
}

/**
 * The step actually queried and, when the asked one would exceed
 * Prometheus' 11,000 points per series, why it was raised.
 */
export function boundedStep(rangeSec, given) {
  const st = autoStep(rangeSec, given);
  if (rangeSec / st <= MAX_POINTS) return { step: st, note: '' };
  const raised = Math.ceil(rangeSec / MAX_POINTS);
  return {
    step: raised,
    note: `Step raised from ${fmtDuration(st)} to ${fmtDuration(raised)}: at most ${MAX_POINTS.toLocaleString('en')} points per series.`,
  };
}

/** `1:5: parse error: ...` → {line, col}, or null. */
export function errorPosition(msg) {
  const m = /(\d+):(\d+): parse error/.exec(msg || '');
  return m ? { line: Number(m[1]), col: Number(m[2]) } : null;
}

function errorView(el, msg, expr) {
  const pos = errorPosition(msg);
  const children = [h('div', null, msg)];
  if (pos) {
    const line = (expr.split('\n')[pos.line - 1] || '');
    children.push(h('pre', { class: 'mono', 'aria-label': `error at line ${pos.line}, column ${pos.col}` },
      `${line}\n${' '.repeat(Math.max(0, pos.col - 1))}^`));
  }
  replace(el, children);
  el.hidden = false;
}

function instantTable(data, id) {
  const t = data.resultType;
  let rows;
  if (t === 'vector') {
    rows = data.result.map((r) => h('tr', null,
      h('td', { class: 'mono' }, seriesName(r.metric)),
      h('td', { class: 'num' }, r.value ? fmtValue(r.value[1]) : '-')));
  } else if (t === 'matrix') {
    rows = data.result.map((r) => h('tr', null,
      h('td', { class: 'mono' }, seriesName(r.metric)),
      h('td', { class: 'mono' }, (r.values || []).map((v) => `${fmtValue(v[1])} @${v[0]}`).join('\n'))));
  } else {
    rows = [h('tr', null, h('td', { class: 'mono' }, t), h('td', { class: 'num' }, fmtValue(data.result && data.result[1])))];
  }
  if (!rows.length) rows = [h('tr', null, h('td', { colspan: 2, class: 'muted' }, 'Empty query result'))];
  return table(['Series', 'Value'], rows, { id });
}

/** Refusal text for a result too large to show, or ''. */
function tooLarge(count) {
  return count > MAX_SERIES
    ? `The result has ${count.toLocaleString('en')} series; a panel shows at most ${MAX_SERIES.toLocaleString('en')}. Narrow the selector or aggregate (sum by, topk).`
    : '';
}

/**
 * One panel: its inputs, its two views and its evaluation. `state` is the
 * panel's part of the URL; `page.sync()` writes every panel back.
 */
function createPanel(state, n, page, ctx, src) {
  const sfx = n ? `-${n}` : '';
  const id = (base) => `${base}${sfx}`;
  const expr = h('textarea', {
    id: id('expr-input'), class: 'expr-input', rows: 3, spellcheck: 'false', autocomplete: 'off',
    placeholder: 'rate(http_requests_total[5m])',
  });
  expr.value = state.expr;
  // Before the Enter handler below: Enter in an open list takes a completion.
  const completions = attachCompletion(expr, id('expr-complete'), src);
  const browser = metricBrowser(src, expr, sfx);
  const browse = h('button', { id: id('metric-browse'), type: 'button', 'aria-controls': id('metric-browser') }, 'Metrics');
  browse.addEventListener('click', () => browser.toggle());
  const range = h('input', { id: id('graph-range'), type: 'text', value: formatDuration(state.range), size: 6 });
  const end = h('input', {
    id: id('graph-end'), type: 'text', size: 19, placeholder: 'now',
    value: state.end === null ? '' : formatTime(state.end),
  });
  const step = h('input', { id: id('graph-step'), type: 'text', value: state.step ? String(state.step) : '', size: 6, placeholder: 'auto' });
  const stacked = h('input', { id: id('graph-stacked'), type: 'checkbox' });
  stacked.checked = state.stacked;
  const exemplars = h('input', { id: id('graph-exemplars'), type: 'checkbox' });
  exemplars.checked = state.exemplars;
  const run = h('button', { id: id('graph-run'), type: 'button', class: 'primary' }, 'Run');
  const zoomBack = h('button', { id: id('graph-zoom-back'), type: 'button', disabled: true, title: 'The time range before the last zoom' }, '◀ Zoom back');
  const zoomFwd = h('button', { id: id('graph-zoom-forward'), type: 'button', disabled: true, title: 'The time range of the zoom undone' }, 'Zoom forward ▶');
  const remove = page.count() > 1
    ? h('button', { id: id('graph-remove'), type: 'button', 'aria-label': `Remove panel ${n + 1}` }, 'Remove')
    : null;
  const tabChart = h('button', { id: id('graph-tab-chart'), type: 'button', role: 'tab', 'aria-controls': id('graph-chart') }, 'Graph');
  const tabTable = h('button', { id: id('graph-tab-table'), type: 'button', role: 'tab', 'aria-controls': id('graph-table-box') }, 'Table');
  const err = h('div', { id: id('graph-error'), class: 'error', role: 'alert', hidden: true });
  // The exemplar query failing is a warning: the chart is still drawn.
  const exWarn = h('p', { id: id('graph-exemplars-warning'), class: 'warning', role: 'status', hidden: true });
  const info = h('p', { class: 'summary-line', id: id('graph-info'), 'aria-live': 'polite' });
  const chart = h('div', { id: id('graph-chart'), role: 'tabpanel', 'aria-labelledby': id('graph-tab-chart') });
  const tableBox = h('div', { id: id('graph-table-box'), role: 'tabpanel', 'aria-labelledby': id('graph-tab-table') });

  const el = h('section', { class: 'card panel', 'data-testid': 'panel', 'data-panel': n, 'aria-label': `Panel ${n + 1}` },
    h('div', { class: 'body' },
      h('div', { class: 'toolbar' },
        h('div', { class: 'field grow expr-field' }, h('label', { for: id('expr-input') }, 'Expression'), expr, completions),
        browse, run, remove),
      browser.el,
      h('div', { class: 'toolbar' },
        h('div', { class: 'field' }, h('label', { for: id('graph-range') }, 'Range'), range),
        h('div', { class: 'field' }, h('label', { for: id('graph-end') }, 'End (UTC)'), end),
        h('div', { class: 'field' }, h('label', { for: id('graph-step') }, 'Step'), step),
        h('div', { class: 'field check' }, h('label', { for: id('graph-stacked') }, 'Stacked'), stacked),
        h('div', { class: 'field check' }, h('label', { for: id('graph-exemplars') }, 'Show exemplars'), exemplars),
        zoomBack, zoomFwd),
      err, exWarn,
      h('div', { class: 'tabs', role: 'tablist', 'aria-label': `Panel ${n + 1} view` }, tabChart, tabTable),
      info, chart, tableBox));

  /** Reads the inputs into `state`; an error text when one is invalid. */
  const readInputs = () => {
    state.expr = expr.value.trim();
    const r = parseDuration(range.value);
    if (!r || r <= 0) return `Range: ${JSON.stringify(range.value)} is not a duration like 1h or 30m`;
    state.range = r;
    if (end.value.trim()) {
      const e = parseTime(end.value);
      if (e === null) return `End: ${JSON.stringify(end.value)} is not a time like 2026-01-31 12:00:00 (UTC)`;
      state.end = e;
    } else {
      state.end = null;
    }
    if (step.value.trim()) {
      const s = parseDuration(step.value);
      if (!s || s <= 0) return `Step: ${JSON.stringify(step.value)} is not a duration like 15s or a number of seconds`;
      state.step = s;
    } else {
      state.step = null;
    }
    state.stacked = stacked.checked;
    state.exemplars = exemplars.checked;
    return '';
  };

  const showTab = () => {
    const isChart = state.tab === 'graph';
    tabChart.setAttribute('aria-selected', String(isChart));
    tabTable.setAttribute('aria-selected', String(!isChart));
    chart.hidden = !isChart;
    tableBox.hidden = isChart;
  };

  // Zooms: a drag over the chart sets range and end; back and forward walk
  // through the ranges seen, as a browser's history does through pages.
  const back = [];
  const fwd = [];
  const showZoom = () => {
    zoomBack.disabled = back.length === 0;
    zoomFwd.disabled = fwd.length === 0;
  };
  const setRange = (r) => {
    state.range = r.range;
    state.end = r.end;
    range.value = formatDuration(r.range);
    end.value = r.end === null ? '' : formatTime(r.end);
    showZoom();
    execute();
  };
  const onZoom = (t0, t1) => {
    const now = { range: state.range, end: state.end };
    back.push(now);
    fwd.length = 0;
    const e = Math.round(t1);
    setRange({ range: Math.max(1, e - Math.round(t0)), end: e });
  };
  zoomBack.addEventListener('click', () => {
    if (!back.length) return;
    fwd.push({ range: state.range, end: state.end });
    setRange(back.pop());
  });
  zoomFwd.addEventListener('click', () => {
    if (!fwd.length) return;
    back.push({ range: state.range, end: state.end });
    setRange(fwd.pop());
  });

  let seq = 0;
  const execute = async () => {
    const mine = ++seq;
    err.hidden = true;
    exWarn.hidden = true;
    const bad = readInputs();
    page.sync();
    el.dataset.evaluated = '';
    if (bad) {
      errorView(err, bad, state.expr);
      return;
    }
    const q = state.expr;
    if (!q) {
      replace(chart, h('p', { class: 'muted' }, 'Enter an expression and press Run.'));
      replace(tableBox, h('p', { class: 'muted' }, 'No query yet.'));
      info.textContent = '';
      return;
    }
    const endSec = state.end === null ? Math.floor(Date.now() / 1000) : state.end;
    const tab = state.tab;
    run.disabled = true;
    const t0 = performance.now();
    try {
      if (tab === 'graph') {
        const start = endSec - state.range;
        const { step: st, note } = boundedStep(state.range, state.step);
        // The exemplars of the expression's selectors over the same range,
        // asked for alongside the range query; a failure is kept, not thrown.
        const exAnswer = state.exemplars
          ? apiData(`/api/v1/query_exemplars${qs({ query: q, start, end: endSec })}`, { signal: ctx.abort.signal })
            .then((d) => ({ data: Array.isArray(d) ? d : [] }), (e) => ({ error: e }))
          : null;
        const data = await apiData(`/api/v1/query_range${qs({ query: q, start, end: endSec, step: st })}`, { signal: ctx.abort.signal });
        const ex = exAnswer ? await exAnswer : null;
        if (!ctx.live() || mine !== seq) return;
        if (ex && ex.error) {
          if (ex.error.name === 'AbortError') throw ex.error;
          exWarn.textContent = `Exemplars not shown: ${ex.error.message || ex.error}`;
          exWarn.hidden = false;
        }
        // For benches/graph_render.py: answer parsed, then chart built.
        performance.mark('graph-answer');
        const series = data.resultType === 'matrix' ? data.result : [];
        const refuse = tooLarge(series.length);
        let found = 0;
        if (refuse) replace(chart, h('p', { class: 'error', id: id('graph-refused') }, refuse));
        else if (series.length) {
          const exemplarData = ex && ex.data ? ex.data : null;
          found = drawChart(chart, series, { start, end: endSec, step: st, stacked: state.stacked, onZoom, exemplars: exemplarData }).exemplars;
        } else replace(chart, h('p', { class: 'muted' }, 'Empty query result'));
        info.textContent = `${series.length} series, step ${fmtDuration(st)}${found ? `, ${found.toLocaleString('en')} exemplar${found === 1 ? '' : 's'}` : ''}, ${Math.round(performance.now() - t0)} ms`;
        if (note) chart.prepend(h('p', { class: 'hint', id: id('graph-step-note') }, note));
        performance.mark('graph-drawn');
      } else {
        const data = await apiData(`/api/v1/query${qs({ query: q, time: endSec })}`, { signal: ctx.abort.signal });
        if (!ctx.live() || mine !== seq) return;
        const count = Array.isArray(data.result) && data.resultType !== 'scalar' && data.resultType !== 'string'
          ? data.result.length : 1;
        const refuse = tooLarge(count);
        info.textContent = `${count} result${count === 1 ? '' : 's'} at ${formatTime(endSec)} UTC, ${Math.round(performance.now() - t0)} ms`;
        if (refuse) replace(tableBox, h('p', { class: 'error', id: id('graph-refused') }, refuse));
        else replace(tableBox, scrollable(instantTable(data, id('graph-table')), 'Instant query result'));
      }
      el.dataset.evaluated = tab;
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      if (mine !== seq) return;
      errorView(err, e.message || String(e), q);
      replace(chart);
      replace(tableBox);
      info.textContent = '';
    } finally {
      if (mine === seq) run.disabled = false;
    }
  };

  const select = (which) => {
    state.tab = which;
    showTab();
    execute();
  };
  tabChart.addEventListener('click', () => select('graph'));
  tabTable.addEventListener('click', () => select('table'));
  run.addEventListener('click', () => { execute(); });
  stacked.addEventListener('change', () => { execute(); });
  exemplars.addEventListener('change', () => { execute(); });
  if (remove) remove.addEventListener('click', () => page.remove(n));
  expr.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.defaultPrevented) {
      ev.preventDefault();
      execute();
    }
  });
  for (const input of [range, end, step]) {
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        execute();
      }
    });
  }
  showTab();
  return { el, execute, state, expr };
}

export async function render(view, ctx) {
  const states = parsePanels(ctx.params);
  const list = h('div', { id: 'graph-panels' });
  const add = h('button', { id: 'graph-add-panel', type: 'button' }, 'Add panel');
  replace(view,
    h('h1', null, 'Graph'),
    h('p', { class: 'hint' }, 'Enter runs the query (Shift+Enter for a new line). Range like 15m, 1h, 1d; end empty for now.'),
    list, add);

  let panels = [];
  const src = new LabelSource(ctx.abort.signal);
  const page = {
    count: () => states.length,
    sync() {
      const np = encodePanels(states);
      ctx.params = np;
      ctx.replaceParams(np);
    },
    remove(i) {
      states.splice(i, 1);
      build();
      page.sync();
      panels.forEach((p) => p.execute());
    },
  };
  const build = () => {
    panels = states.map((st, i) => createPanel(st, i, page, ctx, src));
    replace(list, panels.map((p) => p.el));
  };
  build();
  add.addEventListener('click', () => {
    const p = defaultPanel();
    p.tab = 'graph';
    states.push(p);
    build();
    page.sync();
    panels.slice(0, -1).forEach((x) => x.execute());
    panels[panels.length - 1].expr.focus();
  });
  await Promise.all(panels.map((p) => p.execute()));
}
