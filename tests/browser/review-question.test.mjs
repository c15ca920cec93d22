// A question to the binôme, end to end: asked from a visit page, pulled by a tablet of
// the visit's team (target/debug/repere-device), answered there, synced back, shown on
// the visit page and in the list, then closed from the page (and the close reaches the
// tablet). The steps depend on each other, so they are one test.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  TEST_TIMEOUT,
  clickAndWait,
  launchBrowser,
  newTablet,
  open,
  openVisits,
  pickVisitToReview,
  screenshot,
  signedInPage,
  visitRows,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('ask a question on a visit, answer it on a tablet of its team, see the answer, close it', { timeout: TEST_TIMEOUT }, async () => {
  const page = await signedInPage(browser);
  const visit = await pickVisitToReview(page);
  const visitUrl = `/visites/${visit.id}`;

  // The visit page.
  await clickAndWait(page, page.locator(`[data-testid="visit-row"][data-visit-id="${visit.id}"] [data-testid="visit-link"]`), (u) => u.pathname === visitUrl);
  const detail = page.getByTestId('visit-detail');
  assert.equal(await detail.getAttribute('data-visit-id'), visit.id);
  const teamName = (await page.getByTestId('visit-team').innerText()).trim();
  assert.equal(teamName, visit.team);
  assert.equal(await detail.getByTestId('visit-state').getAttribute('data-state'), 'to_review');
  for (const id of ['visit-date', 'visit-commune', 'visit-kind', 'visit-needs', 'visit-notes', 'visit-next-step', 'history-table', 'receipts-table']) {
    await page.getByTestId(id).waitFor();
  }
  assert.ok((await page.getByTestId('history-row').count()) >= 1, 'the record has a history');
  assert.ok((await page.getByTestId('youth-summary').count()) >= 1, 'the visit shows its young person');
  assert.match(await page.locator('h1').innerText(), /^Visite du \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}$/);
  const tasksBefore = await page.getByTestId('review-task').count();

  // Ask.
  const question = `Test navigateur ${randomUUID()} : le jeune a-t-il un moyen de transport ?`;
  await page.getByTestId('ask-question').fill(question);
  await clickAndWait(page, page.getByTestId('ask-button'), (u) => u.pathname === visitUrl && u.search === '?ok=question');
  assert.match(await page.getByTestId('review-message').innerText(), /Question envoyée/);
  assert.equal(await detail.getByTestId('visit-state').getAttribute('data-state'), 'question');
  assert.equal(await page.getByTestId('review-task').count(), tasksBefore + 1);
  const task = page.getByTestId('review-task').filter({ hasText: question });
  assert.equal(await task.count(), 1, 'the question is shown once');
  assert.equal(await task.getAttribute('data-status'), 'open');
  assert.equal((await task.getByTestId('review-task-question').innerText()).trim(), question);
  assert.equal((await task.getByTestId('review-task-status').innerText()).trim().length > 0, true);
  assert.equal(await task.getByTestId('review-task-answer').count(), 0, 'no answer yet');
  const taskId = await task.getAttribute('data-task-id');
  assert.match(taskId, /^[0-9a-f-]{36}$/);
  await page.getByTestId('review-events').filter({ hasText: 'Question posée au binôme' }).waitFor();

  // The list shows the visit under "question posée".
  await openVisits(page, { etat: 'question' });
  const listed = (await visitRows(page)).find((r) => r.id === visit.id);
  assert.ok(listed, 'the visit is listed under « question posée »');
  assert.equal(listed.answered, false);

  // A tablet of the visit's team pulls it, answers it, pushes the answer.
  const tablet = newTablet(teamName);
  const first = tablet.sync();
  assert.ok(first.pulled > 0, 'the tablet pulls its team records');
  const onTablet = tablet.tasks().find((t) => t.id === taskId);
  assert.ok(onTablet, 'the tablet has the question');
  assert.equal(onTablet.contact_id, visit.id);
  assert.equal(onTablet.status, 'open');
  assert.equal(onTablet.question, question);
  const answer = `Oui, un scooter (réponse ${randomUUID().slice(0, 8)}) — « d'accord », 2 € & <ok>`;
  tablet.answer(taskId, answer);
  const pushed = tablet.sync();
  assert.ok(pushed.acknowledged >= 1, `the answer is acknowledged by the server: ${JSON.stringify(pushed)}`);
  assert.equal(pushed.rejected, 0);

  // Reload: the answer is on the page.
  await open(page, visitUrl);
  const answered = page.locator(`[data-testid="review-task"][data-task-id="${taskId}"]`);
  await answered.waitFor();
  assert.equal(await answered.getAttribute('data-status'), 'answered');
  assert.equal((await answered.getByTestId('review-task-answer').innerText()).trim(), answer);
  assert.match(await answered.getByTestId('review-task-status').innerText(), /\S/);
  await screenshot(page, 'visit.png');

  // The list flags the visit as answered.
  await openVisits(page, { equipe: tablet.team.id, etat: 'question' });
  const row = (await visitRows(page)).find((r) => r.id === visit.id);
  assert.ok(row, 'still listed under « question posée »');
  assert.equal(row.answered, true, 'the row shows « réponse reçue »');

  // Close it from the page.
  await open(page, visitUrl);
  await clickAndWait(page, answered.getByTestId('close-task-button'), (u) => u.pathname === visitUrl && u.search === '?ok=cloturee');
  assert.match(await page.getByTestId('review-message').innerText(), /Question close/);
  assert.equal(await answered.getAttribute('data-status'), 'closed');
  assert.equal(await answered.getByTestId('close-task-button').count(), 0, 'a closed question has no close button');
  assert.equal((await answered.getByTestId('review-task-answer').innerText()).trim(), answer, 'the answer stays');
  assert.equal((await answered.getByTestId('review-task-question').innerText()).trim(), question, 'the question stays');
  const events = await page.getByTestId('review-events').innerText();
  assert.match(events, /Question posée au binôme/);
  assert.match(events, /Question close/);

  // The close is an edit of the task, synced to the tablets.
  tablet.syncAll();
  const closed = tablet.tasks().find((t) => t.id === taskId);
  assert.equal(closed.status, 'closed');
  assert.equal(closed.answer, answer);

  await page.context().close();
});
