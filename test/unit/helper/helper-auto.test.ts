// The helper's checks of automatic snapshots (imaging/helper/auto-checks.ts): a user other than root
// may have them installed or removed only on the running system ('/'); any other root is refused
// before anything is written. A root user's request with the same root passes that check.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, isRoot, tmpDir } from '../../helpers/disks';
import { ensureUser, launchHelper, launchHelperFor, removeCreatedUsers } from './helper-harness';

after(() => {
  cleanup();
  removeCreatedUsers();
});

const config = { repository: '/mnt/backup/devsnap', source: '/dev/sda', schedule: 'daily', hooks: [] };

test('the helper refuses autoInstall and autoRemove below a root other than / from a user other than root', { skip: !isRoot && 'needs root (the helper runs as root)' }, async () => {
  const root = path.join(tmpDir('devsnap-helper-auto-'), 'root');
  fs.mkdirSync(root, { recursive: true });
  const uid = ensureUser('devsnap-test-user');
  const h = await launchHelperFor(uid);
  try {
    assert.ok(h.sock, h.stderr());
    for (const [op, params] of [
      ['autoInstall', { root, config }],
      ['autoRemove', { root, purge: true }],
    ] as const) {
      const m = await h.call(op, params);
      assert.equal(m.error?.code, 'PERMISSION', JSON.stringify(m));
      assert.match(m.error.message, /only on the running system \(root "\/"\), not below .*root: it would write root's files where you chose/);
    }
    assert.deepEqual(fs.readdirSync(root), [], 'nothing written');
    // Without a root at all: refused by the helper's schema (the extension always names it).
    const none = await h.call('autoInstall', { config });
    assert.match(none.error.message, /Refused the "autoInstall" request: the field "root" is missing/);
  } finally {
    await h.close();
  }
  // Root itself may prepare another root: the check passes (this helper runs from tsc's out/, with
  // no engine bundle to copy, so the install stops there, still before writing).
  const asRoot = await launchHelper();
  try {
    const m = await asRoot.call('autoInstall', { root, config });
    assert.equal(m.error?.code, 'NOT_FOUND', JSON.stringify(m));
    assert.match(m.error.message, /The devsnap engine's files \(devsnap.js, compress-worker.js\) were not found/);
  } finally {
    await asRoot.close();
  }
});
