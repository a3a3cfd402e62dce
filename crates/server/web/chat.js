// The open conversation: header, timeline (day separators, infinite scroll back without
// a jump, thread replies left to their thread), jumping to a message, receipts ticks,
// pending sends, and the composer's reply and edit states.

import { api, me } from './api.js';
import { state, emit, peer, displayName, outbox, putMessage, isInvited, inTimeline } from './store.js';
import { h, $, dayLabel, lastSeenText } from './util.js';
import { fillAvatar } from './avatar.js';
import { plainText } from './format.js';
import { messageNode, statusOf, ticks, receiptDetail, actions } from './message.js';

const PAGE = 50;
const list = () => $('#msg-list');
const scroller = () => $('#messages');
let nodes = new WeakMap(); // message object → its element (objects are replaced on change)
let loadingOlder = null;

/** Opens a room; resolves once its newest messages are shown. */
export async function openRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
  if (state.openRoomId !== id) cancelReply();
  state.openRoomId = id;
  state.editing = null;
  document.body.classList.add('room-open');
  $('#empty').hidden = true;
  for (const s of ['#chat-head', '#messages']) $(s).hidden = false;
  $('#edit-banner').hidden = true;
  renderRequest();
  renderHead();
  list().replaceChildren();
  $('#history-status').textContent = '';
  renderPending();
  emit('rooms');
  emit('room-opened', id);
  if (matchMedia('(min-width: 721px)').matches) $('#text').focus();
  if (room.loaded) {
    renderAll(room, 'bottom');
  } else {
    await loadNewest(room);
    if (state.openRoomId === id) renderAll(room, 'bottom');
  }
}

export function closeRoom() {
  cancelReply();
  state.openRoomId = null;
  document.body.classList.remove('room-open');
  $('#empty').hidden = false;
  for (const s of ['#chat-head', '#messages', '#composer', '#request']) $(s).hidden = true;
  emit('rooms');
}

/** A request or invitation shows Accept / Decline / Block instead of the composer: one
 * who has not answered sends nothing, typing and receipts included. */
export function renderRequest() {
  const room = state.rooms.get(state.openRoomId);
  if (!room) return;
  const invited = isInvited(room);
  $('#request').hidden = !invited;
  $('#composer').hidden = invited;
  if (!invited) return;
  const who = displayName(room.invitedBy);
  $('#request-text').textContent = room.isGroup
    ? `${who} invited you to ${room.name}. Accept to join in; until then nobody here sees whether you are online or have read anything.`
    : `${who} wants to chat with you. Accept to reply; until then ${who} does not see whether you are online or have read the messages.`;
  $('#request-block').textContent = `Block ${who}`;
}

async function loadNewest(room) {
  const page = await api('GET', `/messages/history?roomId=${room.id}&limit=${PAGE}`);
  room.msgs = [];
  room.byId = new Map();
  room.loaded = true;
  for (const m of page.messages) putMessage(m);
  room.hasMore = page.hasMore;
  emit('seen', room.id);
}

/** Loads the page before the oldest message held (one load at a time; a second call
 * waits for the first). `render` false leaves the drawing to the caller. */
function loadOlder(room, { limit = PAGE, render = true } = {}) {
  if (loadingOlder) return loadingOlder;
  if (!room.hasMore || !room.msgs.length) return Promise.resolve();
  $('#history-status').textContent = 'Loading earlier messages…';
  loadingOlder = (async () => {
    try {
      const page = await api('GET', `/messages/history?roomId=${room.id}&before=${room.msgs[0].seq}&limit=${limit}`);
      for (const m of page.messages) putMessage(m);
      room.hasMore = page.hasMore;
      if (render && state.openRoomId === room.id) renderAll(room, 'keep');
    } finally {
      loadingOlder = null;
      $('#history-status').textContent = room.hasMore ? '' : 'This is the beginning of the conversation.';
    }
  })();
  return loadingOlder;
}

/**
 * Shows a message in its room's timeline, highlighted: opens the room, loads older
 * history until the message is held, and scrolls to it. A thread reply not in the
 * timeline opens its thread instead (actions.thread).
 */
export async function jumpTo(roomId, id) {
  const room = state.rooms.get(roomId);
  if (!room) return false;
  if (state.openRoomId !== roomId || !room.loaded) await openRoom(roomId);
  let m = room.byId.get(id);
  if (!m) {
    let target;
    try { target = await api('GET', `/messages/${id}`); } catch { return false; }
    if (!inTimeline(target)) { actions.thread?.({ id: target.threadRootId, roomId }, id); return true; }
    $('#history-status').textContent = 'Loading earlier messages…';
    while (!room.byId.has(id) && room.hasMore && room.msgs.length && room.msgs[0].seq > target.seq) {
      await loadOlder(room, { limit: 200, render: false });
    }
    m = room.byId.get(id);
    if (state.openRoomId !== roomId) return false;
    renderAll(room, 'keep');
    if (!m) return false;
  }
  if (!inTimeline(m)) { actions.thread?.({ id: m.threadRootId, roomId }, id); return true; }
  const el = list().querySelector(`[data-id="${CSS.escape(id)}"]`);
  if (!el) return false;
  el.scrollIntoView({ block: 'center' });
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation on a second jump
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 2600);
  return true;
}

