// Workbench helpers for the Playwright e2e tests (selectors of VS Code's DOM, as of code-server 4.139
// / VS Code 1.10x). bind(page) returns them with the page filled in.
'use strict';

const QUICK_INPUT = '.quick-input-widget';

/** Opens the workbench and waits until it is interactive. */
async function open(page, url, timeout = 60000) {
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout });
  // The status bar appears once the workbench has restored its parts.
  await page.locator('.part.statusbar').waitFor({ timeout });
}

/** F1, type the command title, pick the matching row. */
async function runCommand(page, title, timeout = 20000) {
  await page.keyboard.press('F1');
  const input = page.locator(`${QUICK_INPUT} input`);
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(`>${title}`);
  const row = page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: title }).first();
  await row.waitFor({ timeout });
  await row.click();
}

/** Waits for the quick pick to show a row containing `text` and picks it. */
async function pick(page, text, timeout = 30000) {
  const row = page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: text }).first();
  await row.waitFor({ timeout });
  await row.click();
}

/**
 * Waits for an input box (the quick input widget without its list: after a quick pick the same
 * widget is reused, so waiting for the input alone would type into the closing pick), replaces its
 * value and presses Enter. `o.empty`: the box has no default value (do not wait for one to appear);
 * `o.next`: another box follows at once in the same widget (do not wait for it to close).
 */
async function inputBox(page, value, timeout = 20000, o = {}) {
  const input = page.locator(`${QUICK_INPUT} input`);
  await input.waitFor({ state: 'visible', timeout });
  await page.locator(`${QUICK_INPUT} .quick-input-list`).waitFor({ state: 'hidden', timeout });
  if (!o.empty)
    await page
      .waitForFunction(
        (sel) => {
          const el = document.querySelector(sel);
          return !!el && el.value !== '';
        },
        `${QUICK_INPUT} input`,
        { timeout },
      )
      .catch(() => {
        /* no default value */
      });
  await input.fill(value);
  await page.keyboard.press('Enter');
  // Accepted only once the widget closes; opening another quick input before would cancel it.
  if (!o.next) await page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout });
}

/** Clicks the activity-bar entry whose label starts with `label` (opens its view container). */
async function openViewContainer(page, label, timeout = 20000) {
  const item = page.locator(`.activitybar .action-item a[aria-label^="${label}"], .activitybar li.action-item[aria-label^="${label}"]`).first();
  await item.waitFor({ timeout });
  const container = page.locator('.part.sidebar');
  // Clicking an already open container closes it.
  const open =
    (await container.isVisible()) &&
    (
      await page
        .locator(`.part.sidebar .composite.title h2, .part.sidebar .title-label h2`)
        .first()
        .textContent()
        .catch(() => '')
    )
      ?.toLowerCase()
      .includes(label.toLowerCase());
  if (!open) await item.click();
  await container.waitFor({ state: 'visible', timeout });
}

/** A row of a tree/list in the side bar, by text. */
function treeRow(page, text) {
  return page.locator('.part.sidebar .monaco-list-row', { hasText: text }).first();
}

/** Right-clicks `locator` and chooses `item` from the context menu. */
async function contextMenu(page, locator, item, timeout = 10000) {
  await locator.click({ button: 'right' });
  const menu = page.locator('.context-view .monaco-menu, .monaco-menu-container .monaco-menu').first();
  await menu.waitFor({ timeout });
  const entry = menu.locator('.action-item .action-label', { hasText: item }).first();
  await entry.waitFor({ timeout });
  // Menus ignore a click that comes too soon after opening; hover (focuses the entry), click,
  // and if the menu is still open, accept the focused entry with Enter.
  await entry.hover();
  await page.waitForTimeout(150);
  await entry.click();
  if (await menu.isVisible().catch(() => false)) {
    await page.waitForTimeout(300);
    if (await menu.isVisible().catch(() => false)) await page.keyboard.press('Enter');
  }
  await menu.waitFor({ state: 'hidden', timeout });
}

/** Opens the Notifications center (with the status bar's bell, which needs no focus). */
async function showNotifications(page, timeout = 10000) {
  const center = page.locator('.notifications-center');
  if (await center.isVisible().catch(() => false)) return;
  const bell = page.locator('.part.statusbar [id="status.notifications"]').first();
  if (await bell.isVisible().catch(() => false)) await bell.click();
  else await runCommand(page, 'Notifications: Show Notifications');
  await center.waitFor({ state: 'visible', timeout });
}

/** Opens the Notifications center and waits for a notification containing `text`. */
async function notification(page, text, timeout = 30000) {
  const center = page.locator('.notifications-center');
  await showNotifications(page);
  await center.locator('.notification-list-item', { hasText: text }).first().waitFor({ timeout });
}

/**
 * Waits until `locator` is visible, failing early (with the message) if an error notification
 * appears meanwhile. Opens the Notifications center to see them (toasts are hidden under the
 * smoke-test driver).
 */
async function waitUnlessError(page, locator, timeout = 90000) {
  const center = page.locator('.notifications-center');
  await showNotifications(page);
  const errors = center.locator('.notification-list-item:has(.codicon-error)');
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await locator.isVisible().catch(() => false)) return;
    if (await errors.count()) {
      const text = (
        await errors
          .first()
          .innerText()
          .catch(() => '')
      )
        .replace(/\s+/g, ' ')
        .trim();
      throw new Error(`error notification: ${text}`);
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${locator}`);
}

/** Closes the Notifications center (if open) with its header's Hide button. */
async function hideNotifications(page) {
  const center = page.locator('.notifications-center');
  if (!(await center.isVisible().catch(() => false))) return;
  await center.locator('.notifications-center-header .codicon-notifications-hide').first().click();
  await center.waitFor({ state: 'hidden', timeout: 5000 });
}

function bind(page) {
  return {
    open: (url, timeout) => open(page, url, timeout),
    runCommand: (title, timeout) => runCommand(page, title, timeout),
    pick: (text, timeout) => pick(page, text, timeout),
    inputBox: (value, timeout) => inputBox(page, value, timeout),
    openViewContainer: (label, timeout) => openViewContainer(page, label, timeout),
    treeRow: (text) => treeRow(page, text),
    contextMenu: (locator, item, timeout) => contextMenu(page, locator, item, timeout),
    notification: (text, timeout) => notification(page, text, timeout),
    hideNotifications: () => hideNotifications(page),
    waitUnlessError: (locator, timeout) => waitUnlessError(page, locator, timeout),
    showNotifications: (timeout) => showNotifications(page, timeout),
  };
}

module.exports = { bind, open, runCommand, pick, inputBox, openViewContainer, treeRow, contextMenu, notification, showNotifications, hideNotifications, waitUnlessError };
