// Autocomplete for a PromQL text box: what the text before the caret
// expects (a metric or function, a label name, a label value, a duration)
// and the candidates for it, from the server's label APIs (metric and
// label names, label values narrowed by `match[]` to the metric at hand)
// and from the PromQL language itself (functions with their signatures,
// aggregations, keywords).

import { apiData, qs } from './api.js';
import { h, replace } from './dom.js';

/** PromQL's functions (without the experimental ones) and their signatures. */
export const FUNCTIONS = [
  ['abs', 'abs(v instant-vector)'], ['absent', 'absent(v instant-vector)'],
  ['absent_over_time', 'absent_over_time(v range-vector)'],
  ['acos', 'acos(v instant-vector)'], ['acosh', 'acosh(v instant-vector)'],
  ['asin', 'asin(v instant-vector)'], ['asinh', 'asinh(v instant-vector)'],
  ['atan', 'atan(v instant-vector)'], ['atanh', 'atanh(v instant-vector)'],
  ['avg_over_time', 'avg_over_time(v range-vector)'], ['ceil', 'ceil(v instant-vector)'],
  ['changes', 'changes(v range-vector)'],
  ['clamp', 'clamp(v instant-vector, min scalar, max scalar)'],
  ['clamp_max', 'clamp_max(v instant-vector, max scalar)'],
  ['clamp_min', 'clamp_min(v instant-vector, min scalar)'],
  ['cos', 'cos(v instant-vector)'], ['cosh', 'cosh(v instant-vector)'],
  ['count_over_time', 'count_over_time(v range-vector)'],
  ['day_of_month', 'day_of_month(v=vector(time()) instant-vector)'],
  ['day_of_week', 'day_of_week(v=vector(time()) instant-vector)'],
  ['day_of_year', 'day_of_year(v=vector(time()) instant-vector)'],
  ['days_in_month', 'days_in_month(v=vector(time()) instant-vector)'],
  ['deg', 'deg(v instant-vector)'], ['delta', 'delta(v range-vector)'],
  ['deriv', 'deriv(v range-vector)'], ['exp', 'exp(v instant-vector)'],
  ['floor', 'floor(v instant-vector)'],
  ['histogram_avg', 'histogram_avg(v instant-vector)'],
  ['histogram_count', 'histogram_count(v instant-vector)'],
  ['histogram_fraction', 'histogram_fraction(lower scalar, upper scalar, v instant-vector)'],
  ['histogram_quantile', 'histogram_quantile(φ scalar, b instant-vector)'],
  ['histogram_stddev', 'histogram_stddev(v instant-vector)'],
  ['histogram_stdvar', 'histogram_stdvar(v instant-vector)'],
  ['histogram_sum', 'histogram_sum(v instant-vector)'],
  ['holt_winters', 'holt_winters(v range-vector, sf scalar, tf scalar)'],
  ['hour', 'hour(v=vector(time()) instant-vector)'], ['idelta', 'idelta(v range-vector)'],
  ['increase', 'increase(v range-vector)'], ['irate', 'irate(v range-vector)'],
  ['label_join', 'label_join(v instant-vector, dst_label string, separator string, src_label_1 string, ...)'],
  ['label_replace', 'label_replace(v instant-vector, dst_label string, replacement string, src_label string, regex string)'],
  ['last_over_time', 'last_over_time(v range-vector)'], ['ln', 'ln(v instant-vector)'],
  ['log10', 'log10(v instant-vector)'], ['log2', 'log2(v instant-vector)'],
  ['max_over_time', 'max_over_time(v range-vector)'],
  ['min_over_time', 'min_over_time(v range-vector)'],
  ['minute', 'minute(v=vector(time()) instant-vector)'],
  ['month', 'month(v=vector(time()) instant-vector)'], ['pi', 'pi()'],
  ['predict_linear', 'predict_linear(v range-vector, t scalar)'],
  ['present_over_time', 'present_over_time(v range-vector)'],
  ['quantile_over_time', 'quantile_over_time(φ scalar, v range-vector)'],
  ['rad', 'rad(v instant-vector)'], ['rate', 'rate(v range-vector)'],
  ['resets', 'resets(v range-vector)'],
  ['round', 'round(v instant-vector, to_nearest=1 scalar)'],
  ['scalar', 'scalar(v instant-vector)'], ['sgn', 'sgn(v instant-vector)'],
  ['sin', 'sin(v instant-vector)'], ['sinh', 'sinh(v instant-vector)'],
  ['sort', 'sort(v instant-vector)'], ['sort_desc', 'sort_desc(v instant-vector)'],
  ['sqrt', 'sqrt(v instant-vector)'],
  ['stddev_over_time', 'stddev_over_time(v range-vector)'],
  ['stdvar_over_time', 'stdvar_over_time(v range-vector)'],
  ['sum_over_time', 'sum_over_time(v range-vector)'],
  ['tan', 'tan(v instant-vector)'], ['tanh', 'tanh(v instant-vector)'], ['time', 'time()'],
  ['timestamp', 'timestamp(v instant-vector)'], ['vector', 'vector(s scalar)'],
  ['year', 'year(v=vector(time()) instant-vector)'],
];

