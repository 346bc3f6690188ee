// The helper's launch command lines (extension/elevation.ts): which method each setting picks, and
// how each builder quotes arguments with spaces, quotes, $ and backslashes. The POSIX quoting and
// the sudo askpass script are run for real through /bin/sh; the Windows (CommandLineToArgvW) and
// AppleScript layers are decoded by reference parsers written here, since neither Windows nor macOS
// is available to run them (not exercised end to end: see imaging/helper/README.md).
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { appleScriptString, askpassScript, buildLaunch, chooseMethod, helperArgs, HelperInvocation, psQuote, shQuote, windowsArg } from '../../../extension/elevation';
import { needsElevation, RoutingEngine } from '../../../extension/engine';
import type { Callable, EngineCall } from '../../../extension/engine';

const NASTY = ['plain', 'with space', "it's", 'dollar $HOME $(id) `id`', 'back\\slash', 'trailing\\', 'quote"inside', '"quoted"', 'tab\there', 'new\nline', '', 'ünïcode ✓', 'mix \'"\\$ end\\\\'];

const inv = (over: Partial<HelperInvocation> = {}): HelperInvocation => ({
  nodePath: '/opt/VS Code/code',
  cliPath: "/home/o'neil/.vscode/extensions/devsnap/dist/devsnap.js",
  socket: '/run/user/1000/devsnap-helper-Ab$1/helper.sock',
  secretFile: '/run/user/1000/devsnap-helper-Ab$1/secret',
  uid: 1000,
  idleTimeoutSeconds: 600,
  ...over,
});

/** CommandLineToArgvW's rules (post-2008 MSVC runtime), for checking windowsArg. */
function parseWindowsCommandLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let arg = '';
    let inQuotes = false;
    for (; i < line.length; i++) {
      const c = line[i];
      if (c === '\\') {
        let n = 0;
        while (line[i] === '\\') {
          n++;
          i++;
        }
        if (line[i] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          if (n % 2) arg += '"';
          else {
            inQuotes = !inQuotes;
          }
        } else {
          arg += '\\'.repeat(n);
          i--;
        }
        continue;
      }
      if (c === '"') {
        if (inQuotes && line[i + 1] === '"') {
          arg += '"';
          i++;
        } else inQuotes = !inQuotes;
        continue;
      }
      if (!inQuotes && (c === ' ' || c === '\t')) break;
      arg += c;
    }
    out.push(arg);
  }
  return out;
}

/** Decodes an AppleScript string literal (only \\ and \" are produced by appleScriptString). */
function parseAppleScriptString(lit: string): string {
  assert.ok(lit.startsWith('"') && lit.endsWith('"'));
  let out = '';
  for (let i = 1; i < lit.length - 1; i++) {
    if (lit[i] === '\\') {
      out += lit[++i];
      continue;
    }
    assert.notEqual(lit[i], '"', `unescaped quote in ${lit}`);
    out += lit[i];
  }
  return out;
}

