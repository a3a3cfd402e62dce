// Two-factor login: the code asked for after the password, and turning it on (a QR code
// for an authenticator app, confirmed with a first code, then the recovery codes, shown
// once) and off (with the password or a code) in Settings.

import * as API from './api.js';
import { api } from './api.js';
import { h, $ } from './util.js';

const ERRORS = {
  invalid_second_factor: 'That code is not right, or was used already. Try the next one.',
  rate_limited: 'Too many attempts. Wait a while and try again.',
};

let pending = null;

/**
 * The login screen's second step: shows the code form for `challenge`; `done` is called
 * once logged in. Expired challenges send the person back to the password.
 */
export function askCode(challenge, done) {
  pending = { challenge, done };
  $('#auth-form').hidden = true;
  $('#second-factor-form').hidden = false;
  $('#second-factor-error').textContent = '';
  $('#second-factor-code').value = '';
  $('#second-factor-code').focus();
}

function back() {
  pending = null;
  $('#second-factor-form').hidden = true;
  $('#auth-form').hidden = false;
}

async function submitCode(e) {
  e.preventDefault();
  if (!pending) return back();
  const code = $('#second-factor-code').value.trim();
  const err = $('#second-factor-error');
  if (!code) { err.textContent = 'Enter the 6-digit code from your app, or a recovery code.'; return; }
  $('#second-factor-submit').disabled = true;
  try {
    await API.loginSecondFactor(pending.challenge.challenge, code);
    const { done } = pending;
    back();
    await done();
  } catch (ex) {
    if (ex.code === 'invalid_second_factor' && Date.parse(pending.challenge.expiresAt) < Date.now()) {
      back();
      $('#auth-error').textContent = 'That took too long. Log in again.';
    } else {
      err.textContent = ERRORS[ex.code] || ex.message || 'Something went wrong.';
    }
  } finally {
    $('#second-factor-submit').disabled = false;
  }
}

/** Wires the login screen's code form. */
export function initSecondFactor() {
  $('#second-factor-form').addEventListener('submit', submitCode);
  $('#second-factor-back').addEventListener('click', back);
}

/** The Settings section: status, and turning two-factor login on or off. */
export async function secondFactorSection() {
  const section = h('section', { class: 'stack', id: 'two-factor', 'aria-labelledby': 'two-factor-title' });
  const error = h('p', { class: 'error', role: 'alert' });
  const title = h('h3', { id: 'two-factor-title' }, 'Two-factor login');

  const draw = async () => {
    let status;
    try { status = await api('GET', '/auth/totp'); } catch (e) { error.textContent = e.message; return; }
    if (status.enabled) {
      section.replaceChildren(title,
        h('p', {}, `On. ${status.recoveryCodesLeft} recovery code${status.recoveryCodesLeft === 1 ? '' : 's'} left.`),
        h('button', { type: 'button', id: 'two-factor-off', onclick: turnOff }, 'Turn off two-factor login'),
        error);
    } else {
      section.replaceChildren(title,
        h('p', { class: 'muted' }, 'Ask for a code from an authenticator app at each login.'),
        h('button', { type: 'button', id: 'two-factor-on', onclick: turnOn }, 'Turn on two-factor login'),
        error);
    }
  };

  const turnOn = async () => {
    error.textContent = '';
    let enrolment;
    try { enrolment = await api('POST', '/auth/totp/enrol'); } catch (e) { error.textContent = e.message; return; }
    const code = h('input', {
      id: 'two-factor-code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6,
      pattern: '[0-9]{6}', 'aria-label': 'Code from the app', placeholder: '123456',
    });
    section.replaceChildren(title,
      h('p', {}, 'Scan this with an authenticator app, or type the key into it:'),
      h('img', { src: enrolment.qrPng, alt: 'QR code of the authenticator key', width: 200, height: 200, id: 'two-factor-qr' }),
      h('p', {}, h('code', { id: 'two-factor-secret' }, enrolment.secret)),
      h('a', { href: enrolment.otpauthUri, id: 'two-factor-uri' }, 'Open in an authenticator app on this device'),
      h('form', {
        class: 'row',
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const { recoveryCodes } = await api('POST', '/auth/totp/confirm', { code: code.value.trim() });
            showRecovery(recoveryCodes);
          } catch (ex) { error.textContent = ERRORS[ex.code] || ex.message; }
        },
      }, code, h('button', { type: 'submit', id: 'two-factor-confirm' }, 'Confirm')),
      h('button', { type: 'button', class: 'link', onclick: async () => { await api('DELETE', '/auth/totp', {}).catch(() => {}); draw(); } }, 'Cancel'),
      error);
    code.focus();
  };

  const showRecovery = (codes) => {
    section.replaceChildren(title,
      h('p', {}, 'Two-factor login is on. Keep these recovery codes somewhere safe: each logs you in once if you lose your phone. They are not shown again.'),
      h('ul', { class: 'recovery-codes', id: 'recovery-codes' }, ...codes.map((c) => h('li', {}, h('code', {}, c)))),
      h('button', { type: 'button', onclick: draw }, 'Done'),
      error);
  };

  const turnOff = () => {
    const proof = h('input', { id: 'two-factor-proof', type: 'password', autocomplete: 'current-password' });
    section.replaceChildren(title,
      h('form', {
        class: 'stack',
        onsubmit: async (e) => {
          e.preventDefault();
          const v = proof.value.trim();
          // Six digits or a recovery code's shape are codes; anything else is the password.
          const body = /^[0-9]{6}$|^[a-z0-9]{4}(-?[a-z0-9]{4}){3}$/i.test(v) ? { code: v } : { password: proof.value };
          try { await api('DELETE', '/auth/totp', body); await draw(); } catch (ex) { error.textContent = ERRORS[ex.code] || ex.message; }
        },
      },
      h('label', {}, 'Your password, or a code from the app', proof),
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'danger', id: 'two-factor-remove' }, 'Turn off'),
        h('button', { type: 'button', class: 'link', onclick: draw }, 'Cancel'))),
      error);
    proof.focus();
  };

  await draw();
  return section;
}