export function initChat() {
  scroller().addEventListener('scroll', () => {
    const room = state.rooms.get(state.openRoomId);
    if (room && scroller().scrollTop < 400) loadOlder(room);
    if (atBottom()) emit('seen', state.openRoomId);
  }, { passive: true });
  $('#back').addEventListener('click', closeRoom);
  setInterval(() => state.openRoomId && renderHead(), 30_000);
}

const atBottom = () => {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
};

// ---- header

export function renderHead() {
  const room = state.rooms.get(state.openRoomId);
  if (!room) return;
  const other = peer(room);
  $('#chat-name').textContent = room.name;
  const av = $('#chat-avatar');
  fillAvatar(av, { name: room.name, url: room.pictureUrl, id: other?.userId || room.id });
  av.classList.toggle('group', !!room.isGroup);
  const typing = [...room.typing.keys()].filter((u) => u !== me().id);
  let sub;
  if (typing.length) {
    sub = room.isGroup ? `${typing.map(displayName).join(', ')} ${typing.length > 1 ? 'are' : 'is'} typing…` : 'typing…';
  } else if (other) {
    sub = isInvited(room) ? 'Message request' : lastSeenText(state.presence.get(other.userId));
  } else if (!room.isGroup) {
    sub = 'The other person left this chat';
  } else {
    sub = `${room.members?.length || 0} members: ${(room.members || []).map((m) => (m.userId === me().id ? 'you' : m.displayName)).join(', ')}`;
  }
  $('#chat-sub').textContent = sub;
  $('#chat-sub').classList.toggle('typing', typing.length > 0);
  const p = other && state.presence.get(other.userId);
  av.dataset.presence = p?.status || '';
}

/** Redraws the avatars beside the open room's messages from what is known of each sender
 * now (a room.updated brings members' current pictures). */
export function refreshAvatars() {
  for (const el of list().querySelectorAll('.msg-avatar[data-user-id]')) {
    const u = state.users.get(el.dataset.userId);
    if (u) fillAvatar(el, { name: u.displayName, url: u.avatarUrl, id: el.dataset.userId });
  }
}

function nodeFor(room, m) {
  let el = nodes.get(m);
  if (!el) { el = messageNode(room, m); nodes.set(m, el); }
  return el;
}

/** Drops every drawn node (names or thread states changed) and draws the room again. */
export function redrawAll() {
  nodes = new WeakMap();
  const room = state.rooms.get(state.openRoomId);
  if (room?.loaded) renderAll(room);
}

/** Draws one held message again (its thread's replies changed, say). */
export function redraw(room, id) {
  const m = room.byId.get(id);
  const old = m && list().querySelector(`[data-id="${CSS.escape(id)}"]`);
  if (!old) return;
  const wasBottom = atBottom();
  nodes.delete(m);
  old.replaceWith(nodeFor(room, m));
  if (wasBottom) scroller().scrollTop = scroller().scrollHeight;
  markRuns();
}
const dayOf = (m) => new Date(m.timestamp).toDateString();
const separator = (m) => h('div', { class: 'day', role: 'separator' }, h('span', {}, dayLabel(m.timestamp)));

/** Rebuilds the list. anchor: 'bottom' (scroll to the end) or 'keep' (older ones prepended). */
export function renderAll(room, anchor = 'keep') {
  const s = scroller();
  const wasBottom = atBottom();
  const before = s.scrollHeight - s.scrollTop;
  const out = [];
  let day = null;
  for (const m of room.msgs.filter(inTimeline)) {
    if (dayOf(m) !== day) { day = dayOf(m); out.push(separator(m)); }
    out.push(nodeFor(room, m));
  }
  list().replaceChildren(...out);
  markRuns();
  if (anchor === 'bottom' || wasBottom) s.scrollTop = s.scrollHeight;
  // Keep the same message under the reader's eyes when older ones appear above.
  else s.scrollTop = s.scrollHeight - before;
  if (!room.hasMore) $('#history-status').textContent = room.msgs.length ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
  // A short first page leaves nothing to scroll: fetch more until it fills the view.
  if (room.hasMore && s.scrollHeight <= s.clientHeight + 10) loadOlder(room);
}

