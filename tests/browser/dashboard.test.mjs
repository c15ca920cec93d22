// The dashboard (/tableau-de-bord) against the tablets: the server and a tablet compute
// the indicators with the same code (docs/indicators.md), so for one team over the same
// days the dashboard's totals equal `repere-device indicators FROM TO` on a tablet of
// that team after a full sync.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TEAMS,
  TEST_TIMEOUT,
  clickAndWait,
  launchBrowser,
  newTablet,
  open,
  screenshot,
  signedInPage,
  wholeDemoWindow,
} from './helpers.mjs';

const FIGURES = ['identified', 'helped', 'mobilised', 'chantier_participants', 'youth_with_outcome'];
const OUTCOME_KINDS = [
  'mission_locale_registration',
  'france_travail_registration',
  'cap_emploi_registration',
  'job',
  'training',
  'return_to_school',
  'housing',
  'health_care',
  'other',
];

let browser;
let page;
/** One synced tablet per demo team, made once (enrolling uses up a code). */
const tablets = new Map();
before(async () => {
  browser = await launchBrowser();
  page = await signedInPage(browser);
});
after(async () => {
  await browser?.close();
});

function tabletOf(team) {
  if (!tablets.has(team.name)) {
    const tablet = newTablet(team.name);
    tablet.syncAll();
    tablets.set(team.name, tablet);
  }
  return tablets.get(team.name);
}

/** Chooses the filters in the form and shows the dashboard. */
async function showDashboard({ from, to, granularity, team, dimension = '' }) {
  await open(page, '/tableau-de-bord');
  const form = page.getByTestId('dashboard-filter-form');
  await form.getByTestId('filter-from').fill(from);
  await form.getByTestId('filter-to').fill(to);
  await form.getByTestId('filter-granularity').selectOption(granularity);
  await form.getByTestId('filter-dimension').selectOption(dimension);
  await form.getByTestId('filter-team').selectOption(team ? { label: team.name } : '');
  await clickAndWait(page, form.getByTestId('filter-submit'), (u) => u.pathname === '/tableau-de-bord');
  await page.getByTestId('totals').waitFor();
  assert.equal(await page.getByTestId('dashboard-error').count(), 0);
}

async function readTotals() {
  const totals = {};
  for (const id of FIGURES) {
    const text = (await page.getByTestId(`total-${id}`).innerText()).trim();
    assert.match(text, /^\d+$/, `total-${id} is a number`);
    totals[id] = Number(text);
  }
  totals.outcomes = {};
  for (const kind of OUTCOME_KINDS) {
    totals.outcomes[kind] = Number((await page.getByTestId(`total-outcome-${kind}`).innerText()).trim());
  }
  return totals;
}

test('for each team, the dashboard totals equal the indicators of a synced tablet of that team', { timeout: TEST_TIMEOUT }, async () => {
  const { from, to } = wholeDemoWindow();
  for (const team of TEAMS) {
    await showDashboard({ from, to, granularity: 'whole', team });
    // The form echoes the query.
    assert.equal(await page.getByTestId('filter-team').inputValue(), team.id);
    assert.equal(await page.getByTestId('filter-granularity').inputValue(), 'whole');
    assert.equal(await page.getByTestId('filter-from').inputValue(), from);
    assert.equal(await page.getByTestId('filter-to').inputValue(), to);
    const shown = await readTotals();
    const device = tabletOf(team).indicators(from, to);
    for (const id of FIGURES) {
      assert.equal(shown[id], device[id], `« ${team.name} » ${id}: dashboard ${shown[id]}, tablet ${device[id]}`);
    }
    assert.deepEqual(shown.outcomes, device.outcomes, `« ${team.name} » outcomes by kind`);
    assert.ok(shown.identified + shown.helped > 0, `« ${team.name} » has reached young people`);
    // One period: the figures table has its total row only.
    const rows = page.getByTestId('figures-table').locator('tbody tr');
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().locator('td').first().innerText(), `${from}..${to}`);
  }
});

