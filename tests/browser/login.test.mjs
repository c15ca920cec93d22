// Signing in and out of the coordinators' pages (/connexion, /deconnexion).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  COORDINATOR,
  PASSWORD,
  TEST_TIMEOUT,
  clickAndWait,
  launchBrowser,
  login,
  newPage,
  open,
  submitLogin,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('unsigned visitors are sent to the sign-in page', { timeout: TEST_TIMEOUT }, async () => {
  const page = await newPage(browser);
  try {
    await page.goto('/visites');
    await page.waitForURL(/\/connexion$/);
    await page.getByTestId('login-form').waitFor();
    assert.equal(await page.getByTestId('current-user').count(), 0);
    assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  } finally {
    await page.context().close();
  }
});

test('a wrong password shows the login error and no session', { timeout: TEST_TIMEOUT }, async () => {
  const page = await newPage(browser);
  try {
    await submitLogin(page, COORDINATOR, `${PASSWORD}-faux`);
    const error = page.getByTestId('login-error');
    await error.waitFor();
    assert.match(await error.innerText(), /Identifiant ou mot de passe incorrect/);
    assert.equal(await page.getByTestId('current-user').count(), 0);
    // The form is shown again, usable, and the typed login is not echoed into the page.
    await page.getByTestId('login-form').waitFor();
    const cookies = await page.context().cookies();
    assert.ok(!cookies.some((c) => c.name === 'repere_session' && c.value), 'no session cookie after a failure');
    // Still not signed in.
    await page.goto('/visites');
    await page.waitForURL(/\/connexion$/);
  } finally {
    await page.context().close();
  }
});

test('coordination@demo signs in, sees the navigation, and signs out', { timeout: TEST_TIMEOUT }, async () => {
  const page = await newPage(browser);
  try {
    await login(page, COORDINATOR);
    const who = await page.getByTestId('current-user').innerText();
    assert.match(who, /Coordination \(démo\)/);
    assert.match(who, /Mission Locale du Nord Meusien \(démo\)/);
    for (const id of ['nav-visites', 'nav-jeunes', 'nav-tableau-de-bord', 'nav-exports', 'nav-journal']) {
      await page.getByTestId(id).waitFor();
    }
    const session = (await page.context().cookies()).find((c) => c.name === 'repere_session');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');

    // A signed-in visitor of /connexion goes to the visits.
    await page.goto('/connexion');
    await page.waitForURL(/\/visites$/);

    await clickAndWait(page, page.getByTestId('logout-button'), /\/connexion$/);
    await page.getByTestId('login-form').waitFor();
    await page.goto('/tableau-de-bord');
    await page.waitForURL(/\/connexion$/);
    // The old cookie value no longer opens anything either.
    const replay = await newPage(browser);
    try {
      await replay.context().addCookies([{ ...session }]);
      await replay.goto('/visites');
      await replay.waitForURL(/\/connexion$/);
    } finally {
      await replay.context().close();
    }
    await open(page, '/connexion');
  } finally {
    await page.context().close();
  }
});
