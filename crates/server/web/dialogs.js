// Dialogs: start a chat, create a group, a room's details (members, rename, picture,
// leave, notification level, block), and settings (picture, name, notifications, two-factor
// login, blocked people, one's data and account (account.js), log out).

import { api, me, logout, updateUser, upload } from './api.js';
import { state, putRoom, peer, emit } from './store.js';
import { h, $, lastSeenText } from './util.js';
import { avatar } from './avatar.js';
import * as notify from './notify.js';
import { accountSection } from './account.js';
import { secondFactorSection } from './twofactor.js';
import { ssoSection } from './sso.js';
import { memberActions, bansSection } from './moderation.js';

const dlg = () => $('#dialog');

/** Opens the shared dialog with a title and body. */
export function show(title, ...body) {
  const d = dlg();
  d.replaceChildren(
    h('header', { class: 'dialog-head' },
      h('h2', { id: 'dialog-title' }, title),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: () => d.close() }, '✕')),
    h('div', { class: 'dialog-body' }, ...body));
  d.setAttribute('aria-labelledby', 'dialog-title');
  if (!d.open) d.showModal();
  d.querySelector('input, button:not([aria-label="Close"])')?.focus();
}

/** Closes the shared dialog. */
export const close = () => dlg().close();

/** A search box over users; calls pick(user) for a chosen one. */
function userPicker(pick, exclude = () => false, label = 'Search people by name') {
  const results = h('ul', { class: 'pick-list', 'aria-label': 'People found' });
  let timer;
  const input = h('input', {
    type: 'search', 'aria-label': label, placeholder: label, autocomplete: 'off',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = input.value.trim();
        if (!q) return results.replaceChildren();
        try {
          const { users } = await api('GET', `/users?q=${encodeURIComponent(q)}&limit=20`);
          const found = users.filter((u) => u.id !== me().id && !exclude(u));
          results.replaceChildren(...(found.length ? found.map((u) => h('li', {},
            h('button', { type: 'button', class: 'pick', onclick: () => pick(u) },
              avatar({ name: u.displayName, url: u.avatarUrl, id: u.id, size: 'small' }),
              h('span', {}, u.displayName), h('span', { class: 'muted' }, ` @${u.username}`))))
            : [h('li', { class: 'muted' }, 'Nobody found')]));
        } catch (e) {
          results.replaceChildren(h('li', { class: 'error' }, e.message));
        }
      }, 200);
    },
  });
  return h('div', { class: 'picker' }, input, results);
}

export function newChat(openRoom) {
  show('New chat', userPicker(async (u) => {
    const room = putRoom(await api('POST', '/rooms/create', { isGroup: false, memberIds: [u.id] }));
    dlg().close();
    emit('rooms');
    emit('presence-needed', room);
    openRoom(room.id);
  }));
}

