// The configuration of automatic snapshots (/etc/devsnap/auto.json) and where every file that
// `devsnap auto install` writes goes. One file, read again on every run, so that the timer and the
// package-manager hooks always do what it says now (changing it needs no reinstall, except the schedule).
import * as fs from 'fs';
import * as path from 'path';
import * as v from 'valibot';
import { DevsnapError, toDevsnapError } from '../core/errors';
import { writeFileAtomic } from '../core/fsutil';
import { check, count } from '../protocol';

/** The package managers devsnap hooks into. */
export const MANAGERS = ['apt', 'pacman', 'dnf'] as const;
export type Manager = (typeof MANAGERS)[number];

/** Schedules every scheduler understands; systemd also takes any OnCalendar= expression. */
export const SCHEDULE_PRESETS = ['hourly', 'daily', 'weekly', 'monthly'] as const;

// Paths end up in unit files, apt's configuration, shell command lines and XML: characters that
// need a different escape in each (quotes, backslash, $, %, `, control characters) are refused,
// rather than escaped five ways. Windows paths (C:\...) go only into a scheduled task (platforms.ts).
const PATH_MESSAGE = 'must be an absolute path of at most 4096 characters without quotes, backslashes, $, %, ` or control characters (on Windows: a drive path without quotes or %)';
export const UNSAFE_PATH_CHARS = /["'\\$%`\p{Cc}]/u;
export const isSafePath = (s: string) => (s.startsWith('/') && !UNSAFE_PATH_CHARS.test(s)) || isWindowsPath(s);
export const isWindowsPath = (s: string) => /^[A-Za-z]:\\[^"%\p{Cc}]*$/u.test(s);
const SafePath = v.pipe(v.string(PATH_MESSAGE), v.maxLength(4096, PATH_MESSAGE), v.check(isSafePath, PATH_MESSAGE));

const SCHEDULE_MESSAGE = `must be ${SCHEDULE_PRESETS.join(', ')} or a systemd calendar expression (letters, digits, space and * / ~ . , : + -)`;
const Schedule = v.pipe(v.string(SCHEDULE_MESSAGE), v.maxLength(200, SCHEDULE_MESSAGE), v.regex(/^[A-Za-z0-9*/~.,:+ -]*[A-Za-z0-9*]$/, SCHEDULE_MESSAGE));

const HOURS = 'must be a number of hours from 0 to 8760';
const MINUTES = 'must be a whole number of minutes from 1 to 1440';

/** Retention of automatic snapshots only (labels in AUTO_LABEL, run.ts); pinned ones are always kept. */
const Retention = v.pipe(
  v.strictObject(
    {
      keepLast: v.optional(count()),
      keepDaily: v.optional(count()),
      keepWeekly: v.optional(count()),
      keepMonthly: v.optional(count()),
      /** Reclaim the space of what was forgotten right away (default true: forgetting alone frees nothing). */
      prune: v.optional(v.boolean('must be true or false')),
    },
    'must be an object of keepLast, keepDaily, keepWeekly, keepMonthly, prune',
  ),
  v.check((r) => !!(r.keepLast || r.keepDaily || r.keepWeekly || r.keepMonthly), 'must keep something: give at least one of keepLast, keepDaily, keepWeekly, keepMonthly above 0'),
);

export const AutoConfig = v.strictObject({
  /** The repository folder (created by the first snapshot when it does not exist). */
  repository: SafePath,
  /** The disk (or image file) to snapshot. */
  source: SafePath,
  /** A file holding the password of an encrypted repository (readable by root only). */
  passwordFile: v.optional(SafePath),
  /** When the timer runs; absent: no timer. */
  schedule: v.optional(Schedule),
  /** The package managers whose transactions are preceded by a snapshot. */
  hooks: v.optional(v.pipe(v.array(v.picklist(MANAGERS, `must be one of ${MANAGERS.join(', ')}`)), v.maxLength(MANAGERS.length))),
  /** A hook takes no snapshot when an automatic one was taken less than this many hours ago (0: every time). */
  rateLimitHours: v.optional(v.pipe(v.number(HOURS), v.minValue(0, HOURS), v.maxValue(8760, HOURS))),
  /** A hook's snapshot is stopped (at a safe point) after this long: the package manager waits for it. */
  hookTimeoutMinutes: v.optional(v.pipe(v.number(MINUTES), v.integer(MINUTES), v.minValue(1, MINUTES), v.maxValue(1440, MINUTES))),
  retention: v.optional(Retention),
});
export type AutoConfig = v.InferOutput<typeof AutoConfig>;

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
