// Administration: alice registered first, so she administers the server. Bob reports a
// message; alice sees the report in the administration panel and resolves it, then
// disables and enables dave from the users tab. Bob, the reported group's owner, then
// mutes, unmutes, bans and unbans alice from the group's details.
import assert from 'node:assert/strict';
import {
  base, T, log, rest, token,
} from './lib.mjs';

export async function admin({ alice, bob, dave }) {
  log('only administrators see the administration button');
  await alice.page.locator('#admin-open').waitFor({ state: 'visible', timeout: T });
  assert.ok(await bob.page.locator('#admin-open').isHidden(), 'bob is no administrator');

  log('bob reports a message; alice resolves it in the panel');
  const aliceId = (await rest(alice, 'GET', '/users/me')).id;
  const room = await rest(bob, 'POST', '/rooms/create', { name: 'reported', isGroup: true, memberIds: [aliceId] });
  const sent = await rest(bob, 'POST', '/messages/send', {
    roomId: room.id, clientMsgId: `report-${Date.now()}`, content: 'a message to report', type: 'text',
  });
  await rest(bob, 'POST', `/messages/${sent.id}/report`, { reason: 'it breaks the rules' });
  await alice.page.getByRole('button', { name: 'Administration' }).click();
  const report = alice.page.locator('#panel .admin-item.report', { hasText: 'it breaks the rules' });
  await report.waitFor({ timeout: T });
  assert.match(await report.textContent(), /a message to report/);
  await report.getByRole('button', { name: 'Resolve' }).click();
  await alice.page.locator('#panel', { hasText: 'No open reports.' }).waitFor({ timeout: T });
  const { reports } = await rest(alice, 'GET', '/admin/reports?status=resolved');
  assert.equal(reports.length, 1);
  assert.equal(reports[0].reason, 'it breaks the rules');

  log('alice disables and enables dave from the users tab');
  await alice.page.locator('#panel').getByRole('tab', { name: 'Users' }).click();
  await alice.page.getByRole('button', { name: 'Disable dave' }).click();
  await alice.page.getByRole('button', { name: 'Enable dave' }).waitFor({ timeout: T });
  // Dave's session ended at once: his token is refused.
  const refused = await fetch(`${base}/api/v1/users/me`, { headers: { Authorization: `Bearer ${await token(dave)}` } });
  assert.equal(refused.status, 401);
  await alice.page.getByRole('button', { name: 'Enable dave' }).click();
  await alice.page.getByRole('button', { name: 'Disable dave' }).waitFor({ timeout: T });
  await alice.page.getByRole('button', { name: 'Close panel' }).click();

  log("bob, the group's owner, mutes alice for an hour, unmutes her, bans her and lifts the ban");
  const sendAs = (u, text) => token(u).then((t) => fetch(`${base}/api/v1/messages/send`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ roomId: room.id, clientMsgId: crypto.randomUUID(), content: text, type: 'text' }),
  }));
  if (await bob.page.locator('#back').isVisible()) await bob.page.locator('#back').click();
  await bob.page.locator('.room-item', { has: bob.page.locator('.room-name', { hasText: 'reported' }) }).click();
  await bob.page.locator('#chat-name', { hasText: 'reported' }).waitFor({ timeout: T });
  await bob.page.getByRole('button', { name: 'Chat details' }).click();
  const dialog = bob.page.locator('#dialog');
  await dialog.getByRole('button', { name: 'Mute Alice for an hour' }).click();
  await dialog.locator('.error', { hasText: 'Alice cannot send for an hour.' }).waitFor({ timeout: T });
  const muted = await sendAs(alice, 'while muted');
  assert.equal(muted.status, 403);
  assert.equal((await muted.json()).error.code, 'muted');
  await dialog.getByRole('button', { name: 'Unmute Alice' }).click();
  await dialog.locator('.error', { hasText: 'Alice can send again.' }).waitFor({ timeout: T });
  assert.equal((await sendAs(alice, 'after the mute')).status, 201);
  await dialog.getByRole('button', { name: 'Ban Alice' }).click();
  await dialog.getByRole('button', { name: 'Unban Alice' }).waitFor({ timeout: T });
  assert.equal(await dialog.getByRole('button', { name: 'Remove Alice' }).count(), 0, 'a ban removes');
  const readd = await fetch(`${base}/api/v1/rooms/${room.id}/members`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await token(bob)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ userIds: [aliceId] }),
  });
  assert.equal(readd.status, 403);
  assert.equal((await readd.json()).error.code, 'banned');
  await dialog.getByRole('button', { name: 'Unban Alice' }).click();
  await dialog.locator('#bans').waitFor({ state: 'detached', timeout: T });
  await rest(bob, 'POST', `/rooms/${room.id}/members`, { userIds: [aliceId] });
  await bob.page.keyboard.press('Escape');
}
