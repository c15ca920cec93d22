// Exports (/exports, /exports/indicateurs.csv, /exports/jeunes.csv) and the journal
// (/journal) that records them. CSV files are parsed as RFC 4180 (quotes, CRLF). The export
// with names needs a second factor: a new coordinator of the demo organisation sets it up
// (the demo login stays password-only, and so cannot tick the names box). The pseudonymised
// export's rules (no profile flag unless asked, months, small communes generalised) are
// checked against the named export of the same young people.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import {
  TEAMS,
  TEST_TIMEOUT,
  containsWord,
  csvRecords,
  dataTotal,
  enableSecondFactor,
  firstNameOf,
  launchBrowser,
  login,
  newCoordinator,
  newPage,
  open,
  signedInPage,
  wholeDemoWindow,
} from './helpers.mjs';

const INDICATOR_COLUMNS = [
  'period', 'period_start', 'period_end', 'dimension', 'key', 'label',
  'identified', 'helped', 'mobilised', 'chantier_participants', 'youth_with_outcome',
  'outcome_mission_locale_registration', 'outcome_france_travail_registration',
  'outcome_cap_emploi_registration', 'outcome_job', 'outcome_training',
  'outcome_return_to_school', 'outcome_housing', 'outcome_health_care', 'outcome_other',
];
/** With the profile flags box ticked; without it, the same less `profile_flags`. */
const FLAGGED_COLUMNS = [
  'pseudonym', 'team', 'status', 'age_band', 'sex', 'commune', 'commune_name', 'epci',
  'epci_name', 'referral_source', 'profile_flags', 'situation_invisible',
  'first_contact_date', 'contacts', 'actions', 'outcomes',
];
const YOUTH_COLUMNS = FLAGGED_COLUMNS.filter((c) => c !== 'profile_flags');
const FLAG_IDS = ['care_leaver', 'school_dropout', 'disability', 'justice_measure'];
/** The fewest young people a shown commune or intercommunality holds. */
const MIN_CELL = 5;
const PSEUDONYMISED_FILE = /^donnees-personnelles-pseudonymisees-jeunes-\d{4}-\d{2}-\d{2}\.csv$/;
const NAMED_FILE = /^donnees-personnelles-nominatives-jeunes-\d{4}-\d{2}-\d{2}\.csv$/;
const NAME_COLUMNS = ['id', 'first_name', 'last_name', 'alias'];

let browser;
let page;
/** A coordinator of the same organisation with a second factor, and their page. */
let namer;
let namedPage;
before(async () => {
  browser = await launchBrowser();
  page = await signedInPage(browser);
  namer = newCoordinator('exports');
  namedPage = await newPage(browser);
  await login(namedPage, namer.login);
  await enableSecondFactor(namedPage);
});
after(async () => {
  await browser?.close();
});

