// Real-browser test of the session cookie with a cross-origin (same-site) SPA.
// Run by tests/browser/run.sh, which starts the two static servers; needs a running API started with
//   APP_ENV=development COOKIE_SECURE=false COOKIE_SAMESITE=Lax CORS_ALLOWED_ORIGINS=http://localhost:$SPA_PORT
//   FRONTEND_URL=http://localhost:$SPA_PORT (passkeys: RP ID localhost, the SPA's origin their only origin)
// and, for the walks through mail, MAIL_URL at a Mailpit. Everything runs on localhost: browsers refuse
// passkeys on an IP address.
// Env: API_URL (default http://localhost:8080), SPA_PORT (default 5173), EVIL_PORT (default 5174),
//      CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default docs/),
//      MAILPIT_API (that Mailpit's HTTP API; unset, the walks through mail are skipped).
// The second-factor tests enrol TOTP from the SPA and compute the codes here (node:crypto), as an authenticator app does.
// The passkey tests give each browser tab a virtual authenticator (Chrome DevTools Protocol, WebAuthn domain).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const API_URL = (process.env.API_URL || 'http://localhost:8080').replace(/\/+$/, '');
// The server's session cookie: sessionId on plain http (COOKIE_SECURE=false), as this test runs it.
const COOKIE_NAME = process.env.COOKIE_NAME || 'sessionId';
const SPA_ORIGIN = `http://localhost:${process.env.SPA_PORT || 5173}`;
// Untrusted: not in CORS_ALLOWED_ORIGINS nor WEBAUTHN_RP_ORIGINS, but same-site and on the passkeys' RP ID.
const EVIL_ORIGIN = `http://localhost:${process.env.EVIL_PORT || 5174}`;
// Screenshots for the README go to docs/ unless SCREENSHOT_DIR says otherwise (CI keeps the tree clean).
const DOCS = path.resolve(process.env.SCREENSHOT_DIR || fileURLToPath(new URL('../../docs/', import.meta.url))) + path.sep;
const TIMEOUT = 15_000;
const MAILPIT_API = (process.env.MAILPIT_API || '').replace(/\/+$/, '');
const NO_MAILPIT = MAILPIT_API ? false : 'MAILPIT_API unset: no mail server to read the links from';

const rnd = () => Math.random().toString(36).slice(2, 10);
const stamp = `${Date.now()}-${rnd()}`;
const EMAIL = `spa-${stamp}@example.com`;
const PASSWORD = `Br0-${rnd()}${rnd()}`;

let browser;
let ctx1;
let page1;

// A plain HTTP request from node, so the test can send the headers a browser would (Origin, Sec-Fetch-Site).
function rawRequest(method, path, headers = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    if (body !== undefined) headers = { ...headers, 'Content-Type': 'application/json' };
    const req = http.request(API_URL + path, { method, headers, timeout: TIMEOUT }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(body); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// The mail to `to` with `subject` that Mailpit received (waiting for it: mail goes out after the answer),
// and the link of its plain-text body to `page` (/reset-password, /verify-email).
async function mailedLink(to, subject, page) {
  const getJSON = async (url) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT) });
    assert.equal(res.status, 200, `Mailpit GET ${url}`);
    return res.json();
  };
  const search = `${MAILPIT_API}/api/v1/search?query=${encodeURIComponent(`to:"${to}"`)}`;
  for (const deadline = Date.now() + TIMEOUT; ; await new Promise((r) => setTimeout(r, 200))) {
    const found = (await getJSON(search)).messages.find((m) => m.Subject === subject);
    if (found) {
      const mail = await getJSON(`${MAILPIT_API}/api/v1/message/${encodeURIComponent(found.ID)}`);
      const link = mail.Text.match(/https?:\/\/\S+#token=[A-Za-z0-9_-]+/)?.[0];
      assert.ok(link, `a link with a token in the mail "${subject}": ${mail.Text}`);
      assert.ok(link.startsWith(`${SPA_ORIGIN}${page}#token=`), `the link opens the SPA's ${page} (FRONTEND_URL=${SPA_ORIGIN}): ${link}`);
      return link;
    }
    assert.ok(Date.now() < deadline, `no mail "${subject}" to ${to} in Mailpit within ${TIMEOUT} ms`);
  }
}
async function expectMessage(page, text) {
  await idle(page);
  const got = await page.locator('#message').textContent();
  assert.ok(got.startsWith(text), `#message: got "${got}", want "${text}…"`);
}

async function sessionCookieHeader(ctx) {
  const cookies = await ctx.cookies(API_URL);
  const c = cookies.find((x) => x.name === COOKIE_NAME);
  assert.ok(c, `context has a ${COOKIE_NAME} cookie for ${API_URL}: ${JSON.stringify(cookies.map((x) => x.name))}`);
  return `${c.name}=${c.value}`;
}

