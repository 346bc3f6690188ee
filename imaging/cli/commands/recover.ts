// `devsnap recover`: the guided restore of the recovery kit, for a person whose computer does not
// boot. It finds the repository (the folder holding the kit), lists this machine's disks and the
// snapshots, proposes the likeliest pair (imaging/recovery/recover-plan.ts), shows what will be
// overwritten, writes nothing until the disk's name is typed, restores with progress, compares the
// disk with the snapshot, and says what to do next. The questions are @inquirer/prompts (on stderr,
// so --json keeps stdout clean); every answer can also be given as an option, for scripts.
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError } from '../../core/errors';
import { formatBytes } from '../../core/format';
import * as ops from '../../ops/operations';
import type { DiskInfo, ListedSnapshot, RepoRequest } from '../../protocol';
import { nextSteps, overwriteLines, recoverChoices, recoverTargets, snapshotLine, diskLine } from '../../recovery/recover-plan';
import type { CommandContext, GlobalOpts } from '../context';

const PROMPT = { output: process.stderr };
/** The prompts library (~60 ms to load), loaded only by this command: every other devsnap starts without it. */
const prompts = () => import('@inquirer/prompts');

/** The repository: --repo, $DEVSNAP_REPO, or the folder that holds the kit this devsnap runs from. */
function findRepository(ctx: CommandContext, g: GlobalOpts): string {
  if (g.repo || process.env.DEVSNAP_REPO) return ctx.repoDir(g);
  const kitParent = path.dirname(path.dirname(fs.realpathSync(process.argv[1] ?? '.')));
  if (fs.existsSync(path.join(kitParent, 'config.json'))) return kitParent;
  throw new DevsnapError('USAGE', 'Which repository? This devsnap does not run from a recovery kit inside one.', 'Pass --repo with the folder that holds the snapshots (it has a config.json).');
}

async function listWithPassword(ctx: CommandContext, g: GlobalOpts, repo: string, interactive: boolean): Promise<{ req: RepoRequest; snapshots: ListedSnapshot[] }> {
  let pw = ctx.password(g);
  for (let tries = 0; ; tries++) {
    const req: RepoRequest = { repo, ...(pw !== undefined ? { password: pw } : {}) };
    try {
      const r = await ops.listOp(req, ctx.opContext(g, false));
      for (const d of r.damaged) ctx.log(`Snapshot ${d.id} is damaged and is not offered: ${d.message}`);
      return { req, snapshots: r.snapshots };
    } catch (err) {
      if (!(err instanceof DevsnapError) || err.code !== 'BAD_PASSWORD' || !interactive || tries >= 3) throw err;
      if (tries) process.stderr.write('That password does not open the repository.\n');
      pw = await (await prompts()).password({ message: `Password of the repository ${repo}:`, mask: '*' }, PROMPT);
    }
  }
}

