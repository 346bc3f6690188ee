// Installing, removing and reporting automatic snapshots: the config, the scheduler's files (systemd
// on Linux, launchd on macOS; Windows' scheduled task is created by schtasks) and the package
// managers' hooks. Everything goes below `root` (AutoPaths): the system's services are started or
// stopped only when root is '/' and the system's own scheduler runs here.
import { execFile } from 'child_process';
import * as fs from 'fs';
import { toDevsnapError } from '../core/errors';
import { type AutoConfig, type AutoPaths, LAUNCHD_LABEL, MANAGERS, readConfig, TIMER_NAME, writeConfig, writePublicFile } from './config';
import { hookFile } from './hooks';
import { launchdPlist, schtasksCreate, schtasksDelete } from './platforms';
import { readState } from './run';
import { installedEngine, removeEngine } from './engine-copy';
import type { AutoStatus, CommandRun, InstallResult, RemoveResult } from '../protocol';
import { type DevsnapCommand, systemdService, systemdTimer } from './units';

export interface PlannedFile {
  path: string;
  /** What it is, in words. */
  what: string;
  text: string;
}

/** What `install` writes for a config (the config itself aside). */
export function plannedFiles(cfg: AutoConfig, paths: AutoPaths, command: DevsnapCommand, platform: NodeJS.Platform = process.platform): PlannedFile[] {
  const files: PlannedFile[] = [];
  if (cfg.schedule && platform === 'linux') {
    files.push({ path: paths.service, what: 'systemd service (the snapshot)', text: systemdService(command, paths.config, cfg) });
    files.push({ path: paths.timer, what: `systemd timer (${cfg.schedule})`, text: systemdTimer(cfg.schedule) });
  }
  if (cfg.schedule && platform === 'darwin') files.push({ path: paths.launchd, what: `launchd daemon (${cfg.schedule})`, text: launchdPlist(command, paths.config, cfg.schedule) });
  for (const m of cfg.hooks ?? []) files.push({ path: paths[m], what: `${m} hook`, text: hookFile(m, command, paths.config) });
  return files;
}

/** Every file `install` may have written (the config and state aside). */
export const installedPaths = (p: AutoPaths) => [p.service, p.timer, p.launchd, ...MANAGERS.map((m) => p[m])];

export type { CommandRun, InstallResult, RemoveResult, AutoStatus } from '../protocol';