async function idle(page) {
  await page.waitForFunction(() => document.body.dataset.ready === '1' && !document.body.dataset.busy, null, { timeout: TIMEOUT });
}
async function expectStatus(page, text) {
  await idle(page);
  const got = await page.locator('#status').textContent();
  assert.equal(got, text, `#status (message: ${await page.locator('#message').textContent()})`);
  assert.ok(await page.locator('#status').isVisible(), '#status is visible');
}
async function openSpa(page) {
  await page.goto(SPA_ORIGIN + '/', { waitUntil: 'load' });
  await idle(page);
}
async function fill(page, { email, password, name }) {
  await page.fill('#email', email);
  await page.fill('#password', password);
  if (name !== undefined) await page.fill('#name', name);
}
async function click(page, selector) {
  await idle(page);
  await page.click(selector);
  await idle(page);
}

before(async () => {
  fs.mkdirSync(DOCS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  ctx1 = await browser.newContext({ viewport: { width: 900, height: 640 } });
  ctx1.setDefaultTimeout(TIMEOUT);
  page1 = await ctx1.newPage();
});

after(async () => {
  await browser?.close();
});

test('the page starts logged out', async () => {
  await openSpa(page1);
  await expectStatus(page1, 'logged out');
});

test('register logs the user in (cookie set cross-origin, CORS preflight passes)', async () => {
  await fill(page1, { email: EMAIL, password: PASSWORD, name: 'SPA Tester' });
  await click(page1, '#register');
  await expectStatus(page1, EMAIL);
  const c = (await ctx1.cookies(API_URL)).find((x) => x.name === COOKIE_NAME);
  assert.ok(c, `${COOKIE_NAME} cookie stored`);
  assert.equal(c.httpOnly, true, 'HttpOnly');
  assert.equal(c.sameSite, 'Lax', 'SameSite from COOKIE_SAMESITE=Lax');
  assert.equal(await page1.evaluate((name) => document.cookie.includes(name), COOKIE_NAME), false, 'not visible to scripts');
});

test('logout, then login and /me show the email', async () => {
  await click(page1, '#logout');
  await expectStatus(page1, 'logged out');
  await fill(page1, { email: EMAIL, password: PASSWORD });
  await click(page1, '#login');
  await expectStatus(page1, EMAIL);
  const meResponse = page1.waitForResponse((r) => r.url() === API_URL + '/me', { timeout: TIMEOUT });
  await click(page1, '#me');
  const r = await meResponse;
  assert.equal(r.status(), 200);
  assert.equal(r.headers()['access-control-allow-origin'], SPA_ORIGIN, 'CORS allows the SPA origin exactly');
  assert.equal(r.headers()['access-control-allow-credentials'], 'true');
  await expectStatus(page1, EMAIL);
  await page1.screenshot({ path: DOCS + 'spa-logged-in.png' });
});

test('a reload keeps the session', async () => {
  await page1.reload({ waitUntil: 'load' });
  await expectStatus(page1, EMAIL);
});

test('logout shows logged out, also after a reload', async () => {
  await click(page1, '#logout');
  await expectStatus(page1, 'logged out');
  await page1.reload({ waitUntil: 'load' });
  await expectStatus(page1, 'logged out');
  await fill(page1, { email: EMAIL, password: PASSWORD });
  await click(page1, '#login');
  await expectStatus(page1, EMAIL);
});

test('an untrusted origin cannot read /me nor log the user out', async (t) => {
  const evil = await ctx1.newPage();
  const seen = [];
  evil.on('response', (r) => { if (r.url().startsWith(API_URL)) seen.push({ url: r.url(), status: r.status(), acao: r.headers()['access-control-allow-origin'] }); });
  evil.on('requestfailed', (r) => { if (r.url().startsWith(API_URL)) seen.push({ url: r.url(), failed: r.failure()?.errorText }); });
  await evil.goto(EVIL_ORIGIN + '/', { waitUntil: 'load' });

  const read = await evil.evaluate(() => window.tryReadMe());
  assert.equal(read.readable, false, `GET /me must not be readable from ${EVIL_ORIGIN}: ${JSON.stringify(read)}`);
  const out = await evil.evaluate(() => window.tryLogout());
  if (out.readable) {
    assert.equal(out.status, 403, `POST /logout from ${EVIL_ORIGIN}: ${JSON.stringify(out)}`);
    assert.equal(JSON.parse(out.body).error, 'cross_origin_rejected');
  }
  for (const s of seen) {
    assert.ok(!s.acao, `no CORS header for an untrusted origin: ${JSON.stringify(s)}`);
    if (s.url === API_URL + '/logout' && s.status !== undefined) {
      assert.equal(s.status, 403, `POST /logout from the untrusted origin was answered ${s.status}`);
    }
  }
  await evil.close();
  t.diagnostic(`seen from ${EVIL_ORIGIN}: ${JSON.stringify({ read, out, seen })}`);

  // The same requests as the browser sent them, checked at the HTTP level.
  const cookie = await sessionCookieHeader(ctx1);
  const me = await rawRequest('GET', '/me', { Cookie: cookie, Origin: EVIL_ORIGIN, 'Sec-Fetch-Site': 'same-site' });
  assert.equal(me.status, 200, 'a GET is handled as usual');
  assert.equal(me.headers['access-control-allow-origin'], undefined, 'but gets no CORS header');
  assert.equal(me.headers['access-control-allow-credentials'], undefined);
  const lo = await rawRequest('POST', '/logout', { Cookie: cookie, Origin: EVIL_ORIGIN, 'Sec-Fetch-Site': 'same-site' });
  assert.equal(lo.status, 403, `POST /logout from an untrusted origin: ${lo.body}`);
  assert.equal(lo.json?.error, 'cross_origin_rejected');
  const pre = await rawRequest('OPTIONS', '/login', {
    Origin: SPA_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type',
  });
  assert.equal(pre.status, 204, 'preflight from the trusted origin');
  assert.equal(pre.headers['access-control-allow-origin'], SPA_ORIGIN);
  const evilPre = await rawRequest('OPTIONS', '/login', {
    Origin: EVIL_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type',
  });
  assert.equal(evilPre.headers['access-control-allow-origin'], undefined, 'no CORS for an untrusted preflight');

  // Still logged in, as seen from the trusted origin.
  await click(page1, '#me');
  await expectStatus(page1, EMAIL);
});

test('logout-all from a second browser logs out the first', async () => {
  const ctx2 = await browser.newContext({ viewport: { width: 900, height: 640 } });
  ctx2.setDefaultTimeout(TIMEOUT);
  try {
    const page2 = await ctx2.newPage();
    await openSpa(page2);
    await expectStatus(page2, 'logged out');
    await fill(page2, { email: EMAIL, password: PASSWORD });
    await click(page2, '#login');
    await expectStatus(page2, EMAIL);
    await click(page2, '#logout-all');
    await expectStatus(page2, 'logged out');
    const msg = await page2.locator('#message').textContent();
    const m = /revoked=(\d+)/.exec(msg);
    assert.ok(m, `logout-all reports revoked: ${msg}`);
    assert.ok(Number(m[1]) >= 2, `revoked counts both browsers' sessions: ${msg}`);
  } finally {
    await ctx2.close();
  }
  await click(page1, '#me');
  await expectStatus(page1, 'logged out');
  await page1.reload({ waitUntil: 'load' });
  await expectStatus(page1, 'logged out');
  await page1.screenshot({ path: DOCS + 'spa-logged-out.png' });
});

// A user of their own for the walks through mail, registered without the browser.
const MAIL_EMAIL = `spa-mail-${stamp}@example.com`;
const MAIL_PASSWORD = `Ml1-${rnd()}${rnd()}`;
const NEW_PASSWORD = `Nw2-${rnd()}${rnd()}`;
let mailUserCookie;

test('the link of the registration mail opens /verify-email, which verifies the address', { skip: NO_MAILPIT }, async () => {
  const reg = await rawRequest('POST', '/register', {}, { email: MAIL_EMAIL, password: MAIL_PASSWORD, name: 'Mail Tester' });
  assert.equal(reg.status, 201, `POST /register: ${reg.body}`);
  assert.equal(reg.json.user.email_verified, false, 'a new registration is not verified');
  mailUserCookie = [].concat(reg.headers['set-cookie'] || []).map((c) => c.split(';')[0]).find((c) => c.startsWith(COOKIE_NAME + '='));
  assert.ok(mailUserCookie, 'registration set the session cookie');

  const link = await mailedLink(MAIL_EMAIL, 'Confirm your email address', '/verify-email');
  const ctx = await browser.newContext({ viewport: { width: 900, height: 640 } });
  ctx.setDefaultTimeout(TIMEOUT);
  try {
    const page = await ctx.newPage();
    await page.goto(link, { waitUntil: 'load' });
    await expectMessage(page, 'POST /email/verify: 200');
    assert.equal(new URL(page.url()).hash, '', 'the page took the token out of the address bar');
  } finally {
    await ctx.close();
  }
  // The session opened by the registration shows it at once (its copy of the profile was rewritten).
  const me = await rawRequest('GET', '/me', { Cookie: mailUserCookie });
  assert.equal(me.status, 200, me.body);
  assert.equal(me.json.user.email_verified, true, 'GET /me shows the email verified');
});

test('forgot password -> mail -> reset page -> login with the new password', { skip: NO_MAILPIT }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 640 } });
  ctx.setDefaultTimeout(TIMEOUT);
  try {
    const page = await ctx.newPage();
    await openSpa(page);
    await expectStatus(page, 'logged out');
    await page.fill('#forgot-email', MAIL_EMAIL);
    await click(page, '#forgot');
    await expectMessage(page, 'POST /password/forgot: 202');

    const link = await mailedLink(MAIL_EMAIL, 'Reset your password', '/reset-password');
    await page.goto(link, { waitUntil: 'load' });
    await idle(page);
    assert.ok(await page.locator('#reset-form').isVisible(), 'the reset form shows on /reset-password');
    assert.equal(new URL(page.url()).pathname, '/reset-password');
    assert.equal(new URL(page.url()).hash, '', 'the page took the token out of the address bar');
    await page.fill('#new-password', NEW_PASSWORD);
    await page.screenshot({ path: DOCS + 'spa-reset-password.png' });
    await click(page, '#reset');
    await expectMessage(page, 'POST /password/reset: 200');

    // The reset ended every session, the one the registration opened included.
    const me = await rawRequest('GET', '/me', { Cookie: mailUserCookie });
    assert.equal(me.status, 401, `the session from before the reset still answers: ${me.body}`);

    // The link works once (a blank page first: from /reset-password, only the fragment would change).
    await page.goto('about:blank');
    await page.goto(link, { waitUntil: 'load' });
    await idle(page);
    await page.fill('#new-password', `${NEW_PASSWORD}-again`);
    await click(page, '#reset');
    await expectMessage(page, 'POST /password/reset: 400 invalid_token');

    // The old password is refused, the new one logs in, and /me answers.
    await fill(page, { email: MAIL_EMAIL, password: MAIL_PASSWORD });
    await click(page, '#login');
    await expectMessage(page, 'POST /login: 401 invalid_credentials');
    await expectStatus(page, 'logged out');
    await fill(page, { email: MAIL_EMAIL, password: NEW_PASSWORD });
    await click(page, '#login');
    await expectStatus(page, MAIL_EMAIL);
    const meResponse = page.waitForResponse((r) => r.url() === API_URL + '/me', { timeout: TIMEOUT });
    await click(page, '#me');
    const r = await meResponse;
    assert.equal(r.status(), 200);
    assert.equal((await r.json()).user.email, MAIL_EMAIL);
    await expectStatus(page, MAIL_EMAIL);
    assert.equal(await page.locator('#verified').textContent(), '(email verified)');
  } finally {
    await ctx.close();
  }
});

