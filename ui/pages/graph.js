// Graph: a PromQL expression, drawn over a time range (query_range) and
// listed at the end of it (instant query). Parser errors show where.

import { apiData, qs } from '../lib/api.js';
import { h, replace, table, scrollable } from '../lib/dom.js';
import { drawChart, seriesName } from '../lib/chart.js';
import { parseDuration, fmtValue, fmtDuration } from '../lib/time.js';

/** Points per series the automatic step aims at. */
const TARGET_POINTS = 250;

/** The step for a range: the user's, else range / 250 rounded, ≥ 1 s. */
export function autoStep(rangeSec, given) {
  const g = Number(given);
  if (given !== '' && given !== null && given !== undefined && Number.isFinite(g) && g > 0) return g;
  return Math.max(1, Math.round(rangeSec / TARGET_POINTS));
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

function instantTable(data) {
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
  return table(['Series', 'Value'], rows, { id: 'graph-table' });
}

export async function render(view, ctx) {
  const p = ctx.params;
  const expr = h('textarea', {
    id: 'expr-input', rows: 3, spellcheck: 'false', autocomplete: 'off',
    placeholder: 'rate(http_requests_total[5m])',
  });
  expr.value = p.get('expr') || '';
  const range = h('input', { id: 'graph-range', type: 'text', value: p.get('range') || '1h', size: 6 });
  const step = h('input', { id: 'graph-step', type: 'number', min: '0', step: 'any', value: p.get('step') || '', size: 6, placeholder: 'auto' });
  const run = h('button', { id: 'graph-run', type: 'button', class: 'primary' }, 'Run');
  const tabChart = h('button', { id: 'graph-tab-chart', type: 'button', role: 'tab', 'aria-selected': 'true', 'aria-controls': 'graph-chart' }, 'Chart');
  const tabTable = h('button', { id: 'graph-tab-table', type: 'button', role: 'tab', 'aria-selected': 'false', 'aria-controls': 'graph-table-box' }, 'Table');
  const err = h('div', { id: 'graph-error', class: 'error', role: 'alert', hidden: true });
  const info = h('p', { class: 'summary-line', id: 'graph-info', 'aria-live': 'polite' });
  const chart = h('div', { id: 'graph-chart', role: 'tabpanel', 'aria-labelledby': 'graph-tab-chart' });
  const tableBox = h('div', { id: 'graph-table-box', role: 'tabpanel', 'aria-labelledby': 'graph-tab-table', hidden: true });

  replace(view,
    h('h1', null, 'Graph'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field grow' }, h('label', { for: 'expr-input' }, 'Expression'), expr),
      h('div', { class: 'field' }, h('label', { for: 'graph-range' }, 'Range'), range),
      h('div', { class: 'field' }, h('label', { for: 'graph-step' }, 'Step (s)'), step),
      run),
    h('p', { class: 'hint' }, 'Enter runs the query (Shift+Enter for a new line). Range like 15m, 1h, 1d.'),
    err,
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Result view' }, tabChart, tabTable),
    info, chart, tableBox);

  const select = (which) => {
    const isChart = which === 'chart';
    tabChart.setAttribute('aria-selected', String(isChart));
    tabTable.setAttribute('aria-selected', String(!isChart));
    chart.hidden = !isChart;
    tableBox.hidden = isChart;
    const np = new URLSearchParams(ctx.params);
    if (isChart) np.delete('tab');
    else np.set('tab', 'table');
    ctx.params = np;
    ctx.replaceParams(np);
  };
  tabChart.addEventListener('click', () => select('chart'));
  tabTable.addEventListener('click', () => select('table'));

  const execute = async () => {
    const q = expr.value.trim();
    err.hidden = true;
    if (!q) {
      replace(chart, h('p', { class: 'muted' }, 'Enter an expression and press Run.'));
      replace(tableBox, h('p', { class: 'muted' }, 'No query yet.'));
      return;
    }
    const rangeSec = parseDuration(range.value);
    if (!rangeSec || rangeSec <= 0) {
      errorView(err, `Range: ${JSON.stringify(range.value)} is not a duration like 1h or 30m`, q);
      return;
    }
    const np = new URLSearchParams();
    np.set('expr', q);
    np.set('range', range.value.trim());
    if (step.value) np.set('step', step.value);
    if (ctx.params.get('tab') === 'table') np.set('tab', 'table');
    ctx.params = np;
    ctx.replaceParams(np);
    const end = Math.floor(Date.now() / 1000);
    const start = end - rangeSec;
    const st = autoStep(rangeSec, step.value);
    run.disabled = true;
    const t0 = performance.now();
    try {
      const [rangeData, instData] = await Promise.all([
        apiData(`/api/v1/query_range${qs({ query: q, start, end, step: st })}`, { signal: ctx.abort.signal }),
        apiData(`/api/v1/query${qs({ query: q, time: end })}`, { signal: ctx.abort.signal }),
      ]);
      if (!ctx.live()) return;
      const series = rangeData.resultType === 'matrix' ? rangeData.result : [];
      info.textContent = `${series.length} series, step ${fmtDuration(st)}, ${Math.round(performance.now() - t0)} ms`;
      if (series.length) drawChart(chart, series, { start, end, step: st });
      else replace(chart, h('p', { class: 'muted' }, 'Empty query result'));
      replace(tableBox, scrollable(instantTable(instData), 'Instant query result'));
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      errorView(err, e.message || String(e), q);
      replace(chart);
      replace(tableBox);
      info.textContent = '';
    } finally {
      run.disabled = false;
    }
  };

  run.addEventListener('click', () => { execute(); });
  expr.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      execute();
    }
  });
  for (const el of [range, step]) {
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        execute();
      }
    });
  }
  if (p.get('tab') === 'table') select('table');
  await execute();
}
