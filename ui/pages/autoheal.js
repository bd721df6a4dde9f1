// Auto-healing: the remediation rules with their state (next allowed run
// per target, runs in the window), the recent runs, and the receiver
// endpoints in cooldown with a reset button for admins
// (GET /api/v1/autoheal/rules, /api/v1/autoheal/runs,
// POST /api/v1/autoheal/clear_endpoint_cooldown).

import { api, apiData, whoami } from '../lib/api.js';
import { h, replace, badge, table, scrollable, plural } from '../lib/dom.js';
import { fmtTime, fmtAgo } from '../lib/time.js';

const OUTCOME_KIND = {
  succeeded: 'ok', triggered: 'pending', dry_run: 'pending', retrying: 'pending',
  failed: 'firing', skipped_cooldown: 'muted', skipped_rate_limit: 'muted',
  skipped_maintenance: 'muted', endpoint_cooldown: 'firing', endpoint_recovered: 'ok',
  endpoint_cleared: 'ok',
};

function actionText(a) {
  if (a && a.http) return `${a.http.method} ${a.http.url}${a.http.signed ? ' (signed)' : ''}`;
  if (a && a.command) return `command ${a.command.command} → ${a.command.url}`;
  return '';
}

function targetsCell(r) {
  const now = Date.now();
  const items = (r.targets || []).map((t) => {
    const waiting = t.next_allowed_ms > now;
    return h('div', { 'data-testid': 'autoheal-target' },
      h('span', { class: 'mono' }, t.target || '(all labels)'), ' ',
      waiting ? badge(`cooldown until ${fmtTime(t.next_allowed_ms)}`, 'pending') : badge('ready', 'ok'),
      h('span', { class: 'muted', title: fmtTime(t.last_run_ms) }, ` last run ${fmtAgo(t.last_run_ms)}`));
  });
  return h('td', null, items.length ? items : h('span', { class: 'muted' }, 'no run yet'));
}

function ruleRow(r) {
  return h('tr', { 'data-testid': 'autoheal-rule', 'data-name': r.name },
    h('td', null, h('strong', null, r.name), h('div', { class: 'muted' }, r.source), r.dry_run ? badge('dry run', 'pending') : ''),
    h('td', { class: 'mono' }, (r.matchers || []).join(', ') || '(every alert)',
      r.severity && r.severity.length ? h('div', { class: 'muted' }, `severity ${r.severity.join('|')}`) : ''),
    h('td', { class: 'mono' }, actionText(r.action),
      h('div', { class: 'muted' }, `retry ${r.retry.attempts}× from ${r.retry.backoff}`)),
    h('td', null, `cooldown ${r.cooldown}`, r.firing_for !== '0s' ? h('div', { class: 'muted' }, `after firing ${r.firing_for}`) : '',
      h('div', { class: 'muted' }, r.max_runs ? `${r.runs_in_window}/${r.max_runs} runs per ${r.window}` : `${r.runs_in_window} runs in ${r.window}`)),
    targetsCell(r));
}

function runRow(e) {
  const d = e.data || {};
  const what = d.receiver ? `${d.receiver} ${d.integration}` : `${d.rule} → ${d.target || ''}`;
  const detail = d.error || (d.status ? `HTTP ${d.status} after ${d.attempts} attempt(s)` : '') ||
    (d.until_ms ? `until ${fmtTime(d.until_ms)}` : '');
  return h('tr', { 'data-testid': 'autoheal-run', 'data-outcome': d.outcome },
    h('td', { title: fmtTime(e.at_ms) }, fmtAgo(e.at_ms)),
    h('td', null, badge(d.outcome || '?', OUTCOME_KIND[d.outcome] || 'muted')),
    h('td', { class: 'mono' }, what),
    h('td', null, d.alertname || ''),
    h('td', { class: 'mono' }, detail));
}

export async function render(view, ctx) {
  replace(view, h('h1', null, 'Auto-healing'), h('p', { class: 'muted' }, 'Loading…'));
  const [data, hist, me] = await Promise.all([
    apiData('/api/v1/autoheal/rules', { signal: ctx.abort.signal }),
    apiData('/api/v1/autoheal/runs?limit=100', { signal: ctx.abort.signal }),
    whoami(),
  ]);
  if (!ctx.live()) return;
  const rules = (data && data.rules) || [];
  const endpoints = (data && data.endpoints) || [];
  const runs = ((hist && hist.runs) || []).slice().reverse();
  const admin = ((me && me.roles) || []).includes('admin');
  const clear = async (ep, btn, out) => {
    btn.disabled = true;
    try {
      await api('/api/v1/autoheal/clear_endpoint_cooldown', { method: 'POST', json: { receiver: ep.receiver, integration: ep.integration } });
      out.textContent = 'cleared';
    } catch (e) {
      out.textContent = e.message;
    } finally {
      btn.disabled = false;
    }
  };
  const epRow = (ep) => {
    const out = h('span', { class: 'muted' });
    let btn = null;
    if (admin && ep.cooldownUntil) {
      btn = h('button', { type: 'button', 'data-testid': 'clear-cooldown', 'aria-label': `Clear the cooldown of ${ep.receiver} ${ep.integration}` }, 'Clear cooldown');
      btn.addEventListener('click', () => clear(ep, btn, out));
    }
    return h('tr', { 'data-testid': 'autoheal-endpoint', 'data-receiver': ep.receiver },
      h('td', null, ep.receiver),
      h('td', null, `${ep.integration}[${ep.integrationIndex}]`),
      h('td', { class: 'num' }, String(ep.consecutiveFailures)),
      h('td', null, ep.cooldownUntil ? badge(`until ${fmtTime(ep.cooldownUntil)}`, 'firing') : badge('sending', 'ok')),
      h('td', null, btn, ' ', out));
  };
  replace(view,
    h('h1', null, 'Auto-healing'),
    data && data.paused ? h('p', { class: 'summary-line', 'data-testid': 'autoheal-paused' }, badge('paused', 'firing'), ' Maintenance mode is on: no action runs.') : '',
    h('p', { class: 'summary-line' }, `${plural(rules.length, 'rule')}, ${plural(endpoints.filter((e) => e.cooldownUntil).length, 'endpoint')} in cooldown`),
    h('h2', null, 'Rules'),
    rules.length
      ? scrollable(table(['Rule', 'Matchers', 'Action', 'Limits', 'Targets'], rules.map(ruleRow), { id: 'autoheal-rules' }), 'Auto-healing rules')
      : h('p', { class: 'muted' }, 'No rule (see the autoheal: config section or POST /api/v1/autoheal/rules).'),
    h('h2', null, 'Receiver endpoints'),
    endpoints.length
      ? scrollable(table(['Receiver', 'Integration', 'Failures in a row', 'State', ''], endpoints.map(epRow), { id: 'autoheal-endpoints' }), 'Receiver endpoints')
      : h('p', { class: 'muted' }, 'Every receiver endpoint delivers.'),
    h('h2', null, 'Recent runs'),
    runs.length
      ? scrollable(table(['When', 'Outcome', 'Rule / endpoint', 'Alert', 'Detail'], runs.map(runRow), { id: 'autoheal-runs' }), 'Recent auto-healing runs')
      : h('p', { class: 'muted' }, 'No run in the last 24 hours.'));
}