/** Clicks what starts a download (on `on`, the main page unless told) and returns { name, text }. */
async function download(locator, on = page) {
  const [dl] = await Promise.all([on.waitForEvent('download'), locator.click()]);
  const file = await dl.path();
  assert.equal(await dl.failure(), null);
  return { name: dl.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
}

function assertCrlf(text) {
  assert.ok(text.endsWith('\r\n'), 'the CSV ends with CRLF');
  assert.ok(!text.startsWith('\uFEFF'), 'no BOM');
}

/** The young people of the first page of /jeunes: [{ id, name, firstName }]. */
async function visibleYouth() {
  await open(page, '/jeunes');
  const total = await dataTotal(page, 'youth-total');
  const youth = await page.getByTestId('youth-row').evaluateAll((rows) =>
    rows.map((r) => ({ id: r.getAttribute('data-youth-id'), name: r.querySelector('[data-testid="youth-link"]').textContent.trim() })),
  );
  return { total, youth: youth.map((y) => ({ ...y, firstName: firstNameOf(y.name) })) };
}

test('the indicators CSV has the documented columns and the dashboard figures', { timeout: TEST_TIMEOUT }, async () => {
  const { from, to } = wholeDemoWindow();
  const team = TEAMS[0];
  await open(page, `/tableau-de-bord?du=${from}&au=${to}&granularite=whole&equipe=${team.id}`);
  const shown = {};
  for (const id of ['identified', 'helped', 'mobilised', 'chantier_participants', 'youth_with_outcome']) {
    shown[id] = (await page.getByTestId(`total-${id}`).innerText()).trim();
  }
  // The dashboard's link carries its filters.
  const { name, text } = await download(page.getByTestId('export-indicators-link'));
  assert.equal(name, `indicateurs-${from}-${to}.csv`);
  assertCrlf(text);
  const { header, records } = csvRecords(text);
  assert.deepEqual(header, INDICATOR_COLUMNS);
  assert.equal(records.length, 1, 'one period, total row only');
  const total = records[0];
  assert.equal(total.period, `${from}..${to}`);
  assert.equal(total.period_start, from);
  assert.equal(total.period_end, to);
  assert.equal(total.dimension, 'total');
  assert.equal(total.key, '');
  assert.equal(total.label, 'Total');
  for (const [id, value] of Object.entries(shown)) assert.equal(total[id], value, `CSV ${id}`);

  // The export page's link (default period, by month), through the session's request API.
  await open(page, '/exports');
  const href = await page.getByTestId('export-indicators-link').getAttribute('href');
  const response = await page.request.get(href);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'], /^text\/csv/);
  assert.match(response.headers()['content-disposition'], /^attachment; filename="indicateurs-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv"$/);
  const monthly = csvRecords(await response.text());
  assert.deepEqual(monthly.header, INDICATOR_COLUMNS);
  assert.ok(monthly.records.length >= 12, 'at least a year of months');
  assert.ok(monthly.records.every((r) => /^\d{4}-\d{2}$/.test(r.period) && r.dimension === 'total'));
});

test('the indicators CSV by EPCI parses (quoted names) and its rows add up to the totals', { timeout: TEST_TIMEOUT }, async () => {
  const { from, to } = wholeDemoWindow();
  const response = await page.request.get(`/exports/indicateurs.csv?du=${from}&au=${to}&granularite=whole&dimension=epci`);
  assert.equal(response.status(), 200);
  const text = await response.text();
  assertCrlf(text);
  const { header, records } = csvRecords(text);
  assert.deepEqual(header, INDICATOR_COLUMNS);
  const [total, ...rows] = records;
  assert.equal(total.dimension, 'total');
  assert.ok(rows.length >= 2, 'several EPCIs');
  for (const r of rows) {
    assert.equal(r.dimension, 'epci');
    assert.ok(r.label.length > 0);
    if (r.label.includes(',')) assert.ok(text.includes(`"${r.label.replace(/"/g, '""')}"`), 'a label with a comma is quoted');
  }
  // The demo's Ardennes communes include « CC Ardenne, Rives de Meuse »: a quoted field.
  assert.ok(rows.some((r) => r.label.includes(',')), 'an EPCI name with a comma exercises the quoting');
  for (const id of ['identified', 'helped', 'mobilised']) {
    const sum = rows.reduce((n, r) => n + Number(r[id]), 0);
    assert.equal(sum, Number(total[id]), `EPCI rows add up to the total (${id})`);
  }
});

test('the youth CSV is pseudonymised by default; the named export (box ticked) has the names; the journal records both', { timeout: TEST_TIMEOUT }, async () => {
  const { total, youth } = await visibleYouth();
  const named = youth.filter((y) => y.firstName);
  assert.ok(named.length > 0, 'some young people have a first name on /jeunes');
  const chosen = named[0];
  // Their file shows the same name.
  await open(page, `/jeunes/${chosen.id}`);
  assert.equal((await page.getByTestId('youth-name').innerText()).trim(), chosen.name);

  // Pseudonymised: GET with the session.
  const response = await page.request.get('/exports/jeunes.csv');
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-disposition'], /filename="donnees-personnelles-pseudonymisees-jeunes-\d{4}-\d{2}-\d{2}\.csv"/);
  const plainText = await response.text();
  assertCrlf(plainText);
  const plain = csvRecords(plainText);
  assert.deepEqual(plain.header, YOUTH_COLUMNS);
  assert.equal(plain.records.length, total, 'one row per young person of the organisation');
  for (const r of plain.records) assert.match(r.pseudonym, /^J-[0-9a-f]{16}$/, '64-bit pseudonyms');
  assert.equal(new Set(plain.records.map((r) => r.pseudonym)).size, total, 'pseudonyms are distinct');
  assert.ok(!plainText.includes(chosen.id), 'no record id');
  for (const y of named) {
    assert.ok(!containsWord(plainText, y.firstName), `the pseudonymised export contains the first name « ${y.firstName} »`);
  }
  assert.deepEqual(
    [...new Set(plain.records.map((r) => r.team))].sort(),
    TEAMS.map((t) => t.name).sort(),
    'the team column names the teams',
  );

  // The form on /exports, box not ticked: pseudonymised too.
  await open(page, '/exports');
  assert.equal(await page.getByTestId('export-youth-names').isChecked(), false, 'the names box starts unticked');
  const formPlain = await download(page.getByTestId('export-youth-submit'));
  assert.match(formPlain.name, PSEUDONYMISED_FILE);
  assert.deepEqual(csvRecords(formPlain.text).header, YOUTH_COLUMNS);
  for (const y of named) assert.ok(!containsWord(formPlain.text, y.firstName));

  // With names: not for a session without a second factor…
  assert.equal(await page.getByTestId('export-youth-names').isDisabled(), true);
  await page.getByTestId('export-names-need-second-factor').waitFor();
  // …but for a colleague who set one up: tick the box.
  await open(namedPage, '/exports');
  await namedPage.getByTestId('export-youth-names').check();
  const withNames = await download(namedPage.getByTestId('export-youth-submit'), namedPage);
  assert.match(withNames.name, NAMED_FILE);
  assertCrlf(withNames.text);
  const full = csvRecords(withNames.text);
  assert.deepEqual(full.header, [YOUTH_COLUMNS[0], ...NAME_COLUMNS, ...YOUTH_COLUMNS.slice(1)]);
  const row = full.records.find((r) => r.id === chosen.id);
  assert.ok(row, 'the chosen young person is in the named export');
  assert.equal(row.first_name, chosen.firstName);
  assert.ok(containsWord(withNames.text, chosen.firstName));
  // Pseudonyms are stable between exports.
  const pseudonyms = new Set(plain.records.map((r) => r.pseudonym));
  assert.ok(pseudonyms.has(row.pseudonym), 'same pseudonym in both exports');

  // One team only.
  await open(page, '/exports');
  await page.getByTestId('export-team').selectOption({ label: TEAMS[1].name });
  const oneTeam = csvRecords((await download(page.getByTestId('export-youth-submit'))).text);
  assert.ok(oneTeam.records.length > 0 && oneTeam.records.length < total);
  assert.ok(oneTeam.records.every((r) => r.team === TEAMS[1].name));

  // The journal shows the exports, newest first, without names.
  await open(page, '/journal');
  await page.getByTestId('audit-table').waitFor();
  const actions = await page.getByTestId('audit-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
  assert.equal(actions[0], 'export_youth_pseudonymised', 'the latest entry is the one-team export');
  assert.equal(actions[1], 'export_youth_named');
  assert.ok(actions.includes('export_youth_pseudonymised'));
  assert.ok(actions.includes('export_indicators') || (await journalHas('export_indicators')), 'indicators export logged');
  const namedRow = page.locator('[data-testid="audit-row"][data-action="export_youth_named"]').first();
  assert.match(await namedRow.innerText(), /Export des jeunes AVEC les noms/);
  assert.match(await namedRow.innerText(), new RegExp(namer.name.replace(/[()]/g, '\\$&')));
  const journalText = await page.getByTestId('audit-table').innerText();
  assert.ok(!containsWord(journalText, chosen.firstName), 'the journal holds no name');
});

test('the pseudonymised export leaves out profile flags unless asked, gives months and generalises small communes', { timeout: TEST_TIMEOUT }, async () => {
  // The page says what the file is and what it removes.
  await open(page, '/exports');
  const notice = await page.getByTestId('export-youth-personal-data').innerText();
  assert.match(notice, /n'est pas anonyme/);
  assert.match(notice, /espace protégé/);
  assert.match(notice, /supprimez-le après usage/);
  const rules = await page.getByTestId('export-youth-rules').innerText();
  assert.match(rules, /seul le mois reste/);
  assert.match(rules, /moins de 5 jeunes/);
  assert.match(rules, /profile_flags n'apparaît que si vous cochez/);
  assert.equal(await page.getByTestId('export-youth-flags').isChecked(), false, 'the flags box starts unticked');

  // Box not ticked: no flag anywhere, the first contact by month.
  const plain = await download(page.getByTestId('export-youth-submit'));
  assert.match(plain.name, PSEUDONYMISED_FILE);
  const { header, records } = csvRecords(plain.text);
  assert.deepEqual(header, YOUTH_COLUMNS);
  for (const flag of FLAG_IDS) assert.ok(!plain.text.includes(flag), `no ${flag} in the file`);

  // The named export of the same young people, by a colleague with a second factor: full days
  // and communes, and no flags either without the box.
  await open(namedPage, '/exports');
  await namedPage.getByTestId('export-youth-names').check();
  const namedFile = await download(namedPage.getByTestId('export-youth-submit'), namedPage);
  assert.match(namedFile.name, NAMED_FILE);
  const named = csvRecords(namedFile.text);
  assert.deepEqual(named.header, [YOUTH_COLUMNS[0], ...NAME_COLUMNS, ...YOUTH_COLUMNS.slice(1)]);
  for (const flag of FLAG_IDS) assert.ok(!namedFile.text.includes(flag), `no ${flag} in the named file`);
  const truth = new Map(named.records.map((r) => [r.pseudonym, r]));
  assert.equal(truth.size, records.length);

  // A commune shown holds 5 young people of the file or more; else its intercommunality if
  // 5 or more are generalised to it; else neither.
  const count = (rows, key) => rows.reduce((m, r) => m.set(key(r), (m.get(key(r)) ?? 0) + 1), new Map());
  const perCommune = count(named.records, (r) => r.commune);
  const perEpci = count(named.records.filter((r) => perCommune.get(r.commune) < MIN_CELL), (r) => r.epci);
  const seen = { commune: 0, epci: 0, nowhere: 0 };
  const place = (r) => [r.commune, r.commune_name, r.epci, r.epci_name];
  for (const r of records) {
    const t = truth.get(r.pseudonym);
    assert.ok(t, 'the same pseudonym in both exports');
    assert.match(t.first_contact_date, /^\d{4}-\d{2}-\d{2}$/, 'the named export keeps the day');
    assert.equal(r.first_contact_date, t.first_contact_date.slice(0, 7), 'the pseudonymised one the month');
    if (perCommune.get(t.commune) >= MIN_CELL) {
      seen.commune += 1;
      assert.deepEqual(place(r), place(t));
    } else if (t.epci && perEpci.get(t.epci) >= MIN_CELL) {
      seen.epci += 1;
      assert.deepEqual(place(r), ['', '', t.epci, t.epci_name]);
    } else {
      seen.nowhere += 1;
      assert.deepEqual(place(r), ['', '', '', '']);
    }
  }
  assert.ok(seen.commune > 0 && seen.epci > 0, `the demo has communes shown and generalised: ${JSON.stringify(seen)}`);

  // Box ticked: the column, the same flags as the named export with its box ticked too.
  await open(page, '/exports');
  await page.getByTestId('export-youth-flags').check();
  const flagged = await download(page.getByTestId('export-youth-submit'));
  assert.match(flagged.name, PSEUDONYMISED_FILE);
  const withFlags = csvRecords(flagged.text);
  assert.deepEqual(withFlags.header, FLAGGED_COLUMNS);
  assert.ok(withFlags.records.some((r) => r.profile_flags !== ''), 'some demo young people have flags');
  for (const r of withFlags.records) {
    assert.ok(r.profile_flags.split(';').every((f) => f === '' || FLAG_IDS.includes(f)), r.profile_flags);
  }
  await open(namedPage, '/exports');
  await namedPage.getByTestId('export-youth-names').check();
  await namedPage.getByTestId('export-youth-flags').check();
  const namedFlags = csvRecords((await download(namedPage.getByTestId('export-youth-submit'), namedPage)).text);
  assert.ok(namedFlags.header.includes('profile_flags'));
  const flagsOf = new Map(namedFlags.records.map((r) => [r.pseudonym, r.profile_flags]));
  for (const r of withFlags.records) assert.equal(r.profile_flags, flagsOf.get(r.pseudonym));

  // The journal tells the exports with flags apart.
  await open(page, '/journal');
  const latest = await page.getByTestId('audit-row').evaluateAll((rows) =>
    rows.slice(0, 4).map((r) => [r.getAttribute('data-action'), r.innerText.includes('avec indicateurs de profil')]),
  );
  assert.deepEqual(latest, [
    ['export_youth_named', true],
    ['export_youth_pseudonymised', true],
    ['export_youth_named', false],
    ['export_youth_pseudonymised', false],
  ]);
});

/** Whether an action is anywhere in the journal (following its pages). */
async function journalHas(action) {
  for (let n = 1; n <= 20; n++) {
    await open(page, `/journal?page=${n}`);
    if ((await page.locator(`[data-testid="audit-row"][data-action="${action}"]`).count()) > 0) return true;
    if ((await page.getByTestId('pagination-next').count()) === 0) return false;
  }
  return false;
}

test('exports need a session', { timeout: TEST_TIMEOUT }, async () => {
  const anonymous = await browser.newContext();
  try {
    const base = new URL(page.url()).origin;
    for (const path of ['/exports/indicateurs.csv', '/exports/jeunes.csv']) {
      const r = await anonymous.request.get(`${base}${path}`, { maxRedirects: 0 });
      assert.equal(r.status(), 303, `${path} without a session`);
      assert.equal(r.headers().location, '/connexion');
    }
    // A named export without the form's CSRF token is refused.
    const r = await page.request.post('/exports/jeunes.csv', { form: { avec_noms: 'oui' } });
    assert.equal(r.status(), 403);
    assert.match(await r.text(), /data-testid="csrf-rejected"/);
  } finally {
    await anonymous.close();
  }
});