/** Runs a shell command line whose program is a script printing its argv and one env var as JSON. */
function runShellLine(line: string): { argv: string[]; env: string | null } {
  const r = spawnSync('/bin/sh', ['-c', line], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('elevation: choosing the method', () => {
  it('follows the setting, the platform and whether we are root', () => {
    const linux = { platform: 'linux', uid: 1000, pkexecUsable: true };
    assert.equal(chooseMethod('none', linux), null);
    assert.equal(chooseMethod('none', { ...linux, uid: 0 }), null);
    assert.equal(chooseMethod('auto', { ...linux, uid: 0 }), 'direct');
    assert.equal(chooseMethod('pkexec', { ...linux, uid: 0 }), 'direct');
    assert.equal(chooseMethod('auto', linux), 'pkexec');
    assert.equal(chooseMethod('auto', { ...linux, pkexecUsable: false }), 'sudo');
    assert.equal(chooseMethod('sudo', linux), 'sudo');
    assert.equal(chooseMethod('pkexec', { ...linux, pkexecUsable: false }), 'pkexec');
    assert.equal(chooseMethod('auto', { platform: 'win32', uid: undefined, pkexecUsable: false }), 'runas');
    assert.equal(chooseMethod('auto', { platform: 'darwin', uid: 501, pkexecUsable: false }), 'osascript');
    assert.equal(chooseMethod('sudo', { platform: 'darwin', uid: 501, pkexecUsable: false }), 'sudo');
  });
});

describe('elevation: command lines', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap elevation $x '));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A stand-in for node: prints its arguments and ELECTRON_RUN_AS_NODE as JSON.
  const printer = path.join(dir, "print 'args' $1.sh");
  fs.writeFileSync(printer, `#!/bin/sh\nexec ${process.execPath} -e 'console.log(JSON.stringify({ argv: process.argv.slice(1), env: process.env.ELECTRON_RUN_AS_NODE ?? null }))' -- "$@"\n`, {
    mode: 0o755,
  });

  it('never puts the secret on the command line, only the path of its file', () => {
    const args = helperArgs(inv());
    assert.deepEqual(args.slice(1, 4), ['helper', '--socket', inv().socket]);
    assert.ok(args.includes('--secret-file'));
    assert.ok(!args.some((a) => /^[0-9a-f]{64}$/.test(a)));
  });

  it("direct and pkexec: argv arrays (no shell), ELECTRON_RUN_AS_NODE and the engine's runtime settings through env for pkexec", () => {
    const d = buildLaunch('direct', inv());
    assert.deepEqual([d.command, ...d.args], [inv().nodePath, '--max-semi-space-size=1', ...helperArgs(inv())]);
    assert.deepEqual(d.env, { ELECTRON_RUN_AS_NODE: '1', MALLOC_MMAP_THRESHOLD_: '131072', DEVSNAP_TUNED: '1' });
    assert.equal(d.prompts, false);
    const p = buildLaunch('pkexec', inv());
    assert.equal(p.command, 'pkexec');
    assert.deepEqual(p.args, ['/usr/bin/env', 'ELECTRON_RUN_AS_NODE=1', 'MALLOC_MMAP_THRESHOLD_=131072', 'DEVSNAP_TUNED=1', inv().nodePath, '--max-semi-space-size=1', ...helperArgs(inv())]);
    assert.equal(p.prompts, true);
  });

  it('sudo: -A with SUDO_ASKPASS, the command as argv', () => {
    const s = buildLaunch('sudo', inv(), { askpass: '/run/user/1000/x/askpass.sh' });
    assert.equal(s.command, 'sudo');
    assert.deepEqual(s.args.slice(0, 4), ['-A', '--', '/usr/bin/env', 'ELECTRON_RUN_AS_NODE=1']);
    assert.deepEqual(s.args.slice(4), ['MALLOC_MMAP_THRESHOLD_=131072', 'DEVSNAP_TUNED=1', inv().nodePath, '--max-semi-space-size=1', ...helperArgs(inv())]);
    assert.equal(s.env.SUDO_ASKPASS, '/run/user/1000/x/askpass.sh');
    assert.throws(() => buildLaunch('sudo', inv()), /askpass/);
  });

  it('shQuote survives /bin/sh for spaces, quotes, $, backquotes, backslashes and newlines', () => {
    const line = [printer, ...NASTY].map(shQuote).join(' ');
    assert.deepEqual(runShellLine(line).argv, NASTY);
  });

  it('osascript: the AppleScript literal decodes to a shell line that yields the exact argv', () => {
    for (const nasty of NASTY.filter(Boolean)) {
      const i = inv({ nodePath: printer, cliPath: `/Applications/VS Code.app/${nasty}/devsnap.js`, socket: `/tmp/${nasty}/s.sock` });
      const o = buildLaunch('osascript', i);
      assert.equal(o.command, '/usr/bin/osascript');
      assert.equal(o.args[0], '-e');
      const m = /^do shell script (".*") with administrator privileges$/s.exec(o.args[1]);
      assert.ok(m, o.args[1]);
      const shellLine = parseAppleScriptString(m[1]);
      const got = runShellLine(shellLine);
      assert.deepEqual(got.argv, helperArgs(i));
      assert.equal(got.env, '1');
    }
  });

  it('runas: Windows command-line quoting round-trips, inside a PowerShell literal', () => {
    for (const s of [...NASTY, 'C:\\Program Files\\Microsoft VS Code\\', 'a\\\\"b', '\\\\server\\share\\x y\\']) {
      if (s.includes('\n')) continue; // not a valid Windows argument anyway
      assert.deepEqual(parseWindowsCommandLine(windowsArg(s)), [s], `windowsArg(${JSON.stringify(s)}) = ${windowsArg(s)}`);
    }
    const i = inv({
      nodePath: 'C:\\Program Files\\Microsoft VS Code\\Code.exe',
      cliPath: "C:\\Users\\O'Neil\\.vscode\\extensions\\devsnap\\dist\\devsnap.js",
      socket: '\\\\.\\pipe\\devsnap-helper-1',
      secretFile: "C:\\Users\\O'Neil\\AppData\\Local\\Temp\\devsnap helper\\secret",
    });
    const w = buildLaunch('runas', i);
    assert.equal(w.command, 'powershell.exe');
    const script = w.args[w.args.length - 1];
    assert.equal(w.args[w.args.length - 2], '-Command');
    const m = /^\$env:ELECTRON_RUN_AS_NODE = '1'; Start-Process -FilePath ('(?:[^']|'')*') -ArgumentList ('(?:[^']|'')*') -Verb RunAs -WindowStyle Hidden -Wait$/.exec(script);
    assert.ok(m, script);
    const unPs = (lit: string) => lit.slice(1, -1).replace(/''/g, "'");
    assert.equal(unPs(m[1]), i.nodePath);
    assert.deepEqual(parseWindowsCommandLine(unPs(m[2])), helperArgs(i));
    assert.equal(psQuote("it's"), "'it''s'");
    assert.equal(psQuote('a\u2019b'), "'a\u2019\u2019b'");
  });

  it('appleScriptString escapes backslashes and quotes only', () => {
    assert.equal(appleScriptString('a "b" \\c $d'), '"a \\"b\\" \\\\c $d"');
  });

  it("sudo's askpass script asks the extension over its socket and prints the answer", async () => {
    const sock = path.join(dir, 'askpass.sock');
    const prompts: string[] = [];
    const answer = `pa$$ "w'o\\rd`;
    const server = net.createServer((c) => {
      let data = '';
      c.on('data', (d) => {
        data += d;
        if (data.includes('\n')) {
          prompts.push(JSON.parse(data).prompt);
          c.end(JSON.stringify(prompts.length === 1 ? { password: answer } : {}));
        }
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const script = path.join(dir, 'askpass.sh');
      fs.writeFileSync(script, askpassScript(process.execPath, sock), { mode: 0o700 });
      const run = () =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const c = spawn(script, ['[sudo] password for dev: '], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.on('close', (code) => resolve({ code, out }));
        });
      const first = await run();
      assert.equal(first.code, 0);
      assert.equal(first.out, answer + '\n');
      assert.equal(prompts[0], '[sudo] password for dev: ');
      const dismissed = await run();
      assert.equal(dismissed.code, 1, 'a dismissed prompt must make sudo give up');
      assert.equal(dismissed.out, '');
    } finally {
      server.close();
    }
  });
});

describe('elevation: which operations go through the helper', () => {
  it('block devices always; files and repositories only when the user cannot access them', () => {
    const loop = fs.readdirSync('/dev').find((n) => /^loop\d+$/.test(n));
    if (loop) assert.equal(needsElevation(`/dev/${loop}`, 'read'), true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-route-'));
    try {
      const f = path.join(dir, 'disk.img');
      fs.writeFileSync(f, 'x');
      assert.equal(needsElevation(f, 'read'), false);
      assert.equal(needsElevation(dir, 'repository'), false);
      assert.equal(needsElevation(path.join(dir, 'new.img'), 'write'), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('RoutingEngine sends device work to the elevated engine and the rest to the user engine', async () => {
    const calls: string[] = [];
    // Each side records the operations it is asked to run (listing disks answers its result shape).
    const fake = (who: string): Callable => ({
      call: (async (op: string) => {
        calls.push(`${who}:${op}`);
        return op === 'listDisks' ? { disks: [] } : op === 'listSnapshots' ? { snapshots: [], damaged: [] } : {};
      }) as EngineCall,
    });
    const probe = (p: string) => p.startsWith('/dev/');
    const e = new RoutingEngine(fake('user'), fake('helper'), probe);
    await e.listDisks();
    await e.listSnapshots('/repo');
    await e.snapshot({ repo: '/repo', source: '/dev/sdb', label: 'x' });
    await e.snapshot({ repo: '/repo', source: '/home/a/disk.img', label: 'x' });
    await e.restore({ repo: '/repo', id: 'a', target: '/dev/sdc' });
    await e.verify({ repo: '/repo' });
    assert.deepEqual(calls, ['user:listDisks', 'user:listSnapshots', 'helper:snapshot', 'user:snapshot', 'helper:restore', 'user:verify']);
  });

  it('RoutingEngine restores files through the helper only where the user cannot write', async () => {
    const calls: string[] = [];
    const fake = (who: string): Callable => ({
      call: (async (op: string) => {
        calls.push(`${who}:${op}`);
        return {};
      }) as EngineCall,
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devsnap-route-'));
    try {
      fs.mkdirSync(path.join(dir, 'root', 'etc'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'mine'));
      const locked = path.join(dir, 'root', 'etc');
      const probe = (p: string, mode: string) => mode === 'write' && (p === locked || p.startsWith(locked + '/'));
      const e = new RoutingEngine(fake('user'), fake('helper'), probe);
      const base = { repo: '/repo', id: 'a' };
      await e.restoreFiles({ ...base, paths: ['/home/x'], to: path.join(dir, 'mine') });
      await e.restoreFiles({ ...base, paths: ['/etc/hostname'], to: path.join(dir, 'root'), inPlace: true }); // its folder, etc, is locked
      await e.restoreFiles({ ...base, paths: ['/etc'], to: path.join(dir, 'root'), inPlace: true }); // an existing locked folder
      await e.restoreFiles({ ...base, paths: ['/etc/new/deep/file'], to: path.join(dir, 'root'), inPlace: true }); // nearest existing: etc
      await e.restoreFiles({ ...base, paths: ['/home/x'], to: path.join(dir, 'root'), inPlace: true });
      await e.restoreFiles({ ...base, paths: ['/x'], to: locked });
      assert.deepEqual(calls, ['user:restoreFiles', 'helper:restoreFiles', 'helper:restoreFiles', 'helper:restoreFiles', 'user:restoreFiles', 'helper:restoreFiles']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
