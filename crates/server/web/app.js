// Entry point: log in, load rooms, keep the socket live, and route frames to the views.

import * as API from './api.js';
import { api, me } from './api.js';
import { Live } from './socket.js';
import {
  state, on, emit, putRoom, putMessage, cursors, changes, peer, outbox, enqueue, dequeue, markFailed, displayName, isInvited,
  inTimeline, mentionsMe,
} from './store.js';
import { renderRooms } from './rooms.js';
import * as chat from './chat.js';
import * as dialogs from './dialogs.js';
import * as notify from './notify.js';
import { $, newClientMsgId } from './util.js';
import { fillAvatar } from './avatar.js';
import { actions } from './message.js';
import { initUsers } from './users.js';
import { initPanel, closePanel } from './panel.js';
import { initThreads, openThread } from './thread.js';
import { openPicker, onReacted } from './reactions.js';
import { attachMentions } from './mentions.js';
import { initPins, showPins, togglePin } from './pins.js';
import { forwardDialog } from './forward.js';
import { initSearch, openSearch } from './search.js';
import { resetThreadsSeen } from './threadseen.js';
import { toast } from './toast.js';
import { initAdmin } from './admin.js';
import { askCode, initSecondFactor } from './twofactor.js';
import { initSso, finishSso, ssoReturn } from './sso.js';

let live = null;

// ---- auth screen

let registering = false;
function setMode(reg) {
  registering = reg;
  $('#tab-login').setAttribute('aria-selected', String(!reg));
  $('#tab-register').setAttribute('aria-selected', String(reg));
  $('#display-field').hidden = !reg;
  $('#auth-submit').textContent = reg ? 'Create account' : 'Log in';
  $('#password').autocomplete = reg ? 'new-password' : 'current-password';
  $('#auth-error').textContent = '';
}

const AUTH_ERRORS = {
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken. Try another one.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
};

function showAuth() {
  live?.stop();
  live = null;
  state.rooms.clear();
  state.changes.clear();
  state.openRoomId = null;
  closePanel();
  resetThreadsSeen();
  $('#main').hidden = true;
  $('#auth').hidden = false;
  $('#username').focus();
}

async function submitAuth(e) {
  e.preventDefault();
  const f = e.target;
  const username = f.username.value.trim().toLowerCase();
  const password = f.password.value;
  const err = $('#auth-error');
  if (!/^[a-z0-9_.-]{3,32}$/.test(username)) { err.textContent = 'Usernames are 3–32 letters, digits, or _ . -'; return; }
  if (password.length < 8) { err.textContent = 'Passwords have at least 8 characters.'; return; }
  $('#auth-submit').disabled = true;
  try {
    if (registering) await API.register(username, password, f.displayName.value.trim());
    else {
      const answer = await API.login(username, password);
      if (answer.secondFactor) { f.reset(); askCode(answer.secondFactor, showMain); return; }
    }
    f.reset();
    await showMain();
  } catch (ex) {
    err.textContent = AUTH_ERRORS[ex.code] || ex.message || 'Something went wrong.';
  } finally {
    $('#auth-submit').disabled = false;
  }
}

// ---- main screen

async function showMain() {
  $('#auth').hidden = true;
  $('#main').hidden = false;
  renderMe();
  initAdmin();
  const { rooms } = await api('GET', '/rooms');
  for (const r of rooms) {
    const room = putRoom(r);
    const mine = r.members?.find((m) => m.userId === me().id);
    room.sentDelivered = mine?.deliveredSeq || 0;
    room.sentRead = mine?.readSeq || 0;
  }
  emit('rooms');
  for (const r of state.rooms.values()) fetchPresence(r);
  notify.syncMuted();
  live = new Live(cursors, changes);
  live.addEventListener('state', onState);
  live.addEventListener('frame', (e) => onFrame(e.detail));
  live.start();
  notify.registerWorker();
  const hash = new URLSearchParams(location.hash.slice(1)).get('room');
  if (hash && state.rooms.has(hash)) chat.openRoom(hash);
}

function renderMe() {
  $('#me-name').textContent = me().displayName;
  fillAvatar($('#me-avatar'), { name: me().displayName, url: me().avatarUrl, id: me().id });
}

async function fetchPresence(room) {
  const other = peer(room);
  if (!other) return;
  try {
    const p = await api('GET', `/presence/${other.userId}`);
    state.presence.set(other.userId, p);
    emit('presence');
  } catch { /* not visible: leave it blank */ }
}

