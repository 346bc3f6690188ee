// UI end to end: the Snapshots view's rows as a user meets them. Three snapshots of the demo disk
// (before and after a simulated upgrade, then one more); the rows' descriptions are not cut at the
// default sidebar width; a click on a row compares it with the snapshot before it; the oldest
// offers no Compare with Previous; Compare Selected on two selected rows compares that pair; a
// partition's Restore This Partition… asks where to restore that partition; Take Snapshot's picker
// shows its step counter and goes Back. Screenshots: .test-artifacts/host/rows-*.png.
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');
const { makeUpgradePair, writeWorkspaceSettings, BEFORE, AFTER } = require('../fixture');

const ROOT = path.join(__dirname, '..', '..', '..');
const THIRD = 'e2e third';
const QUICK_INPUT = '.quick-input-widget';
let pair = null;
let third = null;

/** The compare panel's webview document. */
function panel(page) {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

/** Waits until the panel's Before / After pickers show the pair. */
async function panelShows(page, a, b, timeout = 30000) {
  const w = panel(page);
  const end = Date.now() + timeout;
  let seen = [];
  while (Date.now() < end) {
    seen = await Promise.all(
      ['#pick-a', '#pick-b'].map((s) =>
        w
          .locator(s)
          .inputValue({ timeout: 2000 })
          .catch(() => null),
      ),
    );
    if (seen[0] === a && seen[1] === b) return;
    await page.waitForTimeout(250);
  }
  throw new Error(`the panel compares ${JSON.stringify(seen)}, not ${JSON.stringify([a, b])}`);
}

/** The entries of a row's context menu (then closes it). */
async function menuEntries(page, row) {
  await row.click({ button: 'right' });
  const menu = page.locator('.context-view .monaco-menu, .monaco-menu-container .monaco-menu').first();
  await menu.waitFor({ timeout: 10000 });
  await page.waitForTimeout(200);
  const entries = (await menu.locator('.action-item .action-label').allInnerTexts()).map((s) => s.trim()).filter(Boolean);
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden', timeout: 5000 });
  return entries;
}

async function theme(t, name) {
  writeWorkspaceSettings(t.demo.workspace, { 'workbench.colorTheme': name });
  const want = /Light/.test(name) ? 'vs' : 'vs-dark';
  await t.page.waitForFunction((cls) => !!document.querySelector(`.monaco-workbench.${cls}`), want, { timeout: 15000 });
  await t.page.waitForTimeout(500);
}

exports.tests = [
  {
    title: 'rows: three snapshots of one disk fit the default sidebar width, with a badge for "not verified"',
    async run(t) {
      const { ui, page, demo } = t;
      pair = makeUpgradePair(demo);
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'devsnap.js'), 'snapshot', demo.disk, '--repo', demo.repo, '--label', THIRD, '--json'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`devsnap snapshot failed: ${r.stdout}${r.stderr}`);
      third = JSON.parse(r.stdout).snapshot;
      await ui.open(t.url);
      await ui.openViewContainer('Snapshots');
      for (const label of [BEFORE, AFTER, THIRD]) await ui.treeRow(label).waitFor({ timeout: 30000 });
      for (const label of [BEFORE, AFTER, THIRD]) {
        const row = ui.treeRow(label);
        const description = (await row.locator('.label-description').innerText()).trim();
        if (!/^(just now|\d+ min ago) · \+/.test(description)) throw new Error(`${label}: the description starts with "${description}", not the age`);
        // The most useful fact, the age, is never cut; with a short label the whole description fits.
        const fit = await row.evaluate((el) => {
          const desc = el.querySelector('.label-description');
          const clip = el.querySelector('.monaco-icon-label-container').getBoundingClientRect().right;
          const text = desc.firstChild;
          const right = (end) => {
            const r = document.createRange();
            r.setStart(text, 0);
            r.setEnd(text, end);
            return r.getBoundingClientRect().right;
          };
          const s = text.textContent;
          return { age: right(s.indexOf(' · ')) <= clip + 0.5, all: right(s.length) <= clip + 0.5 };
        });
        if (!fit.age) throw new Error(`${label}: the age is cut at the default sidebar width ("${description}")`);
        if (label.length <= 13 && !fit.all) throw new Error(`${label}: the description is cut at the default sidebar width ("${description}")`);
        if (!(await row.locator('.codicon-unverified').count())) throw new Error(`${label}: no "not verified" badge`);
        if (await row.locator('.codicon-circle-large-outline').count()) throw new Error(`${label}: an empty circle (reads as a radio button)`);
      }
      for (const [name, file] of [
        ['Light Modern', 'light'],
        ['Dark Modern', 'dark'],
      ]) {
        await theme(t, name);
        const box = await page.locator('.part.sidebar').boundingBox();
        await page.screenshot({ path: path.join(ROOT, '.test-artifacts', 'host', `rows-${file}.png`), clip: { x: box.x, y: box.y, width: box.width, height: 140 } });
      }
    },
  },
  {
    title: 'rows: a click on a snapshot compares it with the one before it',
    async run(t) {
      await t.ui.treeRow(AFTER).click();
      await panelShows(t.page, pair.before.id, pair.after.id);
      await panel(t.page).locator('.row', { hasText: 'newtool' }).first().waitFor({ timeout: 60000 });
    },
  },
  {
    title: 'rows: the oldest snapshot offers no Compare with Previous (the others do)',
    async run(t) {
      const oldest = await menuEntries(t.page, t.ui.treeRow(BEFORE));
      if (oldest.includes('Compare with Previous')) throw new Error(`offered on the oldest: ${JSON.stringify(oldest)}`);
      if (!oldest.includes('Compare with…') || !oldest.includes('Restore Snapshot…')) throw new Error(`the oldest's menu: ${JSON.stringify(oldest)}`);
      const newer = await menuEntries(t.page, t.ui.treeRow(AFTER));
      if (!newer.includes('Compare with Previous')) throw new Error(`not offered on a newer one: ${JSON.stringify(newer)}`);
      if (newer.includes('Compare Selected')) throw new Error(`Compare Selected with one snapshot selected: ${JSON.stringify(newer)}`);
    },
  },
  {
    title: 'rows: Compare Selected with two selected snapshots opens the panel on that pair',
    async run(t) {
      const { ui, page } = t;
      const selected = page.locator('.part.sidebar .monaco-list-row.selected');
      // The newest first: its click compares it with the previous (the panel opens and takes the
      // focus); once that has settled, Ctrl+click adds the oldest, whose click runs nothing, so
      // nothing takes the focus (and the selection) away. A selection counts once it has held for a
      // second (a refresh of the view can redraw the rows and drop it); the oldest is Ctrl+clicked
      // again only while it is not selected (a second Ctrl+click would deselect it); a context menu
      // left open meanwhile is closed first.
      const menu = page.locator('.context-view .monaco-menu, .monaco-menu-container .monaco-menu').first();
      const twoHeld = async () => {
        const end = Date.now() + 3000;
        while ((await selected.count()) !== 2 && Date.now() < end) await page.waitForTimeout(100);
        if ((await selected.count()) !== 2) return false;
        await page.waitForTimeout(1000);
        return (await selected.count()) === 2;
      };
      const isSelected = async (label) => /\bselected\b/.test((await ui.treeRow(label).getAttribute('class')) ?? '');
      for (let attempt = 0; attempt < 3 && (await selected.count()) !== 2; attempt++) {
        if (await menu.isVisible().catch(() => false)) {
          await page.keyboard.press('Escape');
          await menu.waitFor({ state: 'hidden', timeout: 5000 });
        }
        if (!(await isSelected(THIRD))) {
          await ui.treeRow(THIRD).click();
          await panelShows(page, pair.after.id, third.id);
          await page.waitForTimeout(500);
        }
        for (let k = 0; k < 3; k++) {
          if (!(await isSelected(BEFORE))) await ui.treeRow(BEFORE).click({ modifiers: ['Control'] });
          if (await twoHeld()) break;
        }
      }
      if ((await selected.count()) !== 2) throw new Error(`selected rows: ${JSON.stringify(await selected.allInnerTexts())}`);
      await ui.contextMenu(ui.treeRow(THIRD), 'Compare Selected');
      await panelShows(page, pair.before.id, third.id);
      await t.shot('rows-compare-selected');
    },
  },
  {
    title: "rows: a partition's Restore This Partition… asks where to restore that partition",
    async run(t) {
      const { ui, page } = t;
      await ui.treeRow(AFTER).locator('.monaco-tl-twistie').click();
      // The list draws its rows out of order in the DOM: the partition is the second row below the snapshot's.
      const index = Number(await ui.treeRow(AFTER).getAttribute('data-index'));
      const part = page.locator(`.part.sidebar .monaco-list-row[data-index="${index + 2}"]`);
      await part.filter({ hasText: '2 · ext4' }).waitFor({ timeout: 10000 });
      const entries = await menuEntries(page, part);
      if (!entries.includes('Show Changed Files')) throw new Error(`the partition's menu: ${JSON.stringify(entries)}`);
      await ui.contextMenu(part, 'Restore This Partition…');
      const title = page.locator(`${QUICK_INPUT} .quick-input-title`);
      await title.filter({ hasText: `Restore partition 2 of '${AFTER}'` }).waitFor({ timeout: 20000 });
      await page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: 'image file of the partition' }).first().waitFor({ timeout: 10000 });
      await t.shot('rows-restore-partition');
      await page.keyboard.press('Escape');
      await page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: 10000 });
    },
  },
  {
    title: "rows: Take Snapshot's picker shows its step counter, and Back goes to the disk again",
    async run(t) {
      const { ui, page } = t;
      const widget = page.locator(QUICK_INPUT);
      await ui.runCommand('devsnap: Take Snapshot');
      await widget.locator('.quick-input-list .monaco-list-row', { hasText: 'disk.img' }).first().waitFor({ timeout: 30000 });
      const step1 = (await widget.innerText()).replace(/\s+/g, ' ');
      if (!/1\s*\/\s*2/.test(step1)) throw new Error(`no step counter 1/2: ${step1}`);
      if (await widget.locator('.codicon-quick-input-back, .codicon-arrow-left').count()) throw new Error('a Back button on the first step');
      await ui.pick('disk.img');
      await widget.locator('.quick-input-list').waitFor({ state: 'hidden', timeout: 30000 });
      await widget.filter({ hasText: /2\s*\/\s*2/ }).waitFor({ timeout: 30000 });
      await t.shot('rows-take-snapshot-step-2');
      const back = widget.locator('.codicon-quick-input-back, .codicon-arrow-left').first();
      await back.click();
      await widget.locator('.quick-input-list .monaco-list-row', { hasText: 'disk.img' }).first().waitFor({ timeout: 30000 });
      const again = (await widget.innerText()).replace(/\s+/g, ' ');
      if (!/1\s*\/\s*2/.test(again)) throw new Error(`Back did not show step 1/2: ${again}`);
      await page.keyboard.press('Escape');
      await widget.waitFor({ state: 'hidden', timeout: 10000 });
    },
  },
];
