// One message as the timeline or a thread shows it: sender, "Forwarded", the quote it
// replies to, media, formatted text with mentions, a link preview, reactions, the
// thread summary of a root, receipts ticks, and its actions. Room events are a centred
// sentence instead (events.js).

import { me } from './api.js';
import { state, displayName, mentionsMe } from './store.js';
import { h, time } from './util.js';
import { avatar } from './avatar.js';
import { renderText, plainText } from './format.js';
import { mediaNode } from './media.js';
import { eventNode } from './events.js';
import { reactionChips } from './reactions.js';
import { highlightMentions } from './mentions.js';
import { linkPreviewCard } from './linkpreview.js';
import { threadUnread } from './threadseen.js';

/**
 * What the actions do, filled in by the modules that own them (app.js wires them):
 * reply(m), thread(m), react(m, button), forward(m), pin(m), edit(m), remove(m),
 * jump(roomId, messageId).
 */
export const actions = {};

export function statusOf(room, m) {
  if (m.seq <= room.summary.readSeq) return 'read';
  if (m.seq <= room.summary.deliveredSeq) return 'delivered';
  return 'sent';
}

const TICKS = { pending: '◷', sent: '✓', delivered: '✓✓', read: '✓✓' };
const TICK_LABEL = { pending: 'Waiting to send', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

export function ticks(status, detail) {
  const label = detail ? `${TICK_LABEL[status]}. ${detail}` : TICK_LABEL[status];
  return h('span', { class: `ticks ${status}`, role: 'img', 'aria-label': label, title: label, 'data-detail': detail || '' }, TICKS[status]);
}

/** In a group, who has read and who has received one of my messages (hover, or click). */
export function receiptDetail(room, m) {
  if (!room.isGroup) return '';
  const others = (room.members || []).filter((x) => x.userId !== me().id);
  const read = others.filter((x) => (x.readSeq || 0) >= m.seq).map((x) => x.displayName);
  const got = others.filter((x) => (x.readSeq || 0) < m.seq && (x.deliveredSeq || 0) >= m.seq).map((x) => x.displayName);
  const parts = [];
  if (read.length) parts.push(`Read by ${read.join(', ')}`);
  if (got.length) parts.push(`Delivered to ${got.join(', ')}`);
  return parts.join(' · ') || 'Not delivered yet';
}

/** Who may pin in a room: a group's owners and admins, both people of a 1:1 room. */
export function canPin(room) {
  if (!room || room.state === 'invited') return false;
  if (!room.isGroup) return true;
  const role = room.members?.find((x) => x.userId === me().id)?.role;
  return role === 'owner' || role === 'admin';
}

/** The quote of the message `m` replies to; a click jumps to it. */
function quoteNode(m) {
  const r = m.replyTo;
  const who = displayName(r.senderId);
  return h('button', {
    type: 'button', class: 'quote', 'aria-label': `Reply to ${who}: go to the original message`,
    onclick: () => actions.jump?.(m.roomId, r.id),
  },
  h('span', { class: 'quote-sender' }, who),
  h('span', { class: `quote-text${r.deleted ? ' deleted' : ''}` }, r.deleted ? 'This message was deleted' : plainText(r.preview) || 'Attachment'));
}

/** On a thread's root: the reply count, the participants, the last reply's time. */
function threadNode(room, m) {
  const t = m.thread;
  const replies = room.msgs.filter((x) => x.threadRootId === m.id);
  const unread = threadUnread(m, replies);
  const faces = (t.participantIds || []).slice(0, 3).map((id) => {
    const u = state.users.get(id);
    return avatar({ name: u?.displayName || displayName(id), url: u?.avatarUrl, id, size: 'tiny' });
  });
  const count = `${t.replyCount} ${t.replyCount === 1 ? 'reply' : 'replies'}`;
  return h('button', {
    type: 'button', class: `thread-summary${unread ? ' unread' : ''}`, onclick: () => actions.thread?.(m),
    'aria-label': `${count}${unread ? ', unread' : ''}, last at ${time(t.lastReplyAt)}: open the thread`,
  },
  h('span', { class: 'faces', 'aria-hidden': 'true' }, ...faces),
  h('span', { class: 'thread-count' }, count),
  h('span', { class: 'thread-last' }, `Last reply ${time(t.lastReplyAt)}`),
  unread ? h('span', { class: 'unread-dot', title: 'New replies' }) : null);
}

function actionBar(room, m, inThread) {
  const mine = m.senderId === me().id;
  const act = (label, icon, fn, extra = {}) => h('button', {
    type: 'button', class: 'act', 'aria-label': label, title: label, onclick: (e) => fn?.(m, e.currentTarget), ...extra,
  }, icon);
  const invited = room.state === 'invited';
  return h('div', { class: 'msg-actions' },
    invited || inThread ? null : act('Reply', '↩', actions.reply),
    invited ? null : act('React', '☺', actions.react),
    invited || inThread || m.threadRootId ? null : act('Reply in thread', '💬', actions.thread),
    act('Forward', '↪', actions.forward),
    canPin(room) ? act(m.pinned ? 'Unpin' : 'Pin', '📌', actions.pin, { 'aria-pressed': String(!!m.pinned) }) : null,
    mine && m.type === 'text' ? act('Edit message', '✎', actions.edit) : null,
    mine ? act('Delete message', '🗑', actions.remove) : null);
}

/** The sender's avatar beside their message, kept current by chat.refreshAvatars. */
export function senderAvatar(userId) {
  const u = state.users.get(userId);
  const el = avatar({ name: u?.displayName || displayName(userId), url: u?.avatarUrl, id: userId, size: 'small' });
  el.classList.add('msg-avatar');
  el.dataset.userId = userId;
  return el;
}

/**
 * A message's element. `inThread`: shown in the thread panel (no thread actions or
 * summary there).
 */
export function messageNode(room, m, { inThread = false } = {}) {
  if (m.type === 'event') return eventNode(m);
  const mine = m.senderId === me().id;
  const bubble = h('div', { class: 'bubble' });
  if (room.isGroup && !mine) bubble.append(h('div', { class: 'sender' }, displayName(m.senderId)));
  if (m.forwarded && !m.deleted) bubble.append(h('div', { class: 'forwarded' }, '↪ Forwarded'));
  if (m.replyTo && !m.deleted) bubble.append(quoteNode(m));
  if (m.deleted) {
    bubble.append(h('div', { class: 'text deleted' }, 'This message was deleted'));
  } else {
    const media = mediaNode(m);
    if (media) bubble.append(media);
    // Formatted for reading; the raw text is what is stored and edited.
    if (m.content) bubble.append(h('div', { class: 'text' }, ...highlightMentions(renderText(m.content), m)));
    const card = linkPreviewCard(m);
    if (card) bubble.append(card);
  }
  bubble.append(h('div', { class: 'meta' },
    m.pinned && !m.deleted ? h('span', { class: 'pinned', title: 'Pinned', 'aria-label': 'Pinned' }, '📌') : null,
    m.threadRootId && m.alsoInRoom && !inThread ? h('button', { type: 'button', class: 'link in-thread', onclick: () => actions.thread?.({ id: m.threadRootId, roomId: m.roomId }) }, 'in thread') : null,
    m.editedAt && !m.deleted ? h('span', { class: 'edited' }, 'edited') : null,
    h('time', { datetime: m.timestamp }, time(m.timestamp)),
    mine && !m.deleted ? ticks(statusOf(room, m), receiptDetail(room, m)) : null));
  const body = h('div', { class: 'msg-body' }, bubble, reactionChips(m),
    !inThread && m.thread?.replyCount ? threadNode(room, m) : null);
  const cls = `msg ${mine ? 'mine' : 'theirs'}${mentionsMe(m) && !m.deleted ? ' mentioned' : ''}`;
  const el = h('div', { class: cls, dataset: { id: m.id, seq: m.seq } }, body);
  if (!mine) el.prepend(senderAvatar(m.senderId));
  if (!m.deleted) el.append(actionBar(room, m, inThread));
  return el;
}
