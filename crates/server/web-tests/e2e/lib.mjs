// Helpers of the end-to-end tests: the browser, users registered through the UI, REST
// calls with a user's token, sending through the composer, a test PNG.
import { chromium } from 'playwright-core';
import { deflateSync } from 'node:zlib';
import assert from 'node:assert/strict';

export const base = process.argv[2];
export const shots = process.argv[3];
export const T = 15_000;
export const PASSWORD = 'correct horse battery';

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'],
});

let step = '';
export const currentStep = () => step;
export const log = (s) => { step = s; console.log(`e2e: ${s}`); };
export const failures = [];
// Every URL the pages load or connect to: none may carry an access token.
export const urls = [];
/** Every frame a page sent on its socket, parsed, per user name. */
export const sentFrames = new Map();

/** Registers `name` through the UI in a new browser context; resolves once live. */
export async function newUser(name, viewport = { width: 1200, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  sentFrames.set(name, []);
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => {
    urls.push(ws.url());
    ws.on('framesent', (f) => { try { sentFrames.get(name).push(JSON.parse(f.payload)); } catch { /* not JSON */ } });
    // E2E_FRAMES=alice prints what alice's socket receives (pongs left out).
    if (process.env.E2E_FRAMES === name) ws.on('framereceived', (f) => { if (!f.payload.includes('"pong"')) console.log(`${name} <-`, String(f.payload).slice(0, 300)); });
  });
  page.on('pageerror', (e) => failures.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) failures.push(`${name}: console: ${m.text()}`); });
  await page.goto(base);
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Display name').fill(name[0].toUpperCase() + name.slice(1));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).last().click();
  await page.locator('#main').waitFor({ state: 'visible', timeout: T });
  await page.locator('#conn:empty').waitFor({ state: 'attached', timeout: T });
  return { name, context, page };
}

export const token = (u) => u.page.evaluate(() => JSON.parse(localStorage.getItem('palaver.session')).accessToken);

/** A REST call as user `u`; asserts success and answers the JSON body (null for 204). */
export async function rest(u, method, path, body) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method, headers: { Authorization: `Bearer ${await token(u)}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  assert.ok(res.ok, `${method} ${path}: ${res.status}`);
  return res.status === 204 ? null : res.json();
}

/** Types `text` in the composer and presses Enter. */
export async function send(u, text) {
  await u.page.getByLabel('Message', { exact: true }).fill(text);
  await u.page.getByLabel('Message', { exact: true }).press('Enter');
}

export const bubble = (u, text) => u.page.locator('#msg-list .msg .text', { hasText: text });

/** A screenshot into the screenshot directory, if one was given. */
export async function shot(u, name) {
  if (shots) await u.page.screenshot({ path: `${shots}/${name}.png` });
}

/** A small valid PNG (a gradient), so the server's decoder accepts it. */
export function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => { const len = Buffer.alloc(4); len.writeUInt32BE(data.length); const td = Buffer.concat([Buffer.from(type), data]); const c = Buffer.alloc(4); c.writeUInt32BE(crc(td)); return Buffer.concat([len, td, c]); };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const o = y * (w * 3 + 1) + 1 + x * 3; raw[o] = (x * 255) / w; raw[o + 1] = 118; raw[o + 2] = (y * 255) / h; }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
