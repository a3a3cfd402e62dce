// One's own data and account, in Settings: download everything of mine (the export
// archive, GET /users/me/export) and delete my account (POST /users/me/delete, confirmed
// with the password). docs/PROTOCOL.md, "Export and account deletion".

import { api, freshToken, token, logout } from './api.js';
import { h } from './util.js';

/** Fetches the export with the session's token and saves it as a file. */
async function download(status) {
  status.textContent = 'Preparing your data…';
  await freshToken();
  const res = await fetch('/api/v1/users/me/export', { headers: { Authorization: `Bearer ${token()}` } });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new Error(data?.error?.message || `the export failed (${res.status})`);
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: 'palaver-export.tar.gz', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  status.textContent = `Downloaded (${Math.ceil(blob.size / 1024)} KiB).`;
}

/** The "Your data" section of Settings. */
export function accountSection() {
  const status = h('p', { class: 'muted', role: 'status', id: 'account-status' });
  const password = h('input', {
    type: 'password', id: 'delete-password', autocomplete: 'current-password',
    'aria-label': 'Password, to confirm', placeholder: 'Password, to confirm', required: true,
  });
  const exportButton = h('button', {
    type: 'button', id: 'export-data',
    onclick: async () => {
      exportButton.disabled = true;
      try { await download(status); } catch (e) { status.textContent = e.message; } finally { exportButton.disabled = false; }
    },
  }, 'Download my data');
  const form = h('form', {
    class: 'stack', id: 'delete-account',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!window.confirm('Delete your account? You are logged out everywhere, and this cannot be undone.')) return;
      try {
        await api('POST', '/users/me/delete', { password: password.value });
        await logout();
      } catch (err) { status.textContent = err.message; }
    },
  }, password, h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));
  return h('section', { class: 'stack', 'aria-label': 'Your data' },
    h('h3', {}, 'Your data'),
    h('p', { class: 'muted' }, 'Everything of yours (profile, rooms, messages, reactions, files) as one archive.'),
    exportButton, form, status);
}