export function newGroup(openRoom) {
  const chosen = new Map();
  const chips = h('ul', { class: 'chips', 'aria-label': 'Members to add' });
  const error = h('p', { class: 'error', role: 'alert' });
  const drawChips = () => chips.replaceChildren(...[...chosen.values()].map((u) => h('li', { class: 'chip' }, u.displayName,
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Remove ${u.displayName}`, onclick: () => { chosen.delete(u.id); drawChips(); } }, '✕'))));
  const name = h('input', { id: 'group-name', required: true, maxlength: 100, placeholder: 'Group name' });
  const form = h('form', {
    class: 'stack',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!name.value.trim()) { error.textContent = 'Give the group a name.'; return name.focus(); }
      try {
        const room = putRoom(await api('POST', '/rooms/create', { name: name.value.trim(), isGroup: true, memberIds: [...chosen.keys()] }));
        dlg().close();
        emit('rooms');
        openRoom(room.id);
      } catch (err) { error.textContent = err.message; }
    },
  },
  h('label', {}, 'Group name', name),
  h('span', { class: 'label' }, 'Members'), chips,
  userPicker((u) => { chosen.set(u.id, u); drawChips(); }, (u) => chosen.has(u.id), 'Add people'),
  error,
  h('button', { type: 'submit', class: 'primary' }, 'Create group'));
  show('New group', form);
}

/**
 * A picture with Change and Remove: the chosen file goes through the media upload (which
 * strips its metadata and makes the thumbnail shown), then `set(mediaId)`; `set(null)`
 * removes it. `id` names the file input (tests use it).
 */
function pictureEditor({ id, label, show, set, error }) {
  const busy = (on) => { for (const b of box.querySelectorAll('button')) b.disabled = on; };
  const input = h('input', {
    type: 'file', id, accept: 'image/png,image/jpeg,image/gif,image/webp', hidden: true, 'aria-label': label,
    onchange: async () => {
      const file = input.files[0];
      input.value = '';
      if (!file) return;
      busy(true);
      error.textContent = 'Uploading…';
      try {
        const media = await upload(file);
        await set(media.id);
        error.textContent = '';
      } catch (e) {
        error.textContent = e.code === 'payload_too_large' ? 'That picture is too large.' : e.message;
      } finally { busy(false); }
    },
  });
  const box = h('div', { class: 'picture-editor' }, show,
    h('div', { class: 'row' },
      h('button', { type: 'button', onclick: () => input.click() }, label),
      h('button', { type: 'button', class: 'link danger', onclick: async () => { try { await set(null); } catch (e) { error.textContent = e.message; } } }, 'Remove picture')),
    input);
  return box;
}

export async function roomInfo(roomId, closeRoom) {
  const room = state.rooms.get(roomId);
  if (!room) return;
  const myRole = room.members?.find((m) => m.userId === me().id)?.role;
  const canManage = room.isGroup && (myRole === 'owner' || myRole === 'admin');
  const error = h('p', { class: 'error', role: 'alert' });
  const act = (fn) => async () => { try { await fn(); } catch (e) { error.textContent = e.message; } };
  // After a change to the members: the room again from the server, and these details anew.
  const redraw = async () => { putRoom(await api('GET', `/rooms/${room.id}`)); emit('rooms'); roomInfo(roomId, closeRoom); };
  const parts = [];
  const other = peer(room);
  const picture = avatar({ name: room.name, url: room.pictureUrl, id: other?.userId || room.id, size: 'large', group: room.isGroup });
  if (canManage) {
    parts.push(pictureEditor({
      id: 'room-picture-file', label: 'Change group picture', show: picture, error,
      set: async (mediaId) => {
        const path = `/rooms/${room.id}/picture`;
        putRoom(await (mediaId ? api('PUT', path, { mediaId }) : api('DELETE', path)), { keepActivity: true });
        emit('rooms');
        roomInfo(roomId, closeRoom);
      },
    }));
  } else {
    parts.push(h('div', { class: 'picture-editor' }, picture));
  }
  if (other) {
    parts.push(h('p', {}, h('strong', {}, other.displayName), ` @${other.username}`),
      h('p', { class: 'muted' }, lastSeenText(state.presence.get(other.userId))));
  }
  if (room.isGroup && canManage) {
    const name = h('input', { value: room.name, maxlength: 100, 'aria-label': 'Group name' });
    parts.push(h('form', {
      class: 'row',
      onsubmit: (e) => { e.preventDefault(); act(async () => { putRoom(await api('PATCH', `/rooms/${room.id}`, { name: name.value.trim() }), { keepActivity: true }); emit('rooms'); roomInfo(roomId, closeRoom); })(); },
    }, name, h('button', { type: 'submit' }, 'Rename')));
  }
  if (room.isGroup) {
    const rank = { owner: 0, admin: 1, member: 2 };
    parts.push(h('h3', {}, `${room.members.length} members`), h('ul', { class: 'member-list' }, ...room.members.map((m) => {
      const removable = m.userId !== me().id && canManage && rank[myRole] < rank[m.role];
      return h('li', {},
        avatar({ name: m.displayName, url: m.avatarUrl, id: m.userId, size: 'small' }),
        h('span', { class: 'grow' }, m.userId === me().id ? `${m.displayName} (you)` : m.displayName),
        m.role !== 'member' ? h('span', { class: 'muted' }, m.role) : null,
        removable ? h('button', {
          type: 'button', class: 'link danger', 'aria-label': `Remove ${m.displayName}`,
          onclick: act(async () => { await api('DELETE', `/rooms/${room.id}/members/${m.userId}`); await redraw(); }),
        }, 'Remove') : null,
        ...(removable ? memberActions(room, m, act, (text) => (text ? (error.textContent = text) : redraw())) : []));
    })));
    if (canManage) parts.push(...await bansSection(room, act, redraw));
    if (canManage) {
      parts.push(userPicker(act(async (u) => {
        putRoom(await api('POST', `/rooms/${room.id}/members`, { userIds: [u.id] }), { keepActivity: true });
        emit('rooms');
        roomInfo(roomId, closeRoom);
      }), (u) => room.members.some((m) => m.userId === u.id), 'Add people'));
    }
  }
  // What notifies me of this room, here and by push: everything, mentions, or nothing.
  const level = h('select', {
    id: 'notification-level',
    onchange: act(async () => {
      await api('PUT', `/rooms/${room.id}/notifications`, { level: level.value });
      room.notificationLevel = level.value;
      error.textContent = 'Saved.';
    }),
  },
  ...[['all', 'All messages'], ['mentions', 'Only mentions of me'], ['nothing', 'Nothing']].map(([v, label]) => h('option', { value: v, selected: (room.notificationLevel || 'all') === v }, label)));
  parts.push(h('label', { class: 'stack-label' }, 'Notify me of', level));
  const leave = async () => {
    await api('POST', `/rooms/${room.id}/leave`);
    state.rooms.delete(room.id);
    dlg().close();
    closeRoom();
    emit('rooms');
  };
  // A 1:1 room can be left too: the other person can no longer write to it, until one of
  // the two opens it again (a new request).
  parts.push(h('button', {
    type: 'button', class: 'danger',
    onclick: act(async () => {
      if (!confirm(room.isGroup ? `Leave ${room.name}?` : `Leave this chat with ${room.name}? They will not be able to write to you here.`)) return;
      await leave();
    }),
  }, room.isGroup ? 'Leave group' : 'Leave chat'));
  if (other) {
    parts.push(h('button', {
      type: 'button', class: 'danger',
      onclick: act(async () => {
        if (!confirm(`Block ${other.displayName}? Neither of you will see the other online, and they cannot message you or add you to groups. Unblock in Settings.`)) return;
        await api('PUT', `/users/me/blocks/${other.userId}`);
        dlg().close();
      }),
    }, `Block ${other.displayName}`));
  }
  parts.push(error);
  show(room.isGroup ? room.name : 'Chat details', ...parts);
}

export async function settings() {
  const error = h('p', { class: 'error', role: 'alert' });
  const name = h('input', { value: me().displayName, maxlength: 64, 'aria-label': 'Display name' });
  const parts = [
    pictureEditor({
      id: 'avatar-file', label: 'Change picture', error,
      show: avatar({ name: me().displayName, url: me().avatarUrl, id: me().id, size: 'large' }),
      set: async (mediaId) => {
        updateUser(await (mediaId ? api('PUT', '/users/me/avatar', { mediaId }) : api('DELETE', '/users/me/avatar')));
        emit('me');
        // Nobody is told of an avatar (as of a name): one's own rooms are read again.
        const { rooms } = await api('GET', '/rooms');
        for (const r of rooms) putRoom(r, { keepActivity: true });
        emit('rooms');
        emit('avatars');
        settings();
      },
    }),
    h('p', {}, 'Logged in as ', h('strong', {}, `@${me().username}`)),
    h('form', {
      class: 'row',
      onsubmit: async (e) => {
        e.preventDefault();
        try { updateUser(await api('PATCH', '/users/me', { displayName: name.value.trim() })); emit('me'); error.textContent = 'Saved.'; } catch (err) { error.textContent = err.message; }
      },
    }, name, h('button', { type: 'submit' }, 'Save')),
  ];
  if (notify.canNotify()) {
    const perm = Notification.permission;
    parts.push(perm === 'granted'
      ? h('p', { class: 'muted' }, 'Notifications are on while this tab is in the background.')
      : h('button', { type: 'button', onclick: async () => { await notify.askPermission(); settings(); } },
        perm === 'denied' ? 'Notifications are blocked in the browser settings' : 'Turn on notifications'));
  }
  if (await notify.pushAvailable()) {
    const box = h('input', {
      type: 'checkbox', checked: await notify.pushSubscribed(),
      onchange: async () => { try { await notify.setPush(box.checked); } catch (e) { box.checked = !box.checked; error.textContent = e.message; } },
    });
    parts.push(h('label', { class: 'check' }, box, 'Notify me when the browser is closed (push)'));
  }
  parts.push(await secondFactorSection());
  parts.push(await ssoSection());
  parts.push(await blockedPeople(error));
  parts.push(accountSection());
  parts.push(error, h('button', { type: 'button', class: 'danger', id: 'logout', onclick: () => { dlg().close(); notify.dropPush().finally(logout); } }, 'Log out'));
  show('Settings', ...parts);
}

/** The people one blocked, each with Unblock. */
async function blockedPeople(error) {
  const list = h('ul', { class: 'member-list', id: 'blocked-list', 'aria-label': 'Blocked people' });
  const draw = async () => {
    try {
      const { blocks } = await api('GET', '/users/me/blocks');
      list.replaceChildren(...(blocks.length ? blocks.map((b) => h('li', {},
        avatar({ name: b.displayName, id: b.userId, size: 'small' }),
        h('span', { class: 'grow' }, b.displayName, h('span', { class: 'muted' }, ` @${b.username}`)),
        h('button', {
          type: 'button', class: 'link', 'aria-label': `Unblock ${b.displayName}`,
          onclick: async () => { try { await api('DELETE', `/users/me/blocks/${b.userId}`); await draw(); } catch (e) { error.textContent = e.message; } },
        }, 'Unblock')))
        : [h('li', { class: 'muted' }, 'Nobody')]));
    } catch (e) { error.textContent = e.message; }
  };
  await draw();
  return h('section', { class: 'stack' }, h('h3', {}, 'Blocked people'), list);
}
