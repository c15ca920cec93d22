// Conflicts resolved on a young person's page: two tablets of a team (target/debug/
// repere-device) change the same alias offline and sync, the page shows both values with
// their tablets, an empty "other value" is refused in French with nothing lost, another
// value is typed and saved, and a tablet's next sync brings it with no conflict left.
// Then the same for the status of one of their actions, chosen from the French list.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TEST_TIMEOUT, clickAndWait, launchBrowser, newTablet, open, screenshot, signedInPage } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('a conflict made on two tablets is resolved on the young person\'s page and reaches the tablets', { timeout: TEST_TIMEOUT }, async () => {
  const a = newTablet('Binôme Stenay');
  const id = a.createYouth(`Pseudo-Conflit-${process.pid}`);
  a.syncAll();
  const b = newTablet('Binôme Stenay');
  b.syncAll();
  a.setAlias(id, 'Kéké');
  b.setAlias(id, 'Kiki');
  a.sync();
  b.sync();
  assert.deepEqual(b.youth(id).conflicts, ['alias'], 'both values are kept on the tablet');

  const page = await signedInPage(browser);
  const youthUrl = `/jeunes/${id}`;
  await open(page, youthUrl);
  const row = page.locator('[data-testid="conflict-row"][data-field="alias"]');
  await row.waitFor();
  const values = (await row.getByTestId('conflict-value').allInnerTexts()).map((v) => v.trim()).sort();
  assert.deepEqual(values, ['Kiki', 'Kéké']);
  assert.match(await row.innerText(), /tablette « tablette de test navigateur »/);
  await screenshot(page, 'conflit-fiche-jeune.png');

  // "Another value" left empty: refused in French, the form is still there.
  await row.getByTestId('conflict-choice-other').check();
  await row.getByTestId('conflict-resolve').click();
  await page.getByTestId('conflict-error').waitFor();
  assert.match(await page.getByTestId('conflict-error').innerText(), /Saisissez une valeur/);
  assert.equal(await page.locator('[data-testid="conflict-row"][data-field="alias"]').count(), 1, 'nothing was saved');

  // Another value typed.
  const again = page.locator('[data-testid="conflict-row"][data-field="alias"]');
  assert.equal(await again.getByTestId('conflict-choice-other').isChecked(), true, 'the choice is kept');
  await again.getByTestId('conflict-other').fill('Kéké le grand');
  await clickAndWait(page, again.getByTestId('conflict-resolve'), (u) => u.pathname === youthUrl && u.search === '?ok=conflit');
  assert.match(await page.getByTestId('review-message').innerText(), /Conflit résolu/);
  assert.equal(await page.getByTestId('conflict-row').count(), 0, 'no conflict left on the page');

  // The tablets pull it at their next sync.
  a.sync();
  assert.deepEqual(a.youth(id), { alias: 'Kéké le grand', conflicts: [] });
  b.sync();
  assert.deepEqual(b.youth(id), { alias: 'Kéké le grand', conflicts: [] });

  // Journaled.
  await open(page, '/journal');
  assert.match(await page.locator('main').innerText(), /Conflit résolu sur une fiche/);
});

test('an action\'s conflict is resolved on its young person\'s page, from the list of statuses', { timeout: TEST_TIMEOUT }, async () => {
  const a = newTablet('Binôme Stenay');
  const youthId = a.createYouth(`Pseudo-Action-${process.pid}`);
  const id = a.createAction(youthId);
  a.syncAll();
  const b = newTablet('Binôme Stenay');
  b.syncAll();
  a.setActionStatus(id, 'no_show');
  b.setActionStatus(id, 'cancelled');
  a.sync();
  b.sync();
  assert.deepEqual(b.action(id).conflicts, ['status']);

  const page = await signedInPage(browser);
  const youthUrl = `/jeunes/${youthId}`;
  await open(page, youthUrl);
  assert.equal(await page.locator(`[data-testid="action-row"][data-action-id="${id}"] [data-testid="record-conflict"]`).count(), 1);
  const section = page.locator(`[data-testid="conflicts-section"][data-record-id="${id}"]`);
  await section.waitFor();
  assert.match(await section.locator('h2').innerText(), /Activité sportive/);
  const row = section.locator('[data-testid="conflict-row"][data-field="status"]');
  const values = (await row.getByTestId('conflict-value').allInnerTexts()).map((v) => v.trim()).sort();
  assert.deepEqual(values, ['Absence', 'Annulée']);
  await screenshot(page, 'conflit-action.png');

  await row.getByTestId('conflict-choice-other').check();
  await row.getByTestId('conflict-other').selectOption({ label: 'Réalisée' });
  await clickAndWait(page, row.getByTestId('conflict-resolve'), (u) => u.pathname === youthUrl && u.search === '?ok=conflit');
  assert.match(await page.getByTestId('review-message').innerText(), /Conflit résolu/);
  assert.equal(await page.getByTestId('conflicts-section').count(), 0, 'no conflict left on the page');
  assert.match(await page.locator(`[data-testid="action-row"][data-action-id="${id}"]`).innerText(), /Réalisée/);

  a.sync();
  assert.deepEqual(a.action(id), { status: 'done', conflicts: [] });
  b.sync();
  assert.deepEqual(b.action(id), { status: 'done', conflicts: [] });
});
