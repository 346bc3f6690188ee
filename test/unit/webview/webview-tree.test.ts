// The compare panel's pure logic: the change tree (grouping, counts, filtering, flattening, keyboard
// moves), the virtual list's windowing math and the packages table. No DOM needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileChange } from '../../../imaging/files/file-diff';
import { ChangeTree, expansionRule, flatten, moveFocus, canDiff } from '../../../webview-ui/tree';
import { scrollToShow, windowFor } from '../../../webview-ui/virtual';
import { filterPackages, packageRows, upgradeSummary } from '../../../webview-ui/packages';
import type { InventoryDiff } from '../../../imaging/inventory/inventory';

const ch = (path: string, change: FileChange['change'], type: FileChange['type'] = 'file', before: number | null = 10, after: number | null = 20): FileChange => ({
  path,
  change,
  type,
  sizeBefore: change === 'added' ? null : before,
  sizeAfter: change === 'removed' ? null : after,
  detail: change === 'modified' ? ['content'] : change === 'metadata' ? ['mode'] : [],
});

// What `devsnap changes` pages: depth-first, a directory before its contents.
const PAGE1: FileChange[] = [
  ch('/boot/vmlinuz-6.1.0-20', 'added', 'file', null, 9),
  ch('/etc/conf.d/a.conf', 'removed', 'file', 100, null),
  ch('/etc/conf.d/b.conf', 'added', 'file', null, 15),
  ch('/etc/hostname', 'modified', 'file', 7, 16),
];
const PAGE2: FileChange[] = [
  ch('/opt', 'added', 'dir', null, 0),
  ch('/opt/tool', 'added', 'dir', null, 0),
  ch('/opt/tool/bin', 'added', 'file', null, 1000),
  ch('/usr/bin/sudo', 'metadata', 'file', 50, 50),
];

test('the tree groups pages of changes by directory, with counts and sizes per directory', () => {
  const t = new ChangeTree();
  t.add(PAGE1);
  t.add(PAGE2);
  assert.equal(t.size, 8);
  assert.deepEqual(
    t.root.children.map((n) => n.name),
    ['boot', 'etc', 'opt', 'usr'],
  );
  const etc = t.get('/etc')!;
  assert.equal(etc.change, null, '/etc itself did not change');
  assert.deepEqual(etc.counts, { added: 1, removed: 1, modified: 1, metadata: 0 });
  assert.equal(etc.bytesBefore, 107);
  assert.equal(etc.bytesAfter, 31);
  assert.deepEqual(
    t.get('/etc/conf.d')!.children.map((n) => n.name),
    ['a.conf', 'b.conf'],
  );
  const opt = t.get('/opt')!;
  assert.equal(opt.change?.change, 'added');
  assert.equal(opt.isDir, true);
  assert.deepEqual(opt.counts, { added: 3, removed: 0, modified: 0, metadata: 0 });
  assert.deepEqual(t.root.counts, { added: 5, removed: 1, modified: 1, metadata: 1 });
  assert.equal(t.get('/usr/bin')!.depth, 1);
  assert.ok(canDiff(t.get('/etc/hostname')!));
  assert.ok(!canDiff(t.get('/opt')!));
});

test('a type change (removed, then added at the same path) keeps both', () => {
  const t = new ChangeTree();
  t.add([ch('/x', 'removed', 'file', 5, null), ch('/x', 'added', 'dir', null, 0), ch('/x/y', 'added')]);
  const x = t.get('/x')!;
  assert.equal(x.previous?.change, 'removed');
  assert.equal(x.change?.change, 'added');
  assert.equal(x.isDir, true);
  assert.equal(t.root.children.length, 1);
});

