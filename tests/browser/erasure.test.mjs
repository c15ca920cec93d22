// The erasure workflow (/effacements): a coordinator asks for a young person's erasure from
// their file, cannot decide it; an administrator (the data-protection officer) approves it;
// the receipt then lists the team's tablets, each confirmed once it has synced.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  PASSWORD,
  TEST_TIMEOUT,
  admin,
  launchBrowser,
  login,
  newPage,
  newTablet,
  open,
  organisationId,
  runDevice,
  screenshot,
  signedInPage,
} from './helpers.mjs';

let browser;
let dpoLogin;
before(async () => {
  browser = await launchBrowser();
  dpoLogin = `dpo-${process.pid}-${Date.now()}@demo`;
  admin(['create-user', '--org', organisationId(), '--name', 'Dominique DPO (test)', '--role', 'admin', '--login', dpoLogin]);
  admin(['set-password', '--user', dpoLogin], { REPERE_PASSWORD: PASSWORD });
});
after(async () => {
  await browser?.close();
});

async function confirmedCount(page) {
  return page.locator('[data-testid="erasure-tablet"][data-state="confirmed"]').count();
}

test('asked by a coordinator, approved by the officer, confirmed by each tablet as it syncs', { timeout: TEST_TIMEOUT }, async () => {
  const alias = `Pseudo-Effacement-${process.pid}`;
  const maker = newTablet('Binôme Stenay');
  const youthId = runDevice(maker.store, 'create-youth', alias).trim();
  maker.syncAll();
  const other = newTablet('Binôme Stenay');
  other.syncAll();
  assert.equal(runDevice(other.store, 'has', youthId).trim(), 'true');

  const coordinator = await signedInPage(browser);
  await open(coordinator, `/jeunes/${youthId}`);
  await coordinator.getByTestId('erasure-reason').selectOption('request');
  await Promise.all([coordinator.waitForURL('**/effacements/*'), coordinator.getByTestId('erasure-request-button').click()]);
  const receiptPath = new URL(coordinator.url()).pathname;
  assert.equal(await coordinator.getByTestId('erasure-receipt').getAttribute('data-state'), 'pending');
  assert.equal(await coordinator.getByTestId('erasure-decision').count(), 0, 'the one who asked does not decide');

  const dpo = await newPage(browser);
  await login(dpo, dpoLogin);
  await open(dpo, '/effacements');
  await dpo.locator(`a[href="${receiptPath}"]`).first().click();
  await dpo.waitForURL(`**${receiptPath}`);
  await Promise.all([dpo.waitForURL(`**${receiptPath}`), dpo.getByTestId('erasure-approve').click()]);
  assert.equal(await dpo.getByTestId('erasure-receipt').getAttribute('data-state'), 'executed');
  const before = await confirmedCount(dpo);
  assert.ok((await dpo.locator('[data-testid="erasure-tablet"][data-state="waiting"]').count()) >= 2);
  await open(dpo, `/jeunes/${youthId}`, 404);

  maker.sync();
  assert.equal(runDevice(maker.store, 'has', youthId).trim(), 'false');
  await open(dpo, receiptPath);
  assert.equal(await confirmedCount(dpo), before + 1);
  other.sync();
  await open(dpo, receiptPath);
  assert.equal(await confirmedCount(dpo), before + 2);
  await screenshot(dpo, 'effacement-recu.png');

  // The journal names the request, the approval and the erasure.
  await open(dpo, '/journal');
  const actions = await dpo.getByTestId('audit-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-action')));
  for (const a of ['erasure_requested', 'erasure_approved', 'erase_record']) {
    assert.ok(actions.includes(a), `${a} in the journal`);
  }
  await coordinator.close();
  await dpo.close();
});
