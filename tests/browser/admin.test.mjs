// The administration pages (issue 12) as the demo's administrator uses them: creating an
// organisation of the consortium with its first administrator (who signs in with the
// password shown once and renames their organisation), creating a coordinator account (its
// password shown once, and it signs in), issuing an enrolment
// code (text and QR code; a tablet enrols with it), revoking a tablet (it can no longer
// sync) and revoking with a wipe order, only through its confirmation page (it deletes its
// store at its next contact). A coordinator is refused the pages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ADMIN,
  DEVICE_DIR,
  TEST_TIMEOUT,
  URL_BASE,
  clickAndWait,
  launchBrowser,
  login,
  newPage,
  newTablet,
  open,
  runDevice,
  screenshot,
  signedInPage,
  teamByName,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** The ids of a team's tablets on the tablets page. */
async function deviceIds(page, team) {
  await open(page, '/administration/tablettes');
  return page
    .locator(`[data-testid="devices-team"][data-team-id="${team.id}"] [data-testid="device-row"]`)
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-device-id')));
}

/** Enrols a new tablet of the team and finds its row's id on the tablets page. */
async function enrolAndFind(page, teamName) {
  const team = teamByName(teamName);
  const known = new Set(await deviceIds(page, team));
  const tablet = newTablet(teamName);
  tablet.sync();
  const fresh = (await deviceIds(page, team)).filter((id) => !known.has(id));
  assert.equal(fresh.length, 1, 'one new tablet on the page');
  return { tablet, id: fresh[0] };
}

test('a coordinator has no administration link and gets 403', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser);
  try {
    assert.equal(await page.getByTestId('nav-administration').count(), 0);
    for (const path of ['/administration/comptes', '/administration/organisations']) {
      await open(page, path, 403);
      await page.getByTestId('admin-only').waitFor();
    }
  } finally {
    await page.context().close();
  }
});

test('the administrator creates an organisation with its first administrator, who signs in and renames it', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, ADMIN);
  const stamp = `${process.pid}-${Date.now()}`;
  const name = `Mission Locale de test ${stamp}`;
  const firstLogin = `premier-admin-${stamp}@test`;
  try {
    await open(page, '/administration');
    await clickAndWait(page, page.getByTestId('admin-nav-organisations'), /\/administration\/organisations$/);
    const own = page.locator('[data-testid="organisation-row"][data-own="yes"]');
    assert.match(await own.getByTestId('organisation-name').innerText(), /Mission Locale du Nord Meusien \(démo\)/);
    assert.ok((await page.locator('[data-testid="organisation-row"][data-own="no"]').count()) >= 1, 'the other demo organisation');

    await page.getByTestId('organisation-create-name').fill(name);
    await page.getByTestId('organisation-admin-name').fill('Premier Admin (test)');
    await page.getByTestId('organisation-admin-login').fill(firstLogin);
    await clickAndWait(page, page.getByTestId('organisation-create'));
    const created = page.getByTestId('organisation-created');
    await created.waitFor();
    const orgId = await created.getAttribute('data-organisation-id');
    const userId = await created.getAttribute('data-user-id');
    const password = (await page.getByTestId('new-password').innerText()).trim();
    assert.equal(password.length, 20);
    await screenshot(page, 'admin-organisation-created.png');

    // Listed, with its one account; the password is not shown again.
    await open(page, '/administration/organisations');
    const row = page.locator(`[data-testid="organisation-row"][data-organisation-id="${orgId}"]`);
    assert.equal(await row.getAttribute('data-own'), 'no');
    assert.equal((await row.getByTestId('organisation-name').innerText()).trim(), name);
    assert.ok(!(await page.content()).includes(password));
    // The same name again is refused.
    await page.getByTestId('organisation-create-name').fill(name.toUpperCase());
    await page.getByTestId('organisation-admin-name').fill('Autre');
    await page.getByTestId('organisation-admin-login').fill(`autre-${firstLogin}`);
    const again = await clickAndWait(page, page.getByTestId('organisation-create'));
    assert.equal(again.status(), 400);
    assert.match(await page.getByTestId('admin-error').innerText(), /porte déjà ce nom/);
    // Its accounts are its own administrators' to manage.
    await open(page, `/administration/comptes/${userId}`, 404);

    // The journal names the creation by ids only.
    await open(page, '/journal');
    const line = page.locator('[data-testid="audit-row"][data-action="organisation_created"]').first();
    await line.waitFor();
    const text = await line.innerText();
    assert.ok(!text.includes(name) && !text.includes(firstLogin) && !text.includes(password), text);

    // The new administrator runs it, and renames it.
    const theirs = await newPage(browser);
    try {
      await login(theirs, firstLogin, password);
      await clickAndWait(theirs, theirs.getByTestId('nav-administration'), /\/administration$/);
      assert.match(await theirs.locator('h1').innerText(), new RegExp(name));
      await theirs.getByTestId('teams-empty').waitFor();
      await open(theirs, '/administration/organisations');
      const renamed = `${name} (renommée)`;
      await theirs.getByTestId('organisation-rename-name').fill(renamed);
      await clickAndWait(theirs, theirs.getByTestId('organisation-rename'), /\/administration\/organisations/);
      await theirs.getByTestId('admin-message').waitFor();
      const mine = theirs.locator('[data-testid="organisation-row"][data-own="yes"]');
      assert.equal(await mine.getAttribute('data-organisation-id'), orgId);
      assert.match(await mine.getByTestId('organisation-name').innerText(), /\(renommée\)/);
      await open(theirs, '/journal');
      const actions = await theirs.getByTestId('audit-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-action')));
      for (const action of ['organisation_renamed', 'organisation_created', 'user_created', 'password_set']) {
        assert.ok(actions.includes(action), `${action} in the new organisation's journal`);
      }
    } finally {
      await theirs.context().close();
    }
  } finally {
    await page.context().close();
  }
});