function run(command: string[], optional = false): Promise<CommandRun> {
  return new Promise((resolve) =>
    execFile(command[0], command.slice(1), { timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({
        command,
        ok: !err,
        ...(err || stdout.trim() || stderr.trim() ? { output: (stderr.trim() || stdout.trim() || (err as Error).message).slice(0, 2000) } : {}),
        ...(optional ? { optional } : {}),
      }),
    ),
  );
}

/** sd_booted(3): the system's services are systemd's. */
const systemdRuns = () => fs.existsSync('/run/systemd/system');

/** Which of the system's schedulers this install may drive: none below another root. */
function scheduler(paths: AutoPaths, platform: NodeJS.Platform): 'systemd' | 'launchd' | 'schtasks' | null {
  if (paths.root !== '/') return null;
  if (platform === 'linux') return systemdRuns() ? 'systemd' : null;
  return platform === 'darwin' ? 'launchd' : platform === 'win32' ? 'schtasks' : null;
}

async function removeFile(file: string, removed: string[]): Promise<void> {
  try {
    await fs.promises.unlink(file);
    removed.push(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toDevsnapError(err, file);
  }
}

/** Writes the config and the files it calls for, removes those it no longer does, and (re)starts the timer. */
export async function install(cfg: AutoConfig, paths: AutoPaths, command: DevsnapCommand, platform: NodeJS.Platform = process.platform): Promise<InstallResult> {
  const files = plannedFiles(cfg, paths, command, platform);
  const schtasks = cfg.schedule && platform === 'win32' ? schtasksCreate(command, paths.config, cfg.schedule) : null; // refused before anything is written
  const result: InstallResult = { config: paths.config, written: [], removed: [], commands: [], notes: [] };
  const had = { timer: fs.existsSync(paths.timer), launchd: fs.existsSync(paths.launchd) };
  await writeConfig(paths.config, cfg);
  result.written.push(paths.config);
  for (const f of files) {
    await writePublicFile(f.path, f.text);
    result.written.push(f.path);
  }
  for (const p of installedPaths(paths)) if (!files.some((f) => f.path === p)) await removeFile(p, result.removed);

  const sched = scheduler(paths, platform);
  const cmd = async (c: string[]) => result.commands.push(await run(c));
  if (sched === 'systemd') {
    await cmd(['systemctl', 'daemon-reload']);
    if (cfg.schedule) await cmd(['systemctl', 'enable', '--now', TIMER_NAME]);
    else if (had.timer) await cmd(['systemctl', 'disable', '--now', TIMER_NAME]);
  } else if (sched === 'launchd') {
    if (had.launchd) await cmd(['launchctl', 'bootout', `system/${LAUNCHD_LABEL}`]); // the older one
    if (cfg.schedule) await cmd(['launchctl', 'bootstrap', 'system', paths.launchd]);
  } else if (sched === 'schtasks') {
    result.commands.push(await run(schtasks ? ['schtasks', ...schtasks] : ['schtasks', ...schtasksDelete()], !schtasks));
  } else if (cfg.schedule && platform === 'linux') {
    result.notes.push(
      `systemd is not running here${paths.root !== '/' ? ` (or --root ${paths.root} was given)` : ''}: the timer was written, not started. Start it with \`systemctl daemon-reload && systemctl enable --now ${TIMER_NAME}\`.`,
    );
  }
  if ((cfg.hooks ?? []).includes('dnf') && !fs.existsSync(`${paths.root}/etc/dnf/plugins/pre-transaction-actions.conf`)) {
    result.notes.push("dnf's hook needs its pre-transaction-actions plugin: `dnf install python3-dnf-plugin-pre-transaction-actions` (dnf 4).");
  }
  return result;
}

/** Stops the timer and removes every file install wrote; `purge` also the config and the state. */
export async function remove(paths: AutoPaths, purge: boolean, platform: NodeJS.Platform = process.platform): Promise<RemoveResult> {
  const result: RemoveResult = { removed: [], commands: [] };
  const sched = scheduler(paths, platform);
  if (sched === 'systemd' && fs.existsSync(paths.timer)) result.commands.push(await run(['systemctl', 'disable', '--now', TIMER_NAME]));
  if (sched === 'launchd' && fs.existsSync(paths.launchd)) result.commands.push(await run(['launchctl', 'bootout', `system/${LAUNCHD_LABEL}`]));
  if (sched === 'schtasks') result.commands.push(await run(['schtasks', ...schtasksDelete()], true));
  for (const p of [...installedPaths(paths), ...(purge ? [paths.config, paths.state] : [])]) await removeFile(p, result.removed);
  // The copy of devsnap they ran (engine-copy.ts): nothing else uses it.
  result.removed.push(...(await removeEngine(paths.root)));
  if (sched === 'systemd') result.commands.push(await run(['systemctl', 'daemon-reload']));
  return result;
}

const read = (p: string) => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};

export async function status(paths: AutoPaths, command: DevsnapCommand, platform: NodeJS.Platform = process.platform, bundleDir?: string): Promise<AutoStatus> {
  const st: AutoStatus = { config: paths.config, settings: null, files: [], leftovers: [], state: readState(paths.state), systemd: scheduler(paths, platform) === 'systemd' };
  const engine = installedEngine(paths.root, bundleDir);
  if (engine) st.engine = engine;
  try {
    st.settings = readConfig(paths.config);
    if (st.settings) st.files = plannedFiles(st.settings, paths, command, platform).map((f) => ({ path: f.path, what: f.what, installed: read(f.path) !== null, current: read(f.path) === f.text }));
  } catch (err) {
    const e = toDevsnapError(err);
    st.problem = { message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  st.leftovers = installedPaths(paths).filter((p) => !st.files.some((f) => f.path === p) && fs.existsSync(p));
  if (scheduler(paths, platform) === 'systemd') {
    const r = await run(['systemctl', 'show', TIMER_NAME, '-p', 'ActiveState', '-p', 'NextElapseUSecRealtime', '-p', 'LastTriggerUSec']);
    const props = Object.fromEntries((r.ok ? (r.output ?? '') : '').split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (r.ok)
      st.timer = {
        active: props.ActiveState ?? 'unknown',
        ...(props.NextElapseUSecRealtime ? { nextRun: props.NextElapseUSecRealtime } : {}),
        ...(props.LastTriggerUSec ? { lastRun: props.LastTriggerUSec } : {}),
      };
  }
  return st;
}
