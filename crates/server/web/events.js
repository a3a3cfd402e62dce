// Room events (messages of type `event`): what happened to a group, told as a sentence
// ("Alice added Bob") centred in the timeline. The names are the ones the event carries,
// as they were then, so an event stays readable after the people in it leave.

import { me } from './api.js';
import { h, time } from './util.js';

const ROLE = { owner: 'an owner', admin: 'an admin', member: 'a member' };

/** "Bob", "Bob and Carol", "Bob, Carol and Dave"; oneself is "you". */
function names(users) {
  const list = (users || []).map((u) => (u.id === me()?.id ? 'you' : u.displayName || 'someone'));
  if (list.length <= 1) return list[0] || 'someone';
  return `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`;
}

/** The sentence for a room event. */
export function eventText(m) {
  const e = m.event || {};
  const mine = m.senderId === me()?.id;
  const who = mine ? 'You' : e.senderName || 'Someone';
  switch (e.kind) {
    case 'created': return `${who} created the group${e.name ? ` “${e.name}”` : ''}${e.users?.length ? ` and added ${names(e.users)}` : ''}`;
    case 'renamed': return `${who} renamed the group to “${e.name || ''}”`;
    case 'members_added': return `${who} added ${names(e.users)}`;
    case 'joined': return `${who} joined`;
    case 'member_removed': return `${who} removed ${names(e.users)}`;
    case 'member_left': return `${who} left`;
    case 'role_changed': return `${who} made ${names(e.users)} ${ROLE[e.role] || e.role || ''}`.trim();
    case 'picture_changed': return `${who} changed the group picture`;
    default: return `${who} changed the group`;
  }
}

/** The timeline row of a room event. */
export function eventNode(m) {
  return h('div', { class: 'event-row', role: 'note', dataset: { id: m.id, seq: m.seq } },
    h('span', { class: 'event' }, eventText(m), ' · ', h('time', { datetime: m.timestamp }, time(m.timestamp))));
}
