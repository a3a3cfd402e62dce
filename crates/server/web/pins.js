// Pins: pinning and unpinning a message (a group's owners and admins, both people of a
// 1:1 room), and the panel listing the room's pins, the most recently pinned first; a
// click jumps to the message.

import { api } from './api.js';
import { state, on, displayName } from './store.js';
import { h, time } from './util.js';
import { plainText } from './format.js';
import { openPanel, panelKind, note } from './panel.js';

let answered = () => {};
let jump = () => {};

/** `applyAnswer(message)` shows the server's answer; `jumpTo(roomId, id)` a message. */
export function initPins(applyAnswer, jumpTo) {
  answered = applyAnswer;
  jump = jumpTo;
  // The panel follows pins made by others (message.updated) and room switches.
  on('message', (m) => { if (panelKind() === 'pins' && shownRoom === m.roomId) showPins(m.roomId); });
  on('room-opened', (id) => { if (panelKind() === 'pins' && shownRoom !== id) showPins(id); });
}

export async function togglePin(m) {
  const path = `/rooms/${m.roomId}/pins/${m.id}`;
  try {
    answered(await api(m.pinned ? 'DELETE' : 'PUT', path));
  } catch (e) {
    alert(e.code === 'limit_reached' ? 'A chat holds at most 50 pins. Unpin one first.' : `Could not pin: ${e.message}`);
  }
}

let shownRoom = null;
let loading = 0;

/** Opens (or refreshes) the pins panel of a room. */
export async function showPins(roomId) {
  const room = state.rooms.get(roomId);
  if (!room) return;
  shownRoom = roomId;
  const list = h('ul', { class: 'pin-list', 'aria-label': 'Pinned messages' });
  if (panelKind() !== 'pins') openPanel('pins', `Pinned in ${room.name}`, note('Loading…'), { onClose: () => { shownRoom = null; } });
  const mine = ++loading;
  try {
    const { messages } = await api('GET', `/rooms/${roomId}/pins`);
    if (mine !== loading || panelKind() !== 'pins') return;
    list.replaceChildren(...messages.map((m) => h('li', {},
      h('button', { type: 'button', class: 'pin-item', onclick: () => jump(m.roomId, m.id) },
        h('span', { class: 'pin-top' }, h('strong', {}, displayName(m.senderId)), h('time', { datetime: m.timestamp }, time(m.timestamp))),
        h('span', { class: 'pin-text' }, m.deleted ? 'This message was deleted' : plainText(m.content) || m.media?.filename || 'Attachment')))));
    openPanel('pins', `Pinned in ${room.name}`, messages.length ? list : note('Nothing is pinned here yet.'), { onClose: () => { shownRoom = null; } });
  } catch (e) {
    if (mine === loading) openPanel('pins', 'Pinned', note(e.message, 'error'));
  }
}
