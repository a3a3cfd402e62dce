// The sidebar: conversations by recent activity, with preview, unread count and presence.

import { me } from './api.js';
import { state, sortedRooms, peer, displayName, isInvited } from './store.js';
import { h, $, time } from './util.js';
import { avatar } from './avatar.js';
import { plainText } from './format.js';
import { eventText } from './events.js';

const MEDIA_LABEL = { image: 'Photo', video: 'Video', audio: 'Audio', file: 'File' };

function preview(room) {
  if (isInvited(room)) {
    const who = displayName(room.invitedBy);
    return room.isGroup ? `${who} invited you` : `Message request from ${who}`;
  }
  const m = room.lastMessage;
  if (!m) return room.isGroup ? 'Group created' : 'No messages yet';
  if (m.type === 'event') return eventText(m);
  const text = m.deleted ? 'Message deleted' : plainText(m.content) || MEDIA_LABEL[m.type] || '';
  const who = m.senderId === me().id ? 'You: ' : room.isGroup ? `${displayName(m.senderId)}: ` : '';
  return who + text;
}

/** A room's picture: the group's, or the other person's avatar (initials without one). */
export function roomAvatar(room, other, presence) {
  const el = avatar({ name: room.name, url: room.pictureUrl, id: other?.userId || room.id, group: room.isGroup });
  el.dataset.presence = presence || '';
  return el;
}

export function renderRooms(openRoom) {
  const rooms = sortedRooms();
  $('#no-rooms').hidden = rooms.length > 0;
  $('#room-list').replaceChildren(...rooms.map((room) => {
    const other = peer(room);
    const presence = other ? state.presence.get(other.userId)?.status : '';
    const unread = room.id === state.openRoomId ? 0 : room.unreadCount || 0;
    const mentioned = room.id === state.openRoomId ? 0 : room.mentionCount || 0;
    const invited = isInvited(room);
    const kind = invited ? (room.isGroup ? ', invitation' : ', message request') : '';
    const label = `${room.name}${kind}${presence === 'online' ? ', online' : ''}${unread ? `, ${unread} unread` : ''}${mentioned ? ', you were mentioned' : ''}`;
    return h('li', {},
      h('button', {
        type: 'button', class: `room-item${invited ? ' invited' : ''}`, 'aria-current': room.id === state.openRoomId ? 'true' : undefined,
        'aria-label': label, dataset: { roomId: room.id }, onclick: () => openRoom(room.id),
      },
      roomAvatar(room, other, presence),
      h('span', { class: 'room-main' },
        h('span', { class: 'room-top' },
          h('span', { class: 'room-name' }, room.name),
          room.lastMessage ? h('time', { class: 'room-time', datetime: room.lastMessage.timestamp }, time(room.lastMessage.timestamp)) : null),
        h('span', { class: 'room-bottom' },
          h('span', { class: 'room-preview' }, preview(room)),
          mentioned && !invited ? h('span', { class: 'mention-badge', 'aria-hidden': 'true', title: 'You were mentioned' }, '@') : null,
          invited ? h('span', { class: 'tag', 'aria-hidden': 'true' }, room.isGroup ? 'Invitation' : 'Request')
            : unread ? h('span', { class: 'badge', 'aria-hidden': 'true' }, String(unread)) : null))));
  }));
}
