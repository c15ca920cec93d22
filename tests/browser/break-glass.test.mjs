// Break-the-glass (/acces-exceptionnels): a coordinator of another organisation reads one
// young person's file, read-only, after giving its reference and a reason, with a second
// factor; the holding organisation's coordination sees who and why and ends it; the
// reader then gets 410. Refusals: no second factor, a short reason, a malformed or unknown
// reference, a third party's look at the grant (404), a form without its CSRF token (403).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  OTHER_COORDINATOR,
  PASSWORD,
  TEST_TIMEOUT,
  admin,
  clickAndWait,
  enableSecondFactor,
  launchBrowser,
  login,
  newPage,
  open,
  organisationId,
  screenshot,
  signedInPage,
} from './helpers.mjs';

const OTHER_ORGANISATION = 'Association Prévention Ardennes (démo)';
const REASON = 'Urgence : le jeune est hébergé ce soir par notre association';

let browser;
let owner; // coordination@demo, whose team holds the file
let reader; // a new coordinator of the other organisation, with a second factor
let youth; // { id, name }

/** A new coordinator of the other demo organisation, signed in with a second factor. */
async function otherOrganisationReader() {
  const login_ = `lecteur-${process.pid}-${Date.now()}@autre-demo`;
  admin(['create-user', '--org', organisationId(OTHER_ORGANISATION), '--name', 'Lectrice (test)', '--role', 'coordinator', '--login', login_]);
  admin(['set-password', '--user', login_], { REPERE_PASSWORD: PASSWORD });
  const page = await newPage(browser);
  await login(page, login_);
  await enableSecondFactor(page);
  return page;
}

/** Fills and sends the request form; the response. */
async function ask(page, reference, reason, minutes = '120') {
  await open(page, '/acces-exceptionnels');
  await page.getByTestId('grant-reference').fill(reference);
  await page.getByTestId('grant-reason').fill(reason);
  await page.getByTestId('grant-duration').selectOption(minutes);
  // Skip the browser's own length check: the server's is what is tested.
  await page.locator('[data-testid="grant-reason"]').evaluate((t) => t.removeAttribute('minlength'));
  return clickAndWait(page, page.getByTestId('grant-submit'));
}

before(async () => {
  browser = await launchBrowser();
  owner = await signedInPage(browser);
  await open(owner, '/jeunes');
  const row = owner.getByTestId('youth-row').first();
  const id = await row.getAttribute('data-youth-id');
  await open(owner, `/jeunes/${id}`);
  youth = {
    id: (await owner.getByTestId('youth-reference').innerText()).trim(),
    name: (await owner.getByTestId('youth-name').innerText()).trim(),
  };
  assert.equal(youth.id, id, 'the file shows its reference');
  reader = await otherOrganisationReader();
});
after(async () => {
  await browser?.close();
});

test('without a second factor, with a short reason or a bad reference: a message, nothing granted', { timeout: TEST_TIMEOUT }, async () => {
  const plain = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    let r = await ask(plain, youth.id, REASON);
    assert.equal(r.status(), 400);
    assert.match(await plain.getByTestId('grant-error').innerText(), /double authentification/);
    assert.equal(await plain.getByTestId('grant-reference').inputValue(), youth.id, 'what was typed stays');
  } finally {
    await plain.context().close();
  }
  let r = await ask(reader, youth.id, 'urgence');
  assert.equal(r.status(), 400);
  assert.match(await reader.getByTestId('grant-error').innerText(), /motif/i);
  r = await ask(reader, 'pas-une-reference', REASON);
  assert.equal(r.status(), 400);
  assert.match(await reader.getByTestId('grant-error').innerText(), /36 caractères/);
  r = await ask(reader, randomUUID(), REASON);
  assert.equal(r.status(), 400);
  assert.match(await reader.getByTestId('grant-error').innerText(), /Aucune fiche/);
  await reader.getByTestId('grants-outgoing-empty').waitFor();
});

test('the reader opens the file read-only; the holding coordination sees who and why, ends it; then 410', { timeout: TEST_TIMEOUT }, async () => {
  const r = await ask(reader, youth.id, REASON, '30');
  assert.equal(r.status(), 200);
  const grantId = reader.url().split('/').pop();
  assert.match(reader.url(), /\/acces-exceptionnels\/[0-9a-f-]{36}$/);
  assert.equal((await reader.getByTestId('youth-name').innerText()).trim(), youth.name);
  await reader.getByTestId('lent-notice').waitFor();
  assert.equal(await reader.locator('main form').count(), 0, 'nothing to act on');
  await screenshot(reader, 'break-glass-file.png');

  // The holding organisation: the grant, its reader and reason; the journal.
  await open(owner, '/acces-exceptionnels');
  const row = owner.locator(`[data-testid="grant-row"][data-id="${grantId}"]`);
  await row.waitFor();
  assert.match(await row.getByTestId('grant-reader').innerText(), /Lectrice \(test\)/);
  assert.equal((await row.getByTestId('grant-reason-shown').innerText()).trim(), REASON);
  assert.equal(await row.locator('[data-state="active"]').count(), 1);
  await screenshot(owner, 'break-glass-owner.png');
  await open(owner, '/journal');
  assert.match(await owner.locator('main').innerText(), /Accès exceptionnel accordé/);
  assert.doesNotMatch(await owner.locator('main').innerText(), /hébergé/, 'the journal holds no reason');

  // A third party: 404 on the grant and on ending it, with its own valid CSRF token.
  const third = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    await open(third, `/acces-exceptionnels/${grantId}`, 404);
    await open(third, '/acces-exceptionnels');
    const csrf = await third.locator('[data-testid="grant-form"] input[name="csrf"]').inputValue();
    const denied = await third.request.post(`/acces-exceptionnels/${grantId}/terminer`, { form: { csrf }, maxRedirects: 0 });
    assert.equal(denied.status(), 404);
  } finally {
    await third.context().close();
  }
  // Without the CSRF token: refused, still active.
  const forged = await owner.request.post(`/acces-exceptionnels/${grantId}/terminer`, { form: {}, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  await open(reader, `/acces-exceptionnels/${grantId}`);

  await open(owner, '/acces-exceptionnels');
  await clickAndWait(owner, row.getByTestId('grant-end'));
  await owner.getByTestId('grant-message').waitFor();
  assert.equal(await owner.locator(`[data-testid="grant-row"][data-id="${grantId}"] [data-state="ended"]`).count(), 1);

  await open(reader, `/acces-exceptionnels/${grantId}`, 410);
  await reader.getByTestId('grant-over').waitFor();
  await open(reader, '/acces-exceptionnels');
  const own = reader.locator(`[data-testid="own-grant-row"][data-id="${grantId}"]`);
  assert.equal(await own.getByTestId('own-grant-open').count(), 0, 'no link once over');
  assert.doesNotMatch(await own.innerText(), new RegExp(youth.name.split(' ')[0]), 'the name is no longer shown');
});