/** Aggregation operators and their forms. */
export const AGGREGATIONS = [
  ['sum', 'sum [by|without (labels)] (v)'], ['min', 'min [by|without (labels)] (v)'],
  ['max', 'max [by|without (labels)] (v)'], ['avg', 'avg [by|without (labels)] (v)'],
  ['group', 'group [by|without (labels)] (v)'], ['stddev', 'stddev [by|without (labels)] (v)'],
  ['stdvar', 'stdvar [by|without (labels)] (v)'], ['count', 'count [by|without (labels)] (v)'],
  ['count_values', 'count_values(label string, v)'], ['bottomk', 'bottomk(k scalar, v)'],
  ['topk', 'topk(k scalar, v)'], ['quantile', 'quantile(φ scalar, v)'],
];

const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2'];
const DURATIONS = ['1m', '5m', '10m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '1w'];
const UNITS = ['s', 'm', 'h', 'd', 'w', 'y', 'ms'];
/** Candidates shown at most. */
const MAX_ITEMS = 60;

/**
 * What the text before `caret` expects: `{kind, prefix, from}` where
 * `from` is where the word being typed starts, plus `metric` (the metric
 * whose braces the caret is in) and `label` (for label values), or null
 * when nothing should be offered (inside a comment or a number).
 */
export function completionContext(text, caret) {
  const before = text.slice(0, caret);
  const stack = []; // [char, index]
  let quote = null;
  let quoteAt = -1;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '#') {
      const nl = before.indexOf('\n', i);
      if (nl < 0) return null;
      i = nl;
    } else if (c === '"' || c === "'" || c === '`') {
      quote = c;
      quoteAt = i;
    } else if (c === '(' || c === '{' || c === '[') {
      stack.push([c, i]);
    } else if (c === ')' || c === '}' || c === ']') {
      stack.pop();
    }
  }
  const top = stack[stack.length - 1];
  const metricBefore = (idx) => {
    const m = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(before.slice(0, idx));
    return m ? m[1] : '';
  };
  if (quote) {
    if (!top || top[0] !== '{') return null;
    const lm = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(0, quoteAt));
    if (!lm) return null;
    return { kind: 'labelValue', prefix: before.slice(quoteAt + 1), from: quoteAt + 1, label: lm[1], metric: metricBefore(top[1]), quote };
  }
  const word = /[a-zA-Z0-9_:]*$/.exec(before)[0];
  const from = caret - word.length;
  if (top && top[0] === '[') {
    const inner = before.slice(top[1] + 1);
    const dm = /[0-9a-z]*$/.exec(inner.split(':').pop())[0];
    return { kind: 'duration', prefix: dm, from: caret - dm.length };
  }
  if (top && top[0] === '{') {
    // After an operator the value comes in quotes: offer it with them.
    const vm = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(0, from));
    if (vm) return { kind: 'labelValue', prefix: word, from, label: vm[1], metric: metricBefore(top[1]), quote: null };
    return { kind: 'labelName', prefix: word, from, metric: metricBefore(top[1]) };
  }
  if (top && top[0] === '(' && /\b(by|without|on|ignoring|group_left|group_right)\s*$/.test(before.slice(0, top[1]))) {
    return { kind: 'labelName', prefix: word, from, metric: '' };
  }
  if (/^[0-9]/.test(word)) return null;
  return { kind: 'expr', prefix: word, from };
}

/** Candidates ranked: names starting with the prefix, then containing it. */
function rank(items, prefix) {
  const p = prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const it of items) {
    const l = it.label.toLowerCase();
    if (l === p) continue;
    if (l.startsWith(p)) starts.push(it);
    else if (p && l.includes(p)) contains.push(it);
  }
  return starts.concat(contains).slice(0, MAX_ITEMS);
}

