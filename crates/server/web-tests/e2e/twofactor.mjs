// Two-factor login in the browser: turning it on in Settings (QR code and key shown,
// confirmed with a code from the key), the recovery codes shown once, then logging out
// and in again with the password and a code, and turning it off with the password.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  T, log, newUser, shot, PASSWORD,
} from './lib.mjs';

/** RFC 4648 base32, as the key is shown. */
function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `key` at `seconds`: what an app shows. */
function totp(key, seconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', base32(key)).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

export async function twoFactor() {
  log('tess turns on two-factor login in Settings');
  const tess = await newUser('tess');
  const page = tess.page;
  await page.getByRole('button', { name: 'Settings and account' }).click();
  await page.getByRole('button', { name: 'Turn on two-factor login' }).click();
  await page.locator('#two-factor-qr').waitFor({ timeout: T });
  await page.waitForFunction(() => { const i = document.querySelector('#two-factor-qr'); return i && i.complete && i.naturalWidth > 0; }, null, { timeout: T });
  const key = (await page.locator('#two-factor-secret').textContent()).trim();
  assert.match(key, /^[A-Z2-7]{32}$/);
  assert.match(await page.locator('#two-factor-uri').getAttribute('href'), /^otpauth:\/\/totp\//);
  await shot(tess, 'two-factor-enrol');
  await page.getByLabel('Code from the app').fill(totp(key, Date.now() / 1000));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.locator('#recovery-codes li').first().waitFor({ timeout: T });
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  await shot(tess, 'two-factor-recovery-codes');
  await page.getByRole('button', { name: 'Done' }).click();
  await page.locator('#two-factor', { hasText: '10 recovery codes left' }).waitFor({ timeout: T });

  log('tess logs out and in again: the password, then a code');
  await page.locator('#logout').click();
  await page.locator('#auth').waitFor({ state: 'visible', timeout: T });
  await page.getByRole('tab', { name: 'Log in' }).click();
  await page.getByLabel('Username').fill('tess');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).last().click();
  const code = page.getByLabel('Code from your authenticator app, or a recovery code');
  await code.waitFor({ timeout: T });
  assert.ok(await page.locator('#main').isHidden(), 'not in before the code');
  await code.fill('000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.locator('#second-factor-error', { hasText: 'not right' }).waitFor({ timeout: T });
  await shot(tess, 'two-factor-login');
  // The next step's code: the confirmation used the current one, and a code is good once.
  await code.fill(totp(key, Date.now() / 1000 + 30));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.locator('#main').waitFor({ state: 'visible', timeout: T });

  log('tess turns two-factor login off with her password');
  await page.getByRole('button', { name: 'Settings and account' }).click();
  await page.getByRole('button', { name: 'Turn off two-factor login' }).click();
  await page.getByLabel('Your password, or a code from the app').fill(PASSWORD);
  await page.locator('#two-factor-remove').click();
  await page.getByRole('button', { name: 'Turn on two-factor login' }).waitFor({ timeout: T });
  await tess.context.close();
}
