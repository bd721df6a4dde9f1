// Deliveries: notification history from the outbox (GET /api/v1/deliveries)
// with a replay button for operators (POST .../replay).

import { api, apiData, whoami, canOperate, qs } from '../lib/api.js';
import { h, replace, badge, table, scrollable, plural } from '../lib/dom.js';
import { fmtTime, fmtAgo } from '../lib/time.js';

const STATUSES = ['', 'pending', 'sending', 'success', 'failed', 'superseded'];

function statusKind(st) {
  return { success: 'ok', failed: 'firing', pending: 'pending', sending: 'pending', superseded: 'neutral' }[st] || 'neutral';
}

export async function render(view, ctx) {
  const status = h('select', { id: 'delivery-status' },
    STATUSES.map((x) => h('option', { value: x }, x || 'any')));
  status.value = STATUSES.includes(ctx.params.get('status') || '') ? (ctx.params.get('status') || '') : '';
  const receiver = h('input', { id: 'delivery-receiver', type: 'search', value: ctx.params.get('receiver') || '', placeholder: 'receiver name' });
  const apply = h('button', { id: 'delivery-apply', type: 'button' }, 'Apply');
  const message = h('p', { id: 'delivery-message', role: 'status', 'aria-live': 'polite', hidden: true });
  const body = h('tbody');
  const more = h('button', { id: 'delivery-more', type: 'button', hidden: true }, 'Older deliveries');
  const summary = h('p', { class: 'summary-line', 'aria-live': 'polite' });
  replace(view,
    h('h1', null, 'Deliveries'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field' }, h('label', { for: 'delivery-status' }, 'Status'), status),
      h('div', { class: 'field' }, h('label', { for: 'delivery-receiver' }, 'Receiver'), receiver),
      apply),
    message, summary,
    scrollable(h('table', { id: 'delivery-table' },
      h('thead', null, h('tr', null, ['Created', 'Status', 'Receiver', 'Alerts', 'Attempts', 'Last error', 'Updated', ''].map((x) => h('th', { scope: 'col' }, x)))),
      body), 'Deliveries'),
    more);

  const who = await whoami();
  const operator = canOperate(who);
  let cursor = null;
  let count = 0;

  const show = (text, ok) => {
    message.textContent = text;
    message.className = ok ? 'ok-message' : 'error';
    message.hidden = false;
  };

  const replay = async (d, btn, cell) => {
    btn.disabled = true;
    try {
      const r = await apiData(`/api/v1/deliveries/${encodeURIComponent(d.id)}/replay`, { method: 'POST' });
      const a = r && r.attempt;
      const text = a && a.success === false
        ? `Replay of delivery ${d.id} failed: ${a.error || 'unknown error'}`
        : `Replay of delivery ${d.id}: ${(r && r.delivery && r.delivery.status) || 'sent'}`;
      replace(cell, text);
      show(text, !(a && a.success === false));
    } catch (e) {
      replace(cell, e.message);
      show(`Replay of delivery ${d.id} failed: ${e.message}`, false);
    } finally {
      btn.disabled = false;
    }
  };

  const row = (d) => {
    const result = h('span', { 'data-testid': 'replay-result', class: 'muted' });
    let btn = null;
    if (operator) {
      btn = h('button', { type: 'button', 'data-testid': 'replay-button', 'aria-label': `Replay delivery ${d.id}` }, 'Replay');
      btn.addEventListener('click', () => replay(d, btn, result));
    }
    return h('tr', { 'data-testid': 'delivery', 'data-id': d.id, 'data-status': d.status },
      h('td', { title: fmtTime(d.createdAt) }, fmtAgo(d.createdAt)),
      h('td', null, badge(d.status, statusKind(d.status))),
      h('td', null, d.receiver, h('div', { class: 'muted' }, `${d.integration}[${d.integrationIndex}]`)),
      h('td', null, (d.alertnames || []).join(', '), h('div', { class: 'muted' }, `${d.firing} firing, ${d.resolved} resolved`)),
      h('td', { class: 'num' }, String(d.attempts)),
      h('td', { class: 'mono' }, d.lastError || ''),
      h('td', { title: fmtTime(d.updatedAt) }, fmtAgo(d.updatedAt)),
      h('td', null, btn, ' ', result));
  };

  const load = async (append) => {
    const data = await apiData(`/api/v1/deliveries${qs({ status: status.value, receiver: receiver.value.trim(), limit: 100, cursor: append ? cursor : '' })}`, { signal: ctx.abort.signal });
    if (!ctx.live()) return;
    const list = (data && data.deliveries) || [];
    if (!append) {
      body.replaceChildren();
      count = 0;
    }
    list.forEach((d) => body.append(row(d)));
    count += list.length;
    cursor = data && data.nextCursor;
    more.hidden = !cursor;
    summary.textContent = count ? `${plural(count, 'delivery', 'deliveries')} shown, newest first` : '';
    if (!count) body.append(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No deliveries.')));
  };

  const refilter = () => {
    const p = new URLSearchParams();
    if (status.value) p.set('status', status.value);
    if (receiver.value.trim()) p.set('receiver', receiver.value.trim());
    ctx.replaceParams(p);
    load(false).catch((e) => show(e.message, false));
  };
  apply.addEventListener('click', refilter);
  status.addEventListener('change', refilter);
  receiver.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') refilter(); });
  more.addEventListener('click', () => load(true).catch((e) => show(e.message, false)));
  await load(false);
}
