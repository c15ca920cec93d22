// The visits list (/visites) and its filters: team, period, review state, through the
// form. Checks relations between counts (not fixed numbers), so review actions taken by
// other test files before this one do not matter.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TEAMS,
  TEST_TIMEOUT,
  clickAndWait,
  dataTotal,
  launchBrowser,
  open,
  openVisits,
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

/** Submits the filter form and waits for the list it leads to. */
async function filter(fields) {
  const form = page.getByTestId('visits-filter-form');
  if ('team' in fields) await form.getByTestId('filter-team').selectOption({ label: fields.team });
  if ('from' in fields) await form.getByTestId('filter-from').fill(fields.from);
  if ('to' in fields) await form.getByTestId('filter-to').fill(fields.to);
  if ('state' in fields) await form.getByTestId('filter-state').selectOption(fields.state);
  await clickAndWait(page, form.getByTestId('filter-submit'), (u) => u.pathname === '/visites');
  await page.getByTestId('visits-total').waitFor();
  return dataTotal(page, 'visits-total');
}

test('the unfiltered list shows every visit of the organisation, 25 a page', { timeout: TEST_TIMEOUT }, async () => {
  await openVisits(page);
  const total = await dataTotal(page, 'visits-total');
  assert.ok(total > 25, `the demo has more than a page of visits (got ${total})`);
  const rows = await visitRows(page);
  assert.equal(rows.length, 25);
  const teamNames = TEAMS.map((t) => t.name);
  for (const r of rows) assert.ok(teamNames.includes(r.team), `row of unknown team ${r.team}`);
  // Newest first.
  const days = rows.map((r) => r.day);
  assert.deepEqual(days, [...days].sort().reverse());
  assert.match(await page.getByTestId('pagination-info').innerText(), new RegExp(`Page 1 sur ${Math.ceil(total / 25)}`));
  await clickAndWait(page, page.getByTestId('pagination-next'), /page=2/);
  const second = await visitRows(page);
  assert.ok(second.length > 0);
  assert.ok(second.every((r) => !rows.some((f) => f.id === r.id)), 'page 2 repeats no visit of page 1');
  await page.getByTestId('pagination-prev').waitFor();
});

test('filtering by team keeps that team only; the teams add up to the total', { timeout: TEST_TIMEOUT }, async () => {
  await openVisits(page);
  const all = await dataTotal(page, 'visits-total');
  let sum = 0;
  for (const team of TEAMS) {
    const n = await filter({ team: team.name, from: '', to: '', state: '' });
    assert.ok(n > 0, `« ${team.name} » has visits`);
    assert.ok(n < all);
    assert.equal(await page.getByTestId('filter-team').inputValue(), team.id, 'the form keeps the chosen team');
    assert.ok(new URL(page.url()).searchParams.get('equipe') === team.id);
    const rows = await visitRows(page);
    assert.ok(rows.length > 0);
    for (const r of rows) assert.equal(r.team, team.name);
    sum += n;
  }
  assert.equal(sum, all, 'the two teams together are the whole list');
  const n = await filter({ team: 'Toutes les équipes' });
  assert.equal(n, all);
});

test('filtering by period keeps the visits of those days only', { timeout: TEST_TIMEOUT }, async () => {
  await openVisits(page);
  const all = await dataTotal(page, 'visits-total');
  const newest = await visitRows(page);
  // From the 10th newest visit's day to the newest one's: at least 10 visits, not all.
  const from = newest[9].day;
  const to = newest[0].day;
  const n = await filter({ team: 'Toutes les équipes', from, to, state: '' });
  assert.ok(n >= 10, `at least the 10 newest visits (got ${n})`);
  assert.ok(n < all, `a shorter period has fewer visits (${n} of ${all})`);
  assert.equal(await page.getByTestId('filter-from').inputValue(), from);
  assert.equal(await page.getByTestId('filter-to').inputValue(), to);
  for (const r of await visitRows(page)) {
    assert.ok(r.day >= from && r.day <= to, `visit ${r.id} of ${r.day} is outside ${from}..${to}`);
  }
  // A single day.
  const one = await filter({ from: to, to });
  assert.ok(one >= 1);
  for (const r of await visitRows(page)) assert.equal(r.day, to);
  // A period without visits.
  const none = await filter({ from: '2001-01-01', to: '2001-12-31' });
  assert.equal(none, 0);
  await page.getByTestId('visits-empty').waitFor();
  assert.equal(await page.getByTestId('visits-table').count(), 0);
  // Team and period together.
  const team = TEAMS[0];
  const both = await filter({ team: team.name, from, to });
  assert.ok(both <= n);
  for (const r of await visitRows(page)) {
    assert.equal(r.team, team.name);
    assert.ok(r.day >= from && r.day <= to);
  }
});

test('filtering by review state: each state lists its own, and they add up', { timeout: TEST_TIMEOUT }, async () => {
  await openVisits(page);
  const all = await dataTotal(page, 'visits-total');
  const labels = {
    to_review: 'à revoir',
    approved: 'approuvée',
    question: 'question posée',
    flagged: 'signalée',
  };
  let sum = 0;
  for (const [state, label] of Object.entries(labels)) {
    const n = await filter({ team: 'Toutes les équipes', from: '', to: '', state });
    assert.equal(await page.getByTestId('filter-state').inputValue(), state);
    const rows = await visitRows(page);
    assert.equal(rows.length, Math.min(n, 25));
    for (const r of rows) assert.equal(r.state, state, `visit ${r.id} listed under ${state}`);
    if (rows.length > 0) {
      const badge = page.getByTestId('visit-row').first().getByTestId('visit-state');
      assert.equal((await badge.innerText()).trim(), label);
    } else {
      await page.getByTestId('visits-empty').waitFor();
    }
    sum += n;
  }
  assert.equal(sum, all, 'every visit is in exactly one state');
  const toReview = await filter({ state: 'to_review' });
  assert.ok(toReview > 0, 'the demo starts with visits to review');
});

test('an invalid filter is said on the page, not ignored; a page past the last one links to it', { timeout: TEST_TIMEOUT }, async () => {
  await open(page, '/visites?du=2025-02-30&etat=archivee', 400);
  const error = await page.getByTestId('filter-error').innerText();
  assert.match(error, /La date « Du » n'est pas une date valide/);
  assert.match(error, /L'état de revue demandé n'existe pas/);
  assert.equal(await page.getByTestId('visits-table').count(), 0, 'no list under a refused filter');
  await page.getByTestId('visits-filter-form').waitFor();

  await openVisits(page);
  const pages = Math.ceil((await dataTotal(page, 'visits-total')) / 25);
  await open(page, `/visites?etat=&page=${pages + 5}`, 404);
  assert.equal(
    (await page.getByTestId('page-missing').innerText()).split('.')[0] + '.',
    `Cette page n'existe pas : il y a ${pages} page${pages > 1 ? 's' : ''}.`,
  );
  await clickAndWait(page, page.getByTestId('pagination-last'), (u) => u.searchParams.get('page') === String(pages));
  assert.ok((await visitRows(page)).length > 0, 'the last page has visits');
  assert.match(await page.getByTestId('pagination-info').innerText(), new RegExp(`Page ${pages} sur ${pages}`));
});
