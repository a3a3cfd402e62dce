// A link preview card under a message, when the server attached one (`linkPreview`,
// arriving later by message.updated). Text goes in as text; the link is followed only if
// it is http(s), in a new tab, without referrer or opener.

import { h } from './util.js';

function safeUrl(raw) {
  try {
    const u = new URL(raw, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch { return null; }
}

/** The card for `m.linkPreview`, or null (none, or not an http(s) link). */
export function linkPreviewCard(m) {
  const p = m.linkPreview;
  if (!p || m.deleted) return null;
  const href = safeUrl(p.url);
  if (!href) return null;
  const image = p.imageUrl && safeUrl(p.imageUrl);
  const host = new URL(href).host;
  return h('a', { class: 'link-card', href, target: '_blank', rel: 'noopener noreferrer' },
    image ? h('img', { src: image, alt: '', loading: 'lazy', decoding: 'async', referrerpolicy: 'no-referrer', onerror: (e) => e.target.remove() }) : null,
    h('span', { class: 'link-card-text' },
      h('span', { class: 'link-site' }, p.siteName || host),
      h('span', { class: 'link-title' }, p.title || href),
      p.description ? h('span', { class: 'link-desc' }, p.description) : null));
}
