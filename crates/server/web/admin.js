// The administration panel, for server administrators only (GET /users/me says
// `isAdmin`): the open reports of messages, each resolved or dismissed, and the
// accounts, each disabled or enabled. Everything here is the admin API
// (/api/v1/admin/*, docs/PROTOCOL.md 5.8); the server audits it.

import { api } from './api.js';
import { h, $, time } from './util.js';
import { openPanel, panelKind, note } from './panel.js';

/** Shows the Administration button to administrators. */
export async function initAdmin() {
  const button = $('#admin-open');
  button.hidden = true;
  let me;
  try { me = await api('GET', '/users/me'); } catch { return; }
  if (!me.isAdmin) return;
  button.hidden = false;
  button.onclick = () => showAdmin('reports');
}

const tabs = (active) => h('div', { class: 'admin-tabs', role: 'tablist' },
  ...[['reports', 'Reports'], ['users', 'Users']].map(([kind, label]) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': String(kind === active), class: kind === active ? 'active' : '',
    onclick: () => showAdmin(kind),
  }, label)));

let loading = 0;

/** Opens (or refreshes) the panel on its reports or users tab. */
export async function showAdmin(tab) {
  const mine = ++loading;
  if (panelKind() !== 'admin') openPanel('admin', 'Administration', [tabs(tab), note('Loading…')]);
  try {
    const body = tab === 'users' ? await usersList() : await reportsList();
    if (mine !== loading || panelKind() !== 'admin') return;
    openPanel('admin', 'Administration', [tabs(tab), body]);
  } catch (e) {
    if (mine === loading) openPanel('admin', 'Administration', [tabs(tab), note(e.message, 'error')]);
  }
}

async function act(method, path, tab) {
  try {
    await api(method, path);
  } catch (e) {
    alert(`Could not do that: ${e.message}`);
  }
  showAdmin(tab);
}

async function reportsList() {
  const { reports } = await api('GET', '/admin/reports?status=open');
  if (!reports.length) return note('No open reports.');
  return h('ul', { class: 'admin-list', 'aria-label': 'Open reports' }, ...reports.map((r) => h('li', { class: 'admin-item report' },
    h('p', { class: 'admin-quote' }, r.message?.deleted ? 'This message was deleted' : r.message?.content || 'Attachment'),
    h('p', { class: 'admin-reason' }, `Reason: ${r.reason}`),
    h('p', { class: 'muted' }, h('time', { datetime: r.createdAt }, time(r.createdAt))),
    h('div', { class: 'admin-actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => act('POST', `/admin/reports/${r.id}/resolve`, 'reports') }, 'Resolve'),
      h('button', { type: 'button', onclick: () => act('POST', `/admin/reports/${r.id}/dismiss`, 'reports') }, 'Dismiss')))));
}

async function usersList() {
  const { users } = await api('GET', '/admin/users?limit=200');
  return h('ul', { class: 'admin-list', 'aria-label': 'Users' }, ...users.map((u) => h('li', { class: 'admin-item user' },
    h('p', {}, h('strong', {}, u.displayName), ` @${u.username}`,
      u.isAdmin ? h('span', { class: 'tag' }, 'admin') : '',
      u.disabled ? h('span', { class: 'tag' }, 'disabled') : ''),
    h('div', { class: 'admin-actions' },
      h('button', {
        type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}`,
        onclick: () => act('POST', `/admin/users/${u.id}/${u.disabled ? 'enable' : 'disable'}`, 'users'),
      }, u.disabled ? 'Enable' : 'Disable')))));
}
