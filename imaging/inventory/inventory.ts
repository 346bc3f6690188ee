// The environment inventory of a system: OS, kernel, boot mode, installed packages, toolchains and
// VS Code extensions. Two sources:
//  - a filesystem tree (a snapshot's root through ImageFs, or a mounted directory): read from package
//    databases and well-known paths, since nothing can be run from an image;
//  - the live system (when it is the one being imaged): the package managers and tools themselves,
//    each with a short timeout, missing ones skipped.
// What a tree can tell (documented per item below):
//  - packages: dpkg (/var/lib/dpkg/status, "install ok installed" entries), pacman
//    (/var/lib/pacman/local/*/desc), snap (/snap/<name>/<revision> dirs; the revision, not the version),
//    flatpak (/var/lib/flatpak/app/<id>/current -> arch/branch). rpm's database is binary (Berkeley DB or
//    SQLite): it is not parsed; `rpmDatabase` says that one exists.
//  - kernel: /boot/vmlinuz-* and /lib/modules/* names (the newest is `kernel`).
//  - toolchains: node (include/node/node_version.h), npm (node_modules/npm/package.json), python
//    (lib/python3.X dirs: major.minor), pip (dist-packages/pip-*.dist-info), go (go/VERSION), rustc
//    (~/.rustup/toolchains/*/lib/rustlib/multirust-channel-manifest.toml, else the toolchain name), gcc
//    (lib/gcc/<triplet>/N), clang (/usr/lib/llvm-N), java (/usr/lib/jvm/*/release), dotnet
//    (dotnet/shared/Microsoft.NETCore.App/*), and git/docker from the package list.
//  - VS Code extensions: ~/.vscode*/extensions/extensions.json, else `publisher.name-version` dir names.
import { execFile } from 'child_process';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import type { ImageFs } from '../filesystems/image-fs/types';
import { childCommand } from '../disk/privilege';
import type { InventoryPackage, InventoryToolchain, InventoryExtension, Inventory, VersionChange, PackageChange, InventoryDiff } from '../protocol';
export type { InventoryPackage, InventoryToolchain, InventoryExtension, Inventory, VersionChange, PackageChange, InventoryDiff };

/** What the inventory reads from: a tree (absolute paths inside it). */
export interface InventoryRoot {
  readFile(p: string): Promise<Buffer | null>;
  /** Names in a directory, or null when it is missing / not a directory. */
  readdir(p: string): Promise<string[] | null>;
  exists(p: string): Promise<boolean>;
}

/** An ImageFs (a snapshot's partition) as an inventory root. */
export function imageFsRoot(fs: ImageFs): InventoryRoot {
  return {
    readFile: async (p) => {
      try {
        return await fs.readFile(p);
      } catch {
        return null;
      }
    },
    readdir: async (p) => {
      try {
        return (await fs.readdir(p)).map((e) => e.name);
      } catch {
        return null;
      }
    },
    exists: async (p) => (await fs.tryStat(p).catch(() => null)) !== null,
  };
}

/** A directory of this machine (a mounted filesystem) as an inventory root; absolute symlinks stay inside it only approximately. */
export function directoryRoot(dir: string): InventoryRoot {
  const at = (p: string) => path.join(dir, p);
  return {
    readFile: async (p) => fsp.readFile(at(p)).catch(() => null),
    readdir: async (p) => fsp.readdir(at(p)).catch(() => null),
    exists: async (p) => fsp.lstat(at(p)).then(() => true, () => false),
  };
}

// ---------------------------------------------------------------------------------------------
// Parsers shared by both sources

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    out[m[1]] = v;
  }
  return out;
}

function osFrom(rel: Record<string, string>): Inventory['os'] {
  return {
    name: rel.NAME ?? 'Linux',
    version: rel.VERSION_ID ?? rel.VERSION ?? rel.BUILD_ID ?? '',
    id: rel.ID ?? 'linux',
    ...(rel.PRETTY_NAME ? { prettyName: rel.PRETTY_NAME } : {}),
  };
}

/** dpkg's status file: the packages whose Status is "install ok installed". */
export function parseDpkgStatus(text: string): InventoryPackage[] {
  const out: InventoryPackage[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m) f[m[1].toLowerCase()] = m[2].trim();
    }
    if (!f.package || !f.version) continue;
    if (f.status && !/\sinstalled$/.test(' ' + f.status)) continue;
    out.push({ manager: 'dpkg', name: f.package, version: f.version, ...(f.architecture ? { arch: f.architecture } : {}) });
  }
  return out;
}

