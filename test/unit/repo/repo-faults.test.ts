// Crash consistency and storage faults, at every durable step of every repository-writing command
// (snapshot, import, forget, prune, label): strace injects ENOSPC / EIO / EROFS or SIGKILL at the
// Nth pwrite, fsync, rename, unlink, mkdir or rmdir of the real CLI (test/helpers/faults.ts).
// After each fault: the command failed with a devsnap error (or was killed), `check` finds no
// damage, every earlier snapshot verifies, and the same command run again succeeds with data that
// verifies. The suite runs each step once, rotating through the faults that call can return;
// FAULTS_FULL=1 (`npm run test:faults`) runs every fault at every step.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { cleanup, seededBytes, sh, tmpDir } from '../../helpers/disks';
import { devsnap } from '../../helpers/cli';
import { describeFault, devsnapWithFault, durableSteps, Fault, faultsFor, Step, straceAvailable } from '../../helpers/faults';

after(cleanup);
const KiB = 1024;
const FULL = process.env.FAULTS_FULL === '1';
const EXIT_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]);

interface Scenario {
  name: string;
  /** Builds the repository state the command starts from; returns the command's arguments (repo is appended). */
  setup(dir: string, repo: string): string[];
  /** Exit codes of a rerun that mean "it was already done" (import of a committed archive, forget of a forgotten snapshot). */
  doneCodes?: number[];
}

function initRepo(repo: string): void {
  const r = devsnap(['init', '--repo', repo, '--chunk-size', String(64 * KiB), '--pack-size', String(256 * KiB)]);
  assert.equal(r.status, 0, r.stderr);
}

/** A 2 MiB "disk" of incompressible data (32 chunks), and a version with a third of it changed. */
function sources(dir: string): { a: string; b: string } {
  const a = path.join(dir, 'a.img');
  const b = path.join(dir, 'b.img');
  const data = seededBytes(7, 2048 * KiB);
  fs.writeFileSync(a, data);
  seededBytes(8, 700 * KiB).copy(data, 600 * KiB);
  fs.writeFileSync(b, data);
  return { a, b };
}

