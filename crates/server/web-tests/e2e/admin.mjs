// Administration: alice registered first, so she administers the server. Bob reports a
// message; alice sees the report in the administration panel and resolves it, then
// disables and enables dave from the users tab.
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
}
