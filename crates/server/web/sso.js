// Single sign-on on the login screen: a button per configured provider (a plain link to
// the server's start URL: the provider's pages are a navigation away), and, back from the
// provider, the one-time code in the URL's fragment traded for the session. With password
// login turned off only the buttons are shown.

import * as API from './api.js';
import { api } from './api.js';
import { h, $ } from './util.js';
import { askCode } from './twofactor.js';

const ERRORS = {
  invalid_state: 'That sign-in link expired or was used already. Try again.',
  refused: 'The sign-in was cancelled at the provider.',
  invalid_response: 'The provider’s answer could not be checked. Try again.',
  already_linked: 'That account at the provider is linked to another Palaver account.',
};

/** Whether the page was opened by the server's redirect back from a provider. */
export const ssoReturn = () => /(^#|&)sso(-error)?=/.test(location.hash);

/** Draws the provider buttons (after the server says which there are). */
export async function initSso() {
  let methods;
  try { methods = await API.loginMethods(); } catch { return; }
  const box = $('#sso-buttons');
  box.replaceChildren(...methods.sso.map((p) => h('a', {
    class: 'button sso', href: `/api/v1/auth/sso/${encodeURIComponent(p.id)}/start`,
  }, `Log in with ${p.displayName}`)));
  box.hidden = methods.sso.length === 0;
  if (!methods.password) {
    $('#auth-form').hidden = true;
    $('.tabs').hidden = true;
  }
}

/**
 * Back from the provider: `#sso=<code>` logs in (calling `done`), `#sso-error=<why>` is
 * shown. Answers whether the fragment was ours. The fragment is cleared first, so a
 * reload never replays the code.
 */
export async function finishSso(done) {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get('sso');
  const failed = params.get('sso-error');
  if (!code && !failed) return false;
  history.replaceState(null, '', location.pathname + location.search);
  const err = $('#auth-error');
  if (failed) { err.textContent = ERRORS[failed] || 'Single sign-on failed.'; return false; }
  try {
    const answer = await API.exchangeSso(code);
    if (answer.secondFactor) { askCode(answer.secondFactor, done); return true; }
    await done();
    return true;
  } catch (ex) {
    err.textContent = ex.code === 'unauthorized' ? ERRORS.invalid_state : ex.message;
    return false;
  }
}

/** The Settings section: link a provider to this account (when there are providers). */
export async function ssoSection() {
  let methods;
  try { methods = await API.loginMethods(); } catch { return null; }
  if (!methods.sso.length) return null;
  const error = h('p', { class: 'error', role: 'alert' });
  return h('section', { class: 'stack', id: 'sso-link' },
    h('h3', {}, 'Single sign-on'),
    h('p', { class: 'muted' }, 'Link an account at a provider, to log in with it as yourself.'),
    ...methods.sso.map((p) => h('button', {
      type: 'button',
      onclick: async () => {
        try { location.assign((await api('POST', `/auth/sso/${encodeURIComponent(p.id)}/link`)).url); } catch (e) { error.textContent = e.message; }
      },
    }, `Link ${p.displayName}`)),
    error);
}
