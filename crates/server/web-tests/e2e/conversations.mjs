// Conversations, as a newcomer uses them: room events, replies (and jumping to the
// original), threads, reactions, mentions with autocomplete, pins, search (CJK),
// forwarding, a removed member's notice, and a reconnect that replays what changed.
import assert from 'node:assert/strict';
import {
  T, log, rest, send, bubble, shot, sentFrames,
} from './lib.mjs';

/** The message element (of the timeline) whose text contains `text`. */
const msg = (u, text) => u.page.locator('#msg-list .msg', { hasText: text }).last();

/** Hovers a message and clicks one of its actions (by its accessible name). */
async function act(u, message, label) {
  await message.hover();
  await message.getByRole('button', { name: label, exact: true }).click();
}

async function openRoom(u, name) {
  // On a phone the list shows only once the open chat is left.
  if (await u.page.locator('#back').isVisible()) await u.page.locator('#back').click();
  await u.page.locator('.room-item', { has: u.page.locator('.room-name', { hasText: name }) }).click();
  await u.page.locator('#chat-name', { hasText: name }).waitFor({ timeout: T });
}

async function reload(u) {
  await u.page.reload();
  await u.page.locator('#main').waitFor({ state: 'visible', timeout: T });
  await u.page.locator('#conn:empty').waitFor({ state: 'attached', timeout: T });
}

/** Waits until the element is inside the message list's visible area. */
const inView = (u, locator) => locator.evaluate((el) => new Promise((resolve, reject) => {
  const until = Date.now() + 10_000;
  const check = () => {
    const box = el.getBoundingClientRect();
    const view = (el.closest('#messages, .thread-body') || document.body).getBoundingClientRect();
    if (box.bottom > view.top && box.top < view.bottom) return resolve(true);
    if (Date.now() > until) return reject(new Error(`not scrolled into view (${box.top} in ${view.top}–${view.bottom})`));
    return setTimeout(check, 50);
  };
  check();
}));

async function events(ctx) {
  const { alice, bob, ids } = ctx;
  log('timeline events: a group created, renamed, a role given, told in the words of the event');
  ctx.trip = await rest(alice, 'POST', '/rooms/create', { name: 'Trip', isGroup: true, memberIds: [ids.bob, ids.carol] });
  await openRoom(bob, 'Trip');
  await bob.page.locator('#msg-list .event-row', { hasText: 'Alice created the group “Trip” and added you and Carol' }).waitFor({ timeout: T });
  await openRoom(alice, 'Trip');
  await alice.page.getByRole('button', { name: 'Chat details' }).click();
  await alice.page.locator('#dialog').getByLabel('Group name').fill('Trip 2026');
  await alice.page.locator('#dialog').getByRole('button', { name: 'Rename' }).click();
  await alice.page.locator('#dialog-title', { hasText: 'Trip 2026' }).waitFor({ timeout: T });
  await alice.page.keyboard.press('Escape');
  await bob.page.locator('#msg-list .event-row', { hasText: 'Alice renamed the group to “Trip 2026”' }).waitFor({ timeout: T });
  await bob.page.locator('#chat-name', { hasText: 'Trip 2026' }).waitFor({ timeout: T });
  await rest(alice, 'PATCH', `/rooms/${ctx.trip.id}/members/${ids.bob}`, { role: 'admin' });
  await bob.page.locator('#msg-list .event-row', { hasText: 'Alice made you an admin' }).waitFor({ timeout: T });
  await alice.page.locator('#msg-list .event-row', { hasText: 'You made Bob an admin' }).waitFor({ timeout: T });
}

