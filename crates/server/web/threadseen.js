// What the user has seen of each thread, kept in localStorage per user: the seq and time
// of the newest reply seen. A thread's root shows an unread dot while a newer reply from
// someone else exists, for the threads the user is in (started, replied to, or opened).

import { me } from './api.js';

const key = () => `palaver.threads.${me()?.id}`;
let cache = null;

function all() {
  if (!cache) {
    try { cache = JSON.parse(localStorage.getItem(key())) || {}; } catch { cache = {}; }
  }
  return cache;
}

/** Forgets the cached copy (another user logged in). */
export function resetThreadsSeen() { cache = null; }

/** Records that replies up to `seq` (posted up to `at`) of the thread were seen. */
export function markThreadSeen(rootId, seq, at) {
  const seen = all();
  const old = seen[rootId] || { seq: 0, at: 0 };
  const next = { seq: Math.max(old.seq, seq || 0), at: Math.max(old.at, at ? Date.parse(at) : 0) };
  if (next.seq === old.seq && next.at === old.at && seen[rootId]) return;
  seen[rootId] = next;
  // Bounded: the 500 most recently seen threads are enough to tell what is new.
  const ids = Object.keys(seen);
  if (ids.length > 500) for (const id of ids.sort((a, b) => seen[a].at - seen[b].at).slice(0, ids.length - 500)) delete seen[id];
  try { localStorage.setItem(key(), JSON.stringify(seen)); } catch { /* full: kept in memory */ }
}

/** Whether the thread on root `m` has replies the user has not seen. */
export function threadUnread(m, replies = []) {
  const t = m.thread;
  if (!t || !t.replyCount) return false;
  const myId = me()?.id;
  const seen = all()[m.id];
  const involved = seen || m.senderId === myId || (t.participantIds || []).includes(myId);
  if (!involved) return false;
  if (!seen) return true;
  // Replies we hold tell by seq; the summary tells by time for replies we do not hold.
  if (replies.some((r) => r.seq > seen.seq && r.senderId !== myId)) return true;
  const lastAt = Date.parse(t.lastReplyAt);
  const lastMine = replies.length && replies.at(-1).senderId === myId && Date.parse(replies.at(-1).timestamp) >= lastAt;
  return lastAt > seen.at && !lastMine;
}