function snap(source: string, repo: string, label: string): string {
  const r = devsnap(['snapshot', source, '--repo', repo, '--label', label, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return r.json.id;
}

const scenarios: Scenario[] = [
  {
    name: 'snapshot',
    setup(dir, repo) {
      const { a, b } = sources(dir);
      initRepo(repo);
      snap(a, repo, 'before');
      return ['snapshot', b, '--label', 'after', '--json'];
    },
  },
  {
    name: 'import',
    setup(dir, repo) {
      const { a, b } = sources(dir);
      const other = path.join(dir, 'other');
      initRepo(other);
      const id = snap(b, other, 'exported');
      const archive = path.join(dir, 'b.tar.zst');
      assert.equal(devsnap(['export', id, archive, '--repo', other]).status, 0);
      initRepo(repo);
      snap(a, repo, 'before');
      return ['import', archive, '--json'];
    },
    doneCodes: [3],
  },
  {
    name: 'forget',
    setup(dir, repo) {
      const { a, b } = sources(dir);
      initRepo(repo);
      const first = snap(a, repo, 'first');
      snap(b, repo, 'second');
      return ['forget', first, '--json'];
    },
    doneCodes: [5],
  },
  {
    name: 'prune',
    setup(dir, repo) {
      const { a, b } = sources(dir);
      initRepo(repo);
      const first = snap(a, repo, 'first');
      snap(b, repo, 'second');
      assert.equal(devsnap(['forget', first, '--repo', repo]).status, 0);
      return ['prune', '--json'];
    },
  },
  {
    name: 'label',
    setup(dir, repo) {
      const { a } = sources(dir);
      initRepo(repo);
      const id = snap(a, repo, 'first');
      return ['label', id, 'renamed', '--json'];
    },
  },
];

function snapshotIds(repo: string): string[] {
  const l = devsnap(['list', '--repo', repo, '--json']);
  assert.equal(l.status, 0, `list: ${l.stdout}${l.stderr}`);
  return l.json.snapshots.map((s: { id: string }) => s.id).sort();
}

/** The repository is consistent: no damage found, and every snapshot's every chunk reads back. */
function assertSound(repo: string, what: string): void {
  const c = devsnap(['check', '--repo', repo, '--json']);
  assert.equal(c.status, 0, `${what}: check found damage: ${JSON.stringify(c.json?.errors ?? c.stderr)}`);
  const v = devsnap(['verify', '--repo', repo, '--json']);
  assert.equal(v.status, 0, `${what}: verify failed: ${v.stdout.slice(0, 2000)}${v.stderr}`);
}

/** The steps to fault: every durable call, with a sample of the many pack writes (first, middle, last). */
function stepsToFault(steps: Step[]): Step[] {
  const writes = steps.filter((s) => s.call === 'pwrite64');
  const sampled = new Set(FULL ? writes : [writes[0], writes[Math.floor(writes.length / 2)], writes[writes.length - 1]]);
  return steps.filter((s) => s.call !== 'pwrite64' || sampled.has(s));
}

for (const sc of scenarios) {
  test(`faults at every durable step of ${sc.name}: nothing lost, nothing silent`, { skip: !straceAvailable && 'needs strace' }, () => {
    const dir = tmpDir();
    const pristine = path.join(dir, 'pristine');
    const args = sc.setup(dir, pristine);
    const withRepo = (repo: string) => [...args, '--repo', repo];
    const before = snapshotIds(pristine);

    const dry = path.join(dir, 'dry');
    sh('cp', ['-a', pristine, dry]);
    const { result, steps } = durableSteps(withRepo(dry));
    assert.equal(result.status, 0, `the command works without faults: ${result.stderr}`);
    assert.ok(steps.length >= 3, `${sc.name} makes durable calls: ${JSON.stringify(steps)}`);

    const faults: Fault[] = [];
    stepsToFault(steps).forEach((step, i) => {
      const kinds = faultsFor(step.call);
      for (const kind of FULL ? kinds : [kinds[i % kinds.length]]) faults.push({ step, kind });
    });
    console.log(`${sc.name}: ${steps.length} durable calls, ${faults.length} faults`);

    for (const fault of faults) {
      const what = `${sc.name}, ${describeFault(fault)}`;
      const repo = path.join(dir, 'run');
      fs.rmSync(repo, { recursive: true, force: true });
      sh('cp', ['-a', pristine, repo]);
      const r = devsnapWithFault(withRepo(repo), fault);
      if (fault.kind === 'SIGKILL') assert.ok(r.signal === 'SIGKILL' || r.status === 137 || r.status === 0, `${what}: killed (got ${r.status}/${r.signal})`);
      else if (r.status !== 0) {
        assert.ok(EXIT_CODES.has(r.status), `${what}: a documented exit code, got ${r.status}: ${r.stderr}`);
        assert.doesNotMatch(r.stdout + r.stderr, /Unexpected error|\n\s+at /, `${what}: a devsnap message, not a crash`);
      }
      // Earlier snapshots are all there (but the one forget removes) and sound.
      const now = snapshotIds(repo);
      for (const id of before) if (!(sc.name === 'forget' && args.includes(id))) assert.ok(now.includes(id), `${what}: snapshot ${id} survived`);
      assertSound(repo, `${what}, after the fault`);
      // The same command, without the fault, succeeds and what it wrote holds its data.
      const again = devsnap([...withRepo(repo)]);
      if (process.env.FAULTS_DEBUG) console.log(what, JSON.stringify(r.stdout), JSON.stringify(again.stdout));
      assert.ok(again.status === 0 || (sc.doneCodes ?? []).includes(again.status), `${what}: run again: ${again.status} ${again.stdout}${again.stderr}`);
      assertSound(repo, `${what}, after running again`);
      if (sc.name === 'prune') {
        const c = devsnap(['check', '--repo', repo, '--json']);
        assert.deepEqual(c.json.warnings, [], `${what}: the second prune cleaned up every leftover`);
      }
    }
  });
}
