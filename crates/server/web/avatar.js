// Avatars: a user's or a group's picture, or, without one (or while it cannot load), the
// initials of the name on a colour derived from the id, so the same person has the same
// colour everywhere and on every device.

import { initials } from './util.js';

/** A hue from an id (FNV-1a over its characters): stable, and spread around the wheel. */
export function hueOf(id) {
  let hash = 0x811c9dc5;
  for (const ch of String(id || '')) {
    hash ^= ch.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % 360;
}

/** The path of a signed link without its signature: the same picture, whatever its expiry. */
const picturePath = (url) => (url ? url.split('?')[0] : '');

/**
 * Fills an avatar element (any element with class `avatar`) with a picture or initials.
 * An element already showing this picture keeps its <img> (a fresh signature for the
 * same file does not reload it).
 */
export function fillAvatar(el, { name, url, id }) {
  el.style.setProperty('--avatar-bg', `hsl(${hueOf(id)} 55% 42%)`);
  const shown = el.querySelector('img');
  if (url && shown && picturePath(shown.getAttribute('src')) === picturePath(url)) return el;
  const fallback = () => { el.classList.remove('has-picture'); el.replaceChildren(initials(name)); };
  if (!url) { fallback(); return el; }
  const img = document.createElement('img');
  img.alt = '';
  img.decoding = 'async';
  img.addEventListener('error', fallback, { once: true });
  img.src = url;
  el.classList.add('has-picture');
  el.replaceChildren(img);
  return el;
}

/** A new avatar element: `small` for lists and messages, `large` for dialogs. */
export function avatar({ name, url, id, size = '', group = false }) {
  const el = document.createElement('span');
  el.className = ['avatar', size, group ? 'group' : ''].filter(Boolean).join(' ');
  el.setAttribute('aria-hidden', 'true');
  return fillAvatar(el, { name, url, id });
}
