// Alerts: what fires and why. Rules API (alerts with their rule's
// expression) joined with the Alertmanager v2 API (silenced or not), plus
// the alerts only the v2 API knows (sent by a Prometheus or another client
// to /api/v2/alerts); live refresh from the event stream.

import { apiData, api, whoami, canOperate } from '../lib/api.js';
import { h, replace, labelChips, badge, safeHref, errorBox, plural } from '../lib/dom.js';
import { parseMatchers, matches, formatMatchers } from '../lib/matchers.js';
import { fmtTime, fmtAgo, fmtValue } from '../lib/time.js';
import { subscribe } from '../lib/sse.js';

const SEVERITY_RANK = { page: 0, critical: 0, error: 1, warning: 2, warn: 2, ticket: 3, info: 4 };

/** Flattens /api/v1/rules?type=alert into alerts carrying their rule. */
export function collectAlerts(groups) {
  const out = [];
  for (const g of groups || []) {
    for (const r of g.rules || []) {
      if (r.type !== 'alerting') continue;
      for (const a of r.alerts || []) {
        const labels = a.labels || {};
        out.push({
          alertname: labels.alertname || r.name,
          severity: labels.severity || '',
          state: a.state,
          labels,
          annotations: a.annotations || {},
          activeAt: a.activeAt,
          value: a.value,
          expr: r.query,
          group: g.name,
          silenced: false,
          inhibited: false,
        });
      }
    }
  }
  return out;
}

function labelKey(labels, skip) {
  return Object.keys(labels).filter((k) => !skip || !skip.has(k)).sort()
    .map((k) => `${k}\u0000${labels[k]}`).join('\u0001');
}

/**
 * Marks alerts that Alertmanager v2 reports as silenced or inhibited. The
 * v2 labels may carry extra labels (external labels) the rules API does
 * not show; their names are learnt from the first match, so the join stays
 * a hash lookup for 1k+ alerts instead of a scan per alert. Returns the v2
 * alerts that matched a rule's alert.
 */
export function markMuted(alerts, amAlerts) {
  const matched = new Set();
  const am = (amAlerts || []).filter((a) => a && a.labels);
  const exact = new Map(am.map((a) => [labelKey(a.labels), a]));
  let extra = null;
  let byReduced = null;
  for (const a of alerts) {
    let same = exact.get(labelKey(a.labels));
    if (!same && extra === null) {
      // Learn the extra label names from one superset match.
      const sup = am.find((c) => c.labels.alertname === a.alertname
        && Object.entries(a.labels).every(([k, v]) => c.labels[k] === v));
      if (sup) {
        extra = new Set(Object.keys(sup.labels).filter((k) => !(k in a.labels)));
        byReduced = new Map(am.map((c) => [labelKey(c.labels, extra), c]));
      }
    }
    if (!same && byReduced) same = byReduced.get(labelKey(a.labels));
    if (!same) continue;
    matched.add(same);
    if (!same.status) continue;
    a.silencedBy = same.status.silencedBy || [];
    a.silenced = a.silencedBy.length > 0;
    a.inhibited = (same.status.inhibitedBy || []).length > 0;
  }
  return matched;
}

/**
 * The v2 alerts no rule of this klaxon produced (posted by a Prometheus
 * or another client): firing, with what the v2 API gives (no rule, no
 * value; the sender's generator URL instead of the expression).
 */
export function externalAlerts(amAlerts, matched) {
  const now = Date.now();
  const out = [];
  for (const x of amAlerts || []) {
    if (!x || !x.labels || matched.has(x)) continue;
    if (x.endsAt && Date.parse(x.endsAt) <= now) continue;
    const silencedBy = (x.status && x.status.silencedBy) || [];
    out.push({
      alertname: x.labels.alertname || '',
      severity: x.labels.severity || '',
      state: 'firing',
      labels: x.labels,
      annotations: x.annotations || {},
      activeAt: x.startsAt,
      value: null,
      expr: null,
      source: x.generatorURL || '',
      group: 'received on /api/v2/alerts',
      silencedBy,
      silenced: silencedBy.length > 0,
      inhibited: ((x.status && x.status.inhibitedBy) || []).length > 0,
    });
  }
  return out;
}

