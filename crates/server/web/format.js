// Message text → DOM: a small, safe Markdown subset. Every node is built with
// createElement / createTextNode, never from HTML, so no input can become markup; the raw
// text stays what is stored, sent and edited.
//
// Grammar (line-based blocks, then inline spans inside each block's text):
//
//   text      := block*                      blank lines separate blocks
//   block     := fence | quote | ulist | olist | para
//   fence     := "```" [lang] NL line* ("```" | end)   lines kept verbatim, no spans
//   quote     := (">" [" "] line)+           its lines parsed again as text (nested blocks)
//   ulist     := ("- " line)+                one <li> per line
//   olist     := (digits ". " line)+         one <li> per line, numbered from the first
//   para      := line+                       lines not starting another block; line
//                                            breaks kept
//   span      := "\" punct                   the character itself
//              | "`" [^`]+ "`"               code, nothing inside it is formatted
//              | "**" span+ "**"             strong
//              | "*" span+ "*" | "_" span+ "_"   emphasis (`_` only between non-word
//                                            characters, so snake_case stays as it is)
//              | "[" text "](" url ")"       a link (its text plain), if url is http(s);
//                                            else plain text
//              | url                         http(s)://… up to a space, trailing
//                                            punctuation left out
//              | char
//
// Links are only ever http: or https: (checked with the URL parser, after which the
// parsed href is used), open in a new tab, and carry rel="noopener noreferrer".

const MAX_DEPTH = 4; // quotes in quotes, spans in spans: deep enough, and bounded

/** Renders message text as an array of block nodes. */
export function renderText(text) {
  return blocks(String(text ?? '').replace(/\r\n?/g, '\n').split('\n'), 0);
}

/** The text as a reader sees it, without markup characters (for previews). */
export function plainText(text) {
  const holder = document.createElement('div');
  holder.append(...renderText(text));
  return holder.textContent.replace(/\s+/g, ' ').trim();
}

const el = (tag, ...children) => {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
};

const FENCE = /^\s*```/;
const QUOTE = /^\s*>/;
const BULLET = /^\s*- (.*)$/;
const NUMBERED = /^\s*(\d{1,9})\. (.*)$/;

function startsBlock(line) {
  return FENCE.test(line) || QUOTE.test(line) || BULLET.test(line) || NUMBERED.test(line) || !line.trim();
}

function blocks(lines, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    if (FENCE.test(line)) {
      const body = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      const lang = line.trim().slice(3).trim();
      const code = el('code', body.join('\n'));
      if (/^[\w+-]{1,20}$/.test(lang)) code.dataset.lang = lang;
      out.push(el('pre', code));
    } else if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && QUOTE.test(lines[i])) inner.push(lines[i++].replace(/^\s*> ?/, ''));
      out.push(depth < MAX_DEPTH ? el('blockquote', ...blocks(inner, depth + 1)) : el('blockquote', inner.join('\n')));
    } else if (BULLET.test(line)) {
      const list = el('ul');
      while (i < lines.length && BULLET.test(lines[i])) list.append(el('li', ...spans(lines[i++].match(BULLET)[1], depth)));
      out.push(list);
    } else if (NUMBERED.test(line)) {
      const list = el('ol');
      const first = Number(line.match(NUMBERED)[1]);
      if (first !== 1) list.start = first;
      while (i < lines.length && NUMBERED.test(lines[i])) list.append(el('li', ...spans(lines[i++].match(NUMBERED)[2], depth)));
      out.push(list);
    } else {
      const para = [line];
      i++;
      while (i < lines.length && !startsBlock(lines[i])) para.push(lines[i++]);
      out.push(el('p', ...spans(para.join('\n'), depth)));
    }
  }
  return out;
}

/** An http(s) URL's parsed href, or null for anything else (javascript:, data:, …). */
export function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function link(href, ...children) {
  const a = el('a', ...children);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

const AUTOLINK = /^https?:\/\/[^\s<>"]+/i;
const PUNCT = /[!-/:-@[-`{-~]/;
const WORD = /[\p{L}\p{N}_]/u;

/** A bare URL's extent: trailing punctuation is the sentence's, and a closing parenthesis
 * is the URL's only when it has an opening one. */
function urlAt(s) {
  const m = s.match(AUTOLINK);
  if (!m) return null;
  let url = m[0];
  for (;;) {
    const last = url.at(-1);
    if ('.,;:!?\'"*_'.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && url.split('(').length < url.split(')').length) url = url.slice(0, -1);
    else break;
  }
  return url;
}

/** The closing `marker` of a span opened at `from`: not right after the opening, not
 * after a space, and (for `_`) not followed by a word character. */
function closing(s, marker, from) {
  let at = from;
  for (;;) {
    at = s.indexOf(marker, at);
    if (at < 0) return -1;
    // A single `*` never closes on half of a `**` (`*a **b** c*` is one emphasis).
    if (marker === '*' && s[at + 1] === '*') { at += 2; continue; }
    const ok = at > from && !/\s/.test(s[at - 1]) && s[at - 1] !== '\\'
      && (marker !== '_' || !WORD.test(s[at + 1] || ''));
    if (ok) return at;
    at++;
  }
}

function spans(s, depth) {
  const out = [];
  let plain = '';
  const flush = () => { if (plain) { out.push(document.createTextNode(plain)); plain = ''; } };
  let i = 0;
  while (i < s.length) {
    const rest = s.slice(i);
    const c = s[i];
    const prev = i > 0 ? s[i - 1] : '';
    if (c === '\\' && PUNCT.test(s[i + 1] || '')) { plain += s[i + 1]; i += 2; continue; }
    if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end > i + 1) { flush(); out.push(el('code', s.slice(i + 1, end))); i = end + 1; continue; }
    }
    if (depth < MAX_DEPTH && rest.startsWith('**') && !/\s/.test(s[i + 2] || ' ')) {
      const end = closing(s, '**', i + 2);
      if (end > 0) { flush(); out.push(el('strong', ...spans(s.slice(i + 2, end), depth + 1))); i = end + 2; continue; }
    }
    if (depth < MAX_DEPTH && (c === '*' || (c === '_' && !WORD.test(prev))) && !/\s/.test(s[i + 1] || ' ')) {
      const end = closing(s, c, i + 1);
      if (end > 0) { flush(); out.push(el('em', ...spans(s.slice(i + 1, end), depth + 1))); i = end + 1; continue; }
    }
    if (c === '[') {
      const m = rest.match(/^\[([^\]\n]+)\]\(([^\s()]+)\)/);
      const href = m && safeHref(m[2]);
      // The link's text is plain: a link inside it would nest one <a> in another.
      if (href) { flush(); out.push(link(href, m[1])); i += m[0].length; continue; }
    }
    if ((c === 'h' || c === 'H') && !WORD.test(prev)) {
      const url = urlAt(rest);
      const href = url && safeHref(url);
      if (href) { flush(); out.push(link(href, url)); i += url.length; continue; }
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}
