// One's data and account, from Settings: "Download my data" saves the export archive,
// "Delete my account" (with the password) ends the session and the account.
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import {
  base, T, PASSWORD, log, newUser, shot,
} from './lib.mjs';

export async function account() {
  const erin = await newUser('erin');
  const me = await erin.page.evaluate(() => JSON.parse(localStorage.getItem('palaver.session')).user);

  log('erin downloads her data from settings');
  await erin.page.getByRole('button', { name: 'Settings and account' }).click();
  const [download] = await Promise.all([
    erin.page.waitForEvent('download', { timeout: T }),
    erin.page.getByRole('button', { name: 'Download my data' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'palaver-export.tar.gz');
  const tar = gunzipSync(await readFile(await download.path()));
  // A tar entry's name is the first 100 bytes of its header, NUL-padded.
  const names = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = tar.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    if (name === 'profile.json') {
      const profile = JSON.parse(tar.subarray(at + 512, at + 512 + size).toString('utf8'));
      assert.equal(profile.id, me.id, 'her own profile');
    }
    names.push(name);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  for (const n of ['export.json', 'profile.json', 'rooms.json', 'media.json']) assert.ok(names.includes(n), `${n} in the export: ${names}`);
  await erin.page.locator('#account-status', { hasText: 'Downloaded' }).waitFor({ timeout: T });
  await shot(erin, 'your-data');

  log('erin deletes her account: the wrong password is refused, the right one logs her out');
  await erin.page.locator('#delete-password').fill('not my password');
  erin.page.once('dialog', (d) => d.accept());
  await erin.page.getByRole('button', { name: 'Delete my account' }).click();
  await erin.page.locator('#account-status', { hasText: 'password is wrong' }).waitFor({ timeout: T });
  await erin.page.locator('#delete-password').fill(PASSWORD);
  erin.page.once('dialog', (d) => d.accept());
  await erin.page.getByRole('button', { name: 'Delete my account' }).click();
  await erin.page.getByRole('tab', { name: 'Create account' }).waitFor({ timeout: T });
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'erin', password: PASSWORD }),
  });
  assert.equal(login.status, 401, 'the account is gone');
  await erin.context.close();
}
