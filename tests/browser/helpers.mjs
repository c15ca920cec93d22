// Shared helpers of the browser tests (run by scripts/browser-tests.sh, which starts a
// demo repere-server and sets the environment read here). Not a test file itself.
//
// Each *.test.mjs file runs in its own node process (node --test), launches its own
// headless Chromium (Debian's /usr/bin/chromium through playwright-core) and only relies
// on the demo data, so the files can run in any order. Tests that change a visit pick
// one still "à revoir" when they start.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// playwright-core lives in the git-ignored npm prefix of scripts/install-tools.sh.
const requireTool = createRequire(path.join(ROOT, 'build/tools/resolve-from-here.cjs'));
const { chromium } = requireTool('playwright-core');

/** Every step (navigation, wait, child process) gives up after this. */
export const STEP_TIMEOUT = 15_000;
/** Whole-test limit for node:test (a test has several steps). */
export const TEST_TIMEOUT = 90_000;

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the browser tests with scripts/browser-tests.sh`);
  }
  return v;
}

export const URL_BASE = env('REPERE_URL').replace(/\/$/, '');
export const PASSWORD = env('REPERE_DEMO_PASSWORD');
/** [{ name, id, codes: [...] }] as printed by `serve --demo`. */
export const TEAMS = JSON.parse(env('REPERE_DEMO_TEAMS'));
export const DEVICE_BIN = env('REPERE_DEVICE_BIN');
export const DEVICE_DIR = env('REPERE_DEVICE_DIR');
export const SCREENSHOT_DIR = process.env.REPERE_SCREENSHOT_DIR || path.join(ROOT, 'build/browser-screenshots');

export const COORDINATOR = 'coordination@demo';
export const OTHER_COORDINATOR = 'coordination@autre-demo';
/** The demo organisation's administrator (same password). */
export const ADMIN = 'administration@demo';

export function teamByName(name) {
  const team = TEAMS.find((t) => t.name === name);
  assert.ok(team, `team « ${name} » is not one of the demo teams ${TEAMS.map((t) => t.name).join(', ')}`);
  return team;
}

// ---- browser -----------------------------------------------------------------------

export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: STEP_TIMEOUT,
  });
}

/** A fresh context (own cookies) and page, with the step timeouts. */
export async function newPage(browser) {
  const context = await browser.newContext({
    baseURL: URL_BASE,
    locale: 'fr-FR',
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  return page;
}

/** Opens `path` and checks the HTTP status (200 unless told). */
export async function open(page, urlPath, status = 200) {
  const response = await page.goto(urlPath);
  assert.ok(response, `no response for ${urlPath}`);
  assert.equal(response.status(), status, `GET ${urlPath}: HTTP ${response.status()}`);
  return response;
}

/** Fills the sign-in form and submits it (no check of the outcome). */
export async function submitLogin(page, login, password) {
  await open(page, '/connexion');
  await page.getByTestId('login-username').fill(login);
  await page.getByTestId('login-password').fill(password);
  await clickAndWait(page, page.getByTestId('login-submit'));
}

/** Signs in and waits for the visits page. */
export async function login(page, who = COORDINATOR, password = PASSWORD) {
  await submitLogin(page, who, password);
  await page.waitForURL(/\/visites$/);
  await page.getByTestId('current-user').waitFor();
}

/** A new page of a new context, signed in. */
export async function signedInPage(browser, who = COORDINATOR) {
  const page = await newPage(browser);
  await login(page, who);
  return page;
}

/**
 * Clicks a link or submit button and waits for the page it leads to (through a POST →
 * 303 → GET if so), even when the new URL equals the current one. Returns the response.
 */
export async function clickAndWait(page, locator, url) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', ...(url ? { url } : {}) }),
    locator.click(),
  ]);
  return response;
}

export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ---- visits list ---------------------------------------------------------------------

export async function dataTotal(page, testid) {
  const value = await page.getByTestId(testid).getAttribute('data-total');
  assert.match(value ?? '', /^\d+$/, `${testid} has no numeric data-total`);
  return Number(value);
}

/** The rows of the visits table on the current page: id, date (YYYY-MM-DD), team, state. */
export async function visitRows(page) {
  return page.getByTestId('visit-row').evaluateAll((rows) =>
    rows.map((row) => {
      const cells = row.querySelectorAll('td');
      const [d, m, y] = cells[0].textContent.trim().slice(0, 10).split('/');
      const state = row.querySelector('[data-testid="visit-state"]');
      return {
        id: row.getAttribute('data-visit-id'),
        day: `${y}-${m}-${d}`,
        team: cells[1].textContent.trim(),
        youth: cells[3].textContent.trim(),
        state: state && state.getAttribute('data-state'),
        answered: !!row.querySelector('[data-testid="visit-answered"]'),
      };
    }),
  );
}

/** Opens the visits list with these query filters (equipe, du, au, commune, etat). */
export async function openVisits(page, filters = {}) {
  const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
  await open(page, `/visites${qs ? `?${qs}` : ''}`);
  await page.getByTestId('visits-total').waitFor();
}

/** The id of a visit still "à revoir" (first of the list), optionally of one team. */
export async function pickVisitToReview(page, team) {
  await openVisits(page, { etat: 'to_review', equipe: team ? teamByName(team).id : '' });
  const rows = await visitRows(page);
  assert.ok(rows.length > 0, 'no visit left to review');
  return rows[0];
}

// ---- tablets (target/debug/repere-device) ---------------------------------------------

export function runDevice(store, ...args) {
  try {
    return execFileSync(DEVICE_BIN, [store, ...args], {
      encoding: 'utf8',
      timeout: STEP_TIMEOUT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    throw new Error(`repere-device ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/**
 * An unused enrolment code of the team: the demo prints two per team; a claim is an
 * atomic mkdir in REPERE_DEVICE_DIR, shared by the test processes. When they are all
 * taken, a new one is issued with `repere-server admin issue-code` (the server runs).
 */
