// Transfers of a young person to another team (/transferts): the demo coordinator asks for
// one from the young person's file, to the other demo organisation's binôme; that
// organisation's coordinator accepts it, and the file leaves the source's pages and
// tablets. Refusals: another organisation's coordinator gets 404 on the transfer pages of
// a file not theirs and on a transfer between teams not theirs; a POST without or with a
// wrong CSRF token is refused and changes nothing; a refused and a cancelled transfer move
// nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  OTHER_COORDINATOR,
  TEST_TIMEOUT,
  clickAndWait,
  launchBrowser,
  newTablet,
  open,
  runDevice,
  screenshot,
  signedInPage,
} from './helpers.mjs';

/** The other demo organisation's binôme, as the destination list names it. */
const DESTINATION = 'Association Prévention Ardennes (démo) — Binôme Rethel';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A young person made on a new tablet of the team and synced: { tablet, id }. */
function youthOnTablet(label, teamName = 'Binôme Stenay') {
  const tablet = newTablet(teamName);
  const id = tablet.createYouth(`Transfert-${label}-${process.pid}`);
  tablet.syncAll();
  return { tablet, id };
}

/** Asks, from the young person's file, for their transfer to `destination`. */
async function askTransfer(page, youthId, destination = DESTINATION) {
  await open(page, `/jeunes/${youthId}`);
  await clickAndWait(page, page.getByTestId('transfer-link').getByRole('link'), new RegExp(`/jeunes/${youthId}/transfert$`));
  await page.getByTestId('transfer-destination').selectOption({ label: destination });
  await clickAndWait(page, page.getByTestId('transfer-request-button'), /\/transferts$/);
}

/** The row of the young person's latest transfer on /transferts (newest first). */
async function transferRow(page, youthId) {
  await open(page, '/transferts');
  const row = page.locator(`[data-testid="transfer-row"][data-youth-id="${youthId}"]`).first();
  await row.waitFor();
  return row;
}

test('a coordinator asks for a transfer to another organisation, whose coordinator accepts it', { timeout: TEST_TIMEOUT }, async () => {
  const { tablet, id } = youthOnTablet('accepte');
  const source = await signedInPage(browser);
  const destination = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    await askTransfer(source, id);
    const asked = await transferRow(source, id);
    assert.equal(await asked.getAttribute('data-state'), 'pending');
    assert.equal(await asked.getByTestId('transfer-accept').count(), 0, 'not the source’s to accept');
    assert.equal(await asked.getByTestId('transfer-cancel').count(), 1);
    await screenshot(source, 'transfert-demande.png');

    const incoming = await transferRow(destination, id);
    const transferId = await incoming.getAttribute('data-id');
    assert.equal(await incoming.getAttribute('data-state'), 'pending');
    await clickAndWait(destination, incoming.getByTestId('transfer-accept'), /\/transferts$/);
    const accepted = destination.locator(`[data-testid="transfer-row"][data-id="${transferId}"]`);
    assert.equal(await accepted.getAttribute('data-state'), 'accepted');
    assert.equal(await accepted.getByTestId('transfer-accept').count(), 0, 'decided once');
    await screenshot(destination, 'transfert-accepte.png');

    // The file is the destination's now; the source no longer reaches it.
    await open(destination, `/jeunes/${id}`);
    await open(source, `/jeunes/${id}`, 404);
    await open(source, `/jeunes/${id}/transfert`, 404);
    assert.equal(await (await transferRow(source, id)).getAttribute('data-state'), 'accepted');
    // The source's tablet drops the young person at its next sync.
    tablet.syncAll();
    assert.equal(runDevice(tablet.store, 'has', id).trim(), 'false');

    // Both journals hold the request and the acceptance.
    for (const page of [source, destination]) {
      await open(page, '/journal');
      const actions = await page.getByTestId('audit-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-action')));
      for (const action of ['transfer_requested', 'transfer_accepted']) {
        assert.ok(actions.includes(action), `${action} in the journal`);
      }
    }
  } finally {
    await source.context().close();
    await destination.context().close();
  }
});