async function replies(ctx) {
  const { alice, bob, carol, ids } = ctx;
  log('reply: the composer shows the quote; the sent message shows sender and preview');
  await send(alice, 'Where do we meet?');
  await bubble(bob, 'Where do we meet?').waitFor({ timeout: T });
  await act(bob, msg(bob, 'Where do we meet?'), 'Reply');
  const banner = bob.page.locator('#reply-banner');
  await banner.waitFor({ timeout: T });
  assert.match(await banner.textContent(), /Replying to Alice\s*Where do we meet\?/);
  await shot(bob, 'reply-composer');
  await send(bob, 'At the station, 9:00');
  await banner.waitFor({ state: 'hidden', timeout: T });
  const quoted = msg(alice, 'At the station').locator('.quote');
  await quoted.waitFor({ timeout: T });
  assert.equal(await quoted.locator('.quote-sender').textContent(), 'You');
  assert.equal(await quoted.locator('.quote-text').textContent(), 'Where do we meet?');
  const sent = (await rest(bob, 'GET', `/messages/history?roomId=${ctx.trip.id}&limit=5`)).messages.find((m) => m.content.startsWith('At the station'));
  const where = (await rest(bob, 'GET', `/messages/history?roomId=${ctx.trip.id}&limit=10`)).messages.find((m) => m.content === 'Where do we meet?');
  assert.equal(sent.replyTo.id, where.id, 'sent as a reply');
  ctx.where = where;
  ctx.station = sent;

  log('a reply to a deleted message says so');
  const temp = await rest(alice, 'POST', '/messages/send', { roomId: ctx.trip.id, clientMsgId: 'temp-plan', content: 'temporary plan' });
  await rest(bob, 'POST', '/messages/send', { roomId: ctx.trip.id, clientMsgId: 'ok-temp', content: 'fine by me', replyToId: temp.id });
  await msg(bob, 'fine by me').locator('.quote-text', { hasText: 'temporary plan' }).waitFor({ timeout: T });
  await rest(alice, 'DELETE', `/messages/${temp.id}`);
  await msg(bob, 'fine by me').locator('.quote-text.deleted', { hasText: 'This message was deleted' }).waitFor({ timeout: T });

  // Carol writes (in Japanese/Chinese, for search later) before she is removed.
  ctx.tokyo = await rest(carol, 'POST', '/messages/send', { roomId: ctx.trip.id, clientMsgId: 'tokyo', content: '明天在東京見面吧' });
  await bubble(bob, '東京').waitFor({ timeout: T });
  assert.ok(ids.carol);
}

async function removal(ctx) {
  const { alice, bob, carol } = ctx;
  log('a removed member is told who removed her; the others see the event');
  await openRoom(carol, 'Trip 2026');
  await bubble(carol, '東京').waitFor({ timeout: T });
  await alice.page.getByRole('button', { name: 'Chat details' }).click();
  await alice.page.locator('#dialog').getByRole('button', { name: 'Remove Carol' }).click();
  await alice.page.locator('#dialog h3', { hasText: '2 members' }).waitFor({ timeout: T });
  await alice.page.keyboard.press('Escape');
  await carol.page.locator('.toast', { hasText: 'Alice removed you from Trip 2026.' }).waitFor({ timeout: T });
  await carol.page.locator('.room-item', { hasText: 'Trip 2026' }).waitFor({ state: 'detached', timeout: T });
  await shot(carol, 'removed-notice');
  await carol.page.locator('.toast').getByRole('button', { name: 'Dismiss' }).click();
  await bob.page.locator('#msg-list .event-row', { hasText: 'Alice removed Carol' }).waitFor({ timeout: T });

  log('the name of someone who left is looked up, not "Someone"');
  await reload(bob);
  await openRoom(bob, 'Trip 2026');
  await msg(bob, '東京').locator('.sender', { hasText: 'Carol' }).waitFor({ timeout: T });
  await bob.page.locator('#msg-list .event-row', { hasText: 'Alice removed Carol' }).waitFor({ timeout: T });
  await shot(bob, 'events');
}

