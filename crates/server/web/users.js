// Names of people no room lists any more (they left, or were removed): their messages and
// receipts still carry their ids. Each unknown id is looked up once with
// GET /users/{id} and kept in state.users; 'users' tells the views to redraw.

import { api } from './api.js';
import { state, on, emit } from './store.js';

const asked = new Set();
let redraw = null;

async function lookUp(id) {
  if (asked.has(id) || state.users.has(id)) return;
  asked.add(id);
  try {
    const u = await api('GET', `/users/${encodeURIComponent(id)}`);
    state.users.set(id, { displayName: u.displayName, username: u.username, avatarUrl: u.avatarUrl });
  } catch {
    // Gone for good (or not visible): stays 'Someone', and is not asked again.
    return;
  }
  // Many ids arrive together (a page of history): one redraw for them all.
  clearTimeout(redraw);
  redraw = setTimeout(() => emit('users'), 50);
}

/** Starts answering 'user-unknown' (emitted by store.displayName). */
export function initUsers() {
  on('user-unknown', lookUp);
}
