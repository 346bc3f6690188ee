// The panel's message validation (the extension treats the webview's messages as untrusted), its
// saved state, the restore path set, the HTML shell's Content Security Policy and the recovery script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultState, isSnapshotPath, MAX_RESTORE_PATHS, minimalPaths, parseWebviewMessage, reviveState } from '../../../webview-ui/messages';
import { contentSecurityPolicy, panelHtml } from '../../../extension/panel/html';

test('parseWebviewMessage accepts the typed messages and rejects everything else', () => {
  assert.deepEqual(parseWebviewMessage({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseWebviewMessage({ type: 'compare', a: 'abc123', b: 'def456', extra: 1 }), { type: 'compare', a: 'abc123', b: 'def456' });
  // A partition's "Show Changed Files": that partition's files.
  assert.deepEqual(parseWebviewMessage({ type: 'compare', a: 'abc123', b: 'def456', partition: 2 }), { type: 'compare', a: 'abc123', b: 'def456', partition: 2 });
  assert.equal(parseWebviewMessage({ type: 'compare', a: 'abc123', b: 'def456', partition: 0 }), null);
  assert.equal(parseWebviewMessage({ type: 'compare', a: 'abc123', b: 'def456', partition: '2' }), null);
  assert.deepEqual(parseWebviewMessage({ type: 'openDiff', path: '/etc/hostname', change: 'modified' }), { type: 'openDiff', path: '/etc/hostname', change: 'modified' });
  assert.deepEqual(parseWebviewMessage({ type: 'planRestoreFiles', snapshot: 'abc', paths: ['/etc/a', '/etc/a', '/home/x y'], destination: 'folder' }), {
    type: 'planRestoreFiles',
    snapshot: 'abc',
    paths: ['/etc/a', '/home/x y'],
    destination: 'folder',
  });
  assert.deepEqual(parseWebviewMessage({ type: 'restoreDisk', snapshot: 'abc', partition: 2 }), { type: 'restoreDisk', snapshot: 'abc', partition: 2 });
  assert.deepEqual(parseWebviewMessage({ type: 'recoveryCommand', snapshot: 'abc' }), { type: 'recoveryCommand', snapshot: 'abc' });
  const bad: unknown[] = [
    null,
    'ready',
    42,
    {},
    { type: 'nope' },
    { type: 'compare', a: 'x' },
    { type: 'compare', a: '../../etc', b: 'y' },
    { type: 'compare', a: 'a b', b: 'y' },
    { type: 'openDiff', path: 'relative/path', change: 'modified' },
    { type: 'openDiff', path: '/etc/../../root', change: 'modified' },
    { type: 'openDiff', path: '/etc/x\0', change: 'modified' },
    { type: 'openDiff', path: '/etc/x', change: 'exploded' },
    { type: 'planRestoreFiles', snapshot: 'abc', paths: [], destination: 'folder' },
    { type: 'planRestoreFiles', snapshot: 'abc', paths: ['/a', 7], destination: 'folder' },
    { type: 'planRestoreFiles', snapshot: 'abc', paths: ['/a'], destination: '/tmp' },
    { type: 'planRestoreFiles', snapshot: 'abc', paths: Array.from({ length: MAX_RESTORE_PATHS + 1 }, (_, i) => `/f${i}`), destination: 'folder' },
    { type: 'confirmRestoreFiles', planId: 42 },
    { type: 'restoreDisk', snapshot: 'abc', partition: 0 },
    { type: 'restoreDisk', snapshot: 'abc', partition: 1.5 },
    { type: 'restoreDisk', snapshot: 'abc', partition: '2' },
  ];
  for (const m of bad) assert.equal(parseWebviewMessage(m), null, JSON.stringify(m)?.slice(0, 120));
  assert.ok(isSnapshotPath('/'));
  assert.ok(!isSnapshotPath(''));
});

test('minimalPaths: a selected folder covers its contents', () => {
  assert.deepEqual(minimalPaths(['/etc/hosts', '/etc', '/etc/conf.d/x', '/etcetera', '/usr/bin/a']), ['/etc', '/etcetera', '/usr/bin/a']);
  assert.deepEqual(minimalPaths(['/a/b', '/', '/c']), ['/']);
  assert.deepEqual(minimalPaths([]), []);
});

test('reviveState checks every field of a saved state', () => {
  assert.deepEqual(reviveState(undefined), defaultState());
  assert.deepEqual(reviveState('garbage'), defaultState());
  const s = reviveState({
    a: 'abc',
    b: '../x',
    section: 'packages',
    fileFilter: 'etc',
    kinds: ['added', 'bogus'],
    expanded: ['/etc', 3],
    selected: ['/etc/hosts'],
    restoreFrom: 'b',
    scrollTop: -5,
    focused: '/etc',
  });
  assert.equal(s.a, 'abc');
  assert.equal(s.b, null);
  assert.equal(s.section, 'packages');
  assert.deepEqual(s.kinds, ['added']);
  assert.deepEqual(s.expanded, ['/etc']);
  assert.deepEqual(s.selected, ['/etc/hosts']);
  assert.equal(s.restoreFrom, 'b');
  assert.equal(s.scrollTop, 0);
  assert.equal(reviveState({ section: 'elsewhere' }).section, 'files');
  assert.equal(reviveState({ partition: 2 }).partition, 2);
  assert.equal(reviveState({ partition: -1 }).partition, null);
});

test('the panel HTML: strict CSP with a nonce, no inline script or style, assets from the webview origin', () => {
  const csp = contentSecurityPolicy('https://file+.vscode-resource.vscode-cdn.net', 'N0nce');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'nonce-N0nce'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  const html = panelHtml({ cspSource: 'https://src', scriptUri: 'https://src/dist/webview.js', styleUri: 'https://src/media/panel.css', nonce: 'abc' });
  assert.match(html, /<script nonce="abc" src="https:\/\/src\/dist\/webview.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="https:\/\/src\/media\/panel.css">/);
  assert.doesNotMatch(html, /<style|style="/);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  const a = panelHtml({ cspSource: 's', scriptUri: 'j', styleUri: 'c' });
  const b = panelHtml({ cspSource: 's', scriptUri: 'j', styleUri: 'c' });
  const nonceOf = (h: string) => /nonce="([^"]+)"/.exec(h)![1];
  assert.notEqual(nonceOf(a), nonceOf(b), 'a fresh nonce per page');
  assert.ok(nonceOf(a).length >= 16);
});