/** pacman's local database entry (desc file). */
export function parsePacmanDesc(text: string): InventoryPackage | null {
  const f: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^%([A-Z]+)%$/.exec(lines[i]);
    if (m && i + 1 < lines.length) f[m[1]] = lines[i + 1].trim();
  }
  return f.NAME && f.VERSION ? { manager: 'pacman', name: f.NAME, version: f.VERSION, ...(f.ARCH ? { arch: f.ARCH } : {}) } : null;
}

const KERNEL_RE = /^\d+\.\d+[\w.+~-]*$/;

/** Compares two kernel-ish / dpkg-ish versions (dpkg's algorithm: epoch, upstream, revision). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const e = /^(\d+):/.exec(v);
    const epoch = e ? Number(e[1]) : 0;
    const rest = e ? v.slice(e[0].length) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, up: dash >= 0 ? rest.slice(0, dash) : rest, rev: dash >= 0 ? rest.slice(dash + 1) : '' };
  };
  const order = (c: string | undefined) => (c === undefined ? 0 : c === '~' ? -1 : /\d/.test(c) ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  const verrevcmp = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      let first = 0;
      while ((i < x.length && !/\d/.test(x[i])) || (j < y.length && !/\d/.test(y[j]))) {
        const ac = order(x[i]);
        const bc = order(y[j]);
        if (ac !== bc) return ac - bc;
        i++;
        j++;
      }
      while (x[i] === '0') i++;
      while (y[j] === '0') j++;
      while (i < x.length && /\d/.test(x[i]) && j < y.length && /\d/.test(y[j])) {
        if (!first) first = x.charCodeAt(i) - y.charCodeAt(j);
        i++;
        j++;
      }
      if (i < x.length && /\d/.test(x[i])) return 1;
      if (j < y.length && /\d/.test(y[j])) return -1;
      if (first) return first;
    }
    return 0;
  };
  const A = split(a);
  const B = split(b);
  return Math.sign(A.epoch - B.epoch || verrevcmp(A.up, B.up) || verrevcmp(A.rev, B.rev));
}

function firstVersion(s: string): string | null {
  return /(\d+\.\d+(?:\.\d+)?(?:[-+.~][\w.+~-]*)?)/.exec(s)?.[1] ?? /(\d+)/.exec(s)?.[1] ?? null;
}

// ---------------------------------------------------------------------------------------------
// From a tree

async function homes(root: InventoryRoot): Promise<string[]> {
  const out = ['/root'];
  for (const n of (await root.readdir('/home')) ?? []) out.push(`/home/${n}`);
  return out;
}

async function treeToolchains(root: InventoryRoot, packages: InventoryPackage[]): Promise<InventoryToolchain[]> {
  const out: InventoryToolchain[] = [];
  const add = (name: string, version: string | null | undefined, p?: string) => {
    if (version && !out.some((t) => t.name === name && t.version === version)) out.push({ name, version, ...(p ? { path: p } : {}) });
  };
  const text = async (p: string) => (await root.readFile(p))?.toString('utf8') ?? null;

  for (const prefix of ['/usr', '/usr/local']) {
    const h = await text(`${prefix}/include/node/node_version.h`);
    if (h) {
      const g = (k: string) => new RegExp(`#define\\s+NODE_${k}_VERSION\\s+(\\d+)`).exec(h)?.[1];
      if (g('MAJOR')) add('node', `${g('MAJOR')}.${g('MINOR')}.${g('PATCH')}`, `${prefix}/bin/node`);
    }
    for (const npmDir of [`${prefix}/lib/node_modules/npm`, `${prefix}/share/nodejs/npm`]) {
      const pj = await text(`${npmDir}/package.json`);
      if (pj) {
        try {
          add('npm', JSON.parse(pj).version, `${npmDir}`);
        } catch { /* not JSON */ }
      }
    }
    for (const n of ((await root.readdir(`${prefix}/lib`)) ?? []).filter((x) => /^python3\.\d+$/.test(x))) add('python', n.slice(6), `${prefix}/bin/${n}`);
    for (const d of [`${prefix}/lib/python3/dist-packages`, `${prefix}/lib/python3/site-packages`]) {
      for (const n of (await root.readdir(d)) ?? []) {
        const m = /^pip-([\d.]+)\.(dist|egg)-info$/.exec(n);
        if (m) add('pip', m[1], `${d}/${n}`);
      }
    }
    for (const gcc of ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'x86_64-redhat-linux', 'x86_64-pc-linux-gnu']) {
      for (const n of (await root.readdir(`${prefix}/lib/gcc/${gcc}`)) ?? []) if (/^\d+(\.\d+)*$/.test(n)) add('gcc', n, `${prefix}/lib/gcc/${gcc}/${n}`);
    }
    for (const nd of ((await root.readdir(`${prefix}/share/dotnet/shared/Microsoft.NETCore.App`)) ?? [])) add('dotnet', nd, `${prefix}/share/dotnet`);
  }
  for (const goRoot of ['/usr/local/go', ...(((await root.readdir('/usr/lib')) ?? []).filter((n) => /^go-\d/.test(n)).map((n) => `/usr/lib/${n}`))]) {
    const v = await text(`${goRoot}/VERSION`);
    if (v) add('go', v.split('\n')[0].trim().replace(/^go/, ''), `${goRoot}/bin/go`);
  }
  for (const n of ((await root.readdir('/usr/lib')) ?? []).filter((x) => /^llvm-\d+$/.test(x))) add('clang', n.slice(5), `/usr/lib/${n}`);
  for (const n of (await root.readdir('/usr/lib/jvm')) ?? []) {
    const rel = await text(`/usr/lib/jvm/${n}/release`);
    const v = rel ? /JAVA_VERSION="([^"]+)"/.exec(rel)?.[1] : /^(?:java-)?(\d+)/.exec(n)?.[1];
    if (v) add('java', v, `/usr/lib/jvm/${n}`);
  }
  for (const h of await homes(root)) {
    for (const n of (await root.readdir(`${h}/.rustup/toolchains`)) ?? []) {
      const man = await text(`${h}/.rustup/toolchains/${n}/lib/rustlib/multirust-channel-manifest.toml`);
      const v = man ? /\[pkg\.rustc\][^[]*?version\s*=\s*"([^" ]+)/.exec(man)?.[1] : null;
      add('rustc', v ?? n, `${h}/.rustup/toolchains/${n}`);
      if (man) add('cargo', /\[pkg\.cargo\][^[]*?version\s*=\s*"([^" ]+)/.exec(man)?.[1], `${h}/.rustup/toolchains/${n}`);
    }
    for (const n of (await root.readdir(`${h}/.nvm/versions/node`)) ?? []) add('node', n.replace(/^v/, ''), `${h}/.nvm/versions/node/${n}`);
  }
  // From the package list where the files say nothing
  const pkg = (names: string[]) => packages.find((p) => names.includes(p.name));
  const fromPkg: [string, string[]][] = [
    ['git', ['git']],
    ['docker', ['docker-ce', 'docker.io', 'docker', 'moby-engine']],
    ['node', ['nodejs']],
    ['python', ['python3']],
    ['go', ['golang-go', 'go']],
    ['rustc', ['rustc', 'rust']],
    ['cargo', ['cargo']],
    ['gcc', ['gcc']],
    ['clang', ['clang']],
    ['java', ['default-jdk', 'default-jre', 'openjdk-17-jdk', 'openjdk-21-jdk', 'jdk-openjdk']],
    ['dotnet', ['dotnet-sdk-8.0', 'dotnet-runtime-8.0', 'dotnet8']],
  ];
  for (const [name, names] of fromPkg) {
    if (out.some((t) => t.name === name)) continue;
    const p = pkg(names);
    if (p) add(name, p.version.replace(/^\d+:/, ''), `package ${p.name}`);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || compareVersions(a.version, b.version));
}