async function jumpToOriginal(ctx) {
  const { alice, bob } = ctx;
  log('clicking a quote jumps to the original, loading history first');
  for (let i = 1; i <= 120; i++) {
    await rest(alice, 'POST', '/messages/send', { roomId: ctx.trip.id, clientMsgId: `filler-${i}`, content: `filler ${i}` });
  }
  await rest(alice, 'POST', '/messages/send', { roomId: ctx.trip.id, clientMsgId: 'remind', content: 'Reminder, see the question', replyToId: ctx.where.id });
  await reload(bob);
  await openRoom(bob, 'Trip 2026');
  await bubble(bob, 'Reminder, see the question').waitFor({ timeout: T });
  assert.equal(await bubble(bob, 'Where do we meet?').count(), 0, 'the original is not loaded yet');
  await msg(bob, 'Reminder, see the question').locator('.quote').click();
  const original = bob.page.locator('#msg-list .msg.flash', { hasText: 'Where do we meet?' });
  await original.waitFor({ timeout: T });
  await inView(bob, original);
  await shot(bob, 'reply-jump');
}

async function threads(ctx) {
  const { alice, bob } = ctx;
  log('thread: bob replies in a thread from the side panel');
  await send(alice, 'Ideas for dinner?');
  await bubble(bob, 'Ideas for dinner?').waitFor({ timeout: T });
  await act(bob, msg(bob, 'Ideas for dinner?'), 'Reply in thread');
  const panel = bob.page.locator('#panel[data-kind="thread"]');
  await panel.locator('.thread-root', { hasText: 'Ideas for dinner?' }).waitFor({ timeout: T });
  await panel.getByLabel('Reply in thread').fill('Pizza place near the hotel');
  await panel.getByLabel('Reply in thread').press('Enter');
  await panel.locator('.msg', { hasText: 'Pizza place' }).waitFor({ timeout: T });

  log('thread: the root shows the count, the repliers and an unread dot; the reply stays out of the room');
  const summary = msg(alice, 'Ideas for dinner?').locator('.thread-summary');
  await summary.locator('.thread-count', { hasText: '1 reply' }).waitFor({ timeout: T });
  await summary.locator('.unread-dot').waitFor({ timeout: T });
  assert.equal(await summary.locator('.faces .avatar').count(), 1, "the replier's avatar");
  assert.equal(await bubble(alice, 'Pizza place').count(), 0, 'a thread reply is not in the timeline');
  await alice.page.mouse.move(5, 790);
  await summary.scrollIntoViewIfNeeded();
  await shot(alice, 'thread-root');
  await summary.click();
  const alicePanel = alice.page.locator('#panel[data-kind="thread"]');
  await alicePanel.locator('.msg', { hasText: 'Pizza place' }).waitFor({ timeout: T });
  await msg(alice, 'Ideas for dinner?').locator('.thread-summary .unread-dot').waitFor({ state: 'detached', timeout: T });

  log('thread: "also send to the group" shows the reply in the room too');
  await panel.getByLabel('Also send to the group').check();
  await panel.getByLabel('Reply in thread').fill('Or sushi?');
  await panel.getByLabel('Reply in thread').press('Enter');
  await alicePanel.locator('.msg', { hasText: 'Or sushi?' }).waitFor({ timeout: T });
  await msg(alice, 'Or sushi?').locator('.in-thread').waitFor({ timeout: T });
  await msg(alice, 'Ideas for dinner?').locator('.thread-count', { hasText: '2 replies' }).waitFor({ timeout: T });
  // Alice has the thread open: the new reply is seen, no dot.
  await msg(alice, 'Ideas for dinner?').locator('.unread-dot').waitFor({ state: 'detached', timeout: T });
  await shot(alice, 'thread');
  await alice.page.getByRole('button', { name: 'Close panel' }).click();
  await bob.page.getByRole('button', { name: 'Close panel' }).click();
}

