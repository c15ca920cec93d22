// The retention page (/conservation): what the rules will erase in the next 30 days, in the
// coordinator's organisation only. The demo's first contacts are all less than 700 days
// old, so under the CNIL default (24 months) nothing falls due; the test sets a shorter
// rule (6 months) for the demo organisation with `admin retention` (nothing is erased: the daily job
// already ran at start-up) and puts the default back at the end.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  OTHER_COORDINATOR,
  TEST_TIMEOUT,
  admin,
  isoDay,
  launchBrowser,
  open,
  organisationId,
  screenshot,
  signedInPage,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
  admin(['retention', '--organisation', organisationId(), '--months', '6']);
});
after(async () => {
  admin(['retention', '--organisation', organisationId(), '--months', '24']);
  await browser?.close();
});

test('lists the files the rule erases within 30 days, soonest first, each linked', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser);
  await open(page, '/conservation');
  await screenshot(page, 'conservation.png');
  assert.equal(await page.getByTestId('retention-rule').getAttribute('data-months'), '6');
  const rows = page.getByTestId('retention-row');
  const count = await rows.count();
  assert.ok(count > 0, 'a 6-month rule puts demo files within 30 days (or past due)');
  const horizon = new Date();
  horizon.setDate(horizon.getDate() + 30);
  let previous = '';
  for (let i = 0; i < count; i++) {
    const purgeOn = await rows.nth(i).getAttribute('data-purge-on');
    assert.ok(purgeOn <= isoDay(horizon), `${purgeOn} is within 30 days`);
    assert.ok(purgeOn >= previous, 'soonest first');
    previous = purgeOn;
  }
  const youthRow = page.locator('[data-testid="retention-row"][data-kind="youth"]').first();
  const id = await youthRow.getAttribute('data-id');
  await youthRow.getByRole('link').click();
  await page.waitForURL(`**/jeunes/${id}`);
  assert.equal(new URL(page.url()).pathname, `/jeunes/${id}`);
  await page.close();
});

test("another organisation's coordinator sees their own rule and none of these files", { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser, OTHER_COORDINATOR);
  await open(page, '/conservation');
  assert.equal(await page.getByTestId('retention-rule').getAttribute('data-months'), '24');
  assert.equal(await page.getByTestId('retention-row').count(), 0);
  await page.getByTestId('retention-empty').waitFor();
  await page.close();
});
