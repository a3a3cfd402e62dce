// Mentions: an autocomplete of the room's members when typing `@` in a composer (the
// choice is inserted as @username, which the server resolves), and highlighting of
// mentions in message text, of oneself most of all.

import { me } from './api.js';
import { state } from './store.js';
import { h } from './util.js';
import { avatar } from './avatar.js';

// As the server reads them (domain::mentioned_names): `@` not after a word character,
// then 3–32 of [A-Za-z0-9_.-], trailing dots and dashes left out.
const MENTION = /(^|[^\p{L}\p{N}_])@([A-Za-z0-9_.-]{3,32})/gu;

/** The people a member may mention in a room: the others, joined or invited; `@room`
 * for a group's owners and admins. */
function candidates(room) {
  const mine = room.members?.find((m) => m.userId === me().id);
  const people = (room.members || []).filter((m) => m.userId !== me().id)
    .map((m) => ({ username: m.username, displayName: m.displayName, id: m.userId, avatarUrl: m.avatarUrl }));
  if (room.isGroup && (mine?.role === 'owner' || mine?.role === 'admin')) people.push({ username: 'room', displayName: 'Everyone in this group', id: 'room' });
  return people;
}

let seq = 0;
/**
 * Adds the autocomplete to a textarea. `roomOf()` names the room whose members are
 * offered. Attach before any other keydown listener: while the list is open, Enter, Tab,
 * arrows and Escape belong to it.
 */
export function attachMentions(textarea, roomOf) {
  const id = `mention-list-${++seq}`;
  const list = h('ul', { class: 'mention-list', id, role: 'listbox', 'aria-label': 'People to mention', hidden: true });
  textarea.after(list);
  textarea.setAttribute('aria-autocomplete', 'list');
  textarea.setAttribute('aria-controls', id);
  let items = [];
  let active = 0;
  let start = -1;

  const close = () => {
    list.hidden = true;
    items = [];
    textarea.setAttribute('aria-expanded', 'false');
    textarea.removeAttribute('aria-activedescendant');
  };
  const choose = (i) => {
    const pick = items[i];
    if (!pick) return close();
    const caret = textarea.selectionStart;
    const before = textarea.value.slice(0, start);
    const after = textarea.value.slice(caret);
    const insert = `@${pick.username} `;
    textarea.value = before + insert + after.replace(/^\s/, '');
    const at = before.length + insert.length;
    textarea.setSelectionRange(at, at);
    close();
    textarea.focus();
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const draw = () => {
    list.replaceChildren(...items.map((p, i) => h('li', {
      id: `${id}-${i}`, role: 'option', class: 'mention-option', 'aria-selected': String(i === active),
      onmousedown: (e) => { e.preventDefault(); choose(i); },
    }, p.id === 'room' ? h('span', { class: 'avatar small group', 'aria-hidden': 'true' }, '@') : avatar({ name: p.displayName, url: p.avatarUrl, id: p.id, size: 'small' }),
    h('span', { class: 'grow' }, p.displayName), h('span', { class: 'muted' }, `@${p.username}`))));
    textarea.setAttribute('aria-activedescendant', `${id}-${active}`);
  };
  const update = () => {
    const room = roomOf();
    const caret = textarea.selectionStart;
    const upto = textarea.value.slice(0, caret);
    const m = /(^|[^\p{L}\p{N}_])@([A-Za-z0-9_.-]{0,32})$/u.exec(upto);
    if (!room || !m || textarea.selectionEnd !== caret) return close();
    start = caret - m[2].length - 1;
    const q = m[2].toLowerCase();
    items = candidates(room)
      .filter((p) => p.username.startsWith(q) || p.displayName.toLowerCase().split(/\s+/).some((w) => w.startsWith(q)) || p.displayName.toLowerCase().startsWith(q))
      .slice(0, 8);
    if (!items.length) return close();
    active = Math.min(active, items.length - 1);
    list.hidden = false;
    textarea.setAttribute('aria-expanded', 'true');
    draw();
  };

  textarea.addEventListener('input', () => { active = 0; update(); });
  textarea.addEventListener('click', update);
  textarea.addEventListener('blur', () => setTimeout(close, 100));
  textarea.addEventListener('keydown', (e) => {
    if (list.hidden || !items.length) return;
    const move = { ArrowDown: 1, ArrowUp: -1 }[e.key];
    if (move) {
      active = (active + move + items.length) % items.length;
      draw();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      choose(active);
    } else if (e.key === 'Escape') {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  });
  return { close };
}

/**
 * Wraps the mentions in rendered message text in spans (`.mention`, and `.mention-me` for the
 * user): names the server resolved (`m.mentions`, or `@room`), outside code and links.
 */
export function highlightMentions(nodes, m) {
  const mentioned = new Set();
  for (const id of m.mentions || []) {
    const name = id === me()?.id ? me().username : state.users.get(id)?.username;
    if (name) mentioned.add(name.toLowerCase());
  }
  if (m.mentionsRoom) mentioned.add('room');
  if (!mentioned.size) return nodes;
  const mine = new Set([me()?.username?.toLowerCase(), m.mentionsRoom ? 'room' : null]);
  for (const root of nodes) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode: (n) => (n.parentElement?.closest('code, pre, a') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
    });
    const texts = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(n);
    for (const text of texts) {
      const value = text.nodeValue;
      const parts = [];
      let last = 0;
      for (const hit of value.matchAll(MENTION)) {
        const name = hit[2].replace(/[.-]+$/, '').toLowerCase();
        if (!mentioned.has(name)) continue;
        const at = hit.index + hit[1].length;
        parts.push(value.slice(last, at));
        parts.push(h('span', { class: `mention${mine.has(name) ? ' mention-me' : ''}` }, `@${hit[2].slice(0, name.length)}`));
        last = at + 1 + name.length;
      }
      if (!parts.length) continue;
      parts.push(value.slice(last));
      text.replaceWith(...parts.filter((p) => p !== ''));
    }
  }
  return nodes;
}