/** `"` and `\` escaped for a PromQL double-quoted string. */
export function quoteValue(v) {
  return `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/**
 * The server's metric names, label names and values and metadata, each
 * asked once per minute at most.
 */
export class LabelSource {
  constructor(signal) {
    this.signal = signal;
    this.cache = new Map();
  }

  get(path) {
    const hit = this.cache.get(path);
    if (hit && Date.now() - hit.at < 60000) return hit.p;
    const p = apiData(path, { signal: this.signal }).catch((e) => {
      this.cache.delete(path);
      throw e;
    });
    this.cache.set(path, { at: Date.now(), p });
    return p;
  }

  metricNames() { return this.get('/api/v1/label/__name__/values'); }

  metadata() { return this.get('/api/v1/metadata').catch(() => ({})); }

  labelNames(metric) {
    return this.get(`/api/v1/labels${qs({ 'match[]': metric || undefined })}`);
  }

  labelValues(label, metric) {
    return this.get(`/api/v1/label/${encodeURIComponent(label)}/values${qs({ 'match[]': metric || undefined })}`);
  }
}

/** The candidates for a context: [{label, insert, detail, kind, caret?}]. */
export async function candidates(cx, src, after) {
  if (cx.kind === 'duration') {
    const list = /^\d+$/.test(cx.prefix)
      ? UNITS.map((u) => `${cx.prefix}${u}`)
      : DURATIONS;
    const close = after.startsWith(']') ? '' : ']';
    return rank(list.map((d) => ({ label: d, insert: `${d}${close}`, detail: 'duration', kind: 'duration' })), /^\d+$/.test(cx.prefix) ? '' : cx.prefix);
  }
  if (cx.kind === 'labelName') {
    const names = await src.labelNames(cx.metric);
    return rank(names.filter((n) => n !== '__name__').map((n) => ({ label: n, insert: n, detail: 'label', kind: 'label' })), cx.prefix);
  }
  if (cx.kind === 'labelValue') {
    const values = await src.labelValues(cx.label, cx.metric);
    const close = cx.quote && !after.startsWith(cx.quote) ? cx.quote : '';
    return rank(values.map((v) => ({
      label: v,
      insert: cx.quote ? `${v}${close}` : quoteValue(v),
      detail: `${cx.label} value`,
      kind: 'value',
    })), cx.prefix);
  }
  if (!cx.prefix) return [];
  const [names, meta] = await Promise.all([src.metricNames().catch(() => []), src.metadata()]);
  const items = [];
  for (const [name, sig] of FUNCTIONS) items.push({ label: name, insert: `${name}()`, caret: -1, detail: sig, kind: 'function' });
  for (const [name, sig] of AGGREGATIONS) items.push({ label: name, insert: name, detail: sig, kind: 'aggregation' });
  for (const k of KEYWORDS) items.push({ label: k, insert: k, detail: 'keyword', kind: 'keyword' });
  for (const n of names) {
    const md = meta && meta[n] && meta[n][0];
    items.push({ label: n, insert: n, detail: md ? `${md.type}${md.help ? ` · ${md.help}` : ''}` : 'metric', kind: 'metric' });
  }
  return rank(items, cx.prefix);
}

/**
 * Attaches a completion list to `input` (a textarea). Typing offers what
 * fits the caret; ↑/↓ choose, Enter or Tab take, Escape closes,
 * Ctrl+Space opens it on an empty word. Keys the list takes are marked
 * `defaultPrevented` for the page's own Enter handler.
 */
export function attachCompletion(input, listId, src) {
  const list = h('ul', { id: listId, class: 'complete', role: 'listbox', 'aria-label': 'Completions', hidden: true });
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', listId);
  input.setAttribute('aria-expanded', 'false');
  let items = [];
  let active = 0;
  let seq = 0;
  let cx = null;

  const close = () => {
    list.hidden = true;
    items = [];
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };
  const mark = () => {
    [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === active)));
    const li = list.children[active];
    if (li) {
      input.setAttribute('aria-activedescendant', li.id);
      li.scrollIntoView({ block: 'nearest' });
    }
  };
  const accept = (i) => {
    const it = items[i];
    if (!it || !cx) return;
    const caret = input.selectionStart;
    const text = input.value;
    input.value = text.slice(0, cx.from) + it.insert + text.slice(caret);
    const pos = cx.from + it.insert.length + (it.caret || 0);
    input.setSelectionRange(pos, pos);
    close();
    input.focus();
    // A label name or a function's argument may want completing next.
    if (it.kind === 'function') update(false);
  };
  const update = async (forced) => {
    const mine = ++seq;
    cx = completionContext(input.value, input.selectionStart);
    if (!cx || (!forced && cx.kind === 'expr' && !cx.prefix)) {
      close();
      return;
    }
    let found;
    try {
      found = await candidates(cx, src, input.value.slice(input.selectionStart));
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      found = [];
    }
    if (mine !== seq) return;
    items = found;
    active = 0;
    if (!items.length) {
      close();
      return;
    }
    replace(list, items.map((it, i) => h('li', {
      id: `${listId}-${i}`,
      role: 'option',
      'data-testid': 'completion',
      'data-kind': it.kind,
      'data-value': it.label,
      onmousedown: (ev) => {
        ev.preventDefault();
        accept(i);
      },
    }, h('span', { class: 'c-label mono' }, it.label), h('span', { class: 'c-detail' }, it.detail))));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    mark();
  };

  input.addEventListener('input', () => { update(false); });
  // Later than a click on an entry; not when the box has focus again by then.
  input.addEventListener('blur', () => {
    setTimeout(() => { if (document.activeElement !== input) close(); }, 150);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === ' ' && ev.ctrlKey) {
      ev.preventDefault();
      update(true);
      return;
    }
    if (list.hidden || !items.length) return;
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      active = (active + (ev.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      mark();
    } else if (ev.key === 'Enter' || ev.key === 'Tab') {
      ev.preventDefault();
      accept(active);
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    }
  });
  return list;
}