// The authenticator app: RFC 6238 codes (HMAC-SHA1, 6 digits, 30-second steps) of a base32 secret.
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    const i = alphabet.indexOf(ch);
    assert.ok(i >= 0, `not base32: ${text}`);
    value = ((value << 5) | i) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}
function totpCode(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[19] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// A user of their own for the second factor, enrolled from the SPA's "Two-factor" panel.
const TOTP_EMAIL = `spa-totp-${stamp}@example.com`;
const TOTP_PASSWORD = `Tf3-${rnd()}${rnd()}`;
let totpCtx;
let totpPage;
let totpSecret;
let totpBase; // the time step at enrolment; the codes of base-1, base, base+1 are used in that order
let recoveryCodes;

async function passwordStep(page) {
  await fill(page, { email: TOTP_EMAIL, password: TOTP_PASSWORD });
  await click(page, '#login');
  await expectMessage(page, 'POST /login: 200 mfa_required (totp, recovery_code)');
  await expectStatus(page, 'code needed');
  assert.ok(await page.locator('#mfa-form').isVisible(), 'the page asks for the second factor');
}
async function secondStep(page, code) {
  await page.fill('#mfa-code', code);
  await click(page, '#mfa-submit');
}

test('two-factor: the test computes RFC 6238 codes', () => {
  const rfc = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of the ASCII "12345678901234567890"
  assert.deepEqual([1, 37037036, 66666666, 666666666].map((step) => totpCode(rfc, step)),
    ['287082', '081804', '279037', '353130']);
});

test('two-factor: set up TOTP from the panel, with a code computed from the secret the page shows', async () => {
  totpCtx = await browser.newContext({ viewport: { width: 900, height: 900 } });
  totpCtx.setDefaultTimeout(TIMEOUT);
  totpPage = await totpCtx.newPage();
  await openSpa(totpPage);
  await fill(totpPage, { email: TOTP_EMAIL, password: TOTP_PASSWORD, name: 'TOTP Tester' });
  await click(totpPage, '#register'); // registering is a recent proof, which setting TOTP up needs
  await expectStatus(totpPage, TOTP_EMAIL);
  assert.ok(await totpPage.locator('#totp-card').isVisible(), 'the Two-factor panel shows when logged in');
  assert.equal(await totpPage.locator('#totp-state').textContent(), 'off');

  await click(totpPage, '#totp-start');
  await expectMessage(totpPage, 'POST /mfa/totp: 200');
  totpSecret = (await totpPage.locator('#totp-secret').textContent()).trim();
  assert.match(totpSecret, /^[A-Z2-7]{16,}=*$/, 'a base32 secret');
  const uri = await totpPage.locator('#totp-uri').textContent();
  assert.ok(uri.startsWith('otpauth://totp/'), `the otpauth URI: ${uri}`);
  assert.equal(new URL(uri).searchParams.get('secret'), totpSecret, 'the URI carries the same secret');

  // At least 10 s left in the time step, so that the three codes stay acceptable for the test's whole run.
  const left = 30_000 - (Date.now() % 30_000);
  if (left < 10_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
  totpBase = Math.floor(Date.now() / 30_000);
  const cookieBefore = await sessionCookieHeader(totpCtx);
  await totpPage.fill('#totp-code', totpCode(totpSecret, totpBase - 1));
  await click(totpPage, '#totp-confirm');
  await expectMessage(totpPage, 'POST /mfa/totp/confirm: 200');
  recoveryCodes = await totpPage.locator('#recovery-codes li').allTextContents();
  assert.equal(recoveryCodes.length, 10, `10 recovery codes shown: ${recoveryCodes}`);
  for (const code of recoveryCodes) assert.match(code, /^[A-Z2-7]{5}-[A-Z2-7]{5}$/);
  assert.equal(await totpPage.locator('#totp-state').textContent(), 'on', 'GET /me shows TOTP on');
  assert.equal(await totpPage.locator('#totp-start').isVisible(), false);
  // The first factor ends every session of the user; this browser got a new one in the same answer.
  assert.equal((await rawRequest('GET', '/me', { Cookie: cookieBefore })).status, 401, 'the session from before TOTP still answers');
  assert.equal((await rawRequest('GET', '/me', { Cookie: await sessionCookieHeader(totpCtx) })).status, 200);
  await totpPage.screenshot({ path: DOCS + 'spa-two-factor.png' });
});

test('two-factor: log out, log in with the password, then a TOTP code; /me answers', async () => {
  await click(totpPage, '#logout');
  await expectStatus(totpPage, 'logged out');
  await passwordStep(totpPage);
  // The half logged-in session survives a reload: GET /me answers 401 mfa_required, and the page asks again.
  await totpPage.reload({ waitUntil: 'load' });
  await expectStatus(totpPage, 'code needed');
  await expectMessage(totpPage, 'GET /me: 401 mfa_required');
  await totpPage.screenshot({ path: DOCS + 'spa-two-factor-login.png' });

  const near = [-2, -1, 0, 1, 2, 3].map((d) => totpCode(totpSecret, totpBase + d));
  let wrong = (Number(near[2]) + 500_000) % 1_000_000;
  while (near.includes(String(wrong).padStart(6, '0'))) wrong = (wrong + 1) % 1_000_000;
  await secondStep(totpPage, String(wrong).padStart(6, '0'));
  await expectMessage(totpPage, 'POST /login/mfa: 400 invalid_code');
  await expectStatus(totpPage, 'code needed');

  await secondStep(totpPage, totpCode(totpSecret, totpBase)); // a later step than the confirmation's
  await expectStatus(totpPage, TOTP_EMAIL);
  assert.equal(await totpPage.locator('#mfa-form').isVisible(), false);
  const meResponse = totpPage.waitForResponse((r) => r.url() === API_URL + '/me', { timeout: TIMEOUT });
  await click(totpPage, '#me');
  const r = await meResponse;
  assert.equal(r.status(), 200);
  assert.deepEqual((await r.json()).user.mfa, { totp: true, passkeys: 0 });
  await expectStatus(totpPage, TOTP_EMAIL);
});

test('two-factor: log in with a recovery code, which works once', async () => {
  try {
    await click(totpPage, '#logout');
    await expectStatus(totpPage, 'logged out');
    await passwordStep(totpPage);
    await secondStep(totpPage, recoveryCodes[0]);
    await expectStatus(totpPage, TOTP_EMAIL);
    await click(totpPage, '#me');
    await expectMessage(totpPage, 'GET /me: 200');

    await click(totpPage, '#logout');
    await passwordStep(totpPage);
    await secondStep(totpPage, recoveryCodes[0]);
    await expectMessage(totpPage, 'POST /login/mfa: 400 invalid_code');
    await expectStatus(totpPage, 'code needed');
    await click(totpPage, '#mfa-cancel'); // "start over" ends the pending session
    await expectStatus(totpPage, 'logged out');
  } finally {
    await totpCtx.close();
  }
});

// A virtual authenticator in the page's tab (Chrome DevTools Protocol): a platform authenticator (CTAP2,
// internal transport) that holds resident keys and verifies its user, and consents at once.
async function addAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return {
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    add: (credential) => cdp.send('WebAuthn.addCredential', { authenticatorId, credential }),
  };
}
// The rows of the Passkeys panel.
async function passkeyRows(page) {
  await idle(page);
  return page.locator('#passkey-list li').evaluateAll((items) => items.map((li) => ({
    id: li.dataset.id, name: li.querySelector('strong').textContent, when: li.querySelector('.when').textContent,
  })));
}
const clientData = (credential) => JSON.parse(Buffer.from(credential.response.clientDataJSON, 'base64url').toString('utf8'));
const setsSessionCookie = (res) => [].concat(res.headers['set-cookie'] || [])
  .some((c) => c.startsWith(COOKIE_NAME + '=') && !/max-age=(0|-)/i.test(c) && c.split(';')[0].length > COOKIE_NAME.length + 1);
// POST /login/passkey/begin from node: the options of a passwordless login.
async function beginPasskeyLogin() {
  const r = await rawRequest('POST', '/login/passkey/begin');
  assert.equal(r.status, 200, `POST /login/passkey/begin: ${r.body}`);
  return r.json.options;
}

// A user of their own for passkeys, on a tab with a virtual authenticator; the browser's own WebAuthn JSON
// helpers do the (de)serialising here (the TOTP user's tab below runs the README's fallback instead).
const PK_EMAIL = `spa-passkey-${stamp}@example.com`;
const PK_PASSWORD = `Pk4-${rnd()}${rnd()}`;
let pkCtx;
let pkPage;
let pkAuth;

test('passkeys: add one from the SPA after a recent proof; it ends the other sessions', async () => {
  pkCtx = await browser.newContext({ viewport: { width: 900, height: 1000 } });
  pkCtx.setDefaultTimeout(TIMEOUT);
  pkPage = await pkCtx.newPage();
  pkAuth = await addAuthenticator(pkPage);
  await openSpa(pkPage);
  assert.equal(await pkPage.evaluate(() => typeof PublicKeyCredential.parseRequestOptionsFromJSON), 'function',
    'this tab uses the browser\'s WebAuthn JSON helpers');
  await fill(pkPage, { email: PK_EMAIL, password: PK_PASSWORD, name: 'Passkey Tester' });
  await click(pkPage, '#register'); // registering is a recent proof, which adding a passkey needs
  await expectStatus(pkPage, PK_EMAIL);
  assert.ok(await pkPage.locator('#passkeys-card').isVisible(), 'the Passkeys panel shows when logged in (GET /passkeys 200)');
  assert.equal(await pkPage.locator('#passkey-count').textContent(), '0');
  assert.deepEqual(await passkeyRows(pkPage), []);
  const cookieBefore = await sessionCookieHeader(pkCtx);

  const begun = pkPage.waitForResponse((r) => r.url() === API_URL + '/passkeys/register/begin', { timeout: TIMEOUT });
  await pkPage.fill('#passkey-name', 'Test laptop');
  await click(pkPage, '#passkey-add');
  await expectMessage(pkPage, 'POST /passkeys/register/finish: 201');
  const { options } = await (await begun).json();
  assert.equal(options.rp.id, 'localhost', 'the RP ID is the SPA\'s host');
  assert.equal(options.authenticatorSelection.residentKey, 'required');
  assert.equal(options.authenticatorSelection.userVerification, 'required');
  assert.equal(options.user.name, PK_EMAIL);

  assert.equal(await pkPage.locator('#passkey-count').textContent(), '1', 'GET /me shows mfa.passkeys 1');
  const rows = await passkeyRows(pkPage);
  assert.equal(rows.length, 1, `one passkey listed: ${JSON.stringify(rows)}`);
  assert.equal(rows[0].name, 'Test laptop');
  assert.match(rows[0].when, /never used/);
  const creds = await pkAuth.credentials();
  assert.equal(creds.length, 1, 'the authenticator holds one credential');
  assert.equal(creds[0].rpId, 'localhost');
  assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential (a passkey)');
  assert.deepEqual(Buffer.from(creds[0].userHandle, 'base64'), Buffer.from(options.user.id, 'base64url'),
    'it is stored for the user handle the API gave');
  // The first second factor ends every session of the user; this browser got a new one in the same answer.
  assert.equal((await rawRequest('GET', '/me', { Cookie: cookieBefore })).status, 401, 'the session from before the passkey still answers');
  assert.equal((await rawRequest('GET', '/me', { Cookie: await sessionCookieHeader(pkCtx) })).status, 200);
  await pkPage.screenshot({ path: DOCS + 'spa-passkeys.png' });
});

test('passkeys: log out, then log in with the passkey alone (no email, no password)', async () => {
  await click(pkPage, '#logout');
  await expectStatus(pkPage, 'logged out');
  await fill(pkPage, { email: '', password: '' }); // nothing typed: the discoverable credential says who
  const [before] = await pkAuth.credentials();
  const finish = pkPage.waitForRequest((r) => r.url() === API_URL + '/login/passkey/finish', { timeout: TIMEOUT });
  await click(pkPage, '#passkey-login');
  await expectMessage(pkPage, 'POST /login/passkey/finish: 200');
  await expectStatus(pkPage, PK_EMAIL);
  const body = (await finish).postDataJSON();
  assert.deepEqual(Object.keys(body), ['credential'], 'the finish sends the credential and nothing else');
  assert.equal(body.credential.response.userHandle, Buffer.from(before.userHandle, 'base64').toString('base64url'),
    'the assertion names the user by the handle stored with the passkey');
  const [after] = await pkAuth.credentials();
  assert.ok(after.signCount > before.signCount, `the authenticator signed: counter ${before.signCount} -> ${after.signCount}`);

  const meResponse = pkPage.waitForResponse((r) => r.url() === API_URL + '/me', { timeout: TIMEOUT });
  await click(pkPage, '#me');
  const me = await (await meResponse).json();
  assert.equal(me.user.email, PK_EMAIL);
  assert.deepEqual(me.user.mfa, { totp: false, passkeys: 1 });
  const [row] = await passkeyRows(pkPage);
  assert.match(row.when, /last used \d{4}-\d\d-\d\dT/, `the listing shows the use: ${row.when}`);
});

test('passkeys: reauthenticate with the passkey (for this user the password alone no longer is a proof)', async () => {
  const cookie = await sessionCookieHeader(pkCtx);
  const password = await rawRequest('POST', '/reauth', { Cookie: cookie }, { password: PK_PASSWORD });
  assert.equal(password.status, 400, `POST /reauth with the password alone: ${password.body}`);
  assert.equal(password.json.error, 'invalid_code');

  await click(pkPage, '#passkey-reauth');
  await expectMessage(pkPage, 'POST /reauth/passkey/finish: 200');
  const activity = await rawRequest('GET', '/me/activity?limit=10', { Cookie: cookie });
  assert.equal(activity.status, 200, activity.body);
  const proof = activity.json.events.find((e) => e.event === 'reauthenticated');
  assert.ok(proof, `a reauthenticated event: ${activity.body}`);
  assert.equal(proof.details.method, 'passkey');
});

test('passkeys: an assertion made on a page that is not a passkey origin is refused (sent without an Origin header)', async () => {
  // Control: the same steps on the SPA's page log in; so what refuses the second assertion is its origin alone.
  // Node begins and finishes, without Origin nor Sec-Fetch-Site, so the cross-origin check lets both through.
  const signOnPage = (o) => navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o) })
    .then((cred) => cred.toJSON());
  const trusted = await pkPage.evaluate(signOnPage, await beginPasskeyLogin());
  assert.equal(clientData(trusted).origin, SPA_ORIGIN);
  const ok = await rawRequest('POST', '/login/passkey/finish', {}, { credential: trusted });
  assert.equal(ok.status, 200, `the assertion made on the SPA's page: ${ok.body}`);
  assert.equal(ok.json.user.email, PK_EMAIL);

  // The phishing page is on the RP ID (localhost), so the browser lets it use the passkey; the user's device
  // holds the same credential there (copied, with its current counter, into this tab's authenticator).
  const evil = await pkCtx.newPage();
  try {
    const evilAuth = await addAuthenticator(evil);
    const [credential] = await pkAuth.credentials();
    await evilAuth.add(credential);
    await evil.goto(EVIL_ORIGIN + '/', { waitUntil: 'load' });
    const options = await beginPasskeyLogin();
    const phished = await evil.evaluate((o) => window.signPasskeyChallenge(o), options);
    assert.equal(clientData(phished).origin, EVIL_ORIGIN, 'the browser signed the phishing page\'s origin');
    assert.equal(clientData(phished).challenge, options.challenge, 'for the challenge the API gave');
    assert.equal((await evilAuth.credentials())[0].signCount, credential.signCount + 1, 'a counter the API has not seen');

    const refused = await rawRequest('POST', '/login/passkey/finish', {}, { credential: phished });
    assert.equal(refused.status, 400, `the assertion made on ${EVIL_ORIGIN}: ${refused.body}`);
    assert.equal(refused.json.error, 'invalid_code');
    assert.equal(setsSessionCookie(refused), false, 'no session');
  } finally {
    await evil.close();
  }
});