async function treeExtensions(root: InventoryRoot): Promise<InventoryExtension[]> {
  const out: InventoryExtension[] = [];
  for (const h of await homes(root)) {
    const user = path.posix.basename(h);
    for (const sub of ['.vscode', '.vscode-server', '.vscode-oss', '.vscode-insiders']) {
      const dir = `${h}/${sub}/extensions`;
      const names = await root.readdir(dir);
      if (!names) continue;
      const list = await root.readFile(`${dir}/extensions.json`);
      let done = false;
      if (list) {
        try {
          for (const e of JSON.parse(list.toString('utf8')) as { identifier?: { id?: string }; version?: string }[]) {
            if (e.identifier?.id && e.version) out.push({ id: e.identifier.id.toLowerCase(), version: e.version, user });
          }
          done = true;
        } catch { /* fall back to the directory names */ }
      }
      if (!done) {
        for (const n of names) {
          const m = /^([\w-]+\.[\w.-]+?)-(\d+\.\d+\.\d+[\w.+-]*)$/.exec(n);
          if (m) out.push({ id: m[1].toLowerCase(), version: m[2], user });
        }
      }
    }
  }
  return dedupeExtensions(out);
}

function dedupeExtensions(list: InventoryExtension[]): InventoryExtension[] {
  const seen = new Set<string>();
  return list
    .filter((e) => {
      const k = `${e.user ?? ''}/${e.id}@${e.version}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.id.localeCompare(b.id) || (a.user ?? '').localeCompare(b.user ?? ''));
}

async function fromTree(root: InventoryRoot): Promise<Inventory> {
  const notes: string[] = [];
  const osRel = (await root.readFile('/etc/os-release')) ?? (await root.readFile('/usr/lib/os-release'));
  const os = osFrom(osRel ? parseOsRelease(osRel.toString('utf8')) : {});
  if (!osRel) notes.push('no /etc/os-release');

  const packages: InventoryPackage[] = [];
  const dpkg = await root.readFile('/var/lib/dpkg/status');
  if (dpkg) packages.push(...parseDpkgStatus(dpkg.toString('utf8')));
  for (const n of (await root.readdir('/var/lib/pacman/local')) ?? []) {
    const desc = await root.readFile(`/var/lib/pacman/local/${n}/desc`);
    const p = desc ? parsePacmanDesc(desc.toString('utf8')) : null;
    if (p) packages.push(p);
  }
  for (const db of ['/usr/lib/sysimage/rpm', '/var/lib/rpm']) {
    const names = await root.readdir(db);
    if (names?.some((n) => /^(rpmdb\.sqlite|Packages(\.db)?)$/.test(n))) {
      notes.push(`rpm database in ${db} is binary and not read from an image; rpm packages are listed only for the live system`);
      break;
    }
  }
  for (const n of (await root.readdir('/snap')) ?? []) {
    if (n === 'bin' || n === 'README') continue;
    const revs = ((await root.readdir(`/snap/${n}`)) ?? []).filter((r) => /^x?\d+$/.test(r));
    if (revs.length) packages.push({ manager: 'snap', name: n, version: `rev ${revs.sort((a, b) => Number(b.replace('x', '')) - Number(a.replace('x', '')))[0]}` });
  }
  for (const id of (await root.readdir('/var/lib/flatpak/app')) ?? []) {
    for (const arch of (await root.readdir(`/var/lib/flatpak/app/${id}`)) ?? []) {
      if (arch === 'current') continue;
      for (const branch of (await root.readdir(`/var/lib/flatpak/app/${id}/${arch}`)) ?? []) packages.push({ manager: 'flatpak', name: id, version: branch, arch });
    }
  }
  packages.sort((a, b) => a.manager.localeCompare(b.manager) || a.name.localeCompare(b.name) || (a.arch ?? '').localeCompare(b.arch ?? ''));

  const kernels = new Set<string>();
  for (const n of (await root.readdir('/boot')) ?? []) if (n.startsWith('vmlinuz-') && KERNEL_RE.test(n.slice(8))) kernels.add(n.slice(8));
  for (const d of ['/lib/modules', '/usr/lib/modules']) for (const n of (await root.readdir(d)) ?? []) if (KERNEL_RE.test(n)) kernels.add(n);
  const kernelList = [...kernels].sort(compareVersions);
  if (kernelList.length) os.kernel = kernelList[kernelList.length - 1];

  const efi = (await root.readdir('/boot/efi/EFI')) ?? [];
  return {
    version: 1,
    source: 'image',
    collectedAt: new Date().toISOString(),
    os,
    ...(kernelList.length ? { kernels: kernelList } : {}),
    ...(efi.length ? { bootMode: 'uefi' as const } : {}),
    packages,
    toolchains: await treeToolchains(root, packages),
    vscodeExtensions: await treeExtensions(root),
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// The live system

interface RunResult { ok: boolean; stdout: string; stderr: string }

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
    } catch { /* next */ }
  }
  return null;
}

async function fromLive(o: LiveOptions): Promise<Inventory> {
  const t = o.timeoutMs ?? 5000;
  const notes: string[] = [];
  const osRel = await fsp.readFile('/etc/os-release', 'utf8').catch(() => fsp.readFile('/usr/lib/os-release', 'utf8').catch(() => ''));
  const osInfo = osFrom(parseOsRelease(osRel));
  osInfo.kernel = os.release();
  const bootMode: 'uefi' | 'bios' = await fsp.access('/sys/firmware/efi').then(() => 'uefi' as const, () => 'bios' as const);

  const tasks: Promise<InventoryPackage[]>[] = [];
  const ifTool = async <T>(cmd: string, fn: (p: string) => Promise<T>, empty: T): Promise<T> => {
    const p = await which(cmd);
    return p ? fn(p) : empty;
  };
  tasks.push(ifTool('dpkg-query', async (p) => {
    const r = await run(p, ['-W', '-f', '${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\n'], t * 4);
    if (!r.ok) notes.push('dpkg-query failed or timed out');
    return r.stdout.split('\n').map((l) => l.split('\t')).filter((f) => f.length >= 3 && f[0] === 'installed').map(([, name, version, arch]) => ({ manager: 'dpkg' as const, name, version, ...(arch ? { arch } : {}) }));
  }, []));
  tasks.push(ifTool('rpm', async (p) => {
    const r = await run(p, ['-qa', '--qf', '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'], t * 4);
    return r.stdout.split('\n').map((l) => l.split('\t')).filter((f) => f.length >= 2 && f[0]).map(([name, v, arch]) => ({ manager: 'rpm' as const, name, version: v.replace(/^0:/, ''), ...(arch && arch !== '(none)' ? { arch } : {}) }));
  }, []));
  tasks.push(ifTool('pacman', async (p) => {
    const r = await run(p, ['-Q'], t * 2);
    return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 2).map(([name, version]) => ({ manager: 'pacman' as const, name, version }));
  }, []));
  tasks.push(ifTool('snap', async (p) => {
    const r = await run(p, ['list'], t);
    return r.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2 && f[0]).map(([name, version]) => ({ manager: 'snap' as const, name, version }));
  }, []));
  tasks.push(ifTool('flatpak', async (p) => {
    const r = await run(p, ['list', '--columns=application,version,arch,branch'], t);
    return r.stdout.split('\n').map((l) => l.split('\t')).filter((f) => f[0]?.trim()).map(([name, version, arch, branch]) => ({ manager: 'flatpak' as const, name: name.trim(), version: (version || branch || '').trim(), ...(arch ? { arch: arch.trim() } : {}) }));
  }, []));
  tasks.push(ifTool('brew', async (p) => {
    const r = await run(p, ['list', '--versions'], t * 2);
    return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 2).map(([name, version]) => ({ manager: 'brew' as const, name, version }));
  }, []));

  const toolTasks = LIVE_TOOLS.map(([name, cmd, args]) =>
    ifTool(cmd, async (p) => {
      const r = await run(p, args, t);
      const textOut = (r.stdout || r.stderr).split('\n')[0] ?? '';
      const v = name === 'java' ? /version "([^"]+)"/.exec(r.stderr + r.stdout)?.[1] ?? firstVersion(textOut) : firstVersion(textOut);
      return r.ok && v ? ({ name, version: v.replace(/^v/, ''), path: p } as InventoryToolchain) : null;
    }, null),
  );
  const extTask = ifTool('code', async (p) => {
    const r = await run(p, ['--list-extensions', '--show-versions'], t * 3);
    return r.stdout.split('\n').map((l) => /^(\S+)@(\S+)$/.exec(l.trim())).filter((m): m is RegExpExecArray => !!m).map((m) => ({ id: m[1].toLowerCase(), version: m[2] }));
  }, [] as InventoryExtension[]);

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

/** The inventory of a tree (a snapshot's ImageFs, a mounted directory) or of the running system ('live'). */
export async function collectInventory(root: InventoryRoot | ImageFs | 'live', opts: LiveOptions = {}): Promise<Inventory> {
  if (root === 'live') return fromLive(opts);
  if ('walk' in root) return fromTree(imageFsRoot(root));
  return fromTree(root);
}

/** 'uefi' when a snapshot's partition table has an EFI System partition, else 'bios'. */
export function bootModeFromPartitions(partitions: { type: string }[]): 'uefi' | 'bios' {
  return partitions.some((p) => p.type.toLowerCase() === 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b' || p.type.toLowerCase() === '0xef') ? 'uefi' : 'bios';
}

// ---------------------------------------------------------------------------------------------
// Differences

const direction = (from: string, to: string): VersionChange['direction'] => {
  const c = compareVersions(to, from);
  return c > 0 ? 'up' : c < 0 ? 'down' : 'same';
};

/** What changed between two inventories (either may be null: everything added / removed). */
export function diffInventory(a: Inventory | null, b: Inventory | null): InventoryDiff {
  const pkA = new Map((a?.packages ?? []).map((p) => [`${p.manager}/${p.name}/${p.arch ?? ''}`, p]));
  const pkB = new Map((b?.packages ?? []).map((p) => [`${p.manager}/${p.name}/${p.arch ?? ''}`, p]));
  const added: InventoryPackage[] = [];
  const removed: InventoryPackage[] = [];
  const upgraded: PackageChange[] = [];
  let unchanged = 0;
  for (const [k, p] of pkA) {
    const q = pkB.get(k);
    if (!q) removed.push(p);
    else if (q.version !== p.version) upgraded.push({ manager: p.manager, name: p.name, ...(p.arch ? { arch: p.arch } : {}), from: p.version, to: q.version, direction: direction(p.version, q.version) });
    else unchanged++;
  }
  for (const [k, q] of pkB) if (!pkA.has(k)) added.push(q);

  // Toolchains: by name, comparing the sorted version lists.
  const tc = (inv: Inventory | null) => {
    const m = new Map<string, string[]>();
    for (const t of inv?.toolchains ?? []) m.set(t.name, [...(m.get(t.name) ?? []), t.version]);
    return m;
  };
  const ta = tc(a);
  const tb = tc(b);
  const toolchains: InventoryDiff['toolchains'] = [];
  for (const name of [...new Set([...ta.keys(), ...tb.keys()])].sort()) {
    const x = (ta.get(name) ?? []).sort(compareVersions).join(', ') || null;
    const y = (tb.get(name) ?? []).sort(compareVersions).join(', ') || null;
    if (x !== y) toolchains.push({ name, before: x, after: y });
  }

  const exA = new Map((a?.vscodeExtensions ?? []).map((e) => [`${e.user ?? ''}/${e.id}`, e]));
  const exB = new Map((b?.vscodeExtensions ?? []).map((e) => [`${e.user ?? ''}/${e.id}`, e]));
  const ext: InventoryDiff['vscodeExtensions'] = { added: [], removed: [], upgraded: [] };
  for (const [k, e] of exA) {
    const f = exB.get(k);
    if (!f) ext.removed.push(e);
    else if (f.version !== e.version) ext.upgraded.push({ id: e.id, name: e.id, from: e.version, to: f.version, direction: direction(e.version, f.version) });
  }
  for (const [k, f] of exB) if (!exA.has(k)) ext.added.push(f);

  const osKey = (o: Inventory['os'] | undefined) => (o ? `${o.id}/${o.name}/${o.version}` : '');
  const ka = a?.os.kernel ?? null;
  const kb = b?.os.kernel ?? null;
  return {
    os: { before: a?.os ?? null, after: b?.os ?? null, changed: osKey(a?.os) !== osKey(b?.os) },
    kernel: { before: ka, after: kb, changed: ka !== kb },
    bootMode: { before: a?.bootMode ?? null, after: b?.bootMode ?? null, changed: (a?.bootMode ?? null) !== (b?.bootMode ?? null) },
    packages: { added, removed, upgraded, unchanged },
    toolchains,
    vscodeExtensions: ext,
  };
}

/** A one-paragraph human summary of an inventory diff. */
export function describeInventoryDiff(d: InventoryDiff): string {
  const lines: string[] = [];
  const osName = (o: Inventory['os'] | null) => (o ? o.prettyName ?? `${o.name} ${o.version}`.trim() : 'unknown');
  lines.push(d.os.changed ? `OS: ${osName(d.os.before)} → ${osName(d.os.after)}` : `OS: ${osName(d.os.after)} (unchanged)`);
  if (d.kernel.changed) lines.push(`Kernel: ${d.kernel.before ?? 'none'} → ${d.kernel.after ?? 'none'}`);
  else if (d.kernel.after) lines.push(`Kernel: ${d.kernel.after} (unchanged)`);
  const p = d.packages;
  lines.push(`Packages: ${p.added.length} added, ${p.removed.length} removed, ${p.upgraded.length} upgraded (${p.upgraded.filter((u) => u.direction === 'down').length} downgraded), ${p.unchanged} unchanged`);
  for (const t of d.toolchains) lines.push(`  ${t.name}: ${t.before ?? 'none'} → ${t.after ?? 'none'}`);
  const e = d.vscodeExtensions;
  if (e.added.length + e.removed.length + e.upgraded.length) lines.push(`VS Code extensions: ${e.added.length} added, ${e.removed.length} removed, ${e.upgraded.length} updated`);
  return lines.join('\n');
}