function groupAlerts(alerts) {
  const groups = new Map();
  for (const a of alerts) {
    const key = `${a.alertname}\u0000${a.severity}`;
    if (!groups.has(key)) groups.set(key, { alertname: a.alertname, severity: a.severity, alerts: [] });
    groups.get(key).alerts.push(a);
  }
  const rank = (g) => (g.alerts.some((a) => a.state === 'firing' && !a.silenced) ? 0 : 1);
  return [...groups.values()].sort((x, y) =>
    rank(x) - rank(y)
    || (SEVERITY_RANK[x.severity] ?? 5) - (SEVERITY_RANK[y.severity] ?? 5)
    || x.alertname.localeCompare(y.alertname));
}

function graphLink(expr) {
  return `#/graph?${new URLSearchParams({ expr, range: '1h' }).toString()}`;
}

function alertView(a, operator) {
  const ann = a.annotations;
  const runbook = safeHref(ann.runbook_url || ann.runbook);
  const dashboard = safeHref(ann.dashboard_url || ann.dashboard || ann.grafana_url);
  const source = a.source ? safeHref(a.source) : null;
  const silenceTo = `#/silences?${new URLSearchParams({ matchers: formatMatchers(a.labels) }).toString()}`;
  return h('article', {
    class: 'alert',
    'data-testid': 'alert',
    'data-alertname': a.alertname,
    'data-state': a.state,
    'data-silenced': a.silenced ? 'true' : 'false',
  },
  h('div', { class: 'actions' },
    badge(a.state, a.state),
    a.silenced ? badge('silenced', 'silenced') : null,
    a.inhibited ? badge('inhibited', 'silenced') : null,
    h('span', { class: 'summary' }, ann.summary || a.alertname)),
  ann.description ? h('p', { class: 'desc' }, ann.description) : null,
  labelChips(a.labels, ['alertname']),
  h('div', { class: 'meta' },
    h('span', null, 'active since ', h('time', { datetime: a.activeAt, title: fmtTime(a.activeAt) }, `${fmtTime(a.activeAt)} (${fmtAgo(a.activeAt)})`)),
    h('span', null, 'value ', h('span', { class: 'mono' }, fmtValue(a.value))),
    h('span', null, a.expr === null ? a.group : `group ${a.group}`)),
  h('div', { class: 'actions' },
    runbook
      ? h('a', { class: 'button runbook', href: runbook, 'data-testid': 'runbook-link', rel: 'noopener noreferrer' }, 'Runbook')
      : h('span', { class: 'muted' }, 'no runbook'),
    dashboard ? h('a', { class: 'button', href: dashboard, 'data-testid': 'dashboard-link', rel: 'noopener noreferrer' }, 'Dashboard') : null,
    a.expr ? h('a', { class: 'button', href: graphLink(a.expr), 'data-testid': 'expr-link', title: a.expr }, 'Expression') : null,
    source ? h('a', { class: 'button', href: source, 'data-testid': 'source-link', rel: 'noopener noreferrer' }, 'Source') : null,
    operator
      ? h('button', {
        type: 'button',
        'data-testid': 'silence-button',
        'aria-label': `Silence ${a.alertname}`,
        onclick: () => { window.location.hash = silenceTo; },
      }, 'Silence')
      : null));
}

/** Alerts drawn per group before a "show all" button (1k-alert groups). */
const GROUP_PAGE = 100;

function groupView(g, operator) {
  const firing = g.alerts.filter((a) => a.state === 'firing').length;
  const pending = g.alerts.length - firing;
  let rest = null;
  if (g.alerts.length > GROUP_PAGE) {
    rest = h('button', {
      type: 'button',
      class: 'show-all',
      'data-testid': 'alert-group-more',
    }, `Show all ${plural(g.alerts.length, 'alert')} of ${g.alertname}`);
    rest.addEventListener('click', () => {
      rest.replaceWith(...g.alerts.slice(GROUP_PAGE).map((a) => alertView(a, operator)));
    });
  }
  return h('section', {
    class: 'card',
    'data-testid': 'alert-group',
    'data-alertname': g.alertname,
    'data-severity': g.severity,
  },
  h('header', null,
    h('h2', null, g.alertname),
    g.severity ? badge(g.severity, g.severity === 'page' || g.severity === 'critical' ? 'firing' : 'pending') : null,
    h('span', { class: 'muted' }, `${firing} firing, ${pending} pending`)),
  g.alerts.slice(0, GROUP_PAGE).map((a) => alertView(a, operator)),
  rest);
}