const CONN_TEXT = {
  connecting: 'Connecting…',
  syncing: 'Catching up…',
  waiting: 'Connection lost. Reconnecting…',
  offline: 'You are offline. Messages will be sent when you are back.',
};

function onState(e) {
  const { state: s, synced } = e.detail;
  state.connection = s;
  const banner = $('#conn');
  banner.textContent = s === 'live' ? '' : CONN_TEXT[s] || '';
  banner.dataset.state = s;
  document.body.dataset.connection = s;
  if (s === 'live') {
    if (synced) {
      // The change numbers to resume from: the next `sync` replays what changes after them.
      for (const [id, n] of Object.entries(synced.changes || {})) state.changes.set(id, n);
      // Messages and changes were replayed; presence is not.
      for (const r of state.rooms.values()) fetchPresence(r);
    }
    flushOutbox();
    for (const room of state.rooms.values()) sendDelivered(room);
    markRead();
  }
}

// ---- frames

function onFrame(f) {
  switch (f.type) {
    case 'message': return onMessage(f.message, true);
    case 'message.updated':
    case 'message.deleted': return onMessage(f.message, false);
    case 'receipt.summary': {
      const room = state.rooms.get(f.roomId);
      if (!room) return;
      room.summary = { deliveredSeq: f.deliveredSeq, readSeq: f.readSeq };
      if (room.id === state.openRoomId) chat.refreshTicks(room);
      return;
    }
    case 'receipt': {
      // One member's marker moved: groups show who has read what.
      const room = state.rooms.get(f.roomId);
      if (f.userId === me().id && room) ownReceipt(room, f);
      const member = room?.members?.find((x) => x.userId === f.userId);
      if (!member) return;
      const key = f.status === 'read' ? 'readSeq' : 'deliveredSeq';
      member[key] = Math.max(member[key] || 0, f.seq);
      if (f.status === 'read') member.deliveredSeq = Math.max(member.deliveredSeq || 0, f.seq);
      if (f.roomId === state.openRoomId) chat.refreshTicks(state.rooms.get(f.roomId));
      return;
    }
    case 'typing': return onTyping(f);
    case 'presence':
      state.presence.set(f.userId, { status: f.status, lastSeen: f.lastSeen });
      return emit('presence');
    case 'room.updated': {
      const isNew = !state.rooms.has(f.room.id);
      const before = state.rooms.get(f.room.id);
      const wasInvited = isInvited(before);
      const peerWasInvited = peer(before)?.state === 'invited';
      const room = putRoom(f.room, { keepActivity: !isNew });
      if (isNew) { fetchPresence(room); syncNewRoom(room.id); }
      // A request answered (by us, on another device, or by the other person): their
      // presence is visible now.
      if ((wasInvited && !isInvited(room)) || (peerWasInvited && peer(room)?.state === 'joined')) fetchPresence(room);
      emit('rooms');
      if (room.id === state.openRoomId) { chat.renderRequest(); chat.renderHead(); chat.refreshAvatars(); }
      return;
    }
    case 'room.left': return onLeft(f);
    default:
  }
}

/** A room new to us (created, or we were added): its messages, and its change number. */
function syncNewRoom(roomId) {
  live.request({ type: 'sync', cursors: { [roomId]: 0 } }).then((synced) => {
    // Only this room's number: the answer's others describe rooms not in this `sync`.
    const n = synced.changes?.[roomId];
    if (n !== undefined && state.rooms.has(roomId)) state.changes.set(roomId, n);
  }).catch(() => { /* the next connection's sync covers it */ });
}

/** My marker moved (on another device, or replayed): what it covers is read here too. */
function ownReceipt(room, f) {
  const key = f.status === 'read' ? 'sentRead' : 'sentDelivered';
  room[key] = Math.max(room[key] || 0, f.seq);
  if (f.status === 'read' && f.seq >= (room.lastSeq || 0) && (room.unreadCount || room.mentionCount)) {
    room.unreadCount = 0;
    room.mentionCount = 0;
    emit('rooms');
  }
}

/** Why a room went away: removed by someone, left (on another device), declined. */
function onLeft(f) {
  const room = state.rooms.get(f.roomId);
  state.rooms.delete(f.roomId);
  state.changes.delete(f.roomId);
  if (state.openRoomId === f.roomId) closeRoom();
  emit('rooms');
  if (!room) return;
  const name = room.isGroup ? room.name : `the chat with ${room.name}`;
  if (f.reason === 'removed') toast(`${f.by ? displayName(f.by) : 'An admin'} removed you from ${name}.`, 0);
  else if (f.reason === 'left') toast(`You left ${name}.`);
  else if (!f.reason) toast(`You are no longer in ${name}.`, 0);
}

