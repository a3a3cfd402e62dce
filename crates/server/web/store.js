// Client state: rooms, their loaded messages, presence, and the outbox. Views subscribe
// to changes with on(); nothing here touches the DOM.

import { me } from './api.js';

export const state = {
  rooms: new Map(), // id → room (+ msgs, byId, hasMore, summary, typing)
  presence: new Map(), // userId → {status, lastSeen}
  users: new Map(), // userId → {displayName, username, avatarUrl}
  changes: new Map(), // roomId → the change number of the last `synced` (sent with `sync`)
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
  const { lastMessage, unreadCount, mentionCount, lastSeq, ...rest } = r;
  // Markers only move forward: a room.updated read before a `receipt` frame that arrived
  // first must not take a member's marker back.
  const before = new Map((old?.members || []).map((m) => [m.userId, m]));
  for (const m of rest.members || []) {
    const was = before.get(m.userId);
    if (!was) continue;
    m.deliveredSeq = Math.max(m.deliveredSeq || 0, was.deliveredSeq || 0);
    m.readSeq = Math.max(m.readSeq || 0, was.readSeq || 0);
  }
  Object.assign(room, rest);
  // room.updated carries lastMessage null and the counts 0: keep what we know.
  if (!keepActivity) {
    room.lastMessage = lastMessage ?? room.lastMessage;
    room.unreadCount = unreadCount ?? 0;
    room.mentionCount = mentionCount ?? 0;
  }
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

/** A user's display name ('You' for oneself). An id no room lists (someone who left) is
 * looked up once (users.js answers 'user-unknown'); until then it reads 'Someone'. */
export function displayName(userId) {
  if (userId === me()?.id) return 'You';
  const known = state.users.get(userId);
  if (!known && userId) emit('user-unknown', userId);
  return known?.displayName || 'Someone';
}

/** Whether a message shows in its room's timeline: thread replies live in their thread,
 * unless also sent to the room. */
export const inTimeline = (m) => !m.threadRootId || !!m.alsoInRoom;

/** Whether a message mentions the user (by name, or @room). */
export const mentionsMe = (m) => !!m && m.senderId !== me()?.id && (m.mentionsRoom || (m.mentions || []).includes(me()?.id));

/** Of two copies of a message, whether `m` is older than `held` (its change number,
 * `version`, is smaller): a late frame must not undo a newer change. */
export const isStale = (m, held) => !!held && (m.version || 0) < (held.version || 0);

/**
 * Stores a message in its room. Returns 'append', 'insert', 'update', 'unloaded' (the
 * room's messages are not loaded) or null (an older copy than the one held: ignored) so
 * the view knows how much to redraw.
 */
export function putMessage(m) {
  const room = state.rooms.get(m.roomId);
  if (!room) return null;
  const last = room.lastMessage;
  if (last?.id === m.id ? !isStale(m, last) : inTimeline(m) && (!last || m.seq >= last.seq)) room.lastMessage = m;
  room.lastSeq = Math.max(room.lastSeq || 0, m.seq);
  if (!room.loaded) return 'unloaded';
  const old = room.byId.get(m.id);
  if (old) {
    if (isStale(m, old)) return null;
    const i = room.msgs.indexOf(old);
    room.msgs[i] = m;
    room.byId.set(m.id, m);
    return 'update';
  }
  room.byId.set(m.id, m);
  const newest = room.msgs[room.msgs.length - 1];
  if (!newest || m.seq > newest.seq) { room.msgs.push(m); return 'append'; }
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

/** The change number per room from the last `synced`: `sync` replays every change after
 * it (edits, deletions, reactions, pins, receipts, room changes). */
export function changes() {
  const out = {};
  for (const [id, n] of state.changes) if (state.rooms.has(id)) out[id] = n;
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
