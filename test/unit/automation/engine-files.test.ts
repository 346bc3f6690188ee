// The engine is copied file by file (automation/engine-copy.ts ENGINE_FILES: the automatic snapshots'
// copy, the recovery kit): the bundle must hold every module it may load on demand. The AWS SDK's
// credential providers were chunk files of their own beside dist/devsnap.js, so a copy of the engine
// failed on an S3 repository with keys in ~/.aws ("Cannot find module"); the commands that load their
// modules on demand (recover's prompts, archive's tar, serve, helper) must not bring chunks back either.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ENGINE_FILES } from '../../../imaging/automation/engine-copy';
import { cleanup, tmpDir } from '../../helpers/disks';

after(cleanup);
const DIST = path.join(__dirname, '..', '..', '..', '..', 'dist');
const built = fs.existsSync(path.join(DIST, 'devsnap.js'));

test('the engine bundle is its ENGINE_FILES alone: no chunk files beside it', { skip: !built && 'needs npm run build (dist/)' }, () => {
  const js = fs.readdirSync(DIST).filter((f) => f.endsWith('.js'));
  assert.deepEqual(
    js.filter((f) => !ENGINE_FILES.includes(f) && !['extension.js', 'webview.js'].includes(f)),
    [],
  );
});

test('a copy of ENGINE_FILES reads S3 keys from an AWS profile (the SDK loads that provider on demand)', { skip: !built && 'needs npm run build (dist/)' }, () => {
  const dir = tmpDir('devsnap-engine-copy-');
  for (const f of ENGINE_FILES) fs.copyFileSync(path.join(DIST, f), path.join(dir, f));
  const creds = path.join(dir, 'credentials');
  fs.writeFileSync(creds, '[team]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = not-a-secret\n');
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SHARED_CREDENTIALS_FILE: creds, AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_PROFILE: 'team', DEVSNAP_TUNED: '1' };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  // Nothing listens on port 9: with the keys found, the request is made and refused.
  const r = spawnSync(process.execPath, [path.join(dir, 'devsnap.js'), 'list', '--json', '--repo', 's3:http://127.0.0.1:9/devsnap-copy'], { encoding: 'utf8', env, timeout: 120_000 });
  const out = JSON.parse(r.stdout) as { error?: { code: string; message: string } };
  assert.notEqual(out.error?.code, 'INTERNAL', r.stderr);
  assert.match(out.error?.message ?? '', /did not serve|ECONNREFUSED/, r.stderr);
  for (const cmd of ['recover', 'export', 'serve']) {
    const h = spawnSync(process.execPath, [path.join(dir, 'devsnap.js'), cmd, '--help'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(h.status, 0, `${cmd} --help: ${h.stderr}`);
  }
});
