// REST calls and the session. The refresh token (single-use, rotated on every refresh)
// lives in localStorage so a reload stays logged in; the access token is kept beside it
// so several tabs can share one session without replaying a refresh token (reuse would
// end the session for all of them).

const KEY = 'palaver.session';
const listeners = new Set();
let session = read();
let refreshTimer = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

function read() {
  try { return JSON.parse(localStorage.getItem(KEY)); } catch { return null; }
}

function save(auth) {
  session = {
    accessToken: auth.accessToken,
    refreshToken: auth.refreshToken,
    expiresAt: Date.now() + (auth.expiresIn || 900) * 1000,
    user: auth.user,
  };
  localStorage.setItem(KEY, JSON.stringify(session));
  schedule();
}

function clear() {
  session = null;
  localStorage.removeItem(KEY);
  clearTimeout(refreshTimer);
}

/** Called with no argument when the session ends (logout, reuse, expiry). */
export function onSessionEnd(fn) { listeners.add(fn); }

export const me = () => session?.user ?? null;
export const token = () => session?.accessToken ?? '';
export const hasSession = () => !!session?.refreshToken;

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  // Refresh at 80% of the lifetime, so a socket never authenticates with a dead token.
  const wait = Math.max(5000, (session.expiresAt - Date.now()) * 0.8);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

let inflight = null;
/** Trades the refresh token for new tokens, once at a time across tabs. */
export function refresh() {
  if (inflight) return inflight;
  const run = async () => {
    const stored = read();
    // Another tab may have refreshed already: take its tokens instead of reusing ours.
    if (stored?.refreshToken && stored.expiresAt - Date.now() > 60_000) {
      session = stored;
      schedule();
      return;
    }
    const refreshToken = stored?.refreshToken || session?.refreshToken;
    if (!refreshToken) throw new ApiError(401, 'unauthorized');
    const res = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refreshToken }),
    });
    if (res.status === 401) { end(); throw new ApiError(401, 'unauthorized'); }
    if (!res.ok) throw new ApiError(res.status, 'refresh_failed');
    save(await res.json());
  };
  const locked = navigator.locks ? () => navigator.locks.request('palaver-refresh', run) : run;
  inflight = locked().finally(() => { inflight = null; });
  return inflight;
}

function end() {
  clear();
  for (const fn of listeners) fn();
}

/** A fresh-enough access token (refreshed first if it is about to expire). */
export async function freshToken() {
  if (session && session.expiresAt - Date.now() < 30_000) await refresh();
  return token();
}

async function raw(method, path, body, auth = true) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) headers.Authorization = `Bearer ${token()}`;
  const res = await fetch(`/api/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, data?.error?.code || 'http_' + res.status, data?.error?.message);
  }
  return data;
}

/** An authenticated REST call; refreshes and retries once on token_expired. */
export async function api(method, path, body) {
  await freshToken();
  try {
    return await raw(method, path, body);
  } catch (e) {
    if (e.code === 'token_expired') {
      await refresh();
      return raw(method, path, body);
    }
    if (e.code === 'unauthorized' && e.status === 401) end();
    throw e;
  }
}

export async function register(username, password, displayName) {
  save(await raw('POST', '/auth/register', { username, password, displayName: displayName || undefined }, false));
  return session.user;
}

/**
 * Logs in: the user, or, for an account with two-factor login, `{ secondFactor }` (the
 * challenge to answer with `loginSecondFactor`).
 */
export async function login(username, password) {
  const answer = await raw('POST', '/auth/login', { username, password }, false);
  if (answer.secondFactor) return { secondFactor: answer.secondFactor };
  save(answer);
  return session.user;
}

/**
 * Trades single sign-on's one-time code (from `/#sso=<code>`) for the session: the user,
 * or `{ secondFactor }` as for `login`.
 */
export async function exchangeSso(code) {
  const answer = await raw('POST', '/auth/sso/exchange', { code }, false);
  if (answer.secondFactor) return { secondFactor: answer.secondFactor };
  save(answer);
  return session.user;
}

/** How this server lets people log in (password on or off, single sign-on providers). */
export const loginMethods = () => raw('GET', '/auth/methods', undefined, false);

/** The second step of a login: a TOTP or recovery code for the challenge. */
export async function loginSecondFactor(challenge, code) {
  save(await raw('POST', '/auth/login/second-factor', { challenge, code }, false));
  return session.user;
}

export async function logout() {
  try { await raw('POST', '/auth/logout', {}); } catch { /* ended anyway */ }
  end();
}

export function updateUser(user) {
  if (!session) return;
  session.user = user;
  localStorage.setItem(KEY, JSON.stringify(session));
}

/**
 * Whether a signed media URL (`?exp=…&sig=…`, loadable by <img>/<video>/<a> without a
 * header) has expired or will within a minute.
 */
export function linkExpired(url) {
  const exp = Number(new URL(url, location.href).searchParams.get('exp'));
  return !exp || exp * 1000 < Date.now() + 60_000;
}

/** Uploads one file with progress (fetch has no upload progress, XHR does). */
export async function upload(file, onProgress) {
  await freshToken();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/media/upload');
    xhr.setRequestHeader('Authorization', `Bearer ${token()}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(data);
      else reject(new ApiError(xhr.status, data?.error?.code || 'media_upload_failed', data?.error?.message));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'network error'));
    const form = new FormData();
    form.append('file', file, file.name || 'pasted');
    xhr.send(form);
  });
}