export async function render(view, ctx) {
  const params = ctx.params;
  const filter = h('input', {
    id: 'alert-filter', type: 'search', value: params.get('filter') || '',
    placeholder: '{severity="page"}', spellcheck: 'false', autocomplete: 'off',
  });
  const stateSel = h('select', { id: 'alert-state' },
    ['all', 'firing', 'pending'].map((s) => h('option', { value: s }, s)));
  stateSel.value = ['firing', 'pending'].includes(params.get('state')) ? params.get('state') : 'all';
  const filterErr = h('p', { class: 'error', id: 'alert-filter-error', role: 'alert', hidden: true });
  const summary = h('p', { class: 'summary-line', 'aria-live': 'polite' });
  const live = h('span', { class: 'hint', id: 'alert-live' }, 'live: connecting');
  const list = h('div', { id: 'alert-list' });
  replace(view,
    h('h1', null, 'Alerts'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field grow' },
        h('label', { for: 'alert-filter' }, 'Filter by label matchers'),
        filter),
      h('div', { class: 'field' },
        h('label', { for: 'alert-state' }, 'State'),
        stateSel),
      live),
    filterErr, summary, list);

  let alerts = [];
  let operator = false;

  const draw = () => {
    let ms = [];
    try {
      ms = parseMatchers(filter.value);
      filterErr.hidden = true;
      filter.removeAttribute('aria-invalid');
    } catch (e) {
      filterErr.textContent = `Filter: ${e.message}`;
      filterErr.hidden = false;
      filter.setAttribute('aria-invalid', 'true');
    }
    const st = stateSel.value;
    const shown = alerts.filter((a) => (st === 'all' || a.state === st) && matches(a.labels, ms));
    const groups = groupAlerts(shown);
    const firing = shown.filter((a) => a.state === 'firing').length;
    summary.textContent = `${plural(shown.length, 'alert')} (${firing} firing, ${shown.length - firing} pending) in ${plural(groups.length, 'group')}`
      + (shown.length !== alerts.length ? `, ${alerts.length - shown.length} hidden by the filter` : '');
    replace(list, groups.length
      ? groups.map((g) => groupView(g, operator))
      : h('p', { class: 'muted', id: 'alerts-empty' }, alerts.length ? 'No alert matches the filter.' : 'Nothing is firing or pending.'));
  };

  const load = async () => {
    const [rules, am, who] = await Promise.all([
      apiData('/api/v1/rules?type=alert', { signal: ctx.abort.signal }),
      api('/api/v2/alerts', { signal: ctx.abort.signal }).catch((e) => {
        if (e && e.name === 'AbortError') throw e;
        return [];
      }),
      whoami(),
    ]);
    if (!ctx.live()) return;
    const next = collectAlerts(rules && rules.groups);
    const amList = Array.isArray(am) ? am : [];
    next.push(...externalAlerts(amList, markMuted(next, amList)));
    alerts = next;
    operator = canOperate(who);
    draw();
  };

  let timer = null;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const p = new URLSearchParams();
      if (filter.value) p.set('filter', filter.value);
      if (stateSel.value !== 'all') p.set('state', stateSel.value);
      ctx.replaceParams(p);
      draw();
    }, 150);
  };
  filter.addEventListener('input', changed);
  stateSel.addEventListener('change', changed);

  try {
    await load();
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    replace(list, errorBox(`Could not load alerts: ${e.message || e}`));
  }

  // Live refresh: re-fetch (debounced) when an alert event arrives, and
  // every minute anyway (pending alerts publish no events).
  let pendingReload = null;
  const reload = () => {
    if (pendingReload) return;
    pendingReload = setTimeout(async () => {
      pendingReload = null;
      try {
        await load();
      } catch (_) { /* the next event or tick retries */ }
    }, 500);
  };
  subscribe('/api/v1/events/stream?kind=alert', (ev) => {
    if (ev.event === 'alert') reload();
  }, ctx.abort.signal, (state) => { live.textContent = `live: ${state}`; });
  const tick = setInterval(reload, 60000);
  ctx.onLeave(() => {
    clearInterval(tick);
    clearTimeout(pendingReload);
    clearTimeout(timer);
  });
}