/** Sending a message (a room event too) moves the sender's markers past it, with no
 * `receipt` frame: their ticks follow from the message. */
function senderHasRead(room, m) {
  const sender = room.members?.find((x) => x.userId === m.senderId);
  if (!sender || sender.readSeq >= m.seq) return;
  sender.readSeq = m.seq;
  sender.deliveredSeq = Math.max(sender.deliveredSeq || 0, m.seq);
  if (room.id === state.openRoomId) chat.refreshTicks(room);
}

function onMessage(m, isNew) {
  const room = state.rooms.get(m.roomId);
  if (!room) return;
  const known = m.seq <= (room.lastSeq || 0);
  const how = putMessage(m);
  if (how === null) return; // an older copy than the one held
  const fromOther = m.senderId !== me().id;
  if (isNew) senderHasRead(room, m);
  if (isNew && fromOther && !known && how !== 'update') {
    const away = room.id !== state.openRoomId || document.hidden;
    // A thread reply counts in its thread (an unread dot on its root), not the room.
    if (away && inTimeline(m)) room.unreadCount = (room.unreadCount || 0) + 1;
    if (away && mentionsMe(m)) room.mentionCount = (room.mentionCount || 0) + 1;
    if (m.type !== 'event') notify.notifyMessage(room, m);
    room.typing.delete(m.senderId);
  }
  if (room.id === state.openRoomId && how !== 'unloaded') chat.showMessage(room, m, how);
  if (room.id === state.openRoomId) chat.renderHead();
  emit('message', m);
  if (isNew) { sendDelivered(room); markRead(); }
  emit('rooms');
}

const typingTimers = new Map();
function onTyping(f) {
  const room = state.rooms.get(f.roomId);
  if (!room || f.userId === me().id) return;
  const key = `${f.roomId}/${f.userId}`;
  clearTimeout(typingTimers.get(key));
  if (f.active) {
    room.typing.set(f.userId, true);
    // Nothing but active:false ends it; expire it ourselves in case that never comes.
    typingTimers.set(key, setTimeout(() => { room.typing.delete(f.userId); if (room.id === state.openRoomId) chat.renderHead(); }, 6000));
  } else {
    room.typing.delete(f.userId);
  }
  if (room.id === state.openRoomId) chat.renderHead();
}

// ---- receipts

function sendDelivered(room) {
  if (isInvited(room)) return; // no receipts before accepting
  if (state.connection !== 'live' || !room.lastSeq || room.lastSeq <= (room.sentDelivered || 0)) return;
  if (live.post({ type: 'receipt', roomId: room.id, seq: room.lastSeq, status: 'delivered' })) room.sentDelivered = room.lastSeq;
}

/** The open room's messages count as read while the page is visible. */
function markRead() {
  const room = state.rooms.get(state.openRoomId);
  if (!room || document.hidden || !room.loaded) return;
  room.unreadCount = 0;
  room.mentionCount = 0;
  emit('rooms');
  if (isInvited(room)) return; // no receipts before accepting
  if (state.connection !== 'live' || !room.lastSeq || room.lastSeq <= (room.sentRead || 0)) return;
  if (live.post({ type: 'receipt', roomId: room.id, seq: room.lastSeq, status: 'read' })) {
    room.sentRead = room.lastSeq;
    room.sentDelivered = Math.max(room.sentDelivered || 0, room.lastSeq);
  }
}

// ---- sending

const inFlight = new Set();
const RETRYABLE = new Set(['disconnected', 'message_delivery_failed', 'unavailable', 'rate_limited']);

/** Sends every outbox item not already on its way; each keeps its clientMsgId forever. */
function flushOutbox() {
  if (state.connection !== 'live') return;
  for (const item of outbox()) {
    if (inFlight.has(item.clientMsgId) || item.error) continue;
    inFlight.add(item.clientMsgId);
    const {
      clientMsgId, roomId, content, type, mediaId, replyToId, threadRootId, alsoInRoom,
    } = item;
    live.request({ type: 'send', message: { roomId, clientMsgId, content, type, mediaId, replyToId, threadRootId, alsoInRoom } })
      .then((ack) => {
        dequeue(clientMsgId);
        onMessage(ack.message, false);
        const room = state.rooms.get(roomId);
        if (room) { room.sentRead = Math.max(room.sentRead || 0, ack.message.seq); room.sentDelivered = Math.max(room.sentDelivered || 0, ack.message.seq); }
      })
      .catch((err) => {
        if (!RETRYABLE.has(err.code)) { markFailed(clientMsgId, err.message || err.code); chat.renderPending(); }
        else if (err.code !== 'disconnected') setTimeout(flushOutbox, 2000);
      })
      .finally(() => inFlight.delete(clientMsgId));
  }
}

