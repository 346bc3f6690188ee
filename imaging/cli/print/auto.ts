// What `devsnap auto install|remove|status|run` and `devsnap hook pre-upgrade` print without --json.
import { type AutoConfig, DEFAULT_HOOK_TIMEOUT_MINUTES, DEFAULT_RATE_LIMIT_HOURS } from '../../automation/config';
import type { CommandRun, InstallResult, PlannedFile, RemoveResult, AutoStatus } from '../../automation/install';
import type { AutoRunResult } from '../../automation/run';
import { oneLine } from '../output';

const commandLines = (runs: CommandRun[]) =>
  runs.map((r) => `${r.ok ? 'Ran' : r.optional ? 'Ran (nothing to do)' : 'Failed'}: ${r.command.join(' ')}${!r.ok && r.output ? `\n  ${oneLine(r.output)}` : ''}`);

export function describeConfig(c: AutoConfig): string[] {
  const keep = c.retention
    ? Object.entries(c.retention)
        .filter(([k, n]) => k !== 'prune' && n)
        .map(([k, n]) => `${k.replace('keep', '').toLowerCase()} ${n}`)
        .join(', ')
    : '';
  return [
    `  ${c.source} into ${c.repository}`,
    `  schedule: ${c.schedule ?? 'none'}`,
    `  before package changes: ${c.hooks?.length ? c.hooks.join(', ') : 'none'}${c.hooks?.length ? ` (at most one snapshot every ${c.rateLimitHours ?? DEFAULT_RATE_LIMIT_HOURS} hours, stopped after ${c.hookTimeoutMinutes ?? DEFAULT_HOOK_TIMEOUT_MINUTES} minutes)` : ''}`,
    `  retention of automatic snapshots: ${keep ? `keep ${keep}${c.retention!.prune === false ? ', no prune' : ''}` : 'none (they are kept)'}`,
    ...(c.verifyEveryDays ? [`  verify the newest snapshot every ${c.verifyEveryDays} days`] : []),
  ];
}

export function installText(r: InstallResult, cfg: AutoConfig): string {
  return ['Automatic snapshots installed:', ...describeConfig(cfg), ...r.written.map((f) => `Wrote ${f}`), ...r.removed.map((f) => `Removed ${f}`), ...commandLines(r.commands), ...r.notes].join('\n');
}

export function dryRunText(cfg: AutoConfig, configFile: string, files: PlannedFile[]): string {
  return [`Would write ${configFile}:`, ...describeConfig(cfg), ...files.flatMap((f) => ['', `Would write ${f.path} (${f.what}):`, f.text.trimEnd()])].join('\n');
}

export const removeText = (r: RemoveResult) =>
  [...(r.removed.length ? r.removed.map((f) => `Removed ${f}`) : ['Nothing of automatic snapshots was installed.']), ...commandLines(r.commands)].join('\n');

export function statusText(s: AutoStatus): string {
  const lines = [`Configuration ${s.config}: ${s.problem ? `not valid: ${s.problem.message}` : s.settings ? '' : 'none (`devsnap auto install` writes it)'}`.trimEnd()];
  if (s.settings) lines.push(...describeConfig(s.settings));
  for (const f of s.files) lines.push(`${f.installed ? (f.current ? 'installed' : 'outdated ') : 'missing  '} ${f.path} (${f.what})`);
  for (const f of s.leftovers) lines.push(`left over ${f}`);
  if (s.engine)
    lines.push(
      `${s.engine.outdated ? 'outdated ' : 'installed'} ${s.engine.command} (devsnap ${s.engine.version}${s.engine.outdated ? `; this is ${s.engine.running}` : ''}, run by ${s.engine.node})`,
    );
  if (s.files.some((f) => !f.current) || s.leftovers.length || s.engine?.outdated) lines.push('Run `devsnap auto install` to bring them up to date.');
  if (s.timer) lines.push(`timer: ${s.timer.active}${s.timer.nextRun ? `, next ${s.timer.nextRun}` : ''}${s.timer.lastRun ? `, last ${s.timer.lastRun}` : ''}`);
  const st = s.state;
  if (st.lastSnapshot) lines.push(`last automatic snapshot: ${st.lastSnapshot.id} "${oneLine(st.lastSnapshot.label)}" at ${st.lastSnapshot.at}`);
  if (st.lastVerify)
    lines.push(`last periodic verify: ${st.lastVerify.ok ? 'intact' : 'DAMAGED'} ${st.lastVerify.id} at ${st.lastVerify.at}${st.lastVerify.message ? `: ${oneLine(st.lastVerify.message)}` : ''}`);
  if (st.lastRun) lines.push(`last run: ${st.lastRun.outcome} (${st.lastRun.trigger}) at ${st.lastRun.at}${st.lastRun.message ? `: ${oneLine(st.lastRun.message)}` : ''}`);
  return lines.join('\n');
}

export function runText(r: AutoRunResult): string {
  if (r.outcome === 'skipped') return `No snapshot "${oneLine(r.label)}": ${r.reason}.`;
  return [
    `Snapshot ${r.snapshot!.id} "${oneLine(r.snapshot!.label)}" taken.`,
    ...(r.forgotten?.length ? [`Retention removed ${r.forgotten.length} automatic snapshot(s): ${r.forgotten.join(', ')}.`] : []),
    ...(r.retentionError ? [`Retention failed: ${r.retentionError.message}${r.retentionError.hint ? ` ${r.retentionError.hint}` : ''}`] : []),
    ...(r.verified ? [`Verified ${r.verified.id}: ${r.verified.chunksChecked} chunks intact (verifyEveryDays).`] : []),
  ].join('\n');
}
