// The metric browser: search the server's metric names with their HELP and
// TYPE (`/api/v1/metadata`), pick one, pick values of its labels, and
// insert the selector (`name{job="a",mode=~"x|y"}`) into the expression.

import { h, replace } from './dom.js';
import { quoteValue } from './complete.js';

/** Names shown at most while searching. */
const MAX_METRICS = 200;

/** A regex alternative matching exactly `v` (RE2 metacharacters escaped). */
function reEscape(v) {
  return String(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The selector for `metric` with `picked` ({label: Set of values}). */
export function buildSelector(metric, picked) {
  const parts = [];
  for (const [label, values] of Object.entries(picked)) {
    const vs = [...values].sort();
    if (vs.length === 1) parts.push(`${label}=${quoteValue(vs[0])}`);
    else if (vs.length > 1) parts.push(`${label}=~${quoteValue(vs.map(reEscape).join('|'))}`);
  }
  return parts.length ? `${metric}{${parts.join(', ')}}` : metric;
}

/**
 * A browser for `src` (a LabelSource) that inserts into `input` at its
 * caret. `sfx` keeps its ids unique per panel. Returns {el, toggle}.
 */
export function metricBrowser(src, input, sfx) {
  const id = (b) => `${b}${sfx}`;
  const search = h('input', { id: id('metric-search'), type: 'search', placeholder: 'metric name or help text', autocomplete: 'off', spellcheck: 'false' });
  const list = h('ul', { id: id('metric-list'), class: 'metric-list', 'aria-label': 'Metrics' });
  const labels = h('div', { id: id('metric-labels'), class: 'metric-labels' });
  const preview = h('code', { id: id('metric-selector'), class: 'mono' });
  const insert = h('button', { id: id('metric-insert'), type: 'button', class: 'primary', disabled: true }, 'Insert selector');
  const closeBtn = h('button', { id: id('metric-close'), type: 'button' }, 'Close');
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  const el = h('div', { id: id('metric-browser'), class: 'metric-browser card', 'data-testid': 'metric-browser', role: 'dialog', 'aria-label': 'Metric browser', hidden: true },
    h('div', { class: 'body' },
      h('div', { class: 'toolbar' },
        h('div', { class: 'field grow' }, h('label', { for: id('metric-search') }, 'Search metrics'), search),
        closeBtn),
      status,
      h('div', { class: 'metric-cols' }, list, labels),
      h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, 'Selector: '), preview, insert)));

  let metric = '';
  let picked = {};
  let all = [];
  const showPreview = () => {
    preview.textContent = metric ? buildSelector(metric, picked) : '';
    insert.disabled = !metric;
  };

  const showList = () => {
    const q = search.value.trim().toLowerCase();
    const hits = all.filter((m) => !q || m.name.toLowerCase().includes(q) || m.help.toLowerCase().includes(q));
    status.textContent = `${hits.length} of ${all.length} metrics${hits.length > MAX_METRICS ? `, first ${MAX_METRICS} shown` : ''}`;
    replace(list, hits.slice(0, MAX_METRICS).map((m) => h('li', { 'data-testid': 'metric-item', 'data-metric': m.name, 'aria-selected': String(m.name === metric) },
      h('button', { type: 'button', class: 'metric-pick', onclick: () => pick(m.name) },
        h('span', { class: 'mono' }, m.name), ' ',
        m.type ? h('span', { class: 'badge badge-neutral' }, m.type) : null),
      m.help ? h('div', { class: 'hint' }, m.help) : null)));
  };

  const pick = async (name) => {
    metric = name;
    picked = {};
    showPreview();
    showList();
    replace(labels, h('p', { class: 'muted' }, `Loading labels of ${name}…`));
    try {
      const names = (await src.labelNames(name)).filter((n) => n !== '__name__');
      const groups = await Promise.all(names.map(async (l) => [l, await src.labelValues(l, name)]));
      if (metric !== name) return;
      replace(labels, groups.length ? groups.map(([l, values]) => h('fieldset', { class: 'label-group', 'data-label': l },
        h('legend', { class: 'mono' }, `${l} (${values.length})`),
        values.slice(0, 100).map((v) => h('label', { class: 'label-value' },
          h('input', {
            type: 'checkbox',
            'data-testid': 'label-value',
            'data-label': l,
            value: v,
            onchange: (ev) => {
              if (!picked[l]) picked[l] = new Set();
              if (ev.target.checked) picked[l].add(v);
              else picked[l].delete(v);
              showPreview();
            },
          }), ' ', h('span', { class: 'mono' }, v)))))
        : h('p', { class: 'muted' }, 'No labels besides the name.'));
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      replace(labels, h('p', { class: 'error' }, `Could not load labels: ${e.message || e}`));
    }
  };

  const load = async () => {
    status.textContent = 'Loading metrics…';
    try {
      const [names, meta] = await Promise.all([src.metricNames(), src.metadata()]);
      const set = new Set(names);
      Object.keys(meta || {}).forEach((n) => set.add(n));
      all = [...set].sort().map((n) => {
        const md = (meta && meta[n] && meta[n][0]) || {};
        return { name: n, type: md.type || '', help: md.help || '' };
      });
      showList();
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      status.textContent = `Could not load metrics: ${e.message || e}`;
    }
  };

  const toggle = () => {
    el.hidden = !el.hidden;
    if (!el.hidden) {
      if (!all.length) load();
      search.focus();
    }
  };
  search.addEventListener('input', showList);
  closeBtn.addEventListener('click', () => { el.hidden = true; input.focus(); });
  insert.addEventListener('click', () => {
    const sel = buildSelector(metric, picked);
    const a = input.selectionStart ?? input.value.length;
    const b = input.selectionEnd ?? a;
    input.value = input.value.slice(0, a) + sel + input.value.slice(b);
    const pos = a + sel.length;
    el.hidden = true;
    input.focus();
    input.setSelectionRange(pos, pos);
  });
  return { el, toggle };
}
