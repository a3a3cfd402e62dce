// The open conversation: header, messages (day separators, infinite scroll back without a
// jump), receipts ticks, pending sends, the composer, edit and delete.

import { api, me, linkExpired } from './api.js';
import { state, emit, peer, displayName, outbox, putMessage, isInvited } from './store.js';
import { h, $, time, dayLabel, lastSeenText, humanSize } from './util.js';
import { avatar, fillAvatar } from './avatar.js';
import { renderText } from './format.js';

const PAGE = 50;
const list = () => $('#msg-list');
const scroller = () => $('#messages');
const nodes = new WeakMap(); // message object → its element (objects are replaced on change)
let loadingOlder = false;

export function openRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
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
  if (room.loaded) {
    renderAll(room, 'bottom');
  } else {
    loadNewest(room).then(() => state.openRoomId === id && renderAll(room, 'bottom'));
  }
  emit('rooms');
  if (matchMedia('(min-width: 721px)').matches) $('#text').focus();
}

export function closeRoom() {
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

async function loadOlder(room) {
  if (loadingOlder || !room.hasMore || !room.msgs.length) return;
  loadingOlder = true;
  $('#history-status').textContent = 'Loading earlier messages…';
  try {
    const page = await api('GET', `/messages/history?roomId=${room.id}&before=${room.msgs[0].seq}&limit=${PAGE}`);
    for (const m of page.messages) putMessage(m);
    room.hasMore = page.hasMore;
    if (state.openRoomId === room.id) renderAll(room, 'keep');
  } finally {
    loadingOlder = false;
    $('#history-status').textContent = room.hasMore ? '' : 'This is the beginning of the conversation.';
  }
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

// ---- messages

function statusOf(room, m) {
  if (m.seq <= room.summary.readSeq) return 'read';
  if (m.seq <= room.summary.deliveredSeq) return 'delivered';
  return 'sent';
}

const TICKS = { pending: '◷', sent: '✓', delivered: '✓✓', read: '✓✓' };
const TICK_LABEL = { pending: 'Waiting to send', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

function ticks(status, detail) {
  const label = detail ? `${TICK_LABEL[status]}. ${detail}` : TICK_LABEL[status];
  return h('span', { class: `ticks ${status}`, role: 'img', 'aria-label': label, title: label, 'data-detail': detail || '' }, TICKS[status]);
}

/** In a group, who has read and who has received one of my messages (hover, or click). */
function receiptDetail(room, m) {
  if (!room.isGroup) return '';
  const others = (room.members || []).filter((x) => x.userId !== me().id);
  const read = others.filter((x) => (x.readSeq || 0) >= m.seq).map((x) => x.displayName);
  const got = others.filter((x) => (x.readSeq || 0) < m.seq && (x.deliveredSeq || 0) >= m.seq).map((x) => x.displayName);
  const parts = [];
  if (read.length) parts.push(`Read by ${read.join(', ')}`);
  if (got.length) parts.push(`Delivered to ${got.join(', ')}`);
  return parts.join(' · ') || 'Not delivered yet';
}

// Media URLs are signed links that expire (the server's media.link_ttl_secs), never a
// token: an element whose link failed, or a download whose link is stale, gets the
// message again for fresh links.

/** The message's media with working links, fetched again when stale (or `force`). */
async function freshMedia(msg, force = false) {
  if (!force && msg.media && !linkExpired(msg.media.url)) return msg.media;
  const fresh = await api('GET', `/messages/${msg.id}`);
  if (fresh.media) msg.media = fresh.media;
  return fresh.media;
}

/** Reloads an <img>/<video>/<audio> once from fresh links when its link fails. */
function relinked(el, msg, pick) {
  el.addEventListener('error', async () => {
    if (el.dataset.relinked) return;
    el.dataset.relinked = '1';
    try {
      const m = await freshMedia(msg, true);
      if (m) el.src = pick(m);
    } catch { /* gone, or no longer visible */ }
  });
  return el;
}

/** A download link that swaps a stale signed URL for a fresh one before following it. */
function downloadLink(msg, attrs, ...children) {
  const a = h('a', { ...attrs, href: msg.media.url }, ...children);
  a.addEventListener('click', async (e) => {
    if (!linkExpired(a.href)) return;
    e.preventDefault();
    try {
      const m = await freshMedia(msg);
      if (m) { a.href = m.url; a.click(); }
    } catch { /* gone, or no longer visible */ }
  });
  return a;
}

function mediaNode(msg) {
  const m = msg.media;
  if (!m) return null;
  if (m.type === 'image') {
    const img = relinked(h('img', {
      src: m.thumbnailUrl || m.url, alt: m.filename || 'Picture', loading: 'lazy', decoding: 'async', class: 'thumb',
    }), msg, (fresh) => fresh.thumbnailUrl || fresh.url);
    // Known dimensions reserve the space, so pictures loading never move the list.
    if (m.width && m.height) {
      const w = Math.min(280, m.width);
      img.width = w;
      img.height = Math.round((w * m.height) / m.width);
    }
    return h('button', { type: 'button', class: 'media-open', 'aria-label': `Open picture ${m.filename || ''}`, onclick: () => openViewer(msg) }, img);
  }
  const url = (fresh) => fresh.url;
  if (m.type === 'video') return relinked(h('video', { src: m.url, controls: true, preload: 'metadata', class: 'video' }), msg, url);
  if (m.type === 'audio') return relinked(h('audio', { src: m.url, controls: true, preload: 'metadata' }), msg, url);
  return downloadLink(msg, { class: 'file-card', download: m.filename || 'file', rel: 'noopener' },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '⤓'),
    h('span', { class: 'file-name' }, m.filename || 'File'),
    h('span', { class: 'file-size' }, humanSize(m.size || 0)));
}

function messageNode(room, m) {
  const mine = m.senderId === me().id;
  const bubble = h('div', { class: 'bubble' });
  if (room.isGroup && !mine) bubble.append(h('div', { class: 'sender' }, displayName(m.senderId)));
  if (m.deleted) {
    bubble.append(h('div', { class: 'text deleted' }, 'This message was deleted'));
  } else {
    const media = mediaNode(m);
    if (media) bubble.append(media);
    // Formatted for reading; the raw text is what is stored and edited.
    if (m.content) bubble.append(h('div', { class: 'text' }, ...renderText(m.content)));
  }
  const meta = h('div', { class: 'meta' },
    m.editedAt && !m.deleted ? h('span', { class: 'edited' }, 'edited') : null,
    h('time', { datetime: m.timestamp }, time(m.timestamp)),
    mine && !m.deleted ? ticks(statusOf(room, m), receiptDetail(room, m)) : null);
  bubble.append(meta);
  const el = h('div', { class: `msg ${mine ? 'mine' : 'theirs'}`, dataset: { id: m.id, seq: m.seq } }, bubble);
  if (!mine) el.prepend(senderAvatar(m.senderId));
  if (mine && !m.deleted) {
    el.append(h('div', { class: 'msg-actions' },
      m.type === 'text' ? h('button', { type: 'button', class: 'link', onclick: () => startEdit(m), 'aria-label': 'Edit message' }, 'Edit') : null,
      h('button', { type: 'button', class: 'link danger', onclick: () => removeMessage(m), 'aria-label': 'Delete message' }, 'Delete')));
  }
  nodes.set(m, el);
  return el;
}

/** The sender's avatar beside their message, kept current by `refreshAvatars`. */
function senderAvatar(userId) {
  const u = state.users.get(userId);
  const el = avatar({ name: u?.displayName || '?', url: u?.avatarUrl, id: userId, size: 'small' });
  el.classList.add('msg-avatar');
  el.dataset.userId = userId;
  return el;
}

/** Redraws the avatars beside the open room's messages from what is known of each sender
 * now (a room.updated brings members' current pictures). */
export function refreshAvatars() {
  for (const el of list().querySelectorAll('.msg-avatar[data-user-id]')) {
    const u = state.users.get(el.dataset.userId);
    if (u) fillAvatar(el, { name: u.displayName, url: u.avatarUrl, id: el.dataset.userId });
  }
}

const nodeFor = (room, m) => nodes.get(m) || messageNode(room, m);
const dayOf = (m) => new Date(m.timestamp).toDateString();
const separator = (m) => h('div', { class: 'day', role: 'separator' }, h('span', {}, dayLabel(m.timestamp)));

/** Rebuilds the list. anchor: 'bottom' (scroll to the end) or 'keep' (older ones prepended). */
export function renderAll(room, anchor = 'keep') {
  const s = scroller();
  const wasBottom = atBottom();
  const before = s.scrollHeight - s.scrollTop;
  const out = [];
  let day = null;
  for (const m of room.msgs) {
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
  if (how === 'append') {
    const wasBottom = atBottom();
    const prev = room.msgs[room.msgs.length - 2];
    if (!prev || dayOf(prev) !== dayOf(m)) list().append(separator(m));
    if (!room.hasMore) $('#history-status').textContent = 'This is the beginning of the conversation.';
    list().append(nodeFor(room, m));
    if (wasBottom || m.senderId === me().id) scroller().scrollTop = scroller().scrollHeight;
  } else if (how === 'update') {
    const old = list().querySelector(`[data-id="${CSS.escape(m.id)}"]`);
    if (old) old.replaceWith(nodeFor(room, m));
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
  const items = outbox().filter((i) => i.roomId === room).map((i) => h('div', { class: 'msg mine pending', dataset: { clientMsgId: i.clientMsgId } },
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

// ---- edit and delete

function startEdit(m) {
  state.editing = m;
  $('#edit-banner').hidden = false;
  const t = $('#text');
  t.value = m.content;
  t.focus();
}

export function cancelEdit() {
  state.editing = null;
  $('#edit-banner').hidden = true;
  $('#text').value = '';
}

async function removeMessage(m) {
  if (!confirm('Delete this message for everyone?')) return;
  try {
    const updated = await api('DELETE', `/messages/${m.id}`);
    const how = putMessage(updated);
    const room = state.rooms.get(updated.roomId);
    if (room && state.openRoomId === room.id) showMessage(room, updated, how);
    emit('rooms');
  } catch (e) {
    alert(`Could not delete: ${e.message}`);
  }
}

export async function saveEdit(content) {
  const m = state.editing;
  cancelEdit();
  if (!m || content === m.content) return;
  const updated = await api('PATCH', `/messages/${m.id}`, { content });
  const how = putMessage(updated);
  const room = state.rooms.get(updated.roomId);
  if (room && state.openRoomId === room.id) showMessage(room, updated, how);
}

// ---- picture viewer

function openViewer(msg) {
  const m = msg.media;
  const v = $('#viewer');
  v.replaceChildren(
    h('button', { type: 'button', class: 'icon-btn close', 'aria-label': 'Close', onclick: () => v.close() }, '✕'),
    relinked(h('img', { src: m.url, alt: m.filename || 'Picture' }), msg, (fresh) => fresh.url),
    downloadLink(msg, { download: m.filename || 'picture', class: 'link' }, 'Download'));
  v.onclick = (e) => { if (e.target === v) v.close(); };
  v.showModal();
}