export function claimCode(team) {
  const claims = path.join(DEVICE_DIR, 'claimed-codes');
  fs.mkdirSync(claims, { recursive: true });
  for (const code of team.codes) {
    try {
      fs.mkdirSync(path.join(claims, code));
      return code;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
  }
  const bin = env('REPERE_SERVER_BIN');
  return execFileSync(bin, ['admin', '--data-dir', env('REPERE_DATA_DIR'), 'issue-code', '--team', team.id], {
    encoding: 'utf8',
    timeout: STEP_TIMEOUT,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** Enrols a new tablet of the team (fresh store) with one of its codes. */
export function newTablet(teamName) {
  const team = teamByName(teamName);
  const store = fs.mkdtempSync(path.join(DEVICE_DIR, 'tablet-'));
  const enrolled = runDevice(store, 'enrol', URL_BASE, claimCode(team)).trim();
  assert.equal(enrolled, team.id, `the code of « ${teamName} » enrolled into another team`);
  return {
    store,
    team,
    /** One sync (the store pulls until the server has nothing more). */
    sync: () => JSON.parse(runDevice(store, 'sync')),
    /** Syncs until a round moves nothing. */
    syncAll() {
      for (let i = 0; i < 10; i++) {
        const r = JSON.parse(runDevice(store, 'sync'));
        if (r.pulled === 0 && r.acknowledged === 0) return;
      }
      throw new Error('the tablet still moves records after 10 syncs');
    },
    tasks: () =>
      runDevice(store, 'tasks')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l)),
    answer: (taskId, text) => runDevice(store, 'answer', taskId, text),
    indicators: (from, to) => JSON.parse(runDevice(store, 'indicators', from, to)),
    createYouth: (alias) => runDevice(store, 'create-youth', alias).trim(),
    setAlias: (id, alias) => runDevice(store, 'set-alias', id, alias),
    /** { alias, conflicts: [field names] } of a young person on this tablet. */
    youth: (id) => JSON.parse(runDevice(store, 'youth', id)),
    /** A past sport action of the young person, done; its id. */
    createAction: (youthId) => runDevice(store, 'create-action', youthId).trim(),
    setActionStatus: (id, status) => runDevice(store, 'set-action-status', id, status),
    /** { status, conflicts: [field names] } of an action on this tablet. */
    action: (id) => JSON.parse(runDevice(store, 'action', id)),
  };
}

// ---- CSV (RFC 4180) ---------------------------------------------------------------------

/** Rows of fields; quoted fields may hold commas, CR/LF and doubled quotes. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += ch;
      }
      i += 1;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else if (ch === '\n') {
      throw new Error(`bare LF outside quotes at offset ${i} (RFC 4180 wants CRLF)`);
    } else {
      field += ch;
    }
    i += 1;
  }
  assert.equal(quoted, false, 'unterminated quoted field');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Header + objects keyed by column; every row has the header's width. */
export function csvRecords(text) {
  const [header, ...rows] = parseCsv(text);
  assert.ok(header, 'empty CSV');
  rows.forEach((r, n) => assert.equal(r.length, header.length, `CSV row ${n + 1} has ${r.length} fields, header ${header.length}`));
  return { header, records: rows.map((r) => Object.fromEntries(header.map((h, k) => [h, r[k]]))) };
}

// ---- dates ------------------------------------------------------------------------------

export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** A window holding every demo record (first contacts up to 700 days back). */
export function wholeDemoWindow() {
  const now = new Date();
  const from = `${now.getUTCFullYear() - 3}-01-01`;
  const to = isoDay(new Date(now.getTime() + 2 * 86_400_000));
  return { from, to };
}

/** First name from a display name ("Léa M." / "Léa" / « alias »), or null. */
export function firstNameOf(displayName) {
  const name = displayName.trim();
  if (name.startsWith('«') || name === '(sans nom)') return null;
  return name.replace(/\s+\p{Lu}\.$/u, '');
}

/** Whether `word` appears in `text` as a whole word (letters around it do not count). */
export function containsWord(text, word) {
  const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}])${escaped}($|[^\\p{L}])`, 'u').test(text);
}

// ---- accounts (repere-server admin) and the second factor --------------------------------

/** Runs `repere-server admin …` on the test server's data directory (the server runs). */
export function admin(args, extraEnv = {}) {
  try {
    return execFileSync(env('REPERE_SERVER_BIN'), ['admin', '--data-dir', env('REPERE_DATA_DIR'), ...args], {
      encoding: 'utf8',
      timeout: STEP_TIMEOUT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...extraEnv },
    }).trim();
  } catch (e) {
    throw new Error(`repere-server admin ${args[0]} failed: ${e.stderr || e.message}`);
  }
}

export const DEMO_ORGANISATION = 'Mission Locale du Nord Meusien (démo)';

/** The id of an organisation, from `admin list`. */
export function organisationId(name = DEMO_ORGANISATION) {
  const line = admin(['list'])
    .split('\n')
    .map((l) => l.split('\t'))
    .find((f) => f[0] === 'organisation' && f[2] === name);
  assert.ok(line, `no organisation « ${name} » in admin list`);
  return line[1];
}

/**
 * A new coordinator of the demo organisation with the demo password, for tests that
 * change an account (the demo logins stay as the other files expect them). Returns
 * { login, name }.
 */
export function newCoordinator(label) {
  const login = `${label}-${process.pid}-${Date.now()}@demo`;
  const name = `Coordination ${label} (test)`;
  admin(['create-user', '--org', organisationId(), '--name', name, '--role', 'coordinator', '--login', login]);
  admin(['set-password', '--user', login], { REPERE_PASSWORD: PASSWORD });
  return { login, name };
}

/** RFC 4648 base32 (spaces ignored) to bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of text.replace(/\s+/g, '')) {
    const value = alphabet.indexOf(ch);
    assert.ok(value >= 0, `${ch} is not base32`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP as phone apps compute it (HMAC-SHA-1, 30 s, 6 digits); `steps` moves the step. */
export function totp(secret, { at = Date.now(), steps = 0, digits = 6 } = {}) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30) + steps));
  const hash = crypto.createHmac('sha1', secret).update(counter).digest();
  const offset = hash[hash.length - 1] & 0x0f;
  const binary =
    ((hash[offset] & 0x7f) << 24) | (hash[offset + 1] << 16) | (hash[offset + 2] << 8) | hash[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/**
 * Sets up the second factor from « Mon compte » on a signed-in page, as a person would:
 * reads the secret shown, types the app's code. Returns { secret, codes } (the recovery codes).
 */
export async function enableSecondFactor(page) {
  await open(page, '/compte');
  await clickAndWait(page, page.getByTestId('second-factor-start'), /\/compte\/double-authentification$/);
  const secret = base32Decode(await page.getByTestId('totp-secret').innerText());
  await page.getByTestId('totp-code').fill(totp(secret));
  await clickAndWait(page, page.getByTestId('totp-confirm'));
  await page.getByTestId('second-factor-enabled').waitFor();
  const codes = (await page.getByTestId('recovery-code').allInnerTexts()).map((c) => c.trim());
  return { secret, codes };
}
