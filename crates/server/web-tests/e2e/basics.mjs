// The basics: accounts, requests, receipts, typing, presence, edit and delete, reload,
// media, the offline outbox, groups, avatars, formatting, scrolling back, blocks and
// leaving. Answers the users for the scenarios after it.
import assert from 'node:assert/strict';
import {
  base, T, log, newUser, rest, send, bubble, png, shot,
} from './lib.mjs';

export async function basics() {
  log('static assets and headers');
  const idx = await fetch(base + '/');
  assert.equal(idx.status, 200);
  assert.match(idx.headers.get('content-security-policy'), /script-src 'self'/);
  assert.equal((await fetch(base + '/api/v1/nope')).status, 404);

  log('alice and bob register');
  const alice = await newUser('alice');
  const bob = await newUser('bob');

  log('alice starts a DM with bob by searching his name');
  await alice.page.getByRole('button', { name: 'New chat' }).click();
  await alice.page.getByPlaceholder('Search people by name').fill('bo');
  await alice.page.locator('#dialog').getByRole('button', { name: /Bob/ }).click();
  await alice.page.locator('#chat-name', { hasText: 'Bob' }).waitFor({ timeout: T });
  await send(alice, 'hello bob');
  await bubble(alice, 'hello bob').waitFor({ timeout: T });

  log('bob sees a message request from alice, reads it, accepts, replies');
  const bobRoom = bob.page.locator('.room-item', { hasText: 'Alice' });
  await bobRoom.locator('.tag', { hasText: 'Request' }).waitFor({ timeout: T });
  await bobRoom.click();
  await bubble(bob, 'hello bob').waitFor({ timeout: T });
  await bob.page.locator('#request', { hasText: 'Alice wants to chat with you' }).waitFor({ timeout: T });
  assert.ok(await bob.page.locator('#composer').isHidden(), 'no composer before accepting');
  // Until bob answers, alice sees neither his presence nor a read receipt.
  await alice.page.waitForTimeout(500);
  assert.equal(await alice.page.locator('.msg.mine', { hasText: 'hello bob' }).locator('.ticks.read').count(), 0, 'not read before accepting');
  assert.doesNotMatch(await alice.page.locator('#chat-sub').textContent(), /online/);
  await shot(bob, 'request');
  await bob.page.getByRole('button', { name: 'Accept' }).click();
  await bob.page.locator('#request').waitFor({ state: 'hidden', timeout: T });
  await send(bob, 'hi alice');
  await bubble(alice, 'hi alice').waitFor({ timeout: T });

  log('receipts: alice sees her message read');
  await alice.page.locator('.msg.mine', { hasText: 'hello bob' }).locator('.ticks.read').waitFor({ timeout: T });

  log('typing and presence');
  await alice.page.locator('#chat-sub', { hasText: 'online' }).waitFor({ timeout: T });
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('typing…');
  await alice.page.locator('#chat-sub', { hasText: 'typing' }).waitFor({ timeout: T });
  await bob.page.getByLabel('Message', { exact: true }).fill('');

  log('edit and delete own messages');
  await send(alice, 'tpyo here');
  const typo = alice.page.locator('.msg.mine', { hasText: 'tpyo here' });
  await typo.waitFor({ timeout: T });
  await typo.hover();
  await typo.getByRole('button', { name: 'Edit message' }).click();
  await alice.page.getByLabel('Message', { exact: true }).fill('typo fixed');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  await bob.page.locator('.msg', { hasText: 'typo fixed' }).locator('.edited').waitFor({ timeout: T });
  alice.page.once('dialog', (d) => d.accept());
  const fixed = alice.page.locator('.msg.mine', { hasText: 'typo fixed' });
  await fixed.hover();
  await fixed.getByRole('button', { name: 'Delete message' }).click();
  await bob.page.locator('.msg .text.deleted').waitFor({ timeout: T });

  log('alice reloads: still logged in, history there');
  await alice.page.reload();
  await alice.page.locator('#main').waitFor({ state: 'visible', timeout: T });
  await bubble(alice, 'hi alice').waitFor({ timeout: T });

  log('image upload shows its preview to bob');
  await alice.page.locator('#attach').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png(400, 300) });
  const thumb = bob.page.locator('#msg-list img.thumb');
  await thumb.waitFor({ timeout: T });
  await bob.page.waitForFunction(() => { const i = document.querySelector('#msg-list img.thumb'); return i && i.complete && i.naturalWidth > 0; }, null, { timeout: T });
  await thumb.click();
  await bob.page.locator('#viewer[open] img').waitFor({ timeout: T });
  // The full picture is loaded and decoded, not just its first rows.
  await bob.page.waitForFunction(() => {
    const img = document.querySelector('#viewer[open] img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: T });
  await shot(bob, 'viewer');
  await bob.page.keyboard.press('Escape');

  log('media are signed links; a failing one is reloaded from the message');
  const src = await thumb.getAttribute('src');
  assert.match(src, /^\/api\/v1\/media\/[0-9a-f-]+\/thumbnail\?exp=\d+&sig=/);
  // As if the link had expired: the element reloads from fresh links, once.
  await bob.page.evaluate(() => {
    const i = document.querySelector('#msg-list img.thumb');
    i.src = i.src.replace(/sig=[^&]*/, 'sig=AAAA');
  });
  await bob.page.waitForFunction(() => {
    const i = document.querySelector('#msg-list img.thumb');
    return i && !i.src.includes('sig=AAAA') && i.complete && i.naturalWidth > 0;
  }, null, { timeout: T });

  log('offline outbox delivers exactly once');
  await alice.context.setOffline(true);
  await alice.page.locator('#conn:not(:empty)').waitFor({ timeout: T });
  await send(alice, 'sent while offline');
  await alice.page.locator('#pending .msg', { hasText: 'sent while offline' }).waitFor({ timeout: T });
  await alice.context.setOffline(false);
  await bubble(bob, 'sent while offline').waitFor({ timeout: 30_000 });
  await alice.page.locator('#pending .msg').waitFor({ state: 'detached', timeout: T });
  const roomId = await bob.page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('room'));
  const hist = await rest(bob, 'GET', `/messages/history?roomId=${roomId}&limit=200`);
  assert.equal(hist.messages.filter((m) => m.content === 'sent while offline').length, 1, 'stored once');
  await bob.page.waitForTimeout(500);
  assert.equal(await bubble(bob, 'sent while offline').count(), 1, 'shown once');

  log('an edit made while the reader was offline shows after reconnecting');
  await bob.context.setOffline(true);
  await bob.page.locator('#conn:not(:empty)').waitFor({ timeout: T });
  const offlineMsg = hist.messages.find((m) => m.content === 'sent while offline');
  await rest(alice, 'PATCH', `/messages/${offlineMsg.id}`, { content: 'edited while bob was away' });
  await bob.context.setOffline(false);
  await bubble(bob, 'edited while bob was away').waitFor({ timeout: 30_000 });

  log('a group of three');
  const carol = await newUser('carol', { width: 390, height: 780 });
  await alice.page.getByRole('button', { name: 'New group' }).click();
  await alice.page.getByLabel('Group name', { exact: true }).fill('Team');
  await alice.page.getByPlaceholder('Add people').fill('bob');
  await alice.page.locator('#dialog').getByRole('button', { name: /Bob/ }).click();
  await alice.page.getByPlaceholder('Add people').fill('car');
  await alice.page.locator('#dialog').getByRole('button', { name: /Carol/ }).click();
  await alice.page.getByRole('button', { name: 'Create group' }).click();
  await alice.page.locator('#chat-name', { hasText: 'Team' }).waitFor({ timeout: T });
  await send(alice, 'welcome to the team');
  // Carol does not know alice: an invitation, which she accepts.
  await carol.page.locator('.room-item', { hasText: 'Team' }).locator('.tag', { hasText: 'Invitation' }).waitFor({ timeout: T });
  await carol.page.locator('.room-item', { hasText: 'Team' }).click();
  await bubble(carol, 'welcome to the team').waitFor({ timeout: T });
  await carol.page.getByRole('button', { name: 'Accept' }).click();
  await carol.page.locator('#request').waitFor({ state: 'hidden', timeout: T });
  await send(carol, 'thanks!');
  await bob.page.locator('.room-item', { hasText: 'Team' }).click();
  await bubble(bob, 'thanks!').waitFor({ timeout: T });
  await bob.page.locator('.msg .sender', { hasText: 'Carol' }).waitFor({ timeout: T });
  // Per-member receipts: Alice's ticks name who has read her message in the group.
  await alice.page.waitForFunction(() => {
    const t = [...document.querySelectorAll('.msg.mine .ticks')].pop();
    return t && /Read by/.test(t.title) && t.title.includes('Bob') && t.title.includes('Carol');
  }, null, { timeout: T });
  await shot(carol, 'phone-group');

  /** Waits until the <img> at `selector` has loaded and decoded a picture. */
  const pictureShown = (u, selector) => u.page.waitForFunction((sel) => {
    const i = document.querySelector(sel);
    return i && i.complete && i.naturalWidth > 0;
  }, selector, { timeout: T });
  const signedThumbnail = /^\/api\/v1\/media\/[0-9a-f-]+\/thumbnail\?exp=\d+&sig=/;

  log('alice sets her avatar in settings');
  await alice.page.getByRole('button', { name: 'Settings and account' }).click();
  await alice.page.locator('#avatar-file').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(256, 256) });
  await pictureShown(alice, '#me-avatar img');
  await pictureShown(alice, '#dialog .picture-editor .avatar img');
  assert.match(await alice.page.locator('#me-avatar img').getAttribute('src'), signedThumbnail);
  const aliceMe = await rest(alice, 'GET', '/users/me');
  assert.match(aliceMe.avatarUrl, signedThumbnail);
  await shot(alice, 'profile');
  await alice.page.keyboard.press('Escape');

  log('alice gives the group a picture: bob and carol see it live, and her avatar beside her messages');
  const team = (await rest(alice, 'GET', '/rooms')).rooms.find((r) => r.name === 'Team');
  await alice.page.locator(`.room-item[data-room-id="${team.id}"]`).click();
  await alice.page.getByRole('button', { name: 'Chat details' }).click();
  await alice.page.locator('#room-picture-file').setInputFiles({ name: 'team.png', mimeType: 'image/png', buffer: png(300, 200) });
  await pictureShown(alice, '#dialog .picture-editor .avatar img');
  await alice.page.keyboard.press('Escape');
  await pictureShown(alice, `.room-item[data-room-id="${team.id}"] .avatar img`);
  // Bob and carol have the group open: its header, bob's list, and alice's avatar beside
  // her message, all from the room.updated the change sent.
  await pictureShown(bob, '#chat-avatar img');
  await pictureShown(carol, '#chat-avatar img');
  await pictureShown(bob, `.room-item[data-room-id="${team.id}"] .avatar img`);
  await pictureShown(bob, `#msg-list .msg-avatar[data-user-id="${aliceMe.id}"] img`);
  assert.match(await bob.page.locator('#chat-avatar img').getAttribute('src'), signedThumbnail);
  // Without a picture, a sender shows initials on a colour of their own.
  const carolId = (await rest(carol, 'GET', '/users/me')).id;
  const carolAvatar = bob.page.locator(`#msg-list .msg-avatar[data-user-id="${carolId}"]`).first();
  assert.equal(await carolAvatar.textContent(), 'C');
  assert.match(await carolAvatar.evaluate((e) => getComputedStyle(e).backgroundColor), /^rgb/);

  log('formatting: bold, code, a code block, a quote, lists and links render as DOM; markup stays inert');
  const formatted = [
    'Plan: **ship it** and *soon*, after `cargo test`',
    '```',
    'fn main() {',
    '    println!("<b>hi</b>");',
    '}',
    '```',
    '> quoted **words**',
    '- one',
    '- two',
    '1. first',
    'Docs: https://example.com/docs?a=1&b=2. Or [the site](https://example.org/x)',
    '<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> [bad](javascript:window.pwned=3)',
  ].join('\n');
  await alice.page.getByLabel('Message', { exact: true }).fill(formatted);
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  const rich = bob.page.locator('#msg-list .msg', { hasText: 'ship it' }).locator('.text');
  await rich.waitFor({ timeout: T });
  assert.equal(await rich.locator('p strong').first().textContent(), 'ship it');
  assert.equal(await rich.locator('p em').first().textContent(), 'soon');
  assert.equal(await rich.locator('p code').first().textContent(), 'cargo test');
  assert.equal(await rich.locator('pre > code').textContent(), 'fn main() {\n    println!("<b>hi</b>");\n}');
  assert.equal(await rich.locator('pre b').count(), 0, 'a code block is text');
  assert.equal(await rich.locator('blockquote strong').textContent(), 'words');
  assert.deepEqual(await rich.locator('ul > li').allTextContents(), ['one', 'two']);
  assert.deepEqual(await rich.locator('ol > li').allTextContents(), ['first']);
  const links = await rich.locator('a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.target, a.rel]));
  assert.deepEqual(links, [
    ['https://example.com/docs?a=1&b=2', 'https://example.com/docs?a=1&b=2', '_blank', 'noopener noreferrer'],
    ['https://example.org/x', 'the site', '_blank', 'noopener noreferrer'],
  ]);
  assert.equal(await bob.page.locator('#msg-list script, #msg-list img[src="x"], #msg-list a[href^="javascript"]').count(), 0);
  const shown = await rich.textContent();
  assert.ok(shown.includes('<script>window.pwned = 1</script>'), shown);
  assert.ok(shown.includes('[bad](javascript:window.pwned=3)'), shown);
  assert.equal(await bob.page.evaluate(() => window.pwned), undefined, 'nothing ran');
  // The list preview shows the words, not the markup.
  assert.match(await bob.page.locator(`.room-item[data-room-id="${team.id}"] .room-preview`).textContent(), /^Alice: Plan: ship it and soon/);
  await shot(bob, 'formatting');

  log('the raw text is what is stored and what alice edits');
  const stored = (await rest(bob, 'GET', `/messages/history?roomId=${team.id}&limit=5`)).messages.at(-1);
  assert.equal(stored.content, formatted);
  const own = alice.page.locator('.msg.mine', { hasText: 'ship it' });
  await own.hover();
  await own.getByRole('button', { name: 'Edit message' }).click();
  assert.equal(await alice.page.getByLabel('Message', { exact: true }).inputValue(), formatted);
  await alice.page.locator('#cancel-edit').click();

  log('scroll back through 500 messages');
  const bobAuth = await rest(bob, 'GET', '/users/me');
  for (let i = 1; i <= 500; i++) {
    await rest(bob, 'POST', '/messages/send', { roomId, clientMsgId: `seed-${i}`, content: `seeded message ${i}` });
  }
  assert.ok(bobAuth.id);
  await alice.page.locator('.room-item', { hasText: 'Bob' }).click();
  await bubble(alice, 'seeded message 500').waitFor({ timeout: T });
  const scroller = alice.page.locator('#messages');
  for (let i = 0; i < 30; i++) {
    if (await alice.page.locator('#history-status', { hasText: 'beginning' }).count()) break;
    // Scroll to the top; when the older page lands, the message that was first must stay
    // where it was on screen (no jump).
    const firstId = await alice.page.evaluate(() => {
      const s = document.querySelector('#messages');
      s.scrollTop = 0;
      return document.querySelector('#msg-list .msg').dataset.id;
    });
    const y0 = await alice.page.evaluate((id) => document.querySelector(`#msg-list [data-id="${id}"]`).getBoundingClientRect().top, firstId);
    await alice.page.waitForFunction((id) => document.querySelector('#msg-list .msg').dataset.id !== id
      || document.querySelector('#history-status').textContent.includes('beginning'), firstId, { timeout: T });
    const y1 = await alice.page.evaluate((id) => document.querySelector(`#msg-list [data-id="${id}"]`).getBoundingClientRect().top, firstId);
    assert.ok(Math.abs(y1 - y0) < 40, `no jump when older messages load (${y0} → ${y1})`);
  }
  await bubble(alice, 'seeded message 1').first().waitFor({ state: 'attached', timeout: T });
  await alice.page.locator('#history-status', { hasText: 'beginning' }).waitFor({ timeout: T });
  const count = await alice.page.locator('#msg-list .msg').count();
  assert.ok(count >= 500, `all messages loaded (${count})`);
  // Older pages keep the reader's place: after one more page the old first message stays put.
  await scroller.evaluate((s) => { s.scrollTop = s.scrollHeight; });
  await shot(alice, 'desktop');

  log('a request from a stranger can be blocked; the block is listed and lifted in settings');
  const dave = await newUser('dave');
  const daveDm = await rest(dave, 'POST', '/rooms/create', { isGroup: false, memberIds: [bobAuth.id] });
  await rest(dave, 'POST', '/messages/send', { roomId: daveDm.id, clientMsgId: 'dave-1', content: 'buy my stuff' });
  const daveRoom = bob.page.locator('.room-item', { hasText: 'Dave' });
  await daveRoom.locator('.tag', { hasText: 'Request' }).waitFor({ timeout: T });
  await daveRoom.click();
  bob.page.once('dialog', (d) => d.accept());
  await bob.page.getByRole('button', { name: 'Block Dave' }).click();
  await daveRoom.waitFor({ state: 'detached', timeout: T });
  const again = await fetch(`${base}/api/v1/rooms/create`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await dave.page.evaluate(() => JSON.parse(localStorage.getItem('palaver.session')).accessToken)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ isGroup: false, memberIds: [bobAuth.id] }),
  });
  assert.equal(again.status, 403, 'a blocked user cannot open a DM');
  assert.equal((await again.json()).error.code, 'blocked');
  await bob.page.getByRole('button', { name: 'Settings and account' }).click();
  const blockedList = bob.page.locator('#blocked-list');
  await blockedList.locator('li', { hasText: 'Dave' }).waitFor({ timeout: T });
  await blockedList.getByRole('button', { name: 'Unblock Dave' }).click();
  await blockedList.locator('li', { hasText: 'Nobody' }).waitFor({ timeout: T });
  await bob.page.keyboard.press('Escape');
  assert.equal((await rest(bob, 'GET', '/users/me/blocks')).blocks.length, 0);

  log('a 1:1 chat can be left');
  await alice.page.locator('.room-item', { hasText: 'Bob' }).click();
  await alice.page.getByRole('button', { name: 'Chat details' }).click();
  alice.page.once('dialog', (d) => d.accept());
  await alice.page.locator('#dialog').getByRole('button', { name: 'Leave chat' }).click();
  await alice.page.locator('.room-item', { hasText: 'Bob' }).waitFor({ state: 'detached', timeout: T });
  // By its name: the group's preview names Alice too.
  await bob.page.locator('.room-item', { has: bob.page.locator('.room-name', { hasText: 'Alice' }) }).click();
  await bob.page.locator('#chat-sub', { hasText: 'left this chat' }).waitFor({ timeout: T });

  return { alice, bob, carol, dave, team };
}
