// UI end to end: take a snapshot of the demo disk from the command palette, see it in the Snapshots
// view, verify it from its context menu. Steps run in order in one page; a failing step skips the
// rest (test/host/run.js). Screenshots of the sidebar are always saved to .test-artifacts/host/.
// Notification toasts are hidden under the smoke-test driver, so messages are checked in the
// Notifications center.
'use strict';

const LABEL_1 = 'e2e before upgrade';
const LABEL_2 = 'e2e after upgrade';

/** Take Snapshot… from the palette: (the first time: the new repository unencrypted,) pick the demo disk, type the label. */
async function takeSnapshot(t, label, first = false) {
  const { ui, page } = t;
  await ui.runCommand('devsnap: Take Snapshot');
  if (first) await ui.pick('Do not encrypt');
  await ui.pick('disk.img');
  await ui.inputBox(label);
  // The progress notification shows in the Notifications center while the snapshot runs.
  await ui.showNotifications();
  await page.waitForTimeout(200);
  await t.shot(`progress-${label}`);
  await ui.waitUnlessError(ui.treeRow(label), 90000);
}

exports.tests = [
  {
    title: 'the workbench opens with the Snapshots view',
    async run(t) {
      await t.ui.open(t.url);
      await t.ui.openViewContainer('Snapshots');
      // With a single view in the container, VS Code shows its name as the side bar title.
      await t.page.locator('.part.sidebar .composite.title', { hasText: 'Snapshots' }).first().waitFor({ timeout: 20000 });
      await t.shot('sidebar-empty');
    },
  },
  {
    title: 'Take Snapshot… from the command palette adds the snapshot to the sidebar',
    async run(t) {
      await takeSnapshot(t, LABEL_1, true);
      // The done message says how the image is one point in time: the demo disk is not mounted.
      await t.ui.notification(`'${LABEL_1}' added`);
      const done = (
        await t.page
          .locator('.notifications-center .notification-list-item', { hasText: `'${LABEL_1}' added` })
          .first()
          .innerText()
      ).replace(/\s+/g, ' ');
      if (!done.includes('Offline: no filesystem of the disk was mounted read-write')) throw new Error(`the done message does not say "Offline": ${done}`);
      await t.shot('snapshot-done-notifications');
      await t.ui.hideNotifications();
      await t.shot('sidebar-one-snapshot');
    },
  },
  {
    title: 'Verify from the snapshot context menu reports no damage',
    async run(t) {
      const row = t.ui.treeRow(LABEL_1);
      await t.ui.contextMenu(row, 'Verify Snapshot');
      await t.ui.waitUnlessError(t.page.locator('.notifications-center .notification-list-item', { hasText: 'verified' }).first(), 60000);
      await t.shot('verify-notifications');
      await t.ui.hideNotifications();
    },
  },
  {
    title: 'a second snapshot shows up above the first',
    async run(t) {
      await takeSnapshot(t, LABEL_2);
      const rows = await t.page.locator('.part.sidebar .monaco-list-row').allTextContents();
      const i1 = rows.findIndex((r) => r.includes(LABEL_1));
      const i2 = rows.findIndex((r) => r.includes(LABEL_2));
      if (i1 < 0 || i2 < 0 || i2 > i1) throw new Error(`expected "${LABEL_2}" above "${LABEL_1}"; rows: ${JSON.stringify(rows)}`);
      // An offline image is the usual case: its description does not call out the consistency.
      const row = (await t.ui.treeRow(LABEL_2).innerText()).replace(/\s+/g, ' ');
      if (/fuzzy|offline/i.test(row)) throw new Error(`the row of an offline snapshot names its consistency: ${row}`);
      // Hover the newest one for its rich tooltip: its Consistency row is the sentence, not the raw name.
      await t.ui.treeRow(LABEL_2).hover();
      const hover = t.page.locator('.monaco-hover, .workbench-hover', { hasText: 'Consistency' }).first();
      await hover.waitFor({ timeout: 10000 });
      const tip = (await hover.innerText()).replace(/\s+/g, ' ');
      if (!/Consistency Offline: no filesystem of the disk was mounted read-write/.test(tip)) throw new Error(`the tooltip does not say "Offline": ${tip}`);
      await t.shot('sidebar-two-snapshots');
    },
  },
];
