// The extension as users get it (installed, no smoke-test driver, so notification toasts show):
// a snapshot's progress toast and the done message, and the sidebar with two snapshots. Saves
// screenshots for a human to judge the look (.test-artifacts/host/look-*.png).
'use strict';

exports.installed = true;

async function snapshotWithToasts(t, label, shotName, first = false) {
  const { ui, page } = t;
  await ui.runCommand('devsnap: Take Snapshot');
  if (first) await ui.pick('Do not encrypt'); // the first snapshot creates the repository
  await ui.pick('disk.img');
  await ui.inputBox(label);
  // Catch the progress toast while it runs (the demo disk takes a second or two).
  const progress = page.locator('.notification-toast', { hasText: 'Snapshot' }).first();
  await progress
    .waitFor({ timeout: 20000 })
    .then(() => page.waitForTimeout(300))
    .then(
      () => t.shot(shotName),
      () => t.log('no progress toast seen (finished too fast?)'),
    );
  await page
    .locator('.notification-toast', { hasText: `'${label}' added` })
    .first()
    .waitFor({ timeout: 90000 });
  await ui.treeRow(label).waitFor({ timeout: 20000 });
}

exports.tests = [
  {
    title: 'installed extension: the Snapshots view opens',
    async run(t) {
      await t.ui.open(t.url);
      await t.ui.openViewContainer('Snapshots');
      await t.page.locator('.part.sidebar .composite.title', { hasText: 'Snapshots' }).first().waitFor({ timeout: 20000 });
    },
  },
  {
    title: 'installed extension: progress and done toasts for two snapshots',
    async run(t) {
      await snapshotWithToasts(t, 'before upgrade', 'look-progress-1', true);
      await snapshotWithToasts(t, 'after upgrade', 'look-progress-2');
      await t.shot('look-sidebar-two-snapshots-with-toast');
    },
  },
];
