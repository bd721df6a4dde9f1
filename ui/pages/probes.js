// Probes: each scheduled probe's last result, duration, phases and
// certificate expiry (GET /api/v1/probes).

import { apiData } from '../lib/api.js';
import { h, replace, badge, table, scrollable, plural } from '../lib/dom.js';
import { fmtTime, fmtAgo, fmtDuration, toDate } from '../lib/time.js';

function certCell(expiry) {
  const d = toDate(expiry);
  if (!d) return h('td', { class: 'muted' }, '-');
  const days = (d.getTime() - Date.now()) / 86400000;
  const kind = days < 7 ? 'firing' : days < 21 ? 'pending' : 'ok';
  return h('td', { 'data-testid': 'cert-expiry' }, badge(days < 0 ? 'expired' : `${Math.floor(days)} days`, kind), ' ', fmtTime(expiry));
}

function row(p) {
  const result = p.success ? 'success' : 'failure';
  return h('tr', { 'data-testid': 'probe', 'data-result': result, 'data-target': p.target, 'data-module': p.module },
    h('td', { class: 'mono' }, p.target),
    h('td', null, p.module),
    h('td', null, p.job),
    h('td', null, badge(result, result), p.httpStatus ? ` HTTP ${p.httpStatus}` : ''),
    h('td', { class: 'num' }, fmtDuration(p.durationSeconds)),
    h('td', { class: 'mono', 'data-testid': 'probe-phases' },
      (p.phases || []).map((ph) => `${ph.phase} ${fmtDuration(ph.seconds)}`).join(', ') || '-'),
    certCell(p.certExpiry),
    h('td', { title: fmtTime(p.lastRun) }, fmtAgo(p.lastRun)),
    h('td', { class: 'mono' }, p.error || ''));
}

export async function render(view, ctx) {
  replace(view, h('h1', null, 'Probes'), h('p', { class: 'muted' }, 'Loading…'));
  const data = await apiData('/api/v1/probes', { signal: ctx.abort.signal });
  if (!ctx.live()) return;
  const probes = (data && data.probes) || [];
  const failing = probes.filter((p) => !p.success).length;
  replace(view,
    h('h1', null, 'Probes'),
    h('p', { class: 'summary-line' }, `${plural(probes.length, 'scheduled probe')}, ${failing} failing`),
    probes.length
      ? scrollable(table(['Target', 'Module', 'Job', 'Result', 'Duration', 'Phases', 'Certificate expiry', 'Last run', 'Error'],
        probes.map(row), { id: 'probe-table' }), 'Probe results')
      : h('p', { class: 'muted' }, 'No scheduled probe has run yet (see the probes: config section).'));
}
