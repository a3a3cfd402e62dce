// Moderation in a group's details, for its owner and admins (docs/PROTOCOL.md, 5.9):
// mute a member for an hour (they still read, but cannot send), ban one (removed, and not
// added back until unbanned), and the group's bans, each with Unban.

import { api } from './api.js';
import { h } from './util.js';

/** Mute, Unmute and Ban beside a member the caller outranks; `done(text)` reports, and
 * `done(null)` redraws after a ban. */
export function memberActions(room, m, act, done) {
  const mute = `/rooms/${room.id}/members/${m.userId}/mute`;
  return [
    h('button', {
      type: 'button', class: 'link', 'aria-label': `Mute ${m.displayName} for an hour`,
      onclick: act(async () => { await api('PUT', mute, { durationSecs: 3600 }); done(`${m.displayName} cannot send for an hour.`); }),
    }, 'Mute'),
    h('button', {
      type: 'button', class: 'link', 'aria-label': `Unmute ${m.displayName}`,
      onclick: act(async () => { await api('DELETE', mute); done(`${m.displayName} can send again.`); }),
    }, 'Unmute'),
    h('button', {
      type: 'button', class: 'link danger', 'aria-label': `Ban ${m.displayName}`,
      onclick: act(async () => { await api('PUT', `/rooms/${room.id}/bans/${m.userId}`); done(null); }),
    }, 'Ban'),
  ];
}

/** The group's bans with Unban each, or nothing when there are none. */
export async function bansSection(room, act, redraw) {
  const { bans } = await api('GET', `/rooms/${room.id}/bans`);
  if (!bans.length) return [];
  const items = await Promise.all(bans.map(async (b) => {
    let name = 'Someone';
    try { name = (await api('GET', `/users/${b.userId}`)).displayName; } catch { /* gone */ }
    return h('li', {},
      h('span', { class: 'grow' }, name),
      h('button', {
        type: 'button', class: 'link', 'aria-label': `Unban ${name}`,
        onclick: act(async () => { await api('DELETE', `/rooms/${room.id}/bans/${b.userId}`); redraw(); }),
      }, 'Unban'));
  }));
  return [h('h3', {}, 'Banned'), h('ul', { class: 'member-list', id: 'bans' }, ...items)];
}
