// Each organisation sees its own teams only: the second demo organisation's coordinator
// (coordination@autre-demo) gets the 404 page for the first organisation's visit and
// young person, exactly like an unknown id, and never sees them in a list.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  COORDINATOR,
  OTHER_COORDINATOR,
  TEAMS,
  TEST_TIMEOUT,
  dataTotal,
  launchBrowser,
  open,
  openVisits,
  signedInPage,
  visitRows,
  wholeDemoWindow,
} from './helpers.mjs';

let browser;
let mine;
let theirs;
/** A visit and a young person of the first organisation. */
let visit;
let youthId;
let youthName;
before(async () => {
  browser = await launchBrowser();
  mine = await signedInPage(browser, COORDINATOR);
  await openVisits(mine);
  [visit] = await visitRows(mine);
  await open(mine, `/visites/${visit.id}`);
  youthId = await mine.getByTestId('youth-summary').first().getAttribute('data-youth-id');
  youthName = (await mine.getByTestId('youth-summary').first().getByTestId('youth-name').innerText()).trim();
  // A fresh context: its own cookies.
  theirs = await signedInPage(browser, OTHER_COORDINATOR);
});
after(async () => {
  await browser?.close();
});

async function assertNotFound(page, path) {
  await open(page, path, 404);
  await page.getByTestId('not-found').waitFor();
  assert.match(await page.locator('h1').innerText(), /Page introuvable/);
  assert.equal(await page.getByTestId('visit-detail').count(), 0);
  assert.equal(await page.getByTestId('youth-detail').count(), 0);
}

test('the second organisation signs in to its own organisation', { timeout: TEST_TIMEOUT }, async () => {
  assert.match(await theirs.getByTestId('current-user').innerText(), /Coordination Ardennes \(démo\) · Association Prévention Ardennes \(démo\)/);
  const teams = await theirs.getByTestId('filter-team').locator('option').allInnerTexts();
  assert.deepEqual(teams, ['Toutes les équipes', 'Binôme Rethel']);
});

test("another organisation's visit and young person answer 404, like unknown ids", { timeout: TEST_TIMEOUT }, async () => {
  await assertNotFound(theirs, `/visites/${visit.id}`);
  await assertNotFound(theirs, `/jeunes/${youthId}`);
  await assertNotFound(theirs, `/visites/${randomUUID()}`);
  await assertNotFound(theirs, `/jeunes/${randomUUID()}`);
  // The owner still opens them.
  await open(mine, `/visites/${visit.id}`);
  await mine.getByTestId('visit-detail').waitFor();
  await open(mine, `/jeunes/${youthId}`);
  await mine.getByTestId('youth-detail').waitFor();
});

test("another organisation's review actions on the visit are refused and change nothing", { timeout: TEST_TIMEOUT }, async () => {
  // Take a real CSRF token of the second organisation's session from one of its visits.
  await openVisits(theirs);
  const [own] = await visitRows(theirs);
  assert.ok(own, 'the second organisation has visits');
  await open(theirs, `/visites/${own.id}`);
  const csrf = await theirs.locator('[data-testid="approve-form"] input[name="csrf"]').inputValue();
  await open(mine, `/visites/${visit.id}`);
  const stateBefore = await mine.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state');
  const r = await theirs.request.post(`/visites/${visit.id}/approuver`, { form: { csrf }, maxRedirects: 0 });
  assert.equal(r.status(), 404);
  await open(mine, `/visites/${visit.id}`);
  assert.equal(await mine.getByTestId('visit-detail').getByTestId('visit-state').getAttribute('data-state'), stateBefore);
});

test("the second organisation's lists, dashboard and exports hold none of the first's records", { timeout: TEST_TIMEOUT }, async () => {
  await openVisits(theirs);
  const total = await dataTotal(theirs, 'visits-total');
  assert.ok(total > 0 && total <= 25, `one page of visits (got ${total})`);
  const rows = await visitRows(theirs);
  assert.equal(rows.length, total);
  assert.ok(!rows.some((r) => r.id === visit.id), 'the first organisation visit is not listed');
  assert.ok(rows.every((r) => r.team === 'Binôme Rethel'));
  assert.equal(await theirs.locator(`[data-visit-id="${visit.id}"]`).count(), 0);

  // Asking for the first organisation's team gives an empty list, not its visits.
  await openVisits(theirs, { equipe: TEAMS[0].id });
  assert.equal(await dataTotal(theirs, 'visits-total'), 0);
  await theirs.getByTestId('visits-empty').waitFor();

  // Young people: none of the first organisation's.
  await open(theirs, '/jeunes');
  assert.equal(await theirs.locator(`[data-youth-id="${youthId}"]`).count(), 0);
  await open(theirs, `/jeunes?q=${encodeURIComponent(youthName.replace(/[«»]/g, '').trim().split(' ')[0])}`);
  assert.equal(await theirs.locator(`[data-youth-id="${youthId}"]`).count(), 0);

  // Dashboard with the first organisation's team: nobody counted.
  const { from, to } = wholeDemoWindow();
  await open(theirs, `/tableau-de-bord?du=${from}&au=${to}&granularite=whole&equipe=${TEAMS[0].id}`);
  assert.equal((await theirs.getByTestId('total-identified').innerText()).trim(), '0');
  assert.equal((await theirs.getByTestId('total-helped').innerText()).trim(), '0');

  // Exports: the first organisation's team gives no row.
  const csv = await (await theirs.request.get(`/exports/jeunes.csv?equipe=${TEAMS[0].id}`)).text();
  assert.equal(csv.trim().split('\r\n').length, 1, 'header only');
  const all = await (await theirs.request.get('/exports/jeunes.csv')).text();
  assert.ok(!all.includes(TEAMS[0].name) && !all.includes(TEAMS[1].name));

  // Journal: its own entries only (no view of the first organisation's visit).
  await open(theirs, '/journal');
  const journal = await theirs.getByTestId('audit-table').innerText();
  assert.ok(!journal.includes('Coordination (démo)'), "the first organisation's coordinator is not in this journal");
});
