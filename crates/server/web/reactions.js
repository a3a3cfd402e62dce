// Reactions: chips under a message (emoji and count, one's own highlighted, who reacted
// in the title; a click toggles one's own), and a picker of common emojis with free
// entry. The server's answer, and message.updated for everyone else, carry the new state.

import { api, me } from './api.js';
import { displayName } from './store.js';
import { h } from './util.js';

/** The picker's quick choices. */
export const COMMON = ['👍', '❤️', '😂', '😮', '😢', '🙏', '🎉', '👀'];

let onChanged = () => {};
/** `fn(message)` gets each message a reaction call answers. */
export function onReacted(fn) { onChanged = fn; }

/** Adds (or, with `add` false, removes) the user's reaction; the message as it is now. */
export async function react(m, emoji, add = true) {
  const path = `/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`;
  try {
    onChanged(await api(add ? 'PUT' : 'DELETE', path));
  } catch (e) {
    alert(e.code === 'invalid_emoji' ? 'A reaction is one emoji.' : `Could not react: ${e.message}`);
  }
}

/** "Alice, Bob and you" for a reaction's users. */
function who(userIds) {
  const names = userIds.map((id) => (id === me().id ? 'you' : displayName(id)));
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0] || '';
}

/** The chips of a message's reactions, or null when it has none. */
export function reactionChips(m) {
  if (m.deleted || !m.reactions?.length) return null;
  return h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }, ...m.reactions.map((r) => {
    const mine = r.userIds.includes(me().id);
    const title = `${who(r.userIds)} reacted with ${r.emoji}`;
    return h('button', {
      type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'aria-pressed': String(mine), title,
      'aria-label': `${r.emoji} ${r.count}: ${title}`, dataset: { emoji: r.emoji },
      onclick: () => react(m, r.emoji, !mine),
    }, h('span', { class: 'emoji' }, r.emoji), h('span', { class: 'count' }, String(r.count)));
  }));
}

let open = null;
function closePicker() {
  open?.remove();
  open = null;
  document.removeEventListener('pointerdown', outside, true);
}
function outside(e) { if (open && !open.contains(e.target)) closePicker(); }

/** A small popover by `anchor` with the common emojis and a box for any other. */
export function openPicker(m, anchor) {
  closePicker();
  const pick = (emoji) => { closePicker(); if (emoji) react(m, emoji, true); };
  const other = h('input', { type: 'text', class: 'emoji-input', 'aria-label': 'Another emoji', placeholder: 'Other…', maxlength: 16, autocomplete: 'off' });
  const pop = h('div', { class: 'reaction-picker', role: 'dialog', 'aria-label': 'Add a reaction' },
    h('div', { class: 'emoji-row' }, ...COMMON.map((e) => h('button', { type: 'button', class: 'emoji-btn', 'aria-label': `React with ${e}`, onclick: () => pick(e) }, e))),
    h('form', { class: 'emoji-other', onsubmit: (e) => { e.preventDefault(); pick(other.value.trim()); } },
      other, h('button', { type: 'submit' }, 'Add')));
  pop.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); closePicker(); anchor.focus(); } });
  document.body.append(pop);
  const r = anchor.getBoundingClientRect();
  const w = pop.offsetWidth;
  const hgt = pop.offsetHeight;
  pop.style.left = `${Math.max(8, Math.min(window.innerWidth - w - 8, r.left + r.width / 2 - w / 2))}px`;
  pop.style.top = `${r.top - hgt - 6 > 8 ? r.top - hgt - 6 : r.bottom + 6}px`;
  open = pop;
  setTimeout(() => document.addEventListener('pointerdown', outside, true));
  pop.querySelector('.emoji-btn').focus();
}