/** A change to one message of the open room: appended, inserted or replaced. */
export function showMessage(room, m, how) {
  if (!inTimeline(m)) {
    // A thread reply: its root shows the count and the unread dot.
    if (m.threadRootId) redraw(room, m.threadRootId);
    return;
  }
  if (how === 'append') {
    const wasBottom = atBottom();
    const shown = room.msgs.filter(inTimeline);
    const prev = shown[shown.length - 2];
    if (!prev || dayOf(prev) !== dayOf(m)) list().append(separator(m));
    if (!room.hasMore) $('#history-status').textContent = 'This is the beginning of the conversation.';
    list().append(nodeFor(room, m));
    if (wasBottom || m.senderId === me().id) scroller().scrollTop = scroller().scrollHeight;
  } else if (how === 'update') {
    const old = list().querySelector(`[data-id="${CSS.escape(m.id)}"]`);
    const wasBottom = atBottom();
    if (old) old.replaceWith(nodeFor(room, m));
    // A reaction or a thread summary makes it taller: the newest stays in view.
    if (wasBottom) scroller().scrollTop = scroller().scrollHeight;
  } else if (how === 'insert') {
    renderAll(room);
  }
  markRuns();
}

/** Marks each message followed by another from the same sender (no day between), so
 * only the last of a run shows its sender's avatar. */
function markRuns() {
  let next = null;
  for (const el of [...list().children].reverse()) {
    if (!el.classList.contains('msg')) { next = null; continue; }
    const sender = el.querySelector('.msg-avatar')?.dataset.userId;
    el.classList.toggle('followed', !!sender && next === sender);
    next = sender || null;
  }
}

export function refreshTicks(room) {
  for (const el of list().querySelectorAll('.msg.mine')) {
    const m = room.byId.get(el.dataset.id);
    const t = el.querySelector('.ticks');
    if (!m || !t) continue;
    const st = statusOf(room, m);
    const detail = receiptDetail(room, m);
    if (!t.classList.contains(st) || t.dataset.detail !== detail) t.replaceWith(ticks(st, detail));
  }
}

// ---- pending (outbox) and uploads

const uploads = new Map(); // local id → {roomId, name, progress, error, retry}

export function setUpload(id, info) {
  if (info) uploads.set(id, { ...uploads.get(id), ...info });
  else uploads.delete(id);
  renderPending();
}

export function renderPending() {
  const room = state.openRoomId;
  const items = outbox().filter((i) => i.roomId === room && (!i.threadRootId || i.alsoInRoom)).map((i) => h('div', { class: 'msg mine pending', dataset: { clientMsgId: i.clientMsgId } },
    h('div', { class: 'bubble' },
      i.media ? h('div', { class: 'text' }, i.media.filename || 'file') : null,
      i.content ? h('div', { class: 'text' }, i.content) : null,
      h('div', { class: 'meta' }, i.error ? h('span', { class: 'error' }, `Not sent: ${i.error}`) : null, ticks('pending')))));
  const ups = [...uploads.entries()].filter(([, u]) => u.roomId === room).map(([id, u]) => h('div', { class: 'msg mine pending' },
    h('div', { class: 'bubble' },
      h('div', { class: 'text' }, u.name),
      u.error
        ? h('div', { class: 'meta' }, h('span', { class: 'error' }, `Upload failed: ${u.error}`),
          h('button', { type: 'button', class: 'link', onclick: u.retry }, 'Retry'),
          h('button', { type: 'button', class: 'link', onclick: () => setUpload(id, null) }, 'Dismiss'))
        : h('progress', { max: 1, value: u.progress || 0, 'aria-label': `Uploading ${u.name}` }))));
  const wasBottom = atBottom();
  $('#pending').replaceChildren(...items, ...ups);
  if (wasBottom || items.length || ups.length) scroller().scrollTop = scroller().scrollHeight;
}

// ---- reply, edit and delete

/** Quotes a message in the composer: the next message sent replies to it. */
export function startReply(m) {
  cancelEdit();
  state.replyTo = m;
  const text = m.deleted ? 'This message was deleted' : plainText(m.content) || m.media?.filename || 'Attachment';
  $('#reply-who').textContent = m.senderId === me().id ? 'yourself' : displayName(m.senderId);
  $('#reply-text').textContent = text;
  $('#reply-banner').hidden = false;
  $('#text').focus();
}

export function cancelReply() {
  state.replyTo = null;
  $('#reply-banner').hidden = true;
}

export function startEdit(m) {
  cancelReply();
  state.editing = m;
  $('#edit-banner').hidden = false;
  const t = $('#text');
  t.value = m.content;
  t.focus();
}

export function cancelEdit() {
  if (!state.editing) return;
  state.editing = null;
  $('#edit-banner').hidden = true;
  $('#text').value = '';
}

/** Shows a message the server answered with (an edit, delete, reaction or pin). */
export function applyAnswer(updated) {
  const how = putMessage(updated);
  const room = state.rooms.get(updated.roomId);
  if (room && how && state.openRoomId === room.id) showMessage(room, updated, how);
  emit('message', updated);
  emit('rooms');
}

export async function removeMessage(m) {
  if (!confirm('Delete this message for everyone?')) return;
  try {
    applyAnswer(await api('DELETE', `/messages/${m.id}`));
  } catch (e) {
    alert(`Could not delete: ${e.message}`);
  }
}

export async function saveEdit(content) {
  const m = state.editing;
  cancelEdit();
  if (!m || content === m.content) return;
  applyAnswer(await api('PATCH', `/messages/${m.id}`, { content }));
}