test('another organisation’s coordinator gets 404 on the transfer pages of a file not theirs', { timeout: TEST_TIMEOUT }, async () => {
  const { id } = youthOnTablet('etranger');
  const source = await signedInPage(browser);
  const stranger = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    await open(stranger, `/jeunes/${id}/transfert`, 404);
    await stranger.getByTestId('not-found').waitFor();
    await open(stranger, `/jeunes/${id}`, 404);

    // A transfer between two teams of the demo organisation is none of theirs: not
    // listed, and its actions answer 404 with nothing changed.
    await askTransfer(source, id, 'Mission Locale du Nord Meusien (démo) — Binôme Sedan');
    const row = await transferRow(source, id);
    const transferId = await row.getAttribute('data-id');
    await open(stranger, '/transferts');
    assert.equal(await stranger.locator(`[data-testid="transfer-row"][data-id="${transferId}"]`).count(), 0);
    // Their own session's form and CSRF token (the header's sign-out form), aimed at the
    // foreign transfer (the pages run no script: a form is what a browser can send).
    for (const step of ['accepter', 'refuser', 'annuler']) {
      await open(stranger, '/transferts');
      const logout = stranger.getByTestId('logout-button');
      await logout.evaluate((button, action) => button.form.setAttribute('action', action), `/transferts/${transferId}/${step}`);
      const answer = await clickAndWait(stranger, logout);
      assert.equal(answer.status(), 404, `POST …/${step}`);
      await stranger.getByTestId('not-found').waitFor();
    }
    assert.equal(await (await transferRow(source, id)).getAttribute('data-state'), 'pending');
    // Cleared for the other tests: the source cancels it.
    await clickAndWait(source, row.getByTestId('transfer-cancel'), /\/transferts$/);
  } finally {
    await source.context().close();
    await stranger.context().close();
  }
});

test('a transfer form posted without or with a wrong CSRF token is refused and changes nothing', { timeout: TEST_TIMEOUT }, async () => {
  const { id } = youthOnTablet('csrf');
  const source = await signedInPage(browser);
  const destination = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    // The request form, its token changed, then removed.
    for (const tamper of [(input) => (input.value = 'A'.repeat(43)), (input) => input.remove()]) {
      await open(source, `/jeunes/${id}/transfert`);
      await source.getByTestId('transfer-destination').selectOption({ label: DESTINATION });
      await source.locator('[data-testid="transfer-request"] input[name="csrf"]').evaluate(tamper);
      const refused = await clickAndWait(source, source.getByTestId('transfer-request-button'));
      assert.equal(refused.status(), 403);
      await source.getByTestId('csrf-rejected').waitFor();
    }
    await open(source, '/transferts');
    assert.equal(await source.locator(`[data-testid="transfer-row"][data-youth-id="${id}"]`).count(), 0, 'nothing asked');

    // Asked properly; then the destination's accept form, its token changed, then removed.
    await askTransfer(source, id);
    for (const tamper of [(input) => (input.value = 'A'.repeat(43)), (input) => input.remove()]) {
      const row = await transferRow(destination, id);
      await row.locator('form:has([data-testid="transfer-accept"]) input[name="csrf"]').evaluate(tamper);
      const refused = await clickAndWait(destination, row.getByTestId('transfer-accept'));
      assert.equal(refused.status(), 403);
      await destination.getByTestId('csrf-rejected').waitFor();
    }
    assert.equal(await (await transferRow(destination, id)).getAttribute('data-state'), 'pending');
    await open(source, `/jeunes/${id}`);
    // Cleared for the other tests: the destination refuses it.
    await clickAndWait(destination, (await transferRow(destination, id)).getByTestId('transfer-refuse'), /\/transferts$/);
  } finally {
    await source.context().close();
    await destination.context().close();
  }
});

test('a refused transfer and a cancelled one move nothing', { timeout: TEST_TIMEOUT }, async () => {
  const refused = youthOnTablet('refuse');
  const cancelled = youthOnTablet('annule');
  const source = await signedInPage(browser);
  const destination = await signedInPage(browser, OTHER_COORDINATOR);
  try {
    // Refused by the destination.
    await askTransfer(source, refused.id);
    await clickAndWait(destination, (await transferRow(destination, refused.id)).getByTestId('transfer-refuse'), /\/transferts$/);
    assert.equal(await (await transferRow(destination, refused.id)).getAttribute('data-state'), 'refused');
    assert.equal(await (await transferRow(source, refused.id)).getAttribute('data-state'), 'refused');

    // Cancelled by the source while it waits: the destination can no longer accept it.
    await askTransfer(source, cancelled.id);
    const waiting = await transferRow(destination, cancelled.id);
    assert.equal(await waiting.getByTestId('transfer-accept').count(), 1);
    await clickAndWait(source, (await transferRow(source, cancelled.id)).getByTestId('transfer-cancel'), /\/transferts$/);
    const after = await transferRow(destination, cancelled.id);
    assert.equal(await after.getAttribute('data-state'), 'cancelled');
    assert.equal(await after.getByTestId('transfer-accept').count(), 0);
    await screenshot(source, 'transfert-refuse-annule.png');

    // Both young people stay with the source: their files, and their tablets keep them.
    for (const { tablet, id } of [refused, cancelled]) {
      await open(source, `/jeunes/${id}`);
      await open(destination, `/jeunes/${id}`, 404);
      tablet.syncAll();
      assert.equal(runDevice(tablet.store, 'has', id).trim(), 'true');
    }
    // Either can be asked again.
    await open(source, `/jeunes/${refused.id}/transfert`);
  } finally {
    await source.context().close();
    await destination.context().close();
  }
});
