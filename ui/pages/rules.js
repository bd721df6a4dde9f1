// Rules: every group with its interval and last evaluation, every rule
// with its health, last error and YAML.

import { apiData } from '../lib/api.js';
import { h, replace, badge, labelChips, plural } from '../lib/dom.js';
import { fmtTime, fmtAgo, fmtDuration } from '../lib/time.js';
import { ruleYaml } from '../lib/yaml.js';

function ruleView(r) {
  const active = (r.alerts || []).length;
  return h('article', {
    class: 'alert',
    'data-testid': 'rule',
    'data-rulename': r.name,
    'data-health': r.health,
    'data-type': r.type,
  },
  h('div', { class: 'actions' },
    badge(r.health, r.health),
    r.type === 'alerting' ? badge(r.state || 'inactive', r.state === 'inactive' ? 'neutral' : r.state) : badge('recording', 'neutral'),
    h('span', { class: 'summary mono' }, r.name),
    r.type === 'alerting' && active ? h('span', { class: 'muted' }, `${active} active`) : null),
  h('div', { class: 'meta' },
    h('span', null, `last evaluation ${fmtAgo(r.lastEvaluation)}`),
    h('span', null, `took ${fmtDuration(r.evaluationTime)}`),
    h('a', { href: `#/graph?${new URLSearchParams({ expr: r.query, range: '1h' })}` }, 'graph')),
  r.lastError
    ? h('p', { class: 'error', 'data-testid': 'rule-error' }, `Last error: ${r.lastError}`)
    : null,
  h('details', null,
    h('summary', null, 'YAML'),
    h('pre', { class: 'mono', 'data-testid': 'rule-yaml' }, ruleYaml(r))));
}

function groupView(g) {
  const bad = g.rules.filter((r) => r.health === 'err').length;
  return h('section', {
    class: 'card', 'data-testid': 'rule-group', 'data-group': g.name,
  },
  h('header', null,
    h('h2', null, g.name),
    h('span', { class: 'muted mono' }, g.file),
    h('span', { 'data-testid': 'group-interval' }, `every ${fmtDuration(g.interval)}`),
    h('span', { 'data-testid': 'group-last-evaluation', title: fmtTime(g.lastEvaluation) }, `last evaluation ${fmtAgo(g.lastEvaluation)}`),
    h('span', { 'data-testid': 'group-evaluation-time' }, `took ${fmtDuration(g.evaluationTime)}`),
    bad ? badge(`${bad} failing`, 'err') : null),
  g.rules.map(ruleView));
}

export async function render(view, ctx) {
  const filter = h('input', { id: 'rule-filter', type: 'search', value: ctx.params.get('filter') || '', placeholder: 'name or group' });
  const health = h('select', { id: 'rule-health' }, ['all', 'ok', 'err', 'unknown'].map((x) => h('option', { value: x }, x)));
  const list = h('div', { id: 'rule-list' });
  const summary = h('p', { class: 'summary-line', 'aria-live': 'polite' });
  replace(view,
    h('h1', null, 'Rules'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field grow' }, h('label', { for: 'rule-filter' }, 'Filter by name or group'), filter),
      h('div', { class: 'field' }, h('label', { for: 'rule-health' }, 'Health'), health)),
    summary, list);
  const data = await apiData('/api/v1/rules', { signal: ctx.abort.signal });
  if (!ctx.live()) return;
  const groups = (data && data.groups) || [];
  const draw = () => {
    const f = filter.value.trim().toLowerCase();
    const want = health.value;
    const shown = groups.map((g) => ({
      ...g,
      rules: g.rules.filter((r) => (want === 'all' || r.health === want)
        && (!f || r.name.toLowerCase().includes(f) || g.name.toLowerCase().includes(f))),
    })).filter((g) => g.rules.length);
    const total = groups.reduce((n, g) => n + g.rules.length, 0);
    const failing = groups.reduce((n, g) => n + g.rules.filter((r) => r.health === 'err').length, 0);
    summary.textContent = `${plural(groups.length, 'group')}, ${plural(total, 'rule')}, ${failing} failing`;
    replace(list, shown.length ? shown.map(groupView) : h('p', { class: 'muted' }, groups.length ? 'No rule matches.' : 'No rules loaded.'));
  };
  filter.addEventListener('input', draw);
  health.addEventListener('change', draw);
  draw();
}
