// The side panel beside the conversation: a thread, the room's pins, or search results.
// One at a time; on a phone it covers the screen.

import { h, $ } from './util.js';

let current = null; // { kind, onClose }

/** Opens the panel with a title and body; `kind` names what it shows ('thread', …). */
export function openPanel(kind, title, body, { onClose } = {}) {
  if (current && current.kind !== kind) current.onClose?.();
  current = { kind, onClose };
  const panel = $('#panel');
  panel.dataset.kind = kind;
  $('#panel-title').textContent = title;
  $('#panel-body').replaceChildren(...[body].flat());
  panel.hidden = false;
  document.body.classList.add('panel-open');
}

/** Closes the panel (if it shows `kind`, when given). */
export function closePanel(kind) {
  if (!current || (kind && current.kind !== kind)) return;
  const was = current;
  current = null;
  $('#panel').hidden = true;
  document.body.classList.remove('panel-open');
  was.onClose?.();
}

/** What the panel shows now, or null. */
export const panelKind = () => current?.kind || null;

export function initPanel() {
  $('#panel-close').addEventListener('click', () => closePanel());
  $('#panel').addEventListener('keydown', (e) => { if (e.key === 'Escape' && !e.defaultPrevented) closePanel(); });
}

/** A small text-only empty or error line for a panel list. */
export const note = (text, cls = 'muted') => h('p', { class: `panel-note ${cls}` }, text);