test('passkeys: list and remove it; it then logs nobody in, and the password alone logs in again', async () => {
  try {
    const cookie = await sessionCookieHeader(pkCtx);
    const listed = await rawRequest('GET', '/passkeys', { Cookie: cookie });
    assert.equal(listed.status, 200, listed.body);
    assert.equal(listed.json.passkeys.length, 1);
    const [pk] = listed.json.passkeys;
    assert.equal(pk.name, 'Test laptop');
    assert.ok(pk.last_used_at, 'last_used_at is set');
    await click(pkPage, '#me');
    assert.deepEqual((await passkeyRows(pkPage)).map((r) => [r.id, r.name]), [[pk.id, pk.name]], 'the panel lists GET /passkeys');

    // Removing is a recent change: the passkey proof of the test before is recent.
    await click(pkPage, `#passkey-list li[data-id="${pk.id}"] .passkey-remove`);
    await expectMessage(pkPage, 'DELETE /passkeys/{id}: 204');
    assert.equal(await pkPage.locator('#passkey-count').textContent(), '0');
    assert.deepEqual(await passkeyRows(pkPage), []);
    assert.deepEqual((await rawRequest('GET', '/passkeys', { Cookie: cookie })).json, { passkeys: [] });

    await click(pkPage, '#logout');
    await expectStatus(pkPage, 'logged out');
    await click(pkPage, '#passkey-login');
    await expectMessage(pkPage, 'POST /login/passkey/finish: 400 invalid_code');
    await expectStatus(pkPage, 'logged out');
    assert.equal((await pkAuth.credentials()).length, 1, 'the authenticator still holds it: the API refused it');

    // No second factor left: the password alone logs in, with no second step.
    await fill(pkPage, { email: PK_EMAIL, password: PK_PASSWORD });
    await click(pkPage, '#login');
    await expectMessage(pkPage, 'POST /login: 200');
    await expectStatus(pkPage, PK_EMAIL);
  } finally {
    await pkCtx.close();
  }
});

