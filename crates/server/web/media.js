// Media in a message: pictures (opening in the viewer), video, audio and file cards.

import { api, linkExpired } from './api.js';
import { h, $, humanSize } from './util.js';

// Media URLs are signed links that expire (the server's media.link_ttl_secs), never a
// token: an element whose link failed, or a download whose link is stale, gets the
// message again for fresh links.

/** The message's media with working links, fetched again when stale (or `force`). */
async function freshMedia(msg, force = false) {
  if (!force && msg.media && !linkExpired(msg.media.url)) return msg.media;
  const fresh = await api('GET', `/messages/${msg.id}`);
  if (fresh.media) msg.media = fresh.media;
  return fresh.media;
}

/** Reloads an <img>/<video>/<audio> once from fresh links when its link fails. */
function relinked(el, msg, pick) {
  el.addEventListener('error', async () => {
    if (el.dataset.relinked) return;
    el.dataset.relinked = '1';
    try {
      const m = await freshMedia(msg, true);
      if (m) el.src = pick(m);
    } catch { /* gone, or no longer visible */ }
  });
  return el;
}

/** A download link that swaps a stale signed URL for a fresh one before following it. */
function downloadLink(msg, attrs, ...children) {
  const a = h('a', { ...attrs, href: msg.media.url }, ...children);
  a.addEventListener('click', async (e) => {
    if (!linkExpired(a.href)) return;
    e.preventDefault();
    try {
      const m = await freshMedia(msg);
      if (m) { a.href = m.url; a.click(); }
    } catch { /* gone, or no longer visible */ }
  });
  return a;
}

/** The media of a message, or null. */
export function mediaNode(msg) {
  const m = msg.media;
  if (!m) return null;
  if (m.type === 'image') {
    const img = relinked(h('img', {
      src: m.thumbnailUrl || m.url, alt: m.filename || 'Picture', loading: 'lazy', decoding: 'async', class: 'thumb',
    }), msg, (fresh) => fresh.thumbnailUrl || fresh.url);
    // Known dimensions reserve the space, so pictures loading never move the list.
    if (m.width && m.height) {
      const w = Math.min(280, m.width);
      img.width = w;
      img.height = Math.round((w * m.height) / m.width);
    }
    return h('button', { type: 'button', class: 'media-open', 'aria-label': `Open picture ${m.filename || ''}`, onclick: () => openViewer(msg) }, img);
  }
  const url = (fresh) => fresh.url;
  if (m.type === 'video') return relinked(h('video', { src: m.url, controls: true, preload: 'metadata', class: 'video' }), msg, url);
  if (m.type === 'audio') return relinked(h('audio', { src: m.url, controls: true, preload: 'metadata' }), msg, url);
  return downloadLink(msg, { class: 'file-card', download: m.filename || 'file', rel: 'noopener' },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, '⤓'),
    h('span', { class: 'file-name' }, m.filename || 'File'),
    h('span', { class: 'file-size' }, humanSize(m.size || 0)));
}


function openViewer(msg) {
  const m = msg.media;
  const v = $('#viewer');
  v.replaceChildren(
    h('button', { type: 'button', class: 'icon-btn close', 'aria-label': 'Close', onclick: () => v.close() }, '✕'),
    relinked(h('img', { src: m.url, alt: m.filename || 'Picture' }), msg, (fresh) => fresh.url),
    downloadLink(msg, { download: m.filename || 'picture', class: 'link' }, 'Download'));
  v.onclick = (e) => { if (e.target === v) v.close(); };
  v.showModal();
}
