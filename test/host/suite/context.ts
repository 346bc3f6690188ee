// What the in-host tests know about their surroundings: the repository root, and the fixture the
// runner prepared (demo disk image, snapshot repository, workspace, engine CLI), passed as a JSON
// file named by DEVSNAP_HOST_CONTEXT. Also typed access to Mocha's BDD globals, which Mocha
// installs while it loads the test files (mocha is not a project dependency, so no @types/mocha).
import * as fs from 'fs';
import * as path from 'path';

export interface HostContext {
  root: string; // the repository (= extensionDevelopmentPath)
  workspace: string; // the opened folder (its .vscode/settings.json configures devsnap)
  repo: string; // an initialised snapshot repository for the tests
  disk: string; // the demo disk image (GPT: EFI vfat + ext4)
  cli: string; // node script of the engine CLI (dist/devsnap.js)
  node: string; // a Node binary to run the CLI with
  scratch: string; // a folder the tests may write to
}

/** The repository root: out/test/host/suite -> ../../../.. */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..', '..', '..');
}

let cached: HostContext | undefined;
export function hostContext(): HostContext {
  if (cached) return cached;
  const file = process.env.DEVSNAP_HOST_CONTEXT;
  if (!file || !fs.existsSync(file)) throw new Error('DEVSNAP_HOST_CONTEXT is not set: run the in-host tests through test/host/run.js');
  cached = JSON.parse(fs.readFileSync(file, 'utf8')) as HostContext;
  return cached;
}

type Done = (err?: unknown) => void;
/** The part of Mocha's `this` (its Context and Suite) that the tests use. */
export interface MochaContext {
  timeout(ms: number): unknown;
  skip(): never;
}
type Fn = (this: MochaContext, done?: Done) => unknown;
interface Mocha {
  describe(title: string, fn: (this: MochaContext) => void): unknown;
  it(title: string, fn?: Fn): unknown;
  before(fn: Fn): void;
  after(fn: Fn): void;
  beforeEach(fn: Fn): void;
  afterEach(fn: Fn): void;
}
const g = (): Mocha => globalThis as unknown as Mocha;
export const describe = (title: string, fn: (this: MochaContext) => void) => g().describe(title, fn);
export const it = (title: string, fn?: Fn) => g().it(title, fn);
export const before = (fn: Fn) => g().before(fn);
export const after = (fn: Fn) => g().after(fn);
export const beforeEach = (fn: Fn) => g().beforeEach(fn);
export const afterEach = (fn: Fn) => g().afterEach(fn);
