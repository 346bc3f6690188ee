// UI end to end: the compare & restore panel. Setup: two snapshots of the demo disk taken with the
// CLI, the second after a simulated upgrade of its ext4 root (debugfs on a copy of the partition:
// OS 12 → 13, kernel, node, dpkg versions bumped / one package removed / one added, files added,
// removed and modified). Then, in the workbench: open the panel from the command palette, see the
// summary, filter the file tree, open a text diff, restore one file into a folder and find it on
// disk. Screenshots in dark, light and high-contrast themes: .test-artifacts/host/panel-*.png.
'use strict';
const fs = require('fs');
const path = require('path');
const { writeWorkspaceSettings, makeUpgradePair, AFTER } = require('../fixture');

/** The panel's webview document. */
function panel(page) {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

async function setTheme(t, theme) {
  writeWorkspaceSettings(t.demo.workspace, { 'workbench.colorTheme': theme });
  // The workbench picks the settings file change up and re-themes the webview too.
  await t.page.waitForFunction(
    (want) => {
      const b = document.querySelector('.monaco-workbench');
      return !!b && (want === 'light' ? b.classList.contains('vs') : want === 'hc' ? b.classList.contains('hc-black') : b.classList.contains('vs-dark'));
    },
    /Light/.test(theme) ? 'light' : /High Contrast/.test(theme) ? 'hc' : 'dark',
    { timeout: 15000 },
  );
  await t.page.waitForTimeout(800);
}

let pair = null;
let restoreDir = null;

exports.tests = [
  {
    title: 'panel: two snapshots before and after a simulated upgrade (CLI)',
    async run(t) {
      pair = makeUpgradePair(t.demo);
      t.log(`snapshots ${pair.before.id} → ${pair.after.id}`);
      await t.ui.open(t.url);
      await setTheme(t, 'Default Dark Modern');
      await t.ui.openViewContainer('Snapshots');
      await t.ui.treeRow(AFTER).waitFor({ timeout: 30000 });
    },
  },
  {
    title: 'panel: Compare Snapshots… from the command palette shows the upgrade summary',
    async run(t) {
      await t.ui.runCommand('devsnap: Compare Snapshots');
      const w = panel(t.page);
      await w.locator('#card-os', { hasText: 'Debian GNU/Linux 13 (trixie)' }).waitFor({ timeout: 60000 });
      const os = await w.locator('#card-os').innerText();
      if (!/Debian GNU\/Linux 12/.test(os) || !/6\.1\.0-18-amd64/.test(os) || !/6\.1\.0-20-amd64/.test(os)) throw new Error(`OS card: ${os}`);
      const pk = (await w.locator('#card-packages').innerText()).replace(/\s+/g, ' ');
      if (!/1 added/.test(pk) || !/1 removed/.test(pk) || !/\d+ upgraded/.test(pk)) throw new Error(`packages card: ${pk}`);
      const tc = (await w.locator('#card-toolchains').innerText()).replace(/\s+/g, ' ');
      if (!/node 20\.11\.1 20\.12\.0/.test(tc)) throw new Error(`toolchains card: ${tc}`);
      // The file tree fills in: the new folder with its files.
      await w.locator('.row', { hasText: 'newtool' }).first().waitFor({ timeout: 30000 });
      await w.locator('#file-totals', { hasText: 'changes' }).waitFor();
      await t.page.waitForTimeout(500);
      await t.shot('panel-dark');
    },
  },
  {
    title: 'panel: the packages and partitions tabs',
    async run(t) {
      const w = panel(t.page);
      await w.locator('#tab-packages').click();
      await w.locator('#package-rows tr', { hasText: 'newtool' }).waitFor({ timeout: 10000 });
      await w.locator('#package-filter').fill('kind:removed');
      await t.page.waitForTimeout(400);
      const n = await w.locator('#package-rows tr').count();
      if (n !== 1) throw new Error(`expected 1 removed package row, got ${n}`);
      await t.shot('panel-packages-dark');
      await w.locator('#tab-partitions').click();
      await w.locator('#partition-rows tr', { hasText: 'Partition 2' }).waitFor({ timeout: 30000 });
      await w.locator('#tab-files').click();
    },
  },
  {
    title: 'panel: filtering the file tree',
    async run(t) {
      const w = panel(t.page);
      await w.locator('#file-filter').fill('hostname');
      await w.locator('#file-totals', { hasText: /^1 of \d+ changes/ }).waitFor({ timeout: 10000 });
      const names = (await w.locator('.row .name').allInnerTexts()).map((s) => s.trim());
      if (JSON.stringify(names) !== JSON.stringify(['etc/', 'hostname'])) throw new Error(`rows after filtering: ${JSON.stringify(names)}`);
      // Kind toggles: only added entries.
      await w.locator('#file-filter').fill('');
      for (const k of ['removed', 'modified', 'metadata']) await w.locator(`.kind-${k}`).click();
      await t.page.waitForTimeout(300);
      const added = (await w.locator('.row:not(.context) .name').allInnerTexts()).map((s) => s.trim());
      if (added.some((n) => n === 'hostname' || n === 'service-3.conf')) throw new Error(`"added" filter shows ${JSON.stringify(added)}`);
      for (const k of ['removed', 'modified', 'metadata']) await w.locator(`.kind-${k}`).click();
      // Keyboard: the tree takes focus, arrows move, and the filter comes back.
      await w.locator('#file-filter').fill('hostname');
      await w.locator('#file-totals', { hasText: /^1 of/ }).waitFor();
      await t.shot('panel-filtered-dark');
    },
  },
  {
    title: 'panel: clicking a text file opens the diff editor of its two versions',
    async run(t) {
      const w = panel(t.page);
      await w.locator('.row', { hasText: 'hostname' }).locator('.name').click();
      const tab = t.page.locator('.tabs-container .tab', { hasText: 'hostname' }).first();
      await tab.waitFor({ timeout: 30000 });
      const diff = t.page.locator('.monaco-diff-editor').first();
      await diff.waitFor({ timeout: 20000 });
      await t.page.locator('.monaco-diff-editor .view-lines', { hasText: 'devbox-upgraded' }).first().waitFor({ timeout: 20000 });
      await t.page.waitForTimeout(500);
      await t.shot('panel-text-diff');
    },
  },
  {
    title: 'panel: restoring one file into a folder (dry run, then restore) puts it on disk',
    async run(t) {
      const { page } = t;
      restoreDir = path.join(t.demo.dir, 'restored');
      fs.mkdirSync(restoreDir, { recursive: true });
      // Back to the panel: it is rebuilt from its saved state (filter, selection, section).
      await page.locator('.tabs-container .tab', { hasText: 'Compare Snapshots' }).first().click();
      const w = panel(page);
      await w.locator('.row', { hasText: 'hostname' }).first().waitFor({ timeout: 30000 });
      const filter = await w.locator('#file-filter').inputValue();
      if (filter !== 'hostname') throw new Error(`the filter was not kept across hide/show: "${filter}"`);
      await w.locator('.row', { hasText: 'hostname' }).locator('.check').click();
      await w.locator('#selection-text', { hasText: '1 selected' }).waitFor();
      await w.locator('#restore-from').selectOption('a');
      // VS Code's own folder dialog (the simple one in the browser): type the folder, accept. The
      // dialog navigates asynchronously after typing; an Enter that comes first accepts the folder it
      // was showing, so a plan for the wrong folder is cancelled and the pick is tried again.
      let planText = '';
      for (let attempt = 1; attempt <= 3; attempt++) {
        await w.locator('#restore-folder').click();
        const input = page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: 20000 });
        const ok = page.locator('.quick-input-widget .monaco-button', { hasText: 'Restore Here' }).first();
        const open = () =>
          page
            .locator('.quick-input-widget')
            .isVisible()
            .catch(() => false);
        // The dialog fills in its own starting folder asynchronously: on a busy machine that can land
        // after (or into) what was typed, leaving a path that does not exist and the dialog open.
        // Type again until the dialog takes the folder.
        for (let k = 0; k < 4 && (await open()); k++) {
          await input.fill(restoreDir + '/');
          await page.waitForFunction((want) => document.querySelector('.quick-input-widget input')?.value === want, restoreDir + '/', { timeout: 5000 }).catch(() => {});
          await page.waitForTimeout(1000 * attempt);
          await page.keyboard.press('Enter');
          // Enter on a folder path accepts it; if the dialog is still open, its OK button does.
          await page.waitForTimeout(800);
          if (await open()) await ok.click({ timeout: 3000 }).catch(() => {});
          await page.waitForTimeout(1000);
        }
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 20000 });
        await w.locator('#plan .plan-head', { hasText: 'Dry run' }).waitFor({ timeout: 30000 });
        planText = (await w.locator('#plan').innerText()).replace(/\s+/g, ' ');
        if (planText.includes(path.join(restoreDir, 'hostname'))) break;
        t.log(`attempt ${attempt}: the folder dialog returned another folder (${planText.slice(0, 160)}); trying again`);
        await w.locator('#plan-cancel').click();
      }
      if (!planText.includes(path.join(restoreDir, 'hostname')) || !/create 1/.test(planText)) throw new Error(`plan: ${planText}`);
      if (fs.existsSync(path.join(restoreDir, 'hostname'))) throw new Error('the dry run wrote the file');
      await t.shot('panel-restore-plan-dark');
      await w.locator('#plan-confirm').click();
      await w.locator('.restore-status.done', { hasText: 'Restored' }).waitFor({ timeout: 60000 });
      const content = fs.readFileSync(path.join(restoreDir, 'hostname'), 'utf8');
      if (content !== 'devbox\n') throw new Error(`restored hostname holds ${JSON.stringify(content)}`);
      await t.shot('panel-restored-dark');
    },
  },
  {
    title: 'panel: light and high-contrast themes',
    async run(t) {
      const w = panel(t.page);
      await w.locator('#file-filter').fill('');
      await w
        .locator('#clear-selection')
        .click()
        .catch(() => {});
      await setTheme(t, 'Default Light Modern');
      await w.locator('.row', { hasText: 'newtool' }).first().waitFor({ timeout: 20000 });
      await t.shot('panel-light');
      await w.locator('#tab-restore').click();
      await t.shot('panel-restore-tab-light');
      await w.locator('#tab-files').click();
      await setTheme(t, 'Default High Contrast');
      await t.shot('panel-high-contrast');
      await setTheme(t, 'Default Dark Modern');
    },
  },
];
