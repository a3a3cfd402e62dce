// Forwarding: a dialog listing one's other chats; the chosen one gets a copy of the
// message (its text and media, marked "Forwarded") through POST /messages/{id}/forward.

import { api } from './api.js';
import { sortedRooms, peer, isInvited } from './store.js';
import { applyAnswer } from './chat.js';
import { h, newClientMsgId } from './util.js';
import { roomAvatar } from './rooms.js';
import { show, close } from './dialogs.js';
import { toast } from './toast.js';

export function forwardDialog(m) {
  const error = h('p', { class: 'error', role: 'alert' });
  const rooms = sortedRooms().filter((r) => !isInvited(r));
  const list = h('ul', { class: 'pick-list', 'aria-label': 'Chats' }, ...rooms.map((room) => h('li', {},
    h('button', {
      type: 'button', class: 'pick', dataset: { roomId: room.id },
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          // One key per choice: a retry of this click cannot send twice.
          const copy = await api('POST', `/messages/${m.id}/forward`, { roomId: room.id, clientMsgId: newClientMsgId() });
          applyAnswer(copy);
          close();
          toast(`Forwarded to ${room.name}`);
        } catch (err) {
          error.textContent = err.code === 'direct_closed' ? `${room.name} is no longer in this chat.` : err.message;
          e.currentTarget.disabled = false;
        }
      },
    }, roomAvatar(room, peer(room), ''), h('span', { class: 'grow' }, room.name)))));
  show('Forward to…', rooms.length ? list : h('p', { class: 'muted' }, 'No chats to forward to.'), error);
}