async function reactions(ctx) {
  const { alice, bob } = ctx;
  log('reactions: pick one, see who reacted, toggle, enter any emoji');
  await act(alice, msg(alice, 'Ideas for dinner?'), 'React');
  await alice.page.locator('.reaction-picker').getByRole('button', { name: 'React with 👍' }).click();
  const bobChip = msg(bob, 'Ideas for dinner?').locator('.reaction[data-emoji="👍"]');
  await bobChip.locator('.count', { hasText: '1' }).waitFor({ timeout: T });
  assert.match(await bobChip.getAttribute('title'), /Alice reacted with 👍/);
  assert.equal(await bobChip.getAttribute('aria-pressed'), 'false');
  await bobChip.click();
  const aliceChip = msg(alice, 'Ideas for dinner?').locator('.reaction[data-emoji="👍"]');
  await aliceChip.locator('.count', { hasText: '2' }).waitFor({ timeout: T });
  await msg(bob, 'Ideas for dinner?').locator('.reaction.mine[data-emoji="👍"]').waitFor({ timeout: T });
  assert.match(await aliceChip.getAttribute('title'), /you and Bob reacted|Bob and you reacted/);
  await act(bob, msg(bob, 'Ideas for dinner?'), 'React');
  await bob.page.locator('.reaction-picker').getByLabel('Another emoji').fill('🚀');
  await bob.page.locator('.reaction-picker').getByRole('button', { name: 'Add' }).click();
  await msg(alice, 'Ideas for dinner?').locator('.reaction[data-emoji="🚀"] .count', { hasText: '1' }).waitFor({ timeout: T });
  await shot(alice, 'reactions');
  await msg(bob, 'Ideas for dinner?').locator('.reaction[data-emoji="🚀"]').click();
  await msg(alice, 'Ideas for dinner?').locator('.reaction[data-emoji="🚀"]').waitFor({ state: 'detached', timeout: T });
}

async function mentions(ctx) {
  const { alice, bob } = ctx;
  log('mentions: @ opens the members, the choice is inserted; alice gets a marker and a highlight');
  await openRoom(alice, 'Team');
  const box = bob.page.getByLabel('Message', { exact: true });
  await box.fill('See you there ');
  await box.pressSequentially('@al');
  const option = bob.page.locator('#composer .mention-list [role="option"]', { hasText: 'Alice' });
  await option.waitFor({ timeout: T });
  assert.equal(await option.getAttribute('aria-selected'), 'true');
  await shot(bob, 'mention-autocomplete');
  await box.press('Enter');
  assert.equal(await box.inputValue(), 'See you there @alice ');
  await box.pressSequentially('and bring the tickets');
  await box.press('Enter');
  const trip = alice.page.locator('.room-item', { has: alice.page.locator('.room-name', { hasText: 'Trip 2026' }) });
  await trip.locator('.mention-badge').waitFor({ timeout: T });
  assert.match(await trip.getAttribute('aria-label'), /you were mentioned/);
  await shot(alice, 'mention-marker');
  await trip.click();
  const mention = msg(alice, 'bring the tickets').locator('.mention.mention-me');
  await mention.waitFor({ timeout: T });
  assert.equal(await mention.textContent(), '@alice');
  await alice.page.locator('#msg-list .msg.mentioned', { hasText: 'bring the tickets' }).waitFor({ timeout: T });
  await trip.locator('.mention-badge').waitFor({ state: 'detached', timeout: T });

  log('notification level: only mentions, from the room details');
  await alice.page.getByRole('button', { name: 'Chat details' }).click();
  await alice.page.locator('#notification-level').selectOption('mentions');
  await alice.page.locator('#dialog .error', { hasText: 'Saved.' }).waitFor({ timeout: T });
  await alice.page.keyboard.press('Escape');
  const level = (await rest(alice, 'GET', '/rooms')).rooms.find((r) => r.id === ctx.trip.id).notificationLevel;
  assert.equal(level, 'mentions');
}