function queueSend(roomId, fields) {
  enqueue({ clientMsgId: newClientMsgId(), roomId, content: '', type: 'text', createdAt: new Date().toISOString(), ...fields });
  flushOutbox();
}

async function submitComposer(e) {
  e?.preventDefault();
  const t = $('#text');
  const content = t.value;
  const roomId = state.openRoomId;
  if (!roomId) return;
  stopTyping();
  if (state.editing) {
    if (!content.trim()) return;
    try { await chat.saveEdit(content); } catch (ex) { alert(`Could not edit: ${ex.message}`); }
    return;
  }
  if (!content.trim()) return;
  t.value = '';
  autoGrow();
  const replyToId = state.replyTo?.roomId === roomId ? state.replyTo.id : undefined;
  chat.cancelReply();
  queueSend(roomId, { content, replyToId });
}

function sendFiles(files) {
  const roomId = state.openRoomId;
  if (!roomId) return;
  for (const file of files) {
    const id = newClientMsgId();
    const attempt = async () => {
      chat.setUpload(id, { roomId, name: file.name || 'pasted file', progress: 0, error: null, retry: attempt });
      try {
        const media = await API.upload(file, (p) => chat.setUpload(id, { progress: p }));
        chat.setUpload(id, null);
        queueSend(roomId, { type: media.type, mediaId: media.id, media });
      } catch (ex) {
        chat.setUpload(id, { error: ex.code === 'payload_too_large' ? 'file too large' : ex.message });
      }
    };
    attempt();
  }
}

// ---- typing indicator

let typingSentAt = 0;
let typingIdle = null;
function onInput() {
  autoGrow();
  if (!state.openRoomId || state.editing || isInvited(state.rooms.get(state.openRoomId))) return;
  if (Date.now() - typingSentAt > 3000) {
    typingSentAt = Date.now();
    live?.post({ type: 'typing', roomId: state.openRoomId, active: true });
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, 4000);
}
function stopTyping() {
  clearTimeout(typingIdle);
  if (typingSentAt && state.openRoomId) live?.post({ type: 'typing', roomId: state.openRoomId, active: false });
  typingSentAt = 0;
}

function autoGrow() {
  const t = $('#text');
  t.style.height = 'auto';
  t.style.height = `${Math.min(160, t.scrollHeight)}px`;
}

// ---- wiring

function openRoom(id) {
  stopTyping();
  chat.openRoom(id);
  history.replaceState(null, '', `#room=${id}`);
}

/** Shows a message in its conversation (from a quote, a pin or a search result). */
async function jumpTo(roomId, id) {
  if (state.openRoomId !== roomId) {
    stopTyping();
    history.replaceState(null, '', `#room=${roomId}`);
  }
  const found = await chat.jumpTo(roomId, id);
  if (!found) toast('That message is no longer there.');
}

function closeRoom() {
  closePanel('thread');
  closePanel('pins');
  chat.closeRoom();
  history.replaceState(null, '', location.pathname);
}

// ---- requests and invitations

/** Runs an answer to the open room's request; an error shows in the request bar. */
function answer(fn) {
  return async () => {
    const room = state.rooms.get(state.openRoomId);
    if (!room) return;
    try { await fn(room); } catch (e) { $('#request-text').textContent = e.message; }
  };
}

const acceptRequest = answer(async (room) => {
  putRoom(await api('POST', `/rooms/${room.id}/accept`), { keepActivity: true });
  fetchPresence(room);
  chat.renderRequest();
  chat.renderHead();
  emit('rooms');
  sendDelivered(room);
  markRead();
});

const declineRequest = answer(async (room) => {
  await api('POST', `/rooms/${room.id}/decline`);
  state.rooms.delete(room.id);
  closeRoom();
  emit('rooms');
});

// Blocking the inviter declines the request too (the server does it, and says room.left).
const blockInviter = answer(async (room) => {
  if (!confirm(`Block ${displayName(room.invitedBy)}? They will not be able to message you or add you to groups.`)) return;
  await api('PUT', `/users/me/blocks/${room.invitedBy}`);
  state.rooms.delete(room.id);
  closeRoom();
  emit('rooms');
});

