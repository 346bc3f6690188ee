// What the README shows, each a real state of the workbench, checked before it is photographed:
// a running snapshot's progress in the view and the status bar, what deleting a snapshot frees (its
// tooltip), the modal about a repository on the disk being snapshotted, and the automatic snapshots'
// steps. Screenshots: .test-artifacts/host/look-*.png (docs/screenshots/ holds the README's copies).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { writeWorkspaceSettings } = require('../fixture');

const LABEL = 'before the driver update';
const isRoot = process.getuid?.() === 0;

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

function settings(t, values) {
  const file = path.join(t.demo.workspace, '.vscode', 'settings.json');
  const now = JSON.parse(fs.readFileSync(file, 'utf8'));
  writeWorkspaceSettings(t.demo.workspace, { ...now, ...values });
}

const text = async (locator) => ((await locator.innerText().catch(() => '')) || '').replace(/\s+/g, ' ').trim();
const statusItem = (page) => page.locator('.part.statusbar .statusbar-item', { hasText: /snapshot/i }).first();

exports.tests = [
  {
    title: 'README: a running snapshot shows its percent in the view and the status bar',
    async run(t) {
      const { ui, page, demo } = t;
      // Random bytes: nothing to compress or skip, so the snapshot runs for seconds, long enough to be seen.
      const big = path.join(demo.dir, 'nvme-data.img');
      sh('sh', ['-c', `head -c 1024M /dev/urandom > '${big}'`]);
      settings(t, { 'devsnap.diskImages': [demo.disk, big], 'devsnap.defaultSource': big });
      await ui.open(t.url);
      await ui.openViewContainer('Snapshots');
      await ui.runCommand('devsnap: Take Snapshot');
      // The first snapshot creates the repository: encrypted or not is asked first.
      await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'Do not encrypt' }).waitFor({ timeout: 30000 });
      await page.mouse.move(700, 600); // no hover over the title
      await page.waitForTimeout(600);
      await t.shot('look-encrypt-question', { x: 0, y: 0, width: 1010, height: 160 });
      await ui.pick('Do not encrypt');
      await ui.pick('nvme-data.img');
      await ui.inputBox(LABEL);

      const row = ui.treeRow('Taking snapshot');
      const end = Date.now() + 60000;
      let seen = null;
      while (Date.now() < end && !seen) {
        const [r, s] = [await text(row), await text(statusItem(page))];
        // Past the first percent: the row then also says the speed and the time left.
        if (/Taking snapshot… ([1-9]\d?)%/.test(r) && /Snapshot [1-9]\d?%/.test(s)) {
          await t.shot('look-progress-view', { x: 0, y: 0, width: 560, height: 900 });
          seen = { r, s };
        } else await page.waitForTimeout(100);
      }
      if (!seen) throw new Error(`no "Taking snapshot… N%" row with the percent in the status bar (row "${await text(row)}", status "${await text(statusItem(page))}")`);
      t.log(`seen: row "${seen.r}", status "${seen.s}"`);
      await ui.waitUnlessError(ui.treeRow(LABEL), 180000);
      await ui.hideNotifications();
    },
  },
  {
    title: 'README: a snapshot tooltip says what deleting it frees',
    async run(t) {
      const { ui, page } = t;
      const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'Deleting it' }).first();
      // The figures are counted in the background after the view loads: hover until they are in.
      const end = Date.now() + 60000;
      let said = '';
      while (Date.now() < end) {
        await page.mouse.move(700, 500);
        await page.waitForTimeout(300);
        await ui.treeRow(LABEL).hover();
        said = await hover
          .waitFor({ timeout: 5000 })
          .then(() => text(hover))
          .catch(() => '');
        if (/Deleting it:? frees [\d.]+ [kKMG]?B of the repository/.test(said)) break;
        await page.waitForTimeout(1000);
      }
      if (!/Deleting it:? frees [\d.]+ [kKMG]?B of the repository/.test(said)) throw new Error(`the tooltip says no figure: "${said}"`);
      await t.shot('look-space-tooltip', { x: 0, y: 0, width: 740, height: 500 });
      await page.mouse.move(700, 500);
    },
  },
  {
    title: 'README: Set Up Automatic Snapshots, its steps counted, the package managers found',
    async run(t) {
      const { ui, page } = t;
      await ui.runCommand('devsnap: Set Up Automatic Snapshots');
      await ui.pick('/dev/'); // the disk offered first (the running system's)
      await ui.pick('Daily');
      // The third step: its counter in the title, and the package managers found on this machine.
      await page.locator('.quick-input-widget .quick-input-title', { hasText: '(3/4)' }).waitFor({ timeout: 20000 });
      const rows = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').allInnerTexts();
      if (!rows.some((r) => /Not before package upgrades/.test(r))) throw new Error(`not the package-upgrades step: ${JSON.stringify(rows)}`);
      t.log(`step 3 offers: ${rows.map((r) => r.replace(/\s+/g, ' ')).join(' | ')}`);
      await page.waitForTimeout(300);
      await t.shot('look-automatic-step-3', { x: 0, y: 0, width: 1010, height: 140 });
      await page.keyboard.press('Escape'); // nothing is installed
      await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10000 });
    },
  },
  {
    title: 'README: a repository on the disk being snapshotted is a modal warning, and is not made',
    async run(t) {
      if (!isRoot) return t.log('not root: no loop device, nothing to show');
      const { ui, page, demo } = t;
      const img = path.join(demo.dir, 'usb.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 32 << 20);
      sh('mkfs.ext4', ['-q', '-F', img]);
      const dev = sh('losetup', ['-f', '--show', img]);
      const mnt = path.join(demo.dir, 'data');
      fs.mkdirSync(mnt, { recursive: true });
      let mounted = false;
      try {
        sh('mount', [dev, mnt]);
        mounted = true;
        const repo = path.join(mnt, 'devsnap');
        settings(t, { 'devsnap.repository': repo, 'devsnap.showVirtualDisks': true, 'devsnap.defaultSource': dev });
        await page.waitForTimeout(1500); // the settings file change reaches the extension
        await ui.runCommand('devsnap: Take Snapshot');
        await ui.pick('Do not encrypt');
        await ui.pick(dev);
        const dialog = page.locator('.monaco-dialog-box');
        await dialog.waitFor({ timeout: 30000 });
        const said = await text(dialog);
        if (!said.includes(`The repository ${repo} is on ${dev}`) || !/Choose Another Repository/.test(said)) throw new Error(`not the same-disk warning: "${said}"`);
        await page.waitForTimeout(300);
        await t.shot('look-same-disk', { x: 0, y: 0, width: 940, height: 590 });
        await page.keyboard.press('Escape');
        await dialog.waitFor({ state: 'hidden', timeout: 10000 });
        if (fs.existsSync(repo)) throw new Error(`the repository ${repo} was made on the disk being snapshotted`);
      } finally {
        settings(t, { 'devsnap.repository': demo.repo, 'devsnap.showVirtualDisks': false, 'devsnap.defaultSource': demo.disk });
        if (mounted) spawnSync('umount', [mnt]);
        spawnSync('losetup', ['-d', dev]);
      }
    },
  },
];
