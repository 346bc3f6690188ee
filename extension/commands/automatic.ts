// Automatic snapshots from the extension (README "Snapshots that happen on their own"): Set Up
// Automatic Snapshots… (the disk, the schedule, the package managers' hooks, the retention, then a
// modal naming every file it writes as root) installs them through the engine's autoInstall, which
// the router sends to the elevated helper for '/' (one password prompt); Remove Automatic
// Snapshots; the "Next run" of the status bar and the view's summary from autoStatus. An arguments
// object skips the prompts and the modal (tests pass a temporary `root`, so the real /etc is never touched).
import * as vscode from 'vscode';
import type { AutoConfig, AutoStatus, Manager } from '../../imaging/protocol';
import type { NextRun } from '../glanceModel';
import { stepPick, withSteps } from '../stepInput';
import { runSteps } from '../steps';
import * as ui from '../ui';
import { CommandContext } from './common';

export type Schedule = 'daily' | 'weekly' | 'hourly' | 'off';
export interface AutomaticArgs {
  source?: string;
  schedule?: Schedule;
  hooks?: Manager[];
  keepDaily?: number;
  keepWeekly?: number;
  verifyEveryDays?: number;
  /** Where to install ('/' by default; a temporary folder in tests). */
  root?: string;
}

const TITLE = 'devsnap: Set Up Automatic Snapshots';
const ENGINE = '/usr/local/lib/devsnap';

/** The files autoInstall writes below root for a config (the consent modal names them all). */
export function filesWritten(cfg: AutoConfig, root: string): string[] {
  const r = (p: string) => (root === '/' ? p : `${root}${p}`);
  const hooks: Record<Manager, string> = {
    apt: '/etc/apt/apt.conf.d/05devsnap-snapshot',
    pacman: '/etc/pacman.d/hooks/05-devsnap-snapshot.hook',
    dnf: '/etc/dnf/plugins/pre-transaction-actions.d/devsnap-snapshot.action',
  };
  return [
    `${ENGINE}/ (a copy of devsnap: devsnap.js, compress-worker.js, the devsnap command, install.json)`,
    '/etc/devsnap/auto.json',
    ...(cfg.schedule ? ['/etc/systemd/system/devsnap-snapshot.service', '/etc/systemd/system/devsnap-snapshot.timer'] : []),
    ...(cfg.hooks ?? []).map((m) => hooks[m]),
  ].map(r);
}

async function status(ctx: CommandContext, root = '/'): Promise<AutoStatus | undefined> {
  try {
    return await ctx.engine().call('autoStatus', { root });
  } catch (err) {
    ctx.log(`Automatic snapshots: could not read their status: ${(err as Error).message}`, 'warn');
    return undefined;
  }
}

/** What the user chose, step by step (or the arguments). */
async function choose(ctx: CommandContext, args: AutomaticArgs | undefined, st: AutoStatus | undefined): Promise<AutoConfig | undefined> {
  const cur = st?.settings ?? undefined;
  let source = args?.source ?? cur?.source ?? ctx.config().defaultSource;
  let schedule: Schedule = args?.schedule ?? ((cur ? (cur.schedule ?? 'off') : 'daily') as Schedule);
  const found = st?.managers ?? [];
  let hooks: Manager[] = args?.hooks ?? cur?.hooks ?? found;
  let keep = { keepDaily: args?.keepDaily ?? cur?.retention?.keepDaily ?? 7, keepWeekly: args?.keepWeekly ?? cur?.retention?.keepWeekly ?? 4 };
  if (!args) {
    const disks = ctx
      .engine()
      .listDisks()
      .then((ds) =>
        ds.filter((d) => !d.virtual || d.path === source).map((d) => ({ label: d.path, description: [d.isSystem ? 'the running system' : '', d.model].filter(Boolean).join(' · '), path: d.path })),
      );
    const total = 4;
    const r = await withSteps(() =>
      runSteps(async (n) => {
        source = (await stepPick(disks, { title: TITLE, placeholder: 'Which disk?', n, total })).path;
        return async (n2) => {
          const items: (vscode.QuickPickItem & { s: Schedule })[] = [
            { label: 'Daily', description: 'recommended; a missed run happens at the next boot', s: 'daily' },
            { label: 'Weekly', s: 'weekly' },
            { label: 'Hourly', s: 'hourly' },
            { label: 'Off', description: 'only before package upgrades', s: 'off' },
          ];
          schedule = (await stepPick(items, { title: TITLE, placeholder: 'How often?', n: n2, total })).s;
          return async (n3) => {
            const h = [
              ...(found.length ? [{ label: `Before ${found.join(', ')} upgrades`, description: 'at most one every 6 hours', h: found }] : []),
              { label: 'Not before package upgrades', h: [] as Manager[] },
            ];
            hooks = (await stepPick(h, { title: TITLE, placeholder: found.length ? 'Also before package upgrades?' : 'No package manager devsnap hooks into was found', n: n3, total })).h;
            return async (n4) => {
              const k = [
                { label: 'Keep 7 daily and 4 weekly', description: 'recommended', keep: { keepDaily: 7, keepWeekly: 4 } },
                { label: 'Keep 14 daily and 8 weekly', keep: { keepDaily: 14, keepWeekly: 8 } },
                { label: 'Keep 24 hourly, 7 daily and 4 weekly', keep: { keepDaily: 7, keepWeekly: 4, keepLast: 24 } },
              ];
              keep = (await stepPick(k, { title: TITLE, placeholder: 'Which automatic snapshots to keep? (your own are never removed)', n: n4, total })).keep;
            };
          };
        };
      }),
    );
    if (r === 'cancelled') return undefined;
  }
  const repository = ctx.config().repository;
  if (!repository || !source) {
    void ui.warn(`Automatic snapshots need ${repository ? 'a disk' : 'a repository'}: ${repository ? 'set the Default Source setting' : 'choose a repository first'}.`);
    return undefined;
  }
  return {
    repository,
    source,
    ...(schedule !== 'off' ? { schedule } : {}),
    hooks,
    retention: keep,
    ...(cur?.rateLimitHours !== undefined ? { rateLimitHours: cur.rateLimitHours } : {}),
    ...((args?.verifyEveryDays ?? cur?.verifyEveryDays) ? { verifyEveryDays: args?.verifyEveryDays ?? cur?.verifyEveryDays } : {}),
  };
}

