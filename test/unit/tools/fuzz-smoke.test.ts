// Fuzzing, the short version that runs with every `npm test`: the whole committed corpus
// (test/fuzz/corpus: crashers found and fixed, and inputs that reach rare paths) is replayed, then a
// fixed number of random cases per target (the same seed every run) are mutated from seeds made by the
// real tools. Every parser of untrusted bytes must return or throw a DevsnapError: never another
// exception, never a hang, never a process abort. `npm run fuzz` is the long run (test/fuzz/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { TARGETS } from '../../fuzz/targets';
import { CORPUS_FILE_MAX, CORPUS_TOTAL, corpusFiles, fuzzTarget, knownOpen } from '../../fuzz/run';

const SEED = 20261127;

test('fuzz corpus: committed inputs are small (each at most 64 KiB, 1 MiB in all) and open crashers are explained', () => {
  const files = TARGETS.flatMap((t) => corpusFiles(t.name));
  for (const f of files) assert.ok(fs.statSync(f).size <= CORPUS_FILE_MAX, `${f} is larger than ${CORPUS_FILE_MAX} bytes`);
  assert.ok(files.reduce((n, f) => n + fs.statSync(f).size, 0) <= CORPUS_TOTAL, 'the corpus is larger than 1 MiB');
  for (const k of knownOpen()) {
    assert.ok(
      TARGETS.some((t) => t.name === k.target),
      `open.json names an unknown target ${k.target}`,
    );
    assert.ok(k.note && k.note.length > 20, `open.json: ${k.file ?? k.signature} needs a note saying why it is still open`);
    if (k.file)
      assert.ok(
        corpusFiles(k.target).some((f) => path.basename(f) === k.file),
        `open.json: ${k.target}/${k.file} is not in the corpus`,
      );
  }
});

test('fuzz harness: an input that aborts the process (as a C++ assertion does) is caught and named', async () => {
  const r = await fuzzTarget('harness-abort', { execs: 1, replay: false, seed: SEED });
  assert.equal(r.violations.length, 1);
  assert.equal(r.violations[0].signature, 'abort(SIGABRT)');
  assert.match(r.violations[0].input.toString('latin1'), /^ABORT/);
});

test('fuzz harness: an input that hangs the process in synchronous code is caught and named', async () => {
  const r = await fuzzTarget('harness-hang', { execs: 1, replay: false, seed: SEED, hangMs: 3000 });
  assert.equal(r.violations.length, 1);
  assert.equal(r.violations[0].signature, 'hang');
  assert.match(r.violations[0].input.toString('latin1'), /^HANG/);
});

for (const t of TARGETS) {
  test(`fuzz ${t.name}: the committed corpus and ${t.smokeExecs} random cases return or throw a DevsnapError`, async () => {
    const r = await fuzzTarget(t.name, { execs: t.smokeExecs, seed: SEED, replay: true, skipKnown: true });
    const bad = r.violations.filter((v) => !v.known);
    assert.deepEqual(
      bad.map((v) => `${v.signature} (${v.origin}): ${v.message.split('\n')[0]}`),
      [],
      `${t.what}: inputs that break the property`,
    );
    assert.ok(r.execs >= t.smokeExecs, `only ${r.execs} of ${t.smokeExecs} cases ran`);
  });
}
