// Client state: rooms, their loaded messages, presence, and the outbox. Views subscribe
// to changes with on(); nothing here touches the DOM.

import { me } from './api.js';

export const state = {
  rooms: new Map(), // id → room (+ msgs, byId, hasMore, summary, typing)
  presence: new Map(), // userId → {status, lastSeen}
  users: new Map(), // userId → {displayName, username, avatarUrl}
  openRoomId: null,
  connection: 'offline',
};

const handlers = new Map();
export function on(topic, fn) {
  if (!handlers.has(topic)) handlers.set(topic, new Set());
  handlers.get(topic).add(fn);
}
export function emit(topic, detail) {
  for (const fn of handlers.get(topic) || []) fn(detail);
}

/** Adds or refreshes a room from a REST Room or a room.updated frame. */
export function putRoom(r, { keepActivity = false } = {}) {
  const old = state.rooms.get(r.id);
  const room = old || { msgs: [], byId: new Map(), hasMore: true, loaded: false, typing: new Map(), unreadCount: 0, lastMessage: null, summary: { deliveredSeq: 0, readSeq: 0 } };
  const { lastMessage, unreadCount, lastSeq, ...rest } = r;
  Object.assign(room, rest);
  // room.updated carries lastMessage null and unreadCount 0: keep what we know.
  if (!keepActivity) { room.lastMessage = lastMessage ?? room.lastMessage; room.unreadCount = unreadCount ?? 0; }
  room.lastSeq = Math.max(room.lastSeq || 0, lastSeq || 0);
  for (const m of r.members || []) state.users.set(m.userId, { displayName: m.displayName, username: m.username, avatarUrl: m.avatarUrl });
  // Absent means none: a removed picture must not linger from an older copy.
  room.pictureUrl = r.pictureUrl;
  // Avatars are not announced when they change; any room's members carry the newest we
  // know, and a 1:1 room shows its peer's.
  const peers = new Map();
  for (const other of state.rooms.values()) {
    const p = !other.isGroup && other !== room ? peer(other) : null;
    if (p) peers.set(p.userId, { other, p });
  }
  for (const m of r.members || []) {
    const known = peers.get(m.userId);
    if (known) { known.p.avatarUrl = m.avatarUrl; known.other.pictureUrl = m.avatarUrl; }
  }
  if (r.members?.length) {
    // As the server counts: the joined members, or everyone while fewer than two joined.
    const joined = r.members.filter((m) => (m.state || 'joined') === 'joined');
    const counted = joined.length >= 2 ? joined : r.members;
    room.summary = {
      deliveredSeq: Math.min(...counted.map((m) => m.deliveredSeq)),
      readSeq: Math.min(...counted.map((m) => m.readSeq)),
    };
  }
  state.rooms.set(r.id, room);
  return room;
}

export function activity(room) {
  return room.lastMessage?.timestamp || room.createdAt || '';
}

export function sortedRooms() {
  return [...state.rooms.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
}

/** Whether the user has yet to answer this room: a request (1:1) or an invitation. */
export const isInvited = (room) => room?.state === 'invited';

/** The other person of a 1:1 room. */
export function peer(room) {
  if (!room || room.isGroup) return null;
  return room.members?.find((m) => m.userId !== me()?.id) || null;
}

export function displayName(userId) {
  if (userId === me()?.id) return 'You';
  return state.users.get(userId)?.displayName || 'Someone';
}

/**
 * Stores a message in its room. Returns 'append', 'insert', 'update' or null (already
 * held, unchanged) so the view knows how much to redraw.
 */
export function putMessage(m) {
  const room = state.rooms.get(m.roomId);
  if (!room) return null;
  if (!room.lastMessage || m.seq >= room.lastMessage.seq) room.lastMessage = m;
  room.lastSeq = Math.max(room.lastSeq || 0, m.seq);
  if (!room.loaded) return 'unloaded';
  const old = room.byId.get(m.id);
  if (old) {
    const i = room.msgs.indexOf(old);
    room.msgs[i] = m;
    room.byId.set(m.id, m);
    return 'update';
  }
  room.byId.set(m.id, m);
  const last = room.msgs[room.msgs.length - 1];
  if (!last || m.seq > last.seq) { room.msgs.push(m); return 'append'; }
  let i = room.msgs.findIndex((x) => x.seq > m.seq);
  room.msgs.splice(i < 0 ? room.msgs.length : i, 0, m);
  return 'insert';
}

/** The highest seq held per room: the cursors for `sync`. */
export function cursors() {
  const out = {};
  for (const [id, r] of state.rooms) out[id] = r.lastSeq || 0;
  return out;
}

// ---- Outbox: messages not yet acknowledged, kept across reloads and lost networks.

const outboxKey = () => `palaver.outbox.${me()?.id}`;
export function outbox() {
  try { return JSON.parse(localStorage.getItem(outboxKey())) || []; } catch { return []; }
}
function saveOutbox(items) { localStorage.setItem(outboxKey(), JSON.stringify(items)); }
export function enqueue(item) { saveOutbox([...outbox(), item]); emit('outbox', item.roomId); }
export function dequeue(clientMsgId) {
  const items = outbox();
  const gone = items.find((i) => i.clientMsgId === clientMsgId);
  saveOutbox(items.filter((i) => i.clientMsgId !== clientMsgId));
  if (gone) emit('outbox', gone.roomId);
}
export function markFailed(clientMsgId, error) {
  saveOutbox(outbox().map((i) => (i.clientMsgId === clientMsgId ? { ...i, error } : i)));
}
