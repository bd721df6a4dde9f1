// Placeholder until the page is written.
import { h, replace } from '../lib/dom.js';

export async function render(view) {
  replace(view, h('h1', null, 'targets'), h('p', null, 'Coming soon.'));
}
