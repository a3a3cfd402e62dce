// Notifications: the Notification API while the tab is hidden, and Web Push through the
// service worker once the server offers it (feature-detected: hidden when it answers 404).

import { api, ApiError } from './api.js';
import { displayName, mentionsMe } from './store.js';

const MUTED = 'palaver.muted';
let pushKey = null; // the server's VAPID public key, once known to exist

export const muted = () => new Set(JSON.parse(localStorage.getItem(MUTED) || '[]'));

export async function setMuted(roomId, on) {
  const set = muted();
  on ? set.add(roomId) : set.delete(roomId);
  localStorage.setItem(MUTED, JSON.stringify([...set]));
  // The server-side mute silences push too; it may not exist yet on this server.
  try { await api(on ? 'PUT' : 'DELETE', `/rooms/${roomId}/mute`); } catch (e) { if (!(e instanceof ApiError)) throw e; }
}

/** Takes the mutes kept on the server (set from another device, too). */
export async function syncMuted() {
  try {
    const { mutedRooms } = await api('GET', '/push/settings');
    if (Array.isArray(mutedRooms)) localStorage.setItem(MUTED, JSON.stringify(mutedRooms));
  } catch { /* an older server without push settings: keep the local list */ }
}

export const canNotify = () => 'Notification' in window;

export async function askPermission() {
  if (!canNotify()) return 'unsupported';
  return Notification.permission === 'default' ? Notification.requestPermission() : Notification.permission;
}

export async function registerWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try { return await navigator.serviceWorker.register('/sw.js'); } catch { return null; }
}

export async function notifyMessage(room, m) {
  if (!document.hidden || !canNotify() || Notification.permission !== 'granted' || muted().has(room.id)) return;
  // The room's level (details dialog): everything, mentions of me only, or nothing.
  const level = room.notificationLevel || 'all';
  if (m.type === 'event' || level === 'nothing' || (level === 'mentions' && !mentionsMe(m))) return;
  const title = room.isGroup ? `${displayName(m.senderId)} in ${room.name}` : room.name;
  const body = m.content || `Sent a ${m.type}`;
  const reg = await navigator.serviceWorker?.getRegistration?.();
  const opts = { body, tag: room.id, icon: '/icon.svg', data: { roomId: room.id } };
  if (reg) reg.showNotification(title, opts);
  else new Notification(title, opts).onclick = () => window.focus();
}

/** True when the server and browser both support Web Push. */
export async function pushAvailable() {
  if (!('PushManager' in window) || !('serviceWorker' in navigator)) return false;
  if (pushKey) return true;
  try {
    pushKey = (await api('GET', '/push/vapid-public-key'))?.publicKey || null;
    if (pushKey) return true;
  } catch { /* push disabled on this server (503), or an older server (404) */ }
  return false;
}

function keyBytes(b64) {
  const s = atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** True when this browser's subscription is registered for this session (a subscription
 * ends with the session that registered it). */
export async function pushSubscribed() {
  const reg = await navigator.serviceWorker?.getRegistration?.();
  const existing = await reg?.pushManager.getSubscription();
  if (!existing) return false;
  const { subscriptions } = await api('GET', '/push/subscriptions').catch(() => ({ subscriptions: [] }));
  return subscriptions.some((s) => s.endpoint === existing.endpoint);
}

export async function setPush(on) {
  const reg = (await navigator.serviceWorker.getRegistration()) || (await registerWorker());
  if (!reg) throw new Error('service worker unavailable');
  const existing = await reg.pushManager.getSubscription();
  if (on) {
    if ((await askPermission()) !== 'granted') throw new Error('notifications are blocked');
    const subscribe = () => reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(pushKey) });
    try {
      await api('POST', '/push/subscriptions', (existing || await subscribe()).toJSON());
    } catch (e) {
      // Another account, still logged in, registered this browser's endpoint: a new
      // subscription has an endpoint of its own.
      if (!existing || e.code !== 'conflict') throw e;
      await existing.unsubscribe();
      await api('POST', '/push/subscriptions', (await subscribe()).toJSON());
    }
  } else if (existing) {
    const { subscriptions } = await api('GET', '/push/subscriptions').catch(() => ({ subscriptions: [] }));
    for (const sub of subscriptions.filter((x) => x.endpoint === existing.endpoint)) {
      await api('DELETE', `/push/subscriptions/${sub.id}`).catch(() => {});
    }
    await existing.unsubscribe();
  }
}

/** Forgets this browser's subscription, at logout: the server drops it with the session,
 * and whoever logs in here next opts in for themselves. */
export async function dropPush() {
  const reg = await navigator.serviceWorker?.getRegistration?.();
  const existing = await reg?.pushManager.getSubscription();
  await existing?.unsubscribe().catch(() => {});
}
