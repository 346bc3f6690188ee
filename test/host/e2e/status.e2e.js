// UI end to end, at a glance: the status-bar item and the Snapshots view's header as users see
// them, before and after a snapshot, and in the warning state (the workspace's devsnap.staleAfterDays
// lowered to a few seconds, so the real snapshot turns stale as real time passes), in light, dark
// and high-contrast themes. Screenshots go to .test-artifacts/host/status-*.png (the README's).
'use strict';

const fs = require('fs');
const path = require('path');

const LABEL = 'e2e glance';

function statusItem(page) {
  return page.locator('.part.statusbar .statusbar-item', { hasText: /snapshot/i }).first();
}

async function text(locator) {
  return ((await locator.innerText().catch(() => '')) || '').replace(/\s+/g, ' ').trim();
}

async function waitText(page, locator, re, timeout = 20000) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = await text(locator);
    if (re.test(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`timed out waiting for ${re}; it says "${last}"`);
}

/** Switches the colour theme through the workspace settings (as panel.e2e.js does). */
async function theme(t, name) {
  setWorkspaceSettings(t, { 'workbench.colorTheme': name });
  const want = /Light/.test(name) ? 'vs' : /High Contrast/.test(name) ? 'hc-black' : 'vs-dark';
  await t.page.waitForFunction((cls) => !!document.querySelector(`.monaco-workbench.${cls}`), want, { timeout: 15000 });
  await t.page.waitForTimeout(500);
}

/** Adds settings to the workspace's .vscode/settings.json (VS Code picks the change up). */
function setWorkspaceSettings(t, values) {
  const file = path.join(t.demo.workspace, '.vscode', 'settings.json');
  const now = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...now, ...values }, null, 2));
}

exports.tests = [
  {
    title: 'the status bar says there is no snapshot yet',
    async run(t) {
      await t.ui.open(t.url);
      await t.ui.openViewContainer('Snapshots');
      await waitText(t.page, statusItem(t.page), /No snapshots yet/);
    },
  },
  {
    title: 'after a snapshot the status bar and the view header show its age and the repository',
    async run(t) {
      const { ui, page } = t;
      await ui.runCommand('devsnap: Take Snapshot');
      await ui.pick('Do not encrypt'); // the first snapshot creates the repository
      await ui.pick('disk.img');
      await ui.inputBox(LABEL);
      await ui.waitUnlessError(ui.treeRow(LABEL), 90000);
      await ui.hideNotifications();
      await waitText(page, statusItem(page), /Snapshot just now/);
      // The summary row on top: the repository folder, the newest age, its size, the free space of its drive.
      await waitText(page, page.locator('.part.sidebar .monaco-list-row').first(), /newest just now · .* free · never verified/);
      for (const [name, file] of [
        ['Light Modern', 'light'],
        ['Dark Modern', 'dark'],
        ['Default High Contrast', 'hc'],
      ]) {
        await theme(t, name);
        await statusItem(page).hover();
        await page.locator('.monaco-hover, .workbench-hover', { hasText: 'Free on its drive' }).first().waitFor({ timeout: 10000 });
        await t.shot(`status-ok-${file}`);
        await page.mouse.move(600, 300);
      }
    },
  },
  {
    title: 'a stale snapshot turns the status bar to its warning colours',
    async run(t) {
      const { page } = t;
      setWorkspaceSettings(t, { 'devsnap.staleAfterDays': 0.0001 }); // 8.6 s
      const item = page.locator('.part.statusbar .statusbar-item.warning-kind', { hasText: /snapshot/i }).first();
      await item.waitFor({ timeout: 70000 });
      await waitText(page, item, /Snapshot (just now|1 min ago)/);
      for (const [name, file] of [
        ['Light Modern', 'light'],
        ['Dark Modern', 'dark'],
        ['Default High Contrast', 'hc'],
      ]) {
        await theme(t, name);
        await t.shot(`status-stale-${file}`);
      }
      setWorkspaceSettings(t, { 'devsnap.staleAfterDays': 7 });
      await page
        .locator('.part.statusbar .statusbar-item.warning-kind', { hasText: /snapshot/i })
        .first()
        .waitFor({ state: 'detached', timeout: 20000 });
    },
  },
];
