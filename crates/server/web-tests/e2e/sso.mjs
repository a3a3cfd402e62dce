// Single sign-on in the browser (when tests/web.rs started the OpenID provider): the
// login screen's provider button, the provider's login and consent pages, and back in
// the web client logged in as a new account named after the provider's user.
import assert from 'node:assert/strict';
import { browser, base, T, log, urls } from './lib.mjs';

export async function sso() {
  log('uma logs in with the provider from the login screen');
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  page.on('request', (r) => urls.push(r.url()));
  await page.goto(base);
  await page.getByRole('link', { name: 'Log in with Test login' }).click();
  // The provider's own pages (oidc-provider's development login and consent).
  await page.locator('input[name="login"]').fill('uma');
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await page.locator('button[type="submit"]', { hasText: 'Continue' }).click();
  await page.locator('#main').waitFor({ state: 'visible', timeout: T });
  await page.locator('#me-name', { hasText: 'Uma' }).waitFor({ timeout: T });
  assert.equal(new URL(page.url()).hash, '', 'the one-time code is gone from the address bar');
  await context.close();
}