export function register(program: Command, ctx: CommandContext): void {
  program
    .command('recover')
    .description('guided restore for a computer that does not boot: proposes the disk and the snapshot, restores once you type the disk name, checks it')
    .option('--snapshot <id>', 'the snapshot to restore (default: asked, the likeliest proposed)')
    .option('--disk <device>', 'the disk to overwrite (default: asked, the likeliest proposed)')
    .option('--confirm <device>', 'the disk name, as it would be typed to confirm (needed without a terminal)')
    .option('--include-virtual', 'also offer loop devices and RAM disks')
    .action(async (o, cmd) => {
      const g = ctx.globals(cmd);
      const interactive = !!process.stdin.isTTY && !!process.stderr.isTTY && !g.json;
      const say = (line = '') => process.stderr.write(`${line}\n`);
      const repo = findRepository(ctx, g);
      say(`Repository: ${repo}`);
      const { req, snapshots } = await listWithPassword(ctx, g, repo, interactive);
      if (!snapshots.length)
        throw new DevsnapError('NOT_FOUND', `The repository ${repo} holds no snapshot that can be restored.`, 'Check that this is the right drive and folder (devsnap list --repo DIR).');

      const disks = (await ops.disksOp()).disks.map((d) => (o.includeVirtual && d.virtual ? { ...d, virtual: undefined } : d));
      const { offered, refused } = recoverTargets(disks, repo);
      for (const r of refused) say(`Not offered: ${diskLine(r.disk)}: ${r.why}.`);
      if (!offered.length)
        throw new DevsnapError('BAD_TARGET', 'This computer has no disk a snapshot can be restored onto.', 'Connect the disk to restore onto; unmount it if it is mounted (sudo umount /dev/sdX1).');

      // The snapshot, then the disk: proposed, asked when not given.
      const named = o.snapshot ? snapshots.filter((s) => s.id.startsWith(o.snapshot) || s.label === o.snapshot || (o.snapshot === 'latest' && s === snapshots[snapshots.length - 1])) : snapshots;
      if (o.snapshot && named.length !== 1)
        throw new DevsnapError('NOT_FOUND', `"${o.snapshot}" names ${named.length ? `${named.length} snapshots` : 'no snapshot'} in ${repo}.`, 'Give its id (devsnap list shows them).');
      const targets = o.disk ? offered.filter((d) => d.path === o.disk) : offered;
      if (o.disk && !targets.length) {
        const why = refused.find((r) => r.disk.path === o.disk)?.why;
        throw new DevsnapError('BAD_TARGET', `${o.disk} ${why ? `is not offered: ${why}` : 'is not a disk of this computer'}.`, 'Run devsnap recover without --disk to see the disks it offers.');
      }
      const choices = recoverChoices(named, targets);
      if (!choices.length) throw new DevsnapError('BAD_TARGET', 'No disk here is large enough for the snapshot(s).', 'Connect a disk at least as large as the one the snapshot was taken of.');
      const best = choices[0];
      say('');
      say(`Proposed: snapshot "${best.snapshot.label}" onto ${best.disk.path} (${best.why}).`);

      let snapshot: ListedSnapshot = best.snapshot;
      let disk: DiskInfo = best.disk;
      if (interactive && !o.snapshot && named.length > 1) {
        const bySnap = [...new Map(choices.map((c) => [c.snapshot.id, c.snapshot])).values()];
        snapshot = await (await prompts()).select({ message: 'Which snapshot?', default: best.snapshot, choices: bySnap.map((s) => ({ name: snapshotLine(s), value: s })) }, PROMPT);
      }
      const fit = choices.filter((c) => c.snapshot.id === snapshot.id);
      disk = fit[0].disk;
      if (interactive && !o.disk && fit.length > 1) {
        disk = await (
          await prompts()
        ).select(
          { message: 'Restore it onto which disk? (everything on it is replaced)', default: disk, choices: fit.map((c) => ({ name: `${diskLine(c.disk)}  (${c.why})`, value: c.disk })) },
          PROMPT,
        );
      }

      say('');
      say(`This replaces everything on ${disk.path} (${diskLine(disk)}):`);
      for (const l of overwriteLines(disk)) say(l);
      say(`with the snapshot ${snapshotLine(snapshot)}.`);
      say('');
      const typed = o.confirm ?? (interactive ? await (await prompts()).input({ message: `Type ${disk.path} to overwrite it (anything else stops here):` }, PROMPT) : undefined);
      if (typed === undefined) throw new DevsnapError('USAGE', `Restoring overwrites ${disk.path}.`, `Pass --confirm ${disk.path} to confirm without a terminal.`);
      if (typed.trim() !== disk.path) throw new DevsnapError('CANCELLED', `"${typed.trim()}" is not ${disk.path}: nothing was written.`);

      const restored = await ops.restoreOp({ ...req, snapshot: snapshot.id, target: disk.path }, ctx.opContext(g));
      ctx.stopProgress();
      const steps = nextSteps(snapshot, disk.path);
      if (restored.resized) {
        // Moved and shrunk partitions cannot be compared block by block with the snapshot.
        say(`Restored ${formatBytes(restored.bytesWritten)} onto ${disk.path}, its partitions fitted to the smaller disk.`);
        ctx.report(g, { ok: true, snapshot: snapshot.id, disk: disk.path, bytesWritten: restored.bytesWritten, verified: false, resized: restored.resized, next: steps }, () =>
          [
            `Done: ${disk.path} holds the snapshot "${snapshot.label}", fitted to the smaller disk. Every chunk was checked as it was written and each shrunk filesystem by its own tool; a smaller disk cannot be compared block by block with the snapshot.`,
            '',
            ...steps,
          ].join('\n'),
        );
        return;
      }
      say(`Restored ${formatBytes(restored.bytesWritten)} onto ${disk.path}. Comparing the disk with the snapshot…`);
      const verified = await ops.verifyOp({ ...req, snapshot: snapshot.id, against: disk.path }, ctx.opContext(g));
      ctx.stopProgress();
      const bad = verified.snapshots.find((s) => !s.ok);
      if (bad)
        throw new DevsnapError(
          'DAMAGED',
          `The snapshot's data in the repository is damaged: ${bad.error ?? bad.damage[0]?.message ?? 'a check failed'}.`,
          'Restore an older snapshot (devsnap recover asks which).',
        );
      const cmp = verified.disk;
      if (!cmp || !cmp.equal)
        throw new DevsnapError(
          'DAMAGED',
          `${disk.path} does not read back as the snapshot${cmp ? `: ${formatBytes(cmp.differingBytes)} differ` : ''}.`,
          'Run devsnap recover again; if it differs again, the disk may be failing.',
        );
      ctx.report(g, { ok: true, snapshot: snapshot.id, disk: disk.path, bytesWritten: restored.bytesWritten, verified: true, bytesCompared: cmp.bytesCompared, next: steps }, () =>
        [`Done: ${disk.path} holds the snapshot "${snapshot.label}", and reads back as it.`, '', ...steps].join('\n'),
      );
    });
}
