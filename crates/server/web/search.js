// Message search in the side panel: across one's chats or in the open one
// (GET /search, newest first, paged with `before`). Each result names its room, sender
// and time, with a snippet where the words found are marked; a click shows the message
// in its conversation.

import { api } from './api.js';
import { state, displayName } from './store.js';
import { h } from './util.js';
import { plainText } from './format.js';
import { openPanel, closePanel } from './panel.js';

const LIMIT = 20;
let jump = () => {};

/** `jumpTo(roomId, id)` shows a message in context. */
export function initSearch(jumpTo) { jump = jumpTo; }

const fold = (s) => s.normalize('NFKC').toLowerCase();

/** The terms to mark: the query's words (CJK runs as they are). */
function terms(q) {
  return [...new Set(fold(q).split(/[\s\p{P}\p{S}]+/u).filter(Boolean))].sort((a, b) => b.length - a.length);
}

/** Up to ~160 characters of `text` around its first match, matches in <mark>. */
export function snippet(text, q) {
  const plain = plainText(text).normalize('NFKC');
  const folded = plain.toLowerCase();
  const words = terms(q);
  // Lowercasing keeps lengths for nearly all text; where it does not, show no marks
  // rather than misplaced ones.
  const exact = folded.length === plain.length;
  const first = exact ? Math.min(...words.map((w) => folded.indexOf(w)).filter((i) => i >= 0)) : Infinity;
  let start = Number.isFinite(first) ? Math.max(0, first - 50) : 0;
  if (start > 0) { const space = plain.lastIndexOf(' ', start + 10); if (space > start - 20 && space < first) start = space + 1; }
  const end = Math.min(plain.length, start + 160);
  const out = [start > 0 ? '…' : ''];
  let i = start;
  while (exact && i < end) {
    let next = -1;
    let word = '';
    for (const w of words) {
      const at = folded.indexOf(w, i);
      if (at >= 0 && at < end && (next < 0 || at < next)) { next = at; word = w; }
    }
    if (next < 0) break;
    out.push(plain.slice(i, next), h('mark', {}, plain.slice(next, next + word.length)));
    i = next + word.length;
  }
  out.push(plain.slice(i, end), end < plain.length ? '…' : '');
  return out.filter((x) => x !== '');
}

function when(ts) {
  const d = new Date(ts);
  const today = d.toDateString() === new Date().toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

function resultNode(m, q) {
  const room = state.rooms.get(m.roomId);
  return h('li', {},
    h('button', {
      type: 'button', class: 'search-hit', dataset: { id: m.id, roomId: m.roomId },
      onclick: () => { if (matchMedia('(max-width: 720px)').matches) closePanel('search'); jump(m.roomId, m.id); },
    },
    h('span', { class: 'hit-top' },
      h('strong', { class: 'hit-room' }, room?.name || 'A chat you left'),
      h('span', { class: 'hit-sender' }, displayName(m.senderId)),
      h('time', { datetime: m.timestamp }, when(m.timestamp))),
    h('span', { class: 'hit-text' }, ...snippet(m.content || m.media?.filename || '', q))));
}

/** Opens the search panel; `roomId` preselects "this chat". */
export function openSearch(roomId = null) {
  const input = h('input', { type: 'search', id: 'search-q', 'aria-label': 'Search messages', placeholder: 'Search messages', maxlength: 200, autocomplete: 'off' });
  const room = roomId && state.rooms.get(roomId);
  const scope = h('select', { id: 'search-scope', 'aria-label': 'Where to search' },
    h('option', { value: '' }, 'All chats'),
    room ? h('option', { value: room.id, selected: true }, `In ${room.name}`) : null);
  const results = h('ul', { class: 'search-results', 'aria-label': 'Search results' });
  const status = h('p', { class: 'panel-note muted', role: 'status' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'More results');
  let query = null;
  let last = null;
  const run = async (next) => {
    const q = next ? query.q : input.value.trim();
    if (!q) return;
    if (!next) { query = { q, roomId: scope.value }; last = null; results.replaceChildren(); }
    status.textContent = 'Searching…';
    more.hidden = true;
    const params = new URLSearchParams({ q, limit: String(LIMIT) });
    if (query.roomId) params.set('roomId', query.roomId);
    if (next && last) params.set('before', last);
    try {
      const page = await api('GET', `/search?${params}`);
      if (query.q !== q) return;
      results.append(...page.messages.map((m) => resultNode(m, q)));
      last = page.messages.at(-1)?.id || last;
      const count = results.children.length;
      status.textContent = count ? `${count} ${count === 1 ? 'message' : 'messages'} found` : 'Nothing found.';
      more.hidden = !(page.messages.length === LIMIT || page.truncated);
    } catch (e) {
      status.textContent = e.code === 'validation_failed' ? 'Type some words to search for.' : e.code === 'rate_limited' ? 'Too many searches. Wait a moment.' : e.message;
      status.className = 'panel-note error';
    }
  };
  more.addEventListener('click', () => run(true));
  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => { e.preventDefault(); status.className = 'panel-note muted'; run(false); } },
    input, h('div', { class: 'row' }, scope, h('button', { type: 'submit', class: 'primary' }, 'Search')));
  openPanel('search', 'Search', [form, status, results, more]);
  input.focus();
}
