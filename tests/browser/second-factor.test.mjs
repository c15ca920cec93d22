// The second factor (TOTP, RFC 6238) of the coordinators' accounts: the export with
// names refused without it, set up from « Mon compte » (secret shown as text and as an
// otpauth:// URI, confirmed with a code, 10 recovery codes shown once), then asked at
// every sign-in, where a recovery code works once. Uses its own new coordinator (the demo
// logins stay password-only for the other files).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import {
  PASSWORD,
  TEST_TIMEOUT,
  clickAndWait,
  csvRecords,
  launchBrowser,
  login,
  newCoordinator,
  newPage,
  open,
  screenshot,
  submitLogin,
  totp,
  base32Decode,
} from './helpers.mjs';

let browser;
let account;
before(async () => {
  browser = await launchBrowser();
  account = newCoordinator('double-auth');
});
after(async () => {
  await browser?.close();
});

/** Shared between the tests of this file, in order. */
const state = { secret: null, codes: [] };

async function signOut(page) {
  await clickAndWait(page, page.getByTestId('logout-button'), /\/connexion$/);
}

test('the TOTP of the tests is RFC 6238 (SHA-1 vector at 59 s)', () => {
  const seed = Buffer.from('12345678901234567890');
  assert.equal(totp(seed, { at: 59_000, digits: 8 }), '94287082');
  assert.equal(totp(seed, { at: 1_111_111_109_000, digits: 8 }), '07081804');
  assert.equal(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ').toString(), '12345678901234567890');
});

test('without a second factor the export with names is refused', { timeout: TEST_TIMEOUT }, async () => {
  const page = await newPage(browser);
  try {
    await login(page, account.login);
    await open(page, '/exports');
    await page.getByTestId('export-names-need-second-factor').waitFor();
    assert.equal(await page.getByTestId('export-youth-names').isDisabled(), true, 'the names box cannot be ticked');
    assert.equal(await page.getByTestId('setup-second-factor-link').first().getAttribute('href'), '/compte');
    // Forcing the form anyway (right CSRF token, box « ticked »): refused, with the way out.
    const csrf = await page.locator('[data-testid="export-youth-form"] input[name="csrf"]').inputValue();
    const forced = await page.request.post('/exports/jeunes.csv', { form: { csrf, avec_noms: 'oui' }, maxRedirects: 0 });
    assert.equal(forced.status(), 403);
    assert.match(forced.headers()['content-type'], /^text\/html/);
    const body = await forced.text();
    assert.match(body, /data-testid="second-factor-required"/);
    assert.match(body, /Double authentification requise/);
    assert.doesNotMatch(body, /first_name/);
    // The pseudonymised export still works.
    const plain = await page.request.get('/exports/jeunes.csv');
    assert.equal(plain.status(), 200);
    assert.ok(!csvRecords(await plain.text()).header.includes('first_name'));
    // The refusal is in the journal.
    await open(page, '/journal');
    const refusal = page.locator('[data-testid="audit-row"][data-action="export_youth_named_refused"]').first();
    await refusal.waitFor();
    assert.match(await refusal.innerText(), new RegExp(account.name.replace(/[()]/g, '\\$&')));
    await screenshot(page, 'second-factor-export-refused.png');
  } finally {
    await page.context().close();
  }
});

test('the second factor is set up from « Mon compte » with a code, and shows 10 recovery codes once', { timeout: TEST_TIMEOUT }, async () => {
  const page = await newPage(browser);
  try {
    await login(page, account.login);
    await clickAndWait(page, page.getByTestId('nav-compte'), /\/compte$/);
    assert.equal(await page.getByTestId('second-factor-status').getAttribute('data-enabled'), 'no');
    await clickAndWait(page, page.getByTestId('second-factor-start'), /\/compte\/double-authentification$/);
    const shown = (await page.getByTestId('totp-secret').innerText()).trim();
    assert.match(shown, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/, 'a 160-bit base32 secret in groups of four');
    const secret = base32Decode(shown);
    assert.equal(secret.length, 20);
    const uri = (await page.getByTestId('totp-uri').textContent()).trim();
    const expected =
      `otpauth://totp/Rep%C3%A8re:${encodeURIComponent(account.login)}?secret=${shown.replace(/ /g, '')}` +
      '&issuer=Rep%C3%A8re&algorithm=SHA1&digits=6&period=30';
    assert.equal(uri, expected);
    assert.equal(await page.getByTestId('totp-link').getAttribute('href'), expected);
    await screenshot(page, 'second-factor-setup.png');

    // A wrong code: still off, the same secret shown again.
    const right = totp(secret);
    await page.getByTestId('totp-code').fill(right === '000000' ? '111111' : '000000');
    await clickAndWait(page, page.getByTestId('totp-confirm'));
    await page.getByTestId('totp-error').waitFor();
    assert.equal((await page.getByTestId('totp-secret').innerText()).trim(), shown);

    // The app's code: on.
    await page.getByTestId('totp-code').fill(totp(secret));
    await clickAndWait(page, page.getByTestId('totp-confirm'));
    await page.getByTestId('second-factor-enabled').waitFor();
    const codes = (await page.getByTestId('recovery-code').allInnerTexts()).map((c) => c.trim());
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}$/);
    await screenshot(page, 'second-factor-recovery-codes.png');
    state.secret = secret;
    state.codes = codes;

    // Shown once: « Mon compte » now tells how many are left, not which.
    await open(page, '/compte');
    assert.equal(await page.getByTestId('second-factor-status').getAttribute('data-enabled'), 'yes');
    assert.equal(await page.getByTestId('recovery-codes-left').getAttribute('data-count'), '10');
    const text = await page.locator('main').innerText();
    assert.ok(!codes.some((c) => text.includes(c)), 'the recovery codes are not shown again');
    await open(page, '/compte/double-authentification');
    assert.match(page.url(), /\/compte$/, 'no secret to show once it is confirmed');

    // This session proved the second factor: the export with names is open.
    await open(page, '/exports');
    assert.equal(await page.getByTestId('export-names-need-second-factor').count(), 0);
    await page.getByTestId('export-youth-names').check();
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-youth-submit').click()]);
    assert.match(dl.suggestedFilename(), /^donnees-personnelles-nominatives-jeunes-/);
    const named = csvRecords(fs.readFileSync(await dl.path(), 'utf8'));
    assert.ok(named.header.includes('first_name'));
    assert.ok(named.records.length > 0);
    await signOut(page);
  } finally {
    await page.context().close();
  }
});

