// The inventory of a filesystem tree (a snapshot's root, a mounted directory): read from package
// databases and well-known paths, since nothing can be run from an image (inventory.ts says what).
import * as path from 'path';
import type { Inventory, InventoryExtension, InventoryPackage } from '../protocol';
import { compareVersions, KERNEL_RE, osFrom, parseDpkgStatus, parseOsRelease, parsePacmanDesc } from './parsers';
import { homes, type InventoryRoot } from './roots';
import { treeToolchains } from './toolchains';

export async function treeExtensions(root: InventoryRoot): Promise<InventoryExtension[]> {
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
        } catch {
          /* fall back to the directory names */
        }
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

export function dedupeExtensions(list: InventoryExtension[]): InventoryExtension[] {
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

export async function fromTree(root: InventoryRoot): Promise<Inventory> {
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
