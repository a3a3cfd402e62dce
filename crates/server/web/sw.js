// Service worker: shows Web Push notifications and focuses the app when one is clicked.
// It does not intercept fetches, so the page always talks to the live server.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { body: event.data?.text() }; }
  const title = data.title || data.senderName || 'Palaver';
  const body = data.body || data.content || 'New message';
  const roomId = data.roomId || data.room_id || '';
  event.waitUntil((async () => {
    // No notification while a window of ours is visible: the page shows it already.
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    if (wins.some((w) => w.visibilityState === 'visible')) return;
    await self.registration.showNotification(title, { body, tag: roomId || undefined, icon: '/icon.svg', data: { roomId } });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const roomId = event.notification.data?.roomId;
  const url = roomId ? `/#room=${encodeURIComponent(roomId)}` : '/';
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of wins) {
      w.postMessage({ type: 'open-room', roomId });
      return w.focus();
    }
    return self.clients.openWindow(url);
  })());
});
