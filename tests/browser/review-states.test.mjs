// Approving and flagging visits (POST /visites/{id}/approuver and /signaler) and finding
// them under the matching state filter of /visites. Each test takes a visit still
// "à revoir" when it starts, so the tests do not depend on each other's order.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  TEAMS,
  TEST_TIMEOUT,
  clickAndWait,
  dataTotal,
  launchBrowser,
  open,
  openVisits,
  pickVisitToReview,
  signedInPage,
  visitRows,
} from './helpers.mjs';

let browser;
let page;
before(async () => {
  browser = await launchBrowser();
  page = await signedInPage(browser);
});
after(async () => {
  await browser?.close();
});

async function count(state) {
  await openVisits(page, { etat: state });
  return dataTotal(page, 'visits-total');
}

/** Whether the visit is listed under the state (looked up through every page). */
async function listedUnder(state, id, team) {
  await openVisits(page, { etat: state, equipe: team });
  for (;;) {
    const rows = await visitRows(page);
    const row = rows.find((r) => r.id === id);
    if (row) return row;
    if ((await page.getByTestId('pagination-next').count()) === 0) return null;
    await clickAndWait(page, page.getByTestId('pagination-next'));
  }
}

test('approving a visit moves it from « à revoir » to « approuvée »', { timeout: TEST_TIMEOUT }, async () => {
  const before = { to_review: await count('to_review'), approved: await count('approved') };
  const visit = await pickVisitToReview(page, TEAMS[1].name);
  const url = `/visites/${visit.id}`;
  await open(page, url);
  await clickAndWait(page, page.getByTestId('approve-button'), (u) => u.pathname === url && u.search === '?ok=approuvee');
  assert.match(await page.getByTestId('review-message').innerText(), /Visite approuvée/);
  const badge = page.getByTestId('visit-detail').getByTestId('visit-state');
  assert.equal(await badge.getAttribute('data-state'), 'approved');
  assert.equal((await badge.innerText()).trim(), 'approuvée');
  await page.getByTestId('review-events').filter({ hasText: 'Visite approuvée' }).waitFor();

  const row = await listedUnder('approved', visit.id, TEAMS[1].id);
  assert.ok(row, 'listed under « approuvée »');
  assert.equal(row.state, 'approved');
  assert.equal(await listedUnder('to_review', visit.id, TEAMS[1].id), null, 'no longer « à revoir »');
  assert.equal(await count('approved'), before.approved + 1);
  assert.equal(await count('to_review'), before.to_review - 1);
});

test('flagging a visit with a reason shows it and lists it under « signalée »', { timeout: TEST_TIMEOUT }, async () => {
  const flaggedBefore = await count('flagged');
  const visit = await pickVisitToReview(page, TEAMS[0].name);
  const url = `/visites/${visit.id}`;
  await open(page, url);
  // An empty reason is refused by the form itself (required): nothing is sent.
  await page.getByTestId('flag-button').click();
  assert.equal(await page.getByTestId('flag-reason').evaluate((el) => el.validity.valueMissing), true);
  assert.equal(new URL(page.url()).pathname, url);
  assert.equal(await page.getByTestId('review-message').count(), 0);

  const reason = `Commune à vérifier ${randomUUID().slice(0, 8)}`;
  await page.getByTestId('flag-reason').fill(reason);
  await clickAndWait(page, page.getByTestId('flag-button'), (u) => u.pathname === url && u.search === '?ok=signalee');
  assert.match(await page.getByTestId('review-message').innerText(), /Visite signalée/);
  const badge = page.getByTestId('visit-detail').getByTestId('visit-state');
  assert.equal(await badge.getAttribute('data-state'), 'flagged');
  assert.equal((await page.getByTestId('flag-reason-shown').innerText()).trim(), `Motif : ${reason}`);

  const row = await listedUnder('flagged', visit.id, TEAMS[0].id);
  assert.ok(row, 'listed under « signalée »');
  assert.equal(row.state, 'flagged');
  assert.equal(await count('flagged'), flaggedBefore + 1);
});

test('the latest review action decides: approved then flagged is « signalée »', { timeout: TEST_TIMEOUT }, async () => {
  const visit = await pickVisitToReview(page);
  const url = `/visites/${visit.id}`;
  await open(page, url);
  await clickAndWait(page, page.getByTestId('approve-button'), (u) => u.pathname === url);
  assert.equal(await page.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state'), 'approved');
  await page.getByTestId('flag-reason').fill('Doublon possible');
  await clickAndWait(page, page.getByTestId('flag-button'), (u) => u.pathname === url);
  assert.equal(await page.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state'), 'flagged');
  assert.ok(await listedUnder('flagged', visit.id), 'listed under « signalée »');
  assert.equal(await listedUnder('approved', visit.id), null, 'not under « approuvée » any more');
  // Both actions are in the visit's review events, newest first.
  await open(page, url);
  const events = await page.getByTestId('review-events').locator('li').allInnerTexts();
  assert.match(events[0], /Visite signalée/);
  assert.match(events[1], /Visite approuvée/);
});

test('a review action without the CSRF token is refused (403) and changes nothing', { timeout: TEST_TIMEOUT }, async () => {
  const visit = await pickVisitToReview(page);
  const url = `/visites/${visit.id}`;
  await open(page, url);
  await page.locator('[data-testid="approve-form"] input[name="csrf"]').evaluate((el) => {
    el.value = 'faux-jeton';
  });
  const response = await clickAndWait(page, page.getByTestId('approve-button'));
  assert.equal(response.status(), 403);
  await page.getByTestId('csrf-rejected').waitFor();
  await open(page, url);
  assert.equal(await page.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state'), 'to_review');
});

test('a blank question (spaces only) is refused with the review error and asks nothing', { timeout: TEST_TIMEOUT }, async () => {
  const visit = await pickVisitToReview(page);
  const url = `/visites/${visit.id}`;
  await open(page, url);
  const tasks = await page.getByTestId('review-task').count();
  await page.getByTestId('ask-question').fill('     ');
  await clickAndWait(page, page.getByTestId('ask-button'), (u) => u.pathname === url && u.search === '?erreur=saisie');
  assert.match(await page.getByTestId('review-error').innerText(), /vide ou trop long/);
  assert.equal(await page.getByTestId('review-message').count(), 0);
  assert.equal(await page.getByTestId('review-task').count(), tasks);
  assert.equal(await page.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state'), 'to_review');
});