test('filtering by text and kind keeps the ancestors of matches; flatten follows expansion', () => {
  const t = new ChangeTree();
  t.add(PAGE1);
  t.add(PAGE2);
  const all = new Set(['added', 'removed', 'modified', 'metadata'] as const);
  assert.equal(t.applyFilter({ text: '', kinds: all }), 8);
  let rows = flatten(t, expansionRule(new Set(), new Set(), false));
  // The two top levels open by themselves.
  assert.deepEqual(
    rows.map((r) => r.node.path),
    ['/boot', '/boot/vmlinuz-6.1.0-20', '/etc', '/etc/conf.d', '/etc/conf.d/a.conf', '/etc/conf.d/b.conf', '/etc/hostname', '/opt', '/opt/tool', '/opt/tool/bin', '/usr', '/usr/bin', '/usr/bin/sudo'],
  );
  assert.equal(rows.find((r) => r.node.path === '/opt/tool')!.expanded, true);
  assert.equal(rows.find((r) => r.node.path === '/opt/tool/bin')!.depth, 2);
  rows = flatten(t, expansionRule(new Set(), new Set(['/etc', '/opt/tool']), false, 1));
  assert.ok(!rows.some((r) => r.node.path === '/opt/tool/bin'));
  assert.ok(!rows.some((r) => r.node.path === '/usr/bin/sudo'), 'auto depth 1: /usr/bin stays closed');
  rows = flatten(t, expansionRule(new Set(['/usr/bin']), new Set(['/etc']), false, 1));
  assert.ok(
    rows.some((r) => r.node.path === '/usr/bin/sudo'),
    'explicitly expanded',
  );
  assert.ok(!rows.some((r) => r.node.path === '/etc/hostname'), 'collapsed /etc hides its contents');

  assert.equal(t.applyFilter({ text: 'HOST', kinds: all }), 1);
  rows = flatten(t, expansionRule(new Set(), new Set(), true));
  assert.deepEqual(
    rows.map((r) => r.node.path),
    ['/etc', '/etc/hostname'],
  );
  assert.equal(rows[0].node.matches, false);

  assert.equal(t.applyFilter({ text: 'conf .conf', kinds: new Set(['added']) }), 1);
  rows = flatten(t, expansionRule(new Set(), new Set(), true));
  assert.deepEqual(
    rows.map((r) => r.node.path),
    ['/etc', '/etc/conf.d', '/etc/conf.d/b.conf'],
  );

  assert.equal(t.applyFilter({ text: 'nothing-like-this', kinds: all }), 0);
  assert.deepEqual(
    flatten(t, () => true),
    [],
  );
});

test('100k changes: building, filtering and flattening stay fast', () => {
  const changes: FileChange[] = [];
  for (let d = 0; d < 1000; d++) for (let f = 0; f < 100; f++) changes.push(ch(`/usr/lib/pkg${String(d).padStart(4, '0')}/file${String(f).padStart(3, '0')}.so`, f % 7 === 0 ? 'added' : 'modified'));
  const t0 = Date.now();
  const t = new ChangeTree();
  for (let i = 0; i < changes.length; i += 2000) t.add(changes.slice(i, i + 2000));
  const all = new Set(['added', 'removed', 'modified', 'metadata'] as const);
  t.applyFilter({ text: '', kinds: all });
  const rows = flatten(t, expansionRule(new Set(), new Set(), false));
  assert.equal(t.size, 100000);
  assert.equal(rows.length, 2 + 1000, 'usr, lib and the collapsed package folders (depth 2)');
  const n = t.applyFilter({ text: 'pkg0999 file05', kinds: all });
  const filtered = flatten(t, expansionRule(new Set(), new Set(), true));
  assert.equal(n, 10);
  assert.equal(filtered.length, 3 + 10);
  const ms = Date.now() - t0;
  assert.ok(ms < 3000, `took ${ms} ms`);
});

