// Short notices at the bottom of the screen ("Forwarded to Team", "Alice removed you from
// Team"), read out by screen readers.

import { h, $ } from './util.js';

/** Shows a notice for `ms` milliseconds (0: until closed). */
export function toast(text, ms = 5000) {
  const item = h('div', { class: 'toast', role: 'status' }, h('span', {}, text),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '✕'));
  $('#toasts').append(item);
  if (ms) setTimeout(() => item.remove(), ms);
  return item;
}