async function linkPreviews(ctx) {
  const { alice } = ctx;
  // The server attaches previews later (by message.updated); the card is checked on the
  // message shapes it will send.
  log('link preview cards: text as text, http(s) links only, no opener or referrer');
  const cards = await alice.page.evaluate(async () => {
    const { linkPreviewCard } = await import('/linkpreview.js');
    const card = linkPreviewCard({ linkPreview: { url: 'https://example.com/a?b=1', title: '<b>Title</b>', description: 'About <i>it</i>', siteName: 'Example' } });
    const bad = linkPreviewCard({ linkPreview: { url: 'javascript:alert(1)', title: 'x' } });
    const noImage = linkPreviewCard({ linkPreview: { url: 'http://example.org/', title: 't', imageUrl: 'javascript:alert(2)' } });
    return {
      href: card.href, rel: card.rel, target: card.target, title: card.querySelector('.link-title').textContent,
      site: card.querySelector('.link-site').textContent, markup: card.querySelectorAll('b, i').length, bad, img: noImage.querySelectorAll('img').length,
    };
  });
  assert.deepEqual(cards, {
    href: 'https://example.com/a?b=1', rel: 'noopener noreferrer', target: '_blank', title: '<b>Title</b>', site: 'Example', markup: 0, bad: null, img: 0,
  });
}

async function pins(ctx) {
  const { alice, bob } = ctx;
  log('pins: an admin pins; a plain member cannot; the pins panel jumps to a pin');
  await act(bob, msg(bob, 'Ideas for dinner?'), 'Pin');
  await msg(alice, 'Ideas for dinner?').locator('.pinned').waitFor({ timeout: T });
  await rest(alice, 'PUT', `/rooms/${ctx.trip.id}/pins/${ctx.where.id}`);
  // In Team bob is a plain member: no Pin action there.
  await openRoom(bob, 'Team');
  const teamMsg = bob.page.locator('#msg-list .msg').last();
  await teamMsg.hover();
  assert.equal(await teamMsg.getByRole('button', { name: 'Pin', exact: true }).count(), 0, 'members of a group do not pin');
  assert.equal(await teamMsg.getByRole('button', { name: 'React', exact: true }).count(), 1);
  // Alice reloads: the oldest pin is out of the loaded history.
  await reload(alice);
  await openRoom(alice, 'Trip 2026');
  await alice.page.getByRole('button', { name: 'Pinned messages' }).click();
  const list = alice.page.locator('#panel[data-kind="pins"] .pin-item');
  await list.first().waitFor({ timeout: T });
  assert.deepEqual((await list.locator('.pin-text').allTextContents()), ['Where do we meet?', 'Ideas for dinner?']);
  await shot(alice, 'pins');
  await list.filter({ hasText: 'Where do we meet?' }).click();
  const pinned = alice.page.locator('#msg-list .msg.flash', { hasText: 'Where do we meet?' });
  await pinned.waitFor({ timeout: T });
  await inView(alice, pinned);
  await pinned.locator('.pinned').waitFor({ timeout: T });
  await alice.page.getByRole('button', { name: 'Close panel' }).click();
}

async function search(ctx) {
  const { bob } = ctx;
  log('search: a CJK query finds the message; a click shows it in context');
  await bob.page.getByRole('button', { name: 'Search messages' }).click();
  await bob.page.locator('#search-q').fill('東京');
  await bob.page.locator('#panel').getByRole('button', { name: 'Search', exact: true }).click();
  const hit = bob.page.locator('#panel .search-hit', { hasText: '東京' });
  await hit.waitFor({ timeout: T });
  assert.equal(await hit.locator('mark').first().textContent(), '東京');
  assert.equal(await hit.locator('.hit-room').textContent(), 'Trip 2026');
  assert.equal(await hit.locator('.hit-sender').textContent(), 'Carol');
  await shot(bob, 'search');
  await hit.click();
  await bob.page.locator('#chat-name', { hasText: 'Trip 2026' }).waitFor({ timeout: T });
  const found = bob.page.locator('#msg-list .msg.flash', { hasText: '東京' });
  await found.waitFor({ timeout: T });
  await inView(bob, found);
  log('search: in this chat only, a word search');
  await bob.page.getByRole('button', { name: 'Search in this chat' }).click();
  await bob.page.locator('#search-q').fill('sushi');
  await bob.page.locator('#panel').getByRole('button', { name: 'Search', exact: true }).click();
  await bob.page.locator('#panel .search-hit mark', { hasText: 'sushi' }).waitFor({ timeout: T });
  await bob.page.getByRole('button', { name: 'Close panel' }).click();
}