// A TOTP user who also has a passkey completes the second step of a password login with it. This tab hides
// the browser's WebAuthn JSON helpers (?webauthn-json=fallback), so the README's fallback code runs.
const TP_EMAIL = `spa-totp-passkey-${stamp}@example.com`;
const TP_PASSWORD = `Tp5-${rnd()}${rnd()}`;

test('passkeys: a TOTP user completes the second step with a passkey (the README\'s fallback serialising)', async () => {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 1000 } });
  ctx.setDefaultTimeout(TIMEOUT);
  try {
    const page = await ctx.newPage();
    const auth = await addAuthenticator(page);
    await page.goto(SPA_ORIGIN + '/?webauthn-json=fallback', { waitUntil: 'load' });
    await idle(page);
    assert.deepEqual(await page.evaluate(() => [typeof PublicKeyCredential.parseCreationOptionsFromJSON,
      typeof PublicKeyCredential.parseRequestOptionsFromJSON, typeof PublicKeyCredential.prototype.toJSON]),
    ['undefined', 'undefined', 'undefined'], 'the browser\'s JSON helpers are hidden on this tab');
    await fill(page, { email: TP_EMAIL, password: TP_PASSWORD, name: 'TOTP Passkey Tester' });
    await click(page, '#register');
    await expectStatus(page, TP_EMAIL);

    await click(page, '#totp-start');
    await expectMessage(page, 'POST /mfa/totp: 200');
    const secret = (await page.locator('#totp-secret').textContent()).trim();
    await page.fill('#totp-code', totpCode(secret, Math.floor(Date.now() / 30_000)));
    await click(page, '#totp-confirm');
    await expectMessage(page, 'POST /mfa/totp/confirm: 200');
    assert.equal(await page.locator('#totp-state').textContent(), 'on');

    await page.fill('#passkey-name', 'Phone');
    await click(page, '#passkey-add'); // the confirmation was a new login, so a recent proof
    await expectMessage(page, 'POST /passkeys/register/finish: 201');
    assert.equal(await page.locator('#passkey-count').textContent(), '1');
    assert.equal((await auth.credentials()).length, 1);

    await click(page, '#logout');
    await fill(page, { email: TP_EMAIL, password: TP_PASSWORD });
    await click(page, '#login');
    await expectMessage(page, 'POST /login: 200 mfa_required (totp, passkey, recovery_code)');
    await expectStatus(page, 'code needed');
    assert.ok(await page.locator('#mfa-passkey').isVisible(), 'the second step offers the passkey');
    // A reload keeps the pending session, and the tab remembers the methods offered.
    await page.reload({ waitUntil: 'load' });
    await expectStatus(page, 'code needed');
    assert.ok(await page.locator('#mfa-passkey').isVisible(), 'still offered after a reload');
    await page.screenshot({ path: DOCS + 'spa-passkey-second-step.png' });

    const pendingCookie = await sessionCookieHeader(ctx);
    await click(page, '#mfa-passkey');
    await expectMessage(page, 'POST /login/passkey/finish: 200');
    await expectStatus(page, TP_EMAIL);
    assert.equal(await page.locator('#mfa-form').isVisible(), false);
    const me = await rawRequest('GET', '/me', { Cookie: await sessionCookieHeader(ctx) });
    assert.equal(me.status, 200, me.body);
    assert.deepEqual(me.json.user.mfa, { totp: true, passkeys: 1 });
    assert.equal((await rawRequest('GET', '/me', { Cookie: pendingCookie })).status, 401, 'the pending session is gone');
    const activity = await rawRequest('GET', '/me/activity?limit=10', { Cookie: await sessionCookieHeader(ctx) });
    const used = activity.json.events.find((e) => e.event === 'mfa_used');
    assert.equal(used?.details.method, 'passkey', `an mfa_used event with method passkey: ${activity.body}`);
  } finally {
    await ctx.close();
  }
});
