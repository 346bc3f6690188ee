// The restore confirmation as the user sees it: a modal whose focused (default) button is Cancel,
// so Enter restores nothing; it also offers Dry Run and Snapshot Target First. Saves a screenshot
// of the dialog (.test-artifacts/host/look-restore-confirmation.png).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..', '..', '..');
const LABEL = 'e2e safe restore';
const sha = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

exports.tests = [
  {
    title: 'the restore confirmation focuses Cancel: Enter restores nothing',
    async run(t) {
      const { ui, page, demo } = t;
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'devsnap.js'), 'snapshot', demo.disk, '--repo', demo.repo, '--label', LABEL, '--json'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`devsnap snapshot failed: ${r.stdout}${r.stderr}`);
      // Written after the snapshot: a restore would undo it.
      const fd = fs.openSync(demo.disk, 'r+');
      fs.writeSync(fd, Buffer.from('written since the snapshot'), 0, 26, 40 << 20);
      fs.closeSync(fd);
      const before = sha(demo.disk);

      await ui.open(t.url);
      await ui.openViewContainer('Snapshots');
      await ui.treeRow(LABEL).waitFor({ timeout: 30000 });
      await ui.runCommand('devsnap: Restore Snapshot');
      await ui.pick(LABEL);
      await ui.pick('Entire disk');
      // The demo disk itself, offered as "snapshot source" (by that text: a row of the picker before
      // may still be on screen for a moment).
      await page.waitForTimeout(500);
      await ui.pick('snapshot source');

      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: 20000 });
      await page.waitForTimeout(300); // the dialog focuses its button once shown
      const text = (await dialog.innerText()).replace(/\s+/g, ' ');
      if (!/Restore snapshot .* onto .*disk\.img\?/.test(text)) throw new Error(`not the restore confirmation: ${text}`);
      const buttons = await dialog.locator('.dialog-buttons .monaco-button').allInnerTexts();
      for (const b of ['Cancel', 'Dry Run', 'Snapshot Target First', 'Restore']) if (!buttons.includes(b)) throw new Error(`no "${b}" button: ${JSON.stringify(buttons)}`);
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        return { text: el?.textContent?.trim(), inDialog: !!el?.closest('.monaco-dialog-box'), isButton: !!el?.classList.contains('monaco-button') };
      });
      await t.shot('look-restore-confirmation', { x: 0, y: 0, width: 960, height: 590 });
      if (!focused.inDialog || !focused.isButton || focused.text !== 'Cancel')
        throw new Error(`the focused element is not the Cancel button: ${JSON.stringify(focused)} (buttons ${JSON.stringify(buttons)})`);

      await page.keyboard.press('Enter');
      await dialog.waitFor({ state: 'hidden', timeout: 10000 });
      await page.waitForTimeout(1500); // a restore, had one started, would be writing by now
      if (sha(demo.disk) !== before) throw new Error('Enter on the confirmation wrote to the target');
      await ui.showNotifications();
      const restored = await page.locator('.notifications-center .notification-list-item', { hasText: 'Restored' }).count();
      if (restored) throw new Error('a restore was reported after Enter');
      await ui.hideNotifications();
    },
  },
];