async function forwarding(ctx) {
  const { bob, carol } = ctx;
  log('forward: bob picks another chat; carol sees the copy marked "Forwarded"');
  await act(bob, msg(bob, 'Ideas for dinner?'), 'Forward');
  await bob.page.locator('#dialog').getByRole('button', { name: 'Team' }).click();
  await bob.page.locator('.toast', { hasText: 'Forwarded to Team' }).waitFor({ timeout: T });
  await openRoom(carol, 'Team');
  const copy = msg(carol, 'Ideas for dinner?');
  await copy.locator('.forwarded', { hasText: 'Forwarded' }).waitFor({ timeout: T });
  await shot(carol, 'forwarded');
}

async function resume(ctx) {
  const { alice, bob } = ctx;
  log('reconnect: an edit and a reaction made while bob was offline arrive by sync, without a reload');
  await openRoom(bob, 'Trip 2026');
  await bubble(bob, 'Or sushi?').waitFor({ timeout: T });
  const sushi = (await rest(bob, 'GET', `/messages/history?roomId=${ctx.trip.id}&limit=20`)).messages.find((m) => m.content === 'Or sushi?');
  const dinner = (await rest(alice, 'GET', `/messages/history?roomId=${ctx.trip.id}&limit=20`)).messages.find((m) => m.content === 'Ideas for dinner?');
  await bob.page.evaluate(() => { window.stayedLoaded = true; });
  await bob.context.setOffline(true);
  await bob.page.locator('#conn:not(:empty)').waitFor({ timeout: T });
  await rest(alice, 'PATCH', `/messages/${dinner.id}`, { content: 'Ideas for dinner tonight?' });
  await rest(alice, 'PUT', `/messages/${sushi.id}/reactions/${encodeURIComponent('🎉')}`);
  const frames = sentFrames.get('bob');
  const before = frames.length;
  await bob.context.setOffline(false);
  await bubble(bob, 'Ideas for dinner tonight?').waitFor({ timeout: 30_000 });
  await msg(bob, 'Or sushi?').locator('.reaction[data-emoji="🎉"]').waitFor({ timeout: T });
  assert.equal(await bob.page.evaluate(() => window.stayedLoaded), true, 'no reload');
  const sync = frames.slice(before).find((f) => f.type === 'sync');
  assert.ok(sync, 'a sync was sent');
  assert.ok(sync.changes[ctx.trip.id] > 0, `the room's change number was sent: ${JSON.stringify(sync.changes)}`);
  // The edit reached the thread's root everywhere it shows.
  await msg(bob, 'Ideas for dinner tonight?').locator('.thread-count', { hasText: '2 replies' }).waitFor({ timeout: T });
}

export async function conversations({ alice, bob, carol }) {
  const ids = {};
  for (const u of [alice, bob, carol]) ids[u.name] = (await rest(u, 'GET', '/users/me')).id;
  const ctx = { alice, bob, carol, ids };
  await events(ctx);
  await replies(ctx);
  await removal(ctx);
  await jumpToOriginal(ctx);
  await threads(ctx);
  await reactions(ctx);
  await mentions(ctx);
  await linkPreviews(ctx);
  await pins(ctx);
  await search(ctx);
  await forwarding(ctx);
  await resume(ctx);
}
