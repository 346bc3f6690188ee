// The configuration of automatic snapshots (/etc/devsnap/auto.json) and where every file that
// `devsnap auto install` writes goes. One file, read again on every run, so that the timer and the
// package-manager hooks always do what it says now (changing it needs no reinstall, except the schedule).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { writeFileAtomic } from '../core/fsutil';
import { AutoConfig, check, isSafePath, isWindowsPath, type Manager, MANAGERS, SCHEDULE_PRESETS, UNSAFE_PATH_CHARS } from '../protocol';

// The schema itself is the protocol's (imaging/protocol/automation.ts): the extension builds it too.
export { AutoConfig, isSafePath, isWindowsPath, MANAGERS, type Manager, SCHEDULE_PRESETS, UNSAFE_PATH_CHARS };

export const DEFAULT_RATE_LIMIT_HOURS = 6;
export const DEFAULT_HOOK_TIMEOUT_MINUTES = 30;

/** Where everything goes, below `root` ('/' on a real system; a temporary folder in tests). */
export interface AutoPaths {
  root: string;
  config: string;
  /** The last automatic snapshot and attempt (run.ts), beside the config. */
  state: string;
  service: string;
  timer: string;
  apt: string;
  pacman: string;
  dnf: string;
  launchd: string;
}

export const SERVICE_NAME = 'devsnap-snapshot.service';
export const TIMER_NAME = 'devsnap-snapshot.timer';
export const LAUNCHD_LABEL = 'dev.devsnap.snapshot';
export const WINDOWS_TASK = '\\devsnap\\snapshot';

export function autoPaths(rootDir = '/', config?: string): AutoPaths {
  const root = path.resolve(rootDir);
  const r = (...p: string[]) => path.join(root, ...p);
  const cfg = config ? path.resolve(config) : r('etc/devsnap/auto.json');
  return {
    root,
    config: cfg,
    state: path.join(path.dirname(cfg), 'auto-state.json'),
    service: r('etc/systemd/system', SERVICE_NAME),
    timer: r('etc/systemd/system', TIMER_NAME),
    // 05: before the hooks most packages add (debconf's preconfigure is 70): the snapshot comes first.
    apt: r('etc/apt/apt.conf.d/05devsnap-snapshot'),
    pacman: r('etc/pacman.d/hooks/05-devsnap-snapshot.hook'),
    dnf: r('etc/dnf/plugins/pre-transaction-actions.d/devsnap-snapshot.action'),
    launchd: r('Library/LaunchDaemons', `${LAUNCHD_LABEL}.plist`),
  };
}

/** Checks a parsed config: the typed value, or USAGE naming the field and the file. */
export function parseConfig(value: unknown, file: string): AutoConfig {
  const r = check(AutoConfig, value);
  if (!r.ok) throw new DevsnapError('USAGE', `The automatic snapshot configuration ${file} is not valid: ${r.problem}.`, 'Fix the file, or write it again with `devsnap auto install`.');
  return r.value;
}

/** Reads and checks the config; null when there is none. */
export function readConfig(file: string): AutoConfig | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toDevsnapError(err, `the automatic snapshot configuration ${file}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DevsnapError('USAGE', `The automatic snapshot configuration ${file} is not JSON: ${(err as Error).message}.`, 'Fix the file, or write it again with `devsnap auto install`.');
  }
  return parseConfig(value, file);
}

/** Writes a file atomically with the given mode: units and apt's configuration must be readable by everyone (apt runs as users too). */
export async function writePublicFile(file: string, text: string, mode = 0o644): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(file, text, (fh) => fh.chmod(mode));
}

export async function writeConfig(file: string, cfg: AutoConfig): Promise<void> {
  await writePublicFile(file, JSON.stringify(parseConfig(cfg, file), null, 2) + '\n');
}

/** The package managers of the system below root. */
export function detectManagers(root: string): Manager[] {
  const marks: Record<Manager, string> = { apt: 'etc/apt', pacman: 'etc/pacman.conf', dnf: 'etc/dnf' };
  return MANAGERS.filter((m) => fs.existsSync(path.join(root, marks[m])));
}

/** systemd decides what a calendar expression means: ask it, where it is installed. */
export function checkCalendar(schedule: string): void {
  if ((SCHEDULE_PRESETS as readonly string[]).includes(schedule)) return;
  const r = spawnSync('systemd-analyze', ['calendar', schedule], { encoding: 'utf8' });
  if (r.error) return; // no systemd here: the schema's check of the characters is all there is
  if (r.status !== 0)
    throw new DevsnapError(
      'USAGE',
      `--schedule "${schedule}" is not a calendar expression systemd understands: ${(r.stderr || r.stdout).trim()}`,
      'See `man systemd.time` (CALENDAR EVENTS), or use daily, weekly, hourly, monthly.',
    );
}
