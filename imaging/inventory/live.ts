// The inventory of the running system: the package managers and tools themselves, each with a short
// timeout, missing ones skipped.
import { execFile } from 'child_process';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { childCommand } from '../disk/privilege';
import type { Inventory, InventoryExtension, InventoryPackage, InventoryToolchain } from '../protocol';
import { firstVersion, osFrom, parseOsRelease } from './parsers';
import { directoryRoot } from './roots';
import { dedupeExtensions, treeExtensions } from './tree';

interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let c: ReturnType<typeof childCommand>;
    try {
      c = childCommand(cmd, args, { LC_ALL: 'C' });
    } catch (e) {
      return resolve({ ok: false, stdout: '', stderr: (e as Error).message });
    }
    execFile(c.file, c.args, { timeout: timeoutMs, maxBuffer: 64 << 20, env: c.env, windowsHide: true }, (err, stdout, stderr) => {
      resolve({ ok: !err, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') });
    });
  });
}

export interface LiveOptions {
  /** Per command (default 5 s). */
  timeoutMs?: number;
}

const LIVE_TOOLS: [name: string, cmd: string, args: string[]][] = [
  ['node', 'node', ['--version']],
  ['npm', 'npm', ['--version']],
  ['python', 'python3', ['--version']],
  ['pip', 'pip', ['--version']],
  ['go', 'go', ['version']],
  ['rustc', 'rustc', ['--version']],
  ['cargo', 'cargo', ['--version']],
  ['java', 'java', ['-version']],
  ['dotnet', 'dotnet', ['--version']],
  ['gcc', 'gcc', ['--version']],
  ['clang', 'clang', ['--version']],
  ['docker', 'docker', ['--version']],
  ['git', 'git', ['--version']],
];

async function which(cmd: string): Promise<string | null> {
  // The PATH the child gets (a safe one in the elevated helper), so only what it would run is found.
  for (const dir of (childCommand(cmd, []).env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      await fsp.access(p, 1);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

export async function fromLive(o: LiveOptions): Promise<Inventory> {
  const t = o.timeoutMs ?? 5000;
  const notes: string[] = [];
  const osRel = await fsp.readFile('/etc/os-release', 'utf8').catch(() => fsp.readFile('/usr/lib/os-release', 'utf8').catch(() => ''));
  const osInfo = osFrom(parseOsRelease(osRel));
  osInfo.kernel = os.release();
  const bootMode: 'uefi' | 'bios' = await fsp.access('/sys/firmware/efi').then(
    () => 'uefi' as const,
    () => 'bios' as const,
  );

  const tasks: Promise<InventoryPackage[]>[] = [];
  const ifTool = async <T>(cmd: string, fn: (p: string) => Promise<T>, empty: T): Promise<T> => {
    const p = await which(cmd);
    return p ? fn(p) : empty;
  };
  tasks.push(
    ifTool(
      'dpkg-query',
      async (p) => {
        const r = await run(p, ['-W', '-f', '${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\n'], t * 4);
        if (!r.ok) notes.push('dpkg-query failed or timed out');
        return r.stdout
          .split('\n')
          .map((l) => l.split('\t'))
          .filter((f) => f.length >= 3 && f[0] === 'installed')
          .map(([, name, version, arch]) => ({ manager: 'dpkg' as const, name, version, ...(arch ? { arch } : {}) }));
      },
      [],
    ),
  );
  tasks.push(
    ifTool(
      'rpm',
      async (p) => {
        const r = await run(p, ['-qa', '--qf', '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'], t * 4);
        return r.stdout
          .split('\n')
          .map((l) => l.split('\t'))
          .filter((f) => f.length >= 2 && f[0])
          .map(([name, v, arch]) => ({ manager: 'rpm' as const, name, version: v.replace(/^0:/, ''), ...(arch && arch !== '(none)' ? { arch } : {}) }));
      },
      [],
    ),
  );
  tasks.push(
    ifTool(
      'pacman',
      async (p) => {
        const r = await run(p, ['-Q'], t * 2);
        return r.stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length === 2)
          .map(([name, version]) => ({ manager: 'pacman' as const, name, version }));
      },
      [],
    ),
  );
  tasks.push(
    ifTool(
      'snap',
      async (p) => {
        const r = await run(p, ['list'], t);
        return r.stdout
          .split('\n')
          .slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 2 && f[0])
          .map(([name, version]) => ({ manager: 'snap' as const, name, version }));
      },
      [],
    ),
  );
  tasks.push(
    ifTool(
      'flatpak',
      async (p) => {
        const r = await run(p, ['list', '--columns=application,version,arch,branch'], t);
        return r.stdout
          .split('\n')
          .map((l) => l.split('\t'))
          .filter((f) => f[0]?.trim())
          .map(([name, version, arch, branch]) => ({ manager: 'flatpak' as const, name: name.trim(), version: (version || branch || '').trim(), ...(arch ? { arch: arch.trim() } : {}) }));
      },
      [],
    ),
  );
  tasks.push(
    ifTool(
      'brew',
      async (p) => {
        const r = await run(p, ['list', '--versions'], t * 2);
        return r.stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f.length >= 2)
          .map(([name, version]) => ({ manager: 'brew' as const, name, version }));
      },
      [],
    ),
  );

  const toolTasks = LIVE_TOOLS.map(([name, cmd, args]) =>
    ifTool(
      cmd,
      async (p) => {
        const r = await run(p, args, t);
        const textOut = (r.stdout || r.stderr).split('\n')[0] ?? '';
        const v = name === 'java' ? (/version "([^"]+)"/.exec(r.stderr + r.stdout)?.[1] ?? firstVersion(textOut)) : firstVersion(textOut);
        return r.ok && v ? ({ name, version: v.replace(/^v/, ''), path: p } as InventoryToolchain) : null;
      },
      null,
    ),
  );
  const extTask = ifTool(
    'code',
    async (p) => {
      const r = await run(p, ['--list-extensions', '--show-versions'], t * 3);
      return r.stdout
        .split('\n')
        .map((l) => /^(\S+)@(\S+)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => ({ id: m[1].toLowerCase(), version: m[2] }));
    },
    [] as InventoryExtension[],
  );

  const packages = (await Promise.all(tasks)).flat().sort((a, b) => a.manager.localeCompare(b.manager) || a.name.localeCompare(b.name) || (a.arch ?? '').localeCompare(b.arch ?? ''));
  const toolchains = (await Promise.all(toolTasks)).filter((x): x is InventoryToolchain => !!x);
  let vscodeExtensions = await extTask;
  if (!vscodeExtensions.length) vscodeExtensions = await treeExtensions(directoryRoot('/')); // `code` not on PATH (e.g. run as root)
  return {
    version: 1,
    source: 'live',
    collectedAt: new Date().toISOString(),
    os: osInfo,
    bootMode,
    packages,
    toolchains,
    vscodeExtensions: dedupeExtensions(vscodeExtensions),
    notes,
  };
}
