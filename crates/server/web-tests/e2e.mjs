// End-to-end tests of the web client: real Chromium (headless) against a real server.
// Usage: node e2e.mjs http://127.0.0.1:PORT [screenshot dir]
// Run by crates/server/tests/web.rs; exits non-zero on the first failure. The scenarios
// live in e2e/: basics.mjs (accounts to blocks), conversations.mjs (replies, threads,
// reactions, mentions, pins, search, forwards, room events, resuming), admin.mjs (the
// administration panel), account.mjs (one's data and account: export download, account
// deletion), twofactor.mjs (turning two-factor login on, logging in with a code, turning it
// off), sso.mjs (the login screen's provider button, with E2E_SSO set).
import assert from 'node:assert/strict';
import {
  browser, shots, log, currentStep, failures, urls,
} from './e2e/lib.mjs';
import { basics } from './e2e/basics.mjs';
import { conversations } from './e2e/conversations.mjs';
import { admin } from './e2e/admin.mjs';
import { account } from './e2e/account.mjs';
import { twoFactor } from './e2e/twofactor.mjs';
import { sso } from './e2e/sso.mjs';

try {
  const users = await basics();
  await conversations(users);
  await admin(users);
  await account();
  await twoFactor();
  if (process.env.E2E_SSO) await sso();

  log('no URL carried an access token');
  assert.ok(urls.some((u) => /\/api\/v1\/ws$/.test(u)), 'the socket was opened');
  assert.deepEqual(urls.filter((u) => /access_token|eyJ/.test(u)), [], 'no token in a URL');

  assert.deepEqual(failures, [], 'no page errors');
  console.log('e2e: all passed');
  await browser.close();
} catch (e) {
  console.error(`e2e: FAILED at "${currentStep()}":`, e);
  if (failures.length) console.error(failures.join('\n'));
  if (shots) {
    for (const [c, ctx] of browser.contexts().entries()) {
      for (const [i, p] of ctx.pages().entries()) await p.screenshot({ path: `${shots}/failure-${c}-${i}.png` }).catch(() => {});
    }
  }
  await browser.close();
  process.exit(1);
}
