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
import type { ImageFs } from '../filesystems/image-fs/types';
import type { InventoryPackage, InventoryToolchain, InventoryExtension, Inventory, VersionChange, PackageChange, InventoryDiff } from '../protocol';
import { fromLive, type LiveOptions } from './live';
import { imageFsRoot, type InventoryRoot } from './roots';
import { fromTree } from './tree';
export type { InventoryPackage, InventoryToolchain, InventoryExtension, Inventory, VersionChange, PackageChange, InventoryDiff };

// What moved to the modules above stays importable from here.
export { imageFsRoot, directoryRoot, type InventoryRoot } from './roots';
export { parseOsRelease, parseDpkgStatus, parsePacmanDesc, compareVersions } from './parsers';
export type { LiveOptions } from './live';
export { diffInventory, describeInventoryDiff } from './diff';

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