test('once set up, the password alone opens nothing: the code is asked, and a recovery code works once', { timeout: TEST_TIMEOUT }, async () => {
  assert.ok(state.secret, 'the setup test ran first');
  const page = await newPage(browser);
  try {
    await submitLogin(page, account.login, PASSWORD);
    await page.waitForURL(/\/connexion\/code$/);
    await page.getByTestId('second-factor-form').waitFor();
    assert.equal(await page.getByTestId('current-user').count(), 0);
    const cookies = await page.context().cookies();
    assert.ok(!cookies.some((c) => c.name === 'repere_session' && c.value), 'no session before the code');
    // Nothing opens yet.
    await page.goto('/visites');
    await page.waitForURL(/\/connexion$/);

    // A wrong code, then the app's code.
    await open(page, '/connexion/code');
    const good = totp(state.secret, { steps: 1 });
    await page.getByTestId('second-factor-code').fill(good === '000000' ? '111111' : '000000');
    await clickAndWait(page, page.getByTestId('second-factor-submit'));
    await page.getByTestId('second-factor-error').waitFor();
    await page.getByTestId('second-factor-code').fill(good);
    await clickAndWait(page, page.getByTestId('second-factor-submit'), /\/visites$/);
    await page.getByTestId('current-user').waitFor();
    await screenshot(page, 'second-factor-signed-in.png');
    await signOut(page);

    // A recovery code, typed as on paper (lower case, no dashes): once.
    const recovery = state.codes[0];
    await submitLogin(page, account.login, PASSWORD);
    await page.waitForURL(/\/connexion\/code$/);
    await page.getByTestId('second-factor-code').fill(recovery.replace(/-/g, '').toLowerCase());
    await clickAndWait(page, page.getByTestId('second-factor-submit'), /\/visites$/);
    await open(page, '/compte');
    assert.equal(await page.getByTestId('recovery-codes-left').getAttribute('data-count'), '9');
    await signOut(page);

    await submitLogin(page, account.login, PASSWORD);
    await page.waitForURL(/\/connexion\/code$/);
    await page.getByTestId('second-factor-code').fill(recovery);
    await clickAndWait(page, page.getByTestId('second-factor-submit'));
    await page.getByTestId('second-factor-error').waitFor();
    assert.equal(await page.getByTestId('current-user').count(), 0, 'a used recovery code opens nothing');

    // Another unused one still works; the journal tells how each sign-in went.
    await page.getByTestId('second-factor-code').fill(state.codes[1]);
    await clickAndWait(page, page.getByTestId('second-factor-submit'), /\/visites$/);
    await open(page, '/journal');
    const actions = await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    for (const a of ['second_factor_enabled', 'login_success', 'login_failure']) {
      assert.ok(actions.includes(a), `${a} in the journal`);
    }
    const journal = await page.getByTestId('audit-table').innerText();
    assert.match(journal, /avec un code de secours/);
    assert.match(journal, /avec double authentification/);
    assert.ok(!state.codes.some((c) => journal.includes(c)), 'no recovery code in the journal');
  } finally {
    await page.context().close();
  }
});