test('the administrator creates a coordinator account, who signs in with the password shown once', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, ADMIN);
  const account = `nouvelle-${process.pid}-${Date.now()}@demo`;
  try {
    await clickAndWait(page, page.getByTestId('nav-administration'), /\/administration$/);
    await page.getByTestId('teams-table').waitFor();
    await clickAndWait(page, page.getByTestId('admin-nav-accounts'), /\/administration\/comptes$/);
    await page.getByTestId('account-name').fill('Nouvelle Coordination (test)');
    await page.getByTestId('account-login').fill(account);
    await page.getByTestId('account-role').selectOption('coordinator');
    await clickAndWait(page, page.getByTestId('account-create'));
    await page.getByTestId('account-created').waitFor();
    const password = (await page.getByTestId('new-password').innerText()).trim();
    assert.ok(password.length >= 12, 'a generated password of 12 characters or more');
    await screenshot(page, 'admin-account-created.png');

    // Shown once: not on the list, nor on the account's page.
    await open(page, '/administration/comptes');
    const row = page.locator('[data-testid="account-row"]', { hasText: account });
    await row.waitFor();
    assert.equal(await row.getAttribute('data-role'), 'coordinator');
    assert.equal(await row.getAttribute('data-state'), 'active');
    assert.ok(!(await page.content()).includes(password));

    const theirs = await newPage(browser);
    try {
      await login(theirs, account, password);
      assert.match(await theirs.getByTestId('current-user').innerText(), /Nouvelle Coordination \(test\)/);
      assert.equal(await theirs.getByTestId('nav-administration').count(), 0, 'a coordinator');
    } finally {
      await theirs.context().close();
    }

    // The journal names the action and the account's id, never the password or login.
    await open(page, '/journal');
    const line = page.locator('[data-testid="audit-row"][data-action="user_created"]').first();
    await line.waitFor();
    const text = await line.innerText();
    assert.ok(!text.includes(password) && !text.includes(account), text);
  } finally {
    await page.context().close();
  }
});

test('the administrator issues an enrolment code shown as text and QR code, and a tablet enrols with it', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, ADMIN);
  const team = teamByName('Binôme Stenay');
  try {
    await open(page, '/administration/codes');
    await page.getByTestId('code-team').selectOption(team.id);
    await page.getByTestId('code-ttl').selectOption('24');
    await clickAndWait(page, page.getByTestId('code-issue'));
    await page.getByTestId('code-issued').waitFor();
    const code = (await page.getByTestId('enrolment-code').innerText()).trim();
    assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2}$/);
    const qr = page.locator('[data-testid="enrolment-qr"] svg');
    await qr.waitFor();
    const box = await qr.boundingBox();
    assert.ok(box && box.width >= 200 && box.height >= 200, 'a visible QR code');
    const uri = (await page.getByTestId('enrolment-uri').innerText()).trim();
    assert.equal(uri, `repere://enrol?server=${encodeURIComponent(URL_BASE)}&code=${code}`);
    assert.equal((await page.getByTestId('enrolment-server').innerText()).trim(), URL_BASE);
    await screenshot(page, 'admin-enrolment-code.png');

    const store = fs.mkdtempSync(path.join(DEVICE_DIR, 'tablet-qr-'));
    const parsed = new URL(uri.replace('repere://', 'https://'));
    const enrolled = runDevice(store, 'enrol', parsed.searchParams.get('server'), parsed.searchParams.get('code')).trim();
    assert.equal(enrolled, team.id);
    assert.throws(() => runDevice(fs.mkdtempSync(path.join(DEVICE_DIR, 'tablet-qr-')), 'enrol', URL_BASE, code), /failed/, 'a code works once');
  } finally {
    await page.context().close();
  }
});

