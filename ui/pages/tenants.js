// Tenants: each tenant's health score and what makes it up — firing alerts
// by severity, SLO burn rate, failed deliveries, targets up
// (GET /api/v1/tenants/summary; a tenant-scoped token sees its own only).

import { apiData } from '../lib/api.js';
import { h, replace, badge, table, scrollable, plural } from '../lib/dom.js';

const KIND = { healthy: 'ok', degraded: 'pending', critical: 'firing' };

function row(t) {
  const a = t.firingAlerts || {};
  const tg = t.targets || {};
  return h('tr', { 'data-testid': 'tenant', 'data-tenant': t.tenant, 'data-status': t.status },
    h('td', { class: 'mono' }, t.tenant),
    h('td', { class: 'num', 'data-testid': 'tenant-score' }, String(t.score)),
    h('td', null, badge(t.status, KIND[t.status] || 'pending')),
    h('td', { class: 'num' }, `${a.critical || 0} / ${a.warning || 0} / ${a.other || 0}`),
    h('td', { class: 'num' }, t.sloBurnRate == null ? '-' : t.sloBurnRate.toFixed(2)),
    h('td', { class: 'num' }, String(t.failedDeliveries24h || 0)),
    h('td', { class: 'num' }, tg.total ? `${tg.up}/${tg.total}` : '-'));
}

export async function render(view, ctx) {
  replace(view, h('h1', null, 'Tenants'), h('p', { class: 'muted' }, 'Loading…'));
  const data = await apiData('/api/v1/tenants/summary', { signal: ctx.abort.signal });
  if (!ctx.live()) return;
  const tenants = (data && data.tenants) || [];
  const bad = tenants.filter((t) => t.status !== 'healthy').length;
  replace(view,
    h('h1', null, 'Tenants'),
    h('p', { class: 'summary-line' }, `${plural(tenants.length, 'tenant')} (label ${(data && data.tenantLabel) || 'tenant'}), ${bad} not healthy`),
    tenants.length
      ? scrollable(table(['Tenant', 'Score', 'Status', 'Firing (critical / warning / other)', 'SLO burn rate', 'Failed deliveries (24 h)', 'Targets up'],
        tenants.map(row), { id: 'tenant-table' }), 'Tenant health')
      : h('p', { class: 'muted' }, 'No tenant seen yet (no token is scoped to tenants and no series carries the tenant label).'),
    h('p', { class: 'muted' }, 'Score: 100 minus penalties for firing alerts (critical 20, warning 8, other 2; at most 50), SLO burn (up to 25 at a burn rate of 14.4), failed deliveries (2 each, at most 10) and targets down (up to 15). See docs/operations.md, "Tenants".'));
}