test('all teams together are the sum of the teams; months add up to the whole period', { timeout: TEST_TIMEOUT }, async () => {
  const { from, to } = wholeDemoWindow();
  const sum = Object.fromEntries(FIGURES.map((id) => [id, 0]));
  for (const team of TEAMS) {
    const device = tabletOf(team).indicators(from, to);
    for (const id of FIGURES) sum[id] += device[id];
  }
  await showDashboard({ from, to, granularity: 'whole' });
  const whole = await readTotals();
  for (const id of FIGURES) {
    // Chantier participants and youth with an outcome are distinct people per team, and a
    // young person belongs to one team: the teams add up for every figure.
    assert.equal(whole[id], sum[id], `all teams ${id}`);
  }

  await showDashboard({ from, to, granularity: 'month' });
  const byMonth = await readTotals();
  assert.deepEqual(
    Object.fromEntries(['identified', 'helped', 'mobilised'].map((id) => [id, byMonth[id]])),
    Object.fromEntries(['identified', 'helped', 'mobilised'].map((id) => [id, whole[id]])),
    'the totals do not depend on the granularity for the once-ever figures',
  );
  // Month rows (total rows of each period) add up for identified, helped, mobilised.
  const cells = await page.getByTestId('figures-table').locator('tbody tr.total').evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent.trim())),
  );
  assert.ok(cells.length >= 24, `one row per month (got ${cells.length})`);
  // Columns: Période, Valeur, identified, helped, mobilised, chantier, outcome youth, Solutions.
  for (const [k, id] of [[2, 'identified'], [3, 'helped'], [4, 'mobilised']]) {
    const total = cells.reduce((n, row) => n + Number(row[k]), 0);
    assert.equal(total, whole[id], `monthly ${id} add up to the whole period`);
  }
  await page.getByTestId('chart-periods').waitFor();
});

test('the convention targets show 250 identified and 125 mobilised, with the achieved figures', { timeout: TEST_TIMEOUT }, async () => {
  await open(page, '/tableau-de-bord');
  await page.getByTestId('targets').waitFor();
  assert.equal((await page.getByTestId('progress-identified-target').innerText()).trim(), '250');
  assert.equal((await page.getByTestId('progress-mobilised-target').innerText()).trim(), '125');
  // "Du 01/01/AAAA au 31/12/AAAA, toutes les équipes de l'organisation, au JJ/MM/AAAA."
  const text = await page.getByTestId('targets').locator('xpath=preceding-sibling::p[1]').innerText();
  const m = text.match(/Du (\d\d)\/(\d\d)\/(\d{4}) au \d\d\/\d\d\/\d{4}, .* au (\d\d)\/(\d\d)\/(\d{4})/);
  assert.ok(m, `targets window and day in « ${text} »`);
  const from = `${m[3]}-${m[2]}-${m[1]}`;
  const today = `${m[6]}-${m[5]}-${m[4]}`;
  for (const id of ['identified', 'mobilised']) {
    let expected = 0;
    for (const team of TEAMS) expected += tabletOf(team).indicators(from, today)[id];
    const achieved = Number((await page.getByTestId(`progress-${id}-achieved`).innerText()).trim());
    assert.equal(achieved, expected, `progress ${id} achieved`);
    const percent = (await page.getByTestId(`progress-${id}-percent`).innerText()).trim();
    const target = id === 'identified' ? 250 : 125;
    assert.equal(percent, (Math.round((achieved / target) * 1000) / 10).toFixed(1).replace('.', ','));
    assert.match(await page.getByTestId(`progress-${id}-on-track`).innerText(), /^(dans les temps|en retard)$/);
  }
});

test('a period ending before it starts shows the dashboard error', { timeout: TEST_TIMEOUT }, async () => {
  const response = await open(page, '/tableau-de-bord?du=2025-06-01&au=2025-01-01&granularite=month', 400);
  assert.equal(response.status(), 400);
  await page.getByTestId('dashboard-error').waitFor();
  assert.equal(await page.getByTestId('totals').count(), 0);
});

test('an unknown breakdown or a malformed date is said on the dashboard, with the form as typed', { timeout: TEST_TIMEOUT }, async () => {
  await open(page, '/tableau-de-bord?du=2025-01-01&granularite=semaine&dimension=couleur', 400);
  const error = await page.getByTestId('dashboard-error').innerText();
  assert.match(error, /Le découpage demandé/);
  assert.match(error, /Le détail demandé/);
  assert.equal(await page.getByTestId('totals').count(), 0);
  assert.equal(await page.getByTestId('filter-from').inputValue(), '2025-01-01');
  // The indicators' CSV with the same filters: refused on the dashboard, no file.
  await open(page, '/exports/indicateurs.csv?du=2025-01-01&granularite=semaine', 400);
  assert.match(await page.getByTestId('dashboard-error').innerText(), /Le découpage demandé/);
});

test('dashboard screenshot (all teams, by quarter, by commune)', { timeout: TEST_TIMEOUT }, async () => {
  const { from, to } = wholeDemoWindow();
  await showDashboard({ from, to, granularity: 'quarter', dimension: 'commune' });
  await page.getByTestId('chart-periods').waitFor();
  await page.getByTestId('dimension-table').waitFor();
  await page.getByTestId('export-indicators-link').waitFor();
  await screenshot(page, 'dashboard.png');
});