test('the administrator revokes a tablet, which can no longer sync', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, ADMIN);
  try {
    const { tablet, id } = await enrolAndFind(page, 'Binôme Sedan');
    const row = page.locator(`[data-testid="device-row"][data-device-id="${id}"]`);
    assert.equal(await row.getAttribute('data-state'), 'active');
    assert.notEqual((await row.getByTestId('device-last-sync').innerText()).trim(), 'jamais');
    await clickAndWait(page, row.getByTestId('revoke-button'));
    await page.getByTestId('admin-message').waitFor();
    assert.equal(await page.locator(`[data-testid="device-row"][data-device-id="${id}"]`).getAttribute('data-state'), 'revoked');
    await screenshot(page, 'admin-tablet-revoked.png');
    assert.throws(() => tablet.sync(), /failed/, 'a revoked tablet cannot sync');
  } finally {
    await page.context().close();
  }
});

test('the administrator revokes a tablet with a wipe order; it deletes its store at its next sync', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, ADMIN);
  try {
    const { tablet, id } = await enrolAndFind(page, 'Binôme Stenay');
    const youth = tablet.createYouth('à effacer');
    tablet.sync();
    assert.equal(runDevice(tablet.store, 'has', youth).trim(), 'true');
    const row = page.locator(`[data-testid="device-row"][data-device-id="${id}"]`);
    // The list's button only opens the confirmation page, which says what will happen.
    await clickAndWait(page, row.getByTestId('wipe-button'), new RegExp(`/administration/tablettes/${id}/effacer\\??$`));
    const consequences = await page.getByTestId('wipe-consequences').innerText();
    assert.match(consequences, /envoie ce qu'elle n'a pas encore envoyé/);
    assert.match(consequences, /supprime toutes ses données/);
    await screenshot(page, 'admin-wipe-confirmation.png');
    // Without the box ticked the browser does not send the form…
    await page.getByTestId('wipe-submit').click();
    assert.equal(await page.getByTestId('wipe-confirm').evaluate((box) => box.validity.valueMissing), true);
    assert.match(page.url(), /\/effacer\??$/);
    // …and the server refuses it if sent anyway: nothing is done.
    await page.getByTestId('wipe-confirm').evaluate((box) => box.removeAttribute('required'));
    const refused = await clickAndWait(page, page.getByTestId('wipe-submit'));
    assert.equal(refused.status(), 400);
    await page.getByTestId('admin-error').waitFor();
    await open(page, '/administration/tablettes');
    assert.equal(await row.getAttribute('data-state'), 'active');
    tablet.sync();
    assert.equal(runDevice(tablet.store, 'has', youth).trim(), 'true', 'nothing wiped');
    // Ticked: revoked with a wipe order.
    await clickAndWait(page, row.getByTestId('wipe-button'), /\/effacer\??$/);
    await page.getByTestId('wipe-confirm').check();
    await clickAndWait(page, page.getByTestId('wipe-submit'), /\/administration\/tablettes/);
    await page.getByTestId('admin-message').waitFor();
    assert.equal(await page.locator(`[data-testid="device-row"][data-device-id="${id}"]`).getAttribute('data-state'), 'wipe-ordered');
    try {
      tablet.sync();
    } catch {
      // The wipe order may end the sync with an error once the store is deleted.
    }
    assert.equal(runDevice(tablet.store, 'has', youth).trim(), 'false', 'the store was deleted');
    await open(page, '/administration/tablettes');
    assert.equal(await page.locator(`[data-testid="device-row"][data-device-id="${id}"]`).getAttribute('data-state'), 'wiped');
  } finally {
    await page.context().close();
  }
});
