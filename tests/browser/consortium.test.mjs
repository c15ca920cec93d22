// The consortium's figures (/tableau-de-bord/consortium): an administrator sees one row per
// organisation of the server, each equal to what that organisation's coordinator sees on
// their own dashboard over the same days, and the consortium total; a coordinator sees
// their own organisation's row only, and no link to the page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  COORDINATOR,
  DEMO_ORGANISATION,
  OTHER_COORDINATOR,
  PASSWORD,
  TEST_TIMEOUT,
  admin,
  clickAndWait,
  launchBrowser,
  open,
  organisationId,
  screenshot,
  signedInPage,
  wholeDemoWindow,
} from './helpers.mjs';

const OTHER_ORGANISATION = 'Association Prévention Ardennes (démo)';
const FIGURES = ['identified', 'helped', 'mobilised', 'chantier_participants', 'youth_with_outcome', 'outcomes'];

let browser;
let adminLogin;
before(async () => {
  browser = await launchBrowser();
  adminLogin = `admin-consortium-${process.pid}-${Date.now()}@demo`;
  admin(['create-user', '--org', organisationId(), '--name', 'Alex Admin (test)', '--role', 'admin', '--login', adminLogin]);
  admin(['set-password', '--user', adminLogin], { REPERE_PASSWORD: PASSWORD });
});
after(async () => {
  await browser?.close();
});

async function numberIn(locator) {
  const text = (await locator.textContent()).trim();
  const n = Number(text);
  assert.ok(Number.isInteger(n), `not a whole number: ${text}`);
  return n;
}

/** The figures of one organisation's row of the consortium table. */
async function rowFigures(page, orgId) {
  const row = page.locator(`[data-testid="consortium-row"][data-organisation-id="${orgId}"]`);
  assert.equal(await row.count(), 1, `one row for ${orgId}`);
  const figures = {};
  for (const id of FIGURES) figures[id] = await numberIn(row.getByTestId(`org-${id}`));
  return figures;
}

/** The totals of the signed-in coordinator's own dashboard over the window. */
async function dashboardFigures(page, { from, to }) {
  await open(page, `/tableau-de-bord?du=${from}&au=${to}&granularite=whole`);
  const figures = {};
  for (const id of FIGURES) figures[id] = await numberIn(page.getByTestId(`total-${id}`));
  return figures;
}

test('an administrator sees every organisation, each as its coordinators see it', { timeout: TEST_TIMEOUT }, async () => {
  const window = wholeDemoWindow();
  const page = await signedInPage(browser, adminLogin);
  await open(page, '/tableau-de-bord');
  await clickAndWait(page, page.getByTestId('consortium-link'), '**/tableau-de-bord/consortium');
  const form = page.getByTestId('consortium-filter-form');
  await form.getByTestId('filter-from').fill(window.from);
  await form.getByTestId('filter-to').fill(window.to);
  await clickAndWait(page, form.getByTestId('filter-submit'));
  await screenshot(page, 'consortium-admin.png');

  const ours = organisationId(DEMO_ORGANISATION);
  const theirs = organisationId(OTHER_ORGANISATION);
  const figures = { [ours]: await rowFigures(page, ours), [theirs]: await rowFigures(page, theirs) };
  assert.ok(figures[ours].identified + figures[ours].helped > 0, 'the demo organisation has figures');
  assert.ok(figures[theirs].identified + figures[theirs].helped > 0, 'the other one too');

  // The total is the sum of every row.
  const rows = page.getByTestId('consortium-row');
  const ids = await rows.evaluateAll((els) => els.map((e) => e.dataset.organisationId));
  for (const id of FIGURES) {
    let sum = 0;
    for (const org of ids) sum += (await rowFigures(page, org))[id];
    assert.equal(await numberIn(page.getByTestId(`consortium-${id}`)), sum, id);
  }

  // Each row is the organisation's own dashboard.
  for (const [login, org] of [[COORDINATOR, ours], [OTHER_COORDINATOR, theirs]]) {
    const coordinator = await signedInPage(browser, login);
    assert.deepEqual(await dashboardFigures(coordinator, window), figures[org], login);
    await coordinator.context().close();
  }
  await page.context().close();
});

test('a coordinator sees their own organisation only', { timeout: TEST_TIMEOUT }, async () => {
  const window = wholeDemoWindow();
  const page = await signedInPage(browser, OTHER_COORDINATOR);
  await open(page, '/tableau-de-bord');
  assert.equal(await page.getByTestId('consortium-link').count(), 0);
  await open(page, `/tableau-de-bord/consortium?du=${window.from}&au=${window.to}`);
  await screenshot(page, 'consortium-coordinator.png');
  const rows = page.getByTestId('consortium-row');
  assert.equal(await rows.count(), 1);
  assert.equal(await rows.first().getAttribute('data-organisation-id'), organisationId(OTHER_ORGANISATION));
  assert.equal(await page.getByTestId('consortium-total').count(), 0);
  assert.ok(!(await page.content()).includes(DEMO_ORGANISATION));

  // A wrong date is said on the page.
  await open(page, '/tableau-de-bord/consortium?du=demain', 400);
  await page.getByTestId('consortium-error').waitFor();
  await page.context().close();
});