function wire() {
  $('#tab-login').addEventListener('click', () => setMode(false));
  initSecondFactor();
  $('#tab-register').addEventListener('click', () => setMode(true));
  $('#auth-form').addEventListener('submit', submitAuth);
  $('#new-chat').addEventListener('click', () => dialogs.newChat(openRoom));
  $('#new-group').addEventListener('click', () => dialogs.newGroup(openRoom));
  $('#room-info').addEventListener('click', () => dialogs.roomInfo(state.openRoomId, closeRoom));
  $('#me-button').addEventListener('click', () => dialogs.settings());
  $('#back').addEventListener('click', () => history.replaceState(null, '', location.pathname));
  $('#composer').addEventListener('submit', submitComposer);
  $('#request-accept').addEventListener('click', acceptRequest);
  $('#request-decline').addEventListener('click', declineRequest);
  $('#request-block').addEventListener('click', blockInviter);
  $('#cancel-edit').addEventListener('click', chat.cancelEdit);
  $('#cancel-reply').addEventListener('click', chat.cancelReply);
  $('#search-open').addEventListener('click', () => openSearch(null));
  $('#room-search').addEventListener('click', () => openSearch(state.openRoomId));
  $('#pins-open').addEventListener('click', () => showPins(state.openRoomId));
  const text = $('#text');
  // First: while its list is open, the mention autocomplete takes Enter and the arrows.
  attachMentions(text, () => state.rooms.get(state.openRoomId));
  text.addEventListener('input', onInput);
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitComposer(); }
    if (e.key === 'Escape' && state.editing) chat.cancelEdit();
    if (e.key === 'Escape' && state.replyTo) chat.cancelReply();
  });
  text.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) { e.preventDefault(); sendFiles(files); }
  });
  $('#attach-btn').addEventListener('click', () => $('#attach').click());
  $('#attach').addEventListener('change', (e) => { sendFiles([...e.target.files]); e.target.value = ''; });
  const pane = $('#chat');
  let depth = 0;
  pane.addEventListener('dragenter', (e) => { if (state.openRoomId && e.dataTransfer?.types.includes('Files')) { depth++; $('#drop-hint').hidden = false; } });
  pane.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; $('#drop-hint').hidden = true; } });
  pane.addEventListener('dragover', (e) => { if (state.openRoomId) e.preventDefault(); });
  pane.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    $('#drop-hint').hidden = true;
    sendFiles([...(e.dataTransfer?.files || [])]);
  });
  document.addEventListener('visibilitychange', () => {
    markRead();
    if (live?.state === 'live') live.post({ type: 'presence', status: document.hidden ? 'away' : 'online' });
  });
  navigator.serviceWorker?.addEventListener('message', (e) => {
    if (e.data?.type === 'open-room' && state.rooms.has(e.data.roomId)) openRoom(e.data.roomId);
  });
  on('rooms', () => renderRooms(openRoom));
  on('presence', () => { renderRooms(openRoom); chat.renderHead(); });
  on('presence-needed', fetchPresence);
  on('outbox', (roomId) => roomId === state.openRoomId && chat.renderPending());
  on('seen', markRead);
  on('me', renderMe);
  on('avatars', () => { chat.renderHead(); chat.refreshAvatars(); });
  on('users', () => { renderRooms(openRoom); chat.redrawAll(); });
  on('thread-seen', ({ roomId, rootId }) => {
    const room = state.rooms.get(roomId);
    if (room && roomId === state.openRoomId) chat.redraw(room, rootId);
  });
  API.onSessionEnd(showAuth);
  chat.initChat();
  wireConversations();
}

/** What a message's actions do (message.js draws them). */
function wireConversations() {
  Object.assign(actions, {
    reply: chat.startReply,
    // From an action button the second argument is the button; from a jump, a reply's id.
    thread: (m, flash) => openThread(m, typeof flash === 'string' ? flash : undefined),
    react: openPicker,
    forward: forwardDialog,
    pin: togglePin,
    edit: chat.startEdit,
    remove: chat.removeMessage,
    jump: jumpTo,
  });
  onReacted(chat.applyAnswer);
  initUsers();
  initPanel();
  initThreads(queueSend);
  initPins(chat.applyAnswer, jumpTo);
  initSearch(jumpTo);
}

wire();
setMode(false);
initSso();
const startMain = () => showMain().catch((e) => { if (!API.hasSession()) showAuth(); else { $('#conn').textContent = `Could not load: ${e.message}`; } });
if (ssoReturn()) {
  // Back from a provider: logging in, or linking it from Settings (same account, new session).
  showAuth();
  finishSso(showMain).then((done) => { if (!done && API.hasSession()) { toast($('#auth-error').textContent); startMain(); } });
} else if (API.hasSession()) {
  startMain();
} else {
  showAuth();
}
