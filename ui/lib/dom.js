// Small DOM helpers. Elements are built with createElement and text nodes,
// never innerHTML, so label values and annotations cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: h('a', {href: '#/x'}, 'text', child...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A URL from data (an annotation) made safe for href: http(s) and
 * same-origin relative links only, so `javascript:` never becomes a link.
 */
/** `1 alert`, `2 alerts`: a count with its noun in the right number. */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function safeHref(url) {
  if (typeof url !== 'string' || url.trim() === '') return null;
  try {
    const u = new URL(url, window.location.href);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.href;
  } catch (_) {
    return null;
  }
  return null;
}

/** A horizontally scrolling wrapper so wide tables work on phones. */
export function scrollable(table, label) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, table);
}

/** A simple table from header names and rows of cells. */
export function table(headers, rows, attrs) {
  return h('table', attrs,
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, rows));
}

/** A label set as chips: name="value". */
export function labelChips(labels, skip) {
  const names = Object.keys(labels || {}).sort();
  return h('ul', { class: 'labels', 'aria-label': 'labels' },
    names.filter((n) => !(skip || []).includes(n)).map((n) =>
      h('li', { class: 'label' }, h('span', { class: 'lname' }, n), '=', h('span', { class: 'lvalue' }, labels[n]))));
}

/** A status badge. */
export function badge(text, kind) {
  return h('span', { class: ['badge', kind ? `badge-${kind}` : ''] }, text);
}

/** An inline error box. */
export function errorBox(err, id) {
  return h('p', { class: 'error', role: 'alert', id }, String(err && err.message ? err.message : err));
}
