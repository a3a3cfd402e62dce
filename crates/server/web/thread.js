// A thread in the side panel: its root, its replies (GET /messages/{id}/thread), and a
// composer whose replies may also go to the room. Replies arrive live as `message`
// frames with `threadRootId`; the root's count as message.updated. Opening a thread marks
// its replies seen (threadseen.js).

import { api } from './api.js';
import { state, on, emit, outbox, isStale } from './store.js';
import { h } from './util.js';
import { messageNode, ticks } from './message.js';
import { openPanel, closePanel, note } from './panel.js';
import { attachMentions } from './mentions.js';
import { markThreadSeen } from './threadseen.js';

const PAGE = 200;
let open = null; // { roomId, rootId, root, replies: Map, body, pending }
let send = () => {};

/** `queueSend(roomId, fields)` sends through the outbox (app.js). */
export function initThreads(queueSend) {
  send = queueSend;
  on('message', onMessage);
  on('outbox', (roomId) => open?.roomId === roomId && render());
  on('users', () => open && render());
  on('room-opened', (id) => { if (open && open.roomId !== id) closePanel('thread'); });
  document.addEventListener('visibilitychange', markSeen);
}

/** The thread shown now: its root's id, or null. */
export const openThreadId = () => open?.rootId || null;

function onMessage(m) {
  if (!open || m.roomId !== open.roomId) return;
  if (m.id === open.rootId) {
    if (isStale(m, open.root)) return;
    open.root = m;
  } else if (m.threadRootId === open.rootId) {
    if (isStale(m, open.replies.get(m.id))) return;
    open.replies.set(m.id, m);
  } else {
    return;
  }
  render();
  markSeen();
}

function markSeen() {
  if (!open || document.hidden || !open.root) return;
  const replies = [...open.replies.values()];
  const lastSeq = Math.max(0, ...replies.map((r) => r.seq));
  const last = open.root.thread?.lastReplyAt || replies.at(-1)?.timestamp;
  markThreadSeen(open.rootId, lastSeq, last);
  emit('thread-seen', { roomId: open.roomId, rootId: open.rootId });
}

function render(flashId) {
  if (!open) return;
  const room = state.rooms.get(open.roomId);
  if (!room) return closePanel('thread');
  const { body } = open;
  const stick = body.scrollHeight - body.scrollTop - body.clientHeight < 60;
  const replies = [...open.replies.values()].sort((a, b) => a.seq - b.seq);
  const pending = outbox().filter((i) => i.threadRootId === open.rootId).map((i) => h('div', { class: 'msg mine pending' },
    h('div', { class: 'msg-body' }, h('div', { class: 'bubble' }, h('div', { class: 'text' }, i.content),
      h('div', { class: 'meta' }, i.error ? h('span', { class: 'error' }, `Not sent: ${i.error}`) : null, ticks('pending'))))));
  const count = replies.length;
  body.replaceChildren(
    open.root ? h('div', { class: 'thread-root' }, messageNode(room, open.root, { inThread: true })) : note('Loading…'),
    h('div', { class: 'thread-divider', role: 'separator' }, h('span', {}, count ? `${count} ${count === 1 ? 'reply' : 'replies'}` : 'No replies yet')),
    ...replies.map((r) => messageNode(room, r, { inThread: true })),
    ...pending);
  if (flashId) {
    const el = body.querySelector(`[data-id="${CSS.escape(flashId)}"]`);
    if (el) { el.scrollIntoView({ block: 'center' }); el.classList.add('flash'); setTimeout(() => el.classList.remove('flash'), 2600); }
  } else if (stick || pending.length) {
    body.scrollTop = body.scrollHeight;
  }
}

/**
 * Opens the thread of root `ref` ({id, roomId}, or a held message); `flashId` is a reply
 * to scroll to and highlight.
 */
export async function openThread(ref, flashId) {
  const roomId = ref.roomId;
  const room = state.rooms.get(roomId);
  if (!room) return;
  const body = h('div', { class: 'thread-body' });
  const text = h('textarea', { id: 'thread-text', rows: 1, 'aria-label': 'Reply in thread', placeholder: 'Reply…', maxlength: 16000 });
  const also = h('input', { type: 'checkbox', id: 'thread-also' });
  const submit = (e) => {
    e?.preventDefault();
    const content = text.value;
    if (!content.trim() || !open) return;
    send(roomId, { content, threadRootId: open.rootId, alsoInRoom: also.checked });
    text.value = '';
    also.checked = false;
  };
  const form = h('form', { class: 'thread-composer', onsubmit: submit },
    h('div', { class: 'composer-row' }, text, h('button', { type: 'submit', class: 'icon-btn send', 'aria-label': 'Send reply', title: 'Send (Enter)' }, '➤')),
    h('label', { class: 'check' }, also, room.isGroup ? 'Also send to the group' : 'Also send to the chat'));
  attachMentions(text, () => state.rooms.get(roomId));
  text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e); });
  const held = room.byId.get(ref.id);
  open = { roomId, rootId: ref.id, root: held || null, replies: new Map(), body };
  openPanel('thread', 'Thread', [body, form], { onClose: () => { open = null; } });
  render();
  text.focus();
  const mine = open;
  try {
    const root = held || (await api('GET', `/messages/${ref.id}`));
    if (open !== mine) return;
    if (!isStale(root, open.root)) open.root = root;
    let after = 0;
    for (;;) {
      const { messages } = await api('GET', `/messages/${ref.id}/thread?after=${after}&limit=${PAGE}`);
      if (open !== mine) return;
      for (const r of messages) if (!isStale(r, open.replies.get(r.id))) open.replies.set(r.id, r);
      if (messages.length < PAGE) break;
      after = messages.at(-1).seq;
    }
    render(flashId);
    markSeen();
  } catch (e) {
    if (open === mine) body.replaceChildren(note(`Could not load the thread: ${e.message}`, 'error'));
  }
}