export async function setUpAutomatic(ctx: CommandContext, args?: AutomaticArgs): Promise<AutoStatus | undefined> {
  const root = args?.root ?? '/';
  const cfg = await choose(ctx, args, await status(ctx, root));
  if (!cfg) return undefined;
  const files = filesWritten(cfg, root);
  const what = `${cfg.schedule ? `A snapshot of ${cfg.source} ${cfg.schedule}` : `Snapshots of ${cfg.source}`}${cfg.hooks?.length ? `${cfg.schedule ? ' and' : ''} before ${cfg.hooks.join(', ')} upgrades` : ''}, into ${cfg.repository}, without VS Code running.`;
  const detail = `${what} devsnap installs this as root (your password is asked once) and writes:\n${files.map((f) => `• ${f}`).join('\n')}\nRemove Automatic Snapshots removes them.`;
  if (!args && (await ui.ask('Set up automatic snapshots?', detail, ['Install'])) !== 'Install') return undefined;
  ctx.log(`Automatic snapshots: installing below ${root}: ${files.join(', ')}`);
  const r = await ctx.engine().call('autoInstall', { root, config: cfg });
  for (const n of r.notes) ctx.log(`Automatic snapshots: ${n}`, 'warn');
  ctx.log(`Automatic snapshots installed: ${r.written.join(', ')}`);
  const st = await refreshNextRun(ctx, root);
  void ui.info(`Automatic snapshots are set up: ${what} Next run: ${describeNextRun(st).text}.`);
  return st;
}

export async function removeAutomatic(ctx: CommandContext, args?: { root?: string }): Promise<boolean> {
  const root = args?.root ?? '/';
  if (!args) {
    const ok = await ui.confirmDestructive(
      'Remove automatic snapshots?',
      "The timer and the package managers' hooks are removed (as root), and the copy of devsnap they ran. Snapshots already taken stay.",
      'Remove',
    );
    if (ok !== 'Remove') return false;
  }
  const r = await ctx.engine().call('autoRemove', { root });
  ctx.log(`Automatic snapshots removed: ${r.removed.join(', ') || 'nothing was installed'}`);
  await refreshNextRun(ctx, root);
  void ui.info(r.removed.length ? 'Automatic snapshots are removed.' : 'Automatic snapshots were not set up.');
  return true;
}

/** The timer's next run (systemctl), else why there is none. */
export function describeNextRun(st: AutoStatus | undefined): NextRun & { text: string } {
  const s = st?.settings;
  // Removed (not purged): the configuration stays, but nothing it calls for is installed.
  const installed = !!st?.files.some((f) => f.installed);
  if (!s || (!s.schedule && !s.hooks?.length) || !installed) return { text: 'not scheduled' };
  const before = s.hooks?.length ? `before ${s.hooks.join(', ')} upgrades` : '';
  if (!s.schedule) return { text: before };
  const at = st?.timer?.nextRun ? new Date(st.timer.nextRun) : undefined;
  if (at && !isNaN(at.getTime())) return { at, text: at.toLocaleString() };
  return { text: `${s.schedule}, not scheduled (systemd not running)` };
}

let lastStatus: AutoStatus | undefined;
let onChange: (() => void) | undefined;
/** For the glance: the last status read. */
export const nextRun = (): NextRun | undefined => (lastStatus ? describeNextRun(lastStatus) : undefined);
export const onNextRunChange = (fn: () => void) => (onChange = fn);

export async function refreshNextRun(ctx: CommandContext, root = '/'): Promise<AutoStatus | undefined> {
  lastStatus = await status(ctx, root);
  onChange?.();
  return lastStatus;
}
