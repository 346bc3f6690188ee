// A smoke run of the compare panel's latency bench (bench/panel.js, one run on a demo repository of
// its own): it runs to its end and prints every row. Its figures are the bench's business, not a test's.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, tmpDir } from '../../helpers/disks';

after(cleanup);
const ROOT = path.join(__dirname, '..', '..', '..', '..');

test(
  'bench/panel.js --runs 1 prints the latency of every panel step, through the service and per process',
  { skip: !fs.existsSync(path.join(ROOT, 'dist', 'devsnap.js')) && 'needs npm run build (dist/)' },
  () => {
    const demo = tmpDir('devsnap-benchpanel-');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'panel.js'), '--runs', '1', '--demo', demo], { encoding: 'utf8', timeout: 5 * 60_000 });
    assert.equal(r.status, 0, r.stderr);
    for (const row of ['sidebar refresh', 'compare panel, first content', 'compare panel, reopened', 'text diff']) assert.match(r.stdout, new RegExp(`\\| ${row}[^|]*\\| \\d+ \\(`), row);
    assert.match(r.stdout, /\| text diff[^\n]*\| \d+ \(\d+–\d+\) \| \d+ \(/, 'the per-process figure beside it');
  },
);
