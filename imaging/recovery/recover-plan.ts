// What `devsnap recover` proposes to a person whose computer does not boot: which snapshot onto which
// disk of this machine, and in what words. The likeliest pair is a disk of the same model and size as
// the snapshot's source (the disk it was taken of), then one of the same size, then any big enough;
// and of the snapshots, a verified one before a newer unverified one. Disks the restore cannot or must
// not overwrite are never offered: the one holding the repository, the one running this system (the
// live USB), read-only ones, and ones too small.
import { formatBytes, layoutWords } from '../core/format';
import type { DiskInfo, ListedSnapshot } from '../protocol';
import { planShrink } from '../snapshot/shrink-plan';

export interface RecoverChoice {
  snapshot: ListedSnapshot;
  disk: DiskInfo;
  /** Higher is likelier. */
  score: number;
  /** Why this pair, in words ("same model and size as the disk it was taken of"). */
  why: string;
}

export interface RecoverTargets {
  offered: DiskInfo[];
  /** Disks left out, with why. */
  refused: { disk: DiskInfo; why: string }[];
}

/** The mount points of a disk and of its partitions. */
function mountsOf(d: DiskInfo): string[] {
  return [...d.mountpoints, ...d.partitions.flatMap((p) => p.mountpoints ?? [])];
}

/**
 * The disks a restore may overwrite, and why the others are not offered: in use (mounted: the drive
 * holding the repository, the live USB's own medium), running this system, read-only or virtual.
 */
export function recoverTargets(disks: readonly DiskInfo[], repo: string): RecoverTargets {
  const offered: DiskInfo[] = [];
  const refused: RecoverTargets['refused'] = [];
  const under = (dir: string, m: string) => m === '/' || dir === m || dir.startsWith(m.endsWith('/') ? m : `${m}/`);
  for (const d of disks) {
    if (d.kind === 'file') continue;
    const mounts = mountsOf(d);
    const holdsRepo = mounts.filter((m) => under(repo, m)).sort((a, b) => b.length - a.length)[0];
    if (d.isSystem) refused.push({ disk: d, why: 'it runs the system you are using now' });
    else if (holdsRepo && holdsRepo !== '/') refused.push({ disk: d, why: `it holds the snapshots (mounted at ${holdsRepo})` });
    else if (mounts.length) refused.push({ disk: d, why: `it is in use (mounted at ${mounts.join(', ')})` });
    else if (d.readOnly) refused.push({ disk: d, why: 'it is read-only' });
    else if (d.virtual) refused.push({ disk: d, why: `it is a virtual device (${d.virtual.kind})` });
    else offered.push(d);
  }
  return { offered, refused };
}

function pairScore(s: ListedSnapshot, d: DiskInfo): { score: number; why: string } | null {
  if (d.size < s.source.size) {
    // A smaller disk, when the snapshot's filesystems can shrink onto it (the restore says how).
    try {
      planShrink(s.partitions, s.source.table, d.size);
    } catch {
      return null;
    }
    return { score: 0, why: `smaller than the disk it was taken of (${formatBytes(s.source.size)}): its filesystems will be shrunk to fit` };
  }
  const sameModel = !!s.source.model && !!d.model && s.source.model.trim() === d.model.trim();
  const sameSize = d.size === s.source.size;
  if (sameModel && sameSize) return { score: 3, why: 'same model and size as the disk it was taken of' };
  if (sameSize) return { score: 2, why: 'same size as the disk it was taken of' };
  return { score: 1, why: `larger than the disk it was taken of (${formatBytes(s.source.size)})` };
}

/**
 * Every (snapshot, disk) pair a restore can do, likeliest first: the best disk match, then verified
 * before not verified, then newer before older. Damaged snapshots are left out.
 */
export function recoverChoices(snapshots: readonly ListedSnapshot[], targets: readonly DiskInfo[]): RecoverChoice[] {
  const out: RecoverChoice[] = [];
  for (const s of snapshots) {
    if (s.state === 'damaged') continue;
    for (const d of targets) {
      const p = pairScore(s, d);
      if (p) out.push({ snapshot: s, disk: d, score: p.score * 2 + (s.state === 'verified' ? 1 : 0), why: p.why });
    }
  }
  return out.sort((a, b) => b.score - a.score || b.snapshot.created.localeCompare(a.snapshot.created));
}

/** "nvme0n1 · Samsung SSD 980 · 512 GB · GPT, 3 partitions" */
export function diskLine(d: DiskInfo): string {
  return [d.path, d.model, formatBytes(d.size), layoutWords(d.table, d.partitions.length)].filter(Boolean).join(' · ');
}

/** "before upgrade · 2026-11-27 14:03 · verified · of /dev/nvme0n1 (512 GB)" */
export function snapshotLine(s: ListedSnapshot): string {
  const when = s.created.slice(0, 16).replace('T', ' ');
  const state = s.state === 'verified' ? 'verified' : 'not verified yet';
  return `${s.label || '(no label)'} · ${when} · ${state} · of ${s.source.path} (${formatBytes(s.source.size)}${s.source.model ? `, ${s.source.model}` : ''})`;
}

/** What restoring onto `d` destroys, one line per partition (its filesystem, label and size). */
export function overwriteLines(d: DiskInfo): string[] {
  if (!d.partitions.length) return [`  everything on ${d.path} (${formatBytes(d.size)}; no partitions found on it)`];
  return d.partitions.map((p) => {
    const what = [p.fs ?? 'unknown contents', p.label ? `"${p.label}"` : '', p.usedBytes !== undefined ? `${formatBytes(p.usedBytes)} used` : ''].filter(Boolean).join(' ');
    return `  partition ${p.index}: ${what}, ${formatBytes(p.size)}`;
  });
}

const ESP_TYPE = 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b';

/** What to do once the disk is restored. */
export function nextSteps(s: ListedSnapshot, disk: string): string[] {
  const esp = s.partitions.find((p) => p.type.toLowerCase() === ESP_TYPE || p.type.toLowerCase() === 'ef' || (p.fs === 'vfat' && /efi|esp/i.test(p.label ?? '')));
  return [
    'What to do now:',
    '  1. Shut down, remove the live USB stick, and start the computer.',
    `  2. If it does not start from ${disk}: open the firmware's boot menu (often F12, F8, F11 or Esc at power-on) and choose that disk${esp ? ', or its "Linux Boot Manager", "ubuntu" or "debian" entry' : ''}.`,
    ...(esp
      ? [
          '  3. If the firmware has no entry for it (a new disk, or a reset firmware), add one from this live system:',
          `       sudo efibootmgr --create --disk ${disk} --part ${esp.index} --label Linux --loader '\\EFI\\BOOT\\BOOTX64.EFI'`,
          "     with your boot loader's path on that partition (e.g. \\EFI\\ubuntu\\shimx64.efi for Ubuntu).",
        ]
      : []),
  ];
}