test('windowFor renders the viewport plus overscan; scrollToShow moves as little as possible', () => {
  assert.deepEqual(windowFor(0, 220, 22, 0), { start: 0, end: 0, offset: 0, height: 0 });
  assert.deepEqual(windowFor(0, 220, 22, 5), { start: 0, end: 5, offset: 0, height: 110 });
  // Row 100 at the top of a 10-row viewport: rows 90..121 (10 above, 11 visible + 10 below).
  assert.deepEqual(windowFor(2200, 220, 22, 100000, 10), { start: 90, end: 121, offset: 1980, height: 2200000 });
  // Half a row scrolled: the partly visible row is rendered.
  const w = windowFor(2211, 220, 22, 100000, 0);
  assert.equal(w.start, 100);
  assert.equal(w.end, 111);
  // Past the end (the list shrank after filtering): clamped to the last page.
  const last = windowFor(1e9, 220, 22, 50, 0);
  assert.equal(last.end, 50);
  assert.ok(last.start <= 40);
  assert.equal(scrollToShow(5, 0, 220, 22), 0);
  assert.equal(scrollToShow(10, 0, 220, 22), 22);
  assert.equal(scrollToShow(3, 220, 220, 22), 66);
  assert.equal(moveFocus('ArrowDown', 4, 5, 10), 4);
  assert.equal(moveFocus('ArrowUp', 0, 5, 10), 0);
  assert.equal(moveFocus('PageDown', 0, 100, 10), 9);
  assert.equal(moveFocus('End', 0, 100, 10), 99);
  assert.equal(moveFocus('x', 0, 100, 10), null);
  assert.equal(moveFocus('ArrowDown', 0, 0, 10), null);
});

const INV: InventoryDiff = {
  os: {
    before: { name: 'Debian GNU/Linux', version: '12', id: 'debian', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    after: { name: 'Debian GNU/Linux', version: '13', id: 'debian' },
    changed: true,
  },
  kernel: { before: '6.1.0-18-amd64', after: '6.1.0-20-amd64', changed: true },
  bootMode: { before: 'uefi', after: 'uefi', changed: false },
  packages: {
    added: [{ manager: 'dpkg', name: 'newtool', version: '1.0-1', arch: 'amd64' }],
    removed: [{ manager: 'snap', name: 'oldtool', version: '12' }],
    upgraded: [
      { manager: 'dpkg', name: 'zlib1g', from: '1.2-1', to: '1.3-1', direction: 'up' },
      { manager: 'dpkg', name: 'libc6', from: '2.37-1', to: '2.36-9', direction: 'down' },
      { manager: 'dpkg', name: 'bash', from: '5.2-1', to: '5.2-2', direction: 'up' },
    ],
    unchanged: 40,
  },
  toolchains: [{ name: 'node', before: '20.11.1', after: '20.12.0' }],
  vscodeExtensions: { added: [], removed: [], upgraded: [] },
};

test('packages: rows sorted by kind then name, filtered by words and kind:/manager:', () => {
  const rows = packageRows(INV);
  assert.deepEqual(
    rows.map((r) => `${r.kind} ${r.name}`),
    ['upgraded bash', 'upgraded zlib1g', 'downgraded libc6', 'added newtool', 'removed oldtool'],
  );
  assert.deepEqual(
    filterPackages(rows, 'kind:added').map((r) => r.name),
    ['newtool'],
  );
  assert.deepEqual(
    filterPackages(rows, 'manager:snap').map((r) => r.name),
    ['oldtool'],
  );
  assert.deepEqual(
    filterPackages(rows, '5.2').map((r) => r.name),
    ['bash'],
  );
  assert.deepEqual(
    filterPackages(rows, 'LIB 2.36').map((r) => r.name),
    ['libc6'],
  );
  assert.equal(filterPackages(rows, '  ').length, 5);
  assert.deepEqual(packageRows(null), []);
  const s = upgradeSummary(INV);
  assert.deepEqual([s.os.before, s.os.after, s.kernel.after], ['Debian GNU/Linux 12 (bookworm)', 'Debian GNU/Linux 13', '6.1.0-20-amd64']);
  assert.deepEqual([s.added, s.removed, s.upgraded, s.downgraded, s.unchanged], [1, 1, 2, 1, 40]);
  assert.deepEqual(s.toolchains, [{ name: 'node', before: '20.11.1', after: '20.12.0' }]);
});
