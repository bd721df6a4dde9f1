// Silences: create (as amtool does: POST /api/v2/silences), list, expire.

import { api, whoami, canOperate } from '../lib/api.js';
import { h, replace, badge, table, scrollable } from '../lib/dom.js';
import { parseMatchers, formatMatchers, toAmMatchers, fromAmMatchers } from '../lib/matchers.js';
import { fmtTime, fmtAgo, parseDuration } from '../lib/time.js';

const STATE_ORDER = { active: 0, pending: 1, expired: 2 };

function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
}

export async function render(view, ctx) {
  const who = await whoami();
  const operator = canOperate(who);
  const matchers = h('input', { id: 'silence-matchers', name: 'matchers', type: 'text', required: true, spellcheck: 'false', autocomplete: 'off', placeholder: '{alertname="X", severity=~"page|critical"}' });
  matchers.value = ctx.params.get('matchers') || '';
  const duration = h('input', { id: 'silence-duration', name: 'duration', type: 'text', required: true, value: '2h' });
  const createdBy = h('input', { id: 'silence-createdby', name: 'createdBy', type: 'text', required: true, autocomplete: 'username' });
  createdBy.value = who && who.name && who.name !== 'anonymous' ? who.name : '';
  const comment = h('textarea', { id: 'silence-comment', name: 'comment', rows: 2, required: true });
  const submit = h('button', { id: 'silence-submit', type: 'submit', class: 'primary' }, 'Create silence');
  const message = h('p', { id: 'silence-message', role: 'status', 'aria-live': 'polite', hidden: true });
  const form = h('form', { id: 'silence-form', class: 'stack', novalidate: true },
    field('silence-matchers', 'Matchers', matchers, 'Like amtool: {alertname="X", severity=~"a|b"}'),
    field('silence-duration', 'Duration', duration, 'e.g. 30m, 2h, 1d'),
    field('silence-createdby', 'Created by', createdBy),
    field('silence-comment', 'Comment', comment),
    h('div', null, submit),
    operator ? null : h('p', { class: 'hint' }, 'Creating or expiring a silence needs the operator role; the server will refuse it for this token.'));
  const stateFilter = h('select', { id: 'silence-state' }, ['all', 'active', 'pending', 'expired'].map((x) => h('option', { value: x }, x)));
  const listBox = h('div', { id: 'silence-list' });
  replace(view,
    h('h1', null, 'Silences'),
    h('h2', null, 'New silence'),
    form, message,
    h('h2', null, 'Silences'),
    h('div', { class: 'toolbar' }, field('silence-state', 'State', stateFilter)),
    listBox);

  const show = (text, ok) => {
    message.textContent = text;
    message.className = ok ? 'ok-message' : 'error';
    message.hidden = false;
  };

  let silences = [];
  const draw = () => {
    const want = stateFilter.value;
    const shown = silences
      .filter((x) => want === 'all' || (x.status && x.status.state) === want)
      .sort((a, b) => (STATE_ORDER[a.status.state] ?? 3) - (STATE_ORDER[b.status.state] ?? 3)
        || String(b.endsAt).localeCompare(String(a.endsAt)));
    const rows = shown.map((x) => {
      const st = (x.status && x.status.state) || 'unknown';
      let expire = null;
      if (operator && st !== 'expired') {
        expire = h('button', { type: 'button', 'data-testid': 'silence-expire', 'aria-label': `Expire silence ${x.id}` }, 'Expire');
        expire.addEventListener('click', async () => {
          expire.disabled = true;
          try {
            await api(`/api/v2/silence/${encodeURIComponent(x.id)}`, { method: 'DELETE' });
            show(`Silence ${x.id} expired.`, true);
            await load();
          } catch (e) {
            show(`Could not expire silence ${x.id}: ${e.message}`, false);
            expire.disabled = false;
          }
        });
      }
      return h('tr', { 'data-testid': 'silence', 'data-state': st, 'data-id': x.id },
        h('td', { class: 'mono' }, formatMatchers(fromAmMatchers(x.matchers))),
        h('td', null, badge(st, st === 'active' ? 'silenced' : st === 'pending' ? 'pending' : 'neutral')),
        h('td', { title: fmtTime(x.startsAt) }, fmtTime(x.startsAt)),
        h('td', { title: fmtTime(x.endsAt) }, `${fmtTime(x.endsAt)} (${fmtAgo(x.endsAt)})`),
        h('td', null, x.createdBy || ''),
        h('td', null, x.comment || ''),
        h('td', { class: 'mono muted' }, x.id),
        h('td', null, expire));
    });
    replace(listBox, rows.length
      ? scrollable(table(['Matchers', 'State', 'Starts', 'Ends', 'Created by', 'Comment', 'ID', ''], rows, { id: 'silence-table' }), 'Silences')
      : h('p', { class: 'muted' }, silences.length ? 'No silence in this state.' : 'No silences.'));
  };

  const load = async () => {
    const list = await api('/api/v2/silences', { signal: ctx.abort.signal });
    if (!ctx.live()) return;
    silences = Array.isArray(list) ? list : [];
    draw();
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let ms;
    try {
      ms = parseMatchers(matchers.value);
    } catch (e) {
      show(`Matchers: ${e.message}`, false);
      matchers.focus();
      return;
    }
    if (!ms.length) {
      show('Matchers: at least one matcher is needed.', false);
      matchers.focus();
      return;
    }
    const secs = parseDuration(duration.value);
    if (!secs || secs <= 0) {
      show(`Duration: ${JSON.stringify(duration.value)} is not a duration like 2h or 30m.`, false);
      duration.focus();
      return;
    }
    if (!createdBy.value.trim()) {
      show('Created by: required.', false);
      createdBy.focus();
      return;
    }
    if (!comment.value.trim()) {
      show('Comment: required.', false);
      comment.focus();
      return;
    }
    const now = Date.now();
    submit.disabled = true;
    try {
      const r = await api('/api/v2/silences', {
        method: 'POST',
        json: {
          matchers: toAmMatchers(ms),
          startsAt: new Date(now).toISOString(),
          endsAt: new Date(now + secs * 1000).toISOString(),
          createdBy: createdBy.value.trim(),
          comment: comment.value.trim(),
        },
      });
      show(`Silence ${(r && r.silenceID) || ''} created for ${formatMatchers(ms)}.`, true);
      comment.value = '';
      await load();
    } catch (e) {
      show(`Could not create the silence: ${e.message}`, false);
    } finally {
      submit.disabled = false;
    }
  });
  stateFilter.addEventListener('change', draw);
  await load();
}
