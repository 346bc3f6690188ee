// Automatic snapshots (imaging/automation/, `devsnap auto`, the extension's "Set Up Automatic
// Snapshots…"): the configuration /etc/devsnap/auto.json, the record of the last runs beside it, and
// the requests and results of the operations autoInstall, autoRemove and autoStatus.
import * as v from 'valibot';
import { absolutePath, bool, count } from './common';

/** Labels of automatic snapshots: retention touches these and nothing else; the extension marks their rows. */
export const AUTO_LABEL = /^(scheduled|before (apt|pacman|dnf)): /;
export const isAutomaticLabel = (label: string) => AUTO_LABEL.test(label);

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
export const isWindowsPath = (s: string) => /^[A-Za-z]:\\[^"%\p{Cc}]*$/u.test(s);
export const isSafePath = (s: string) => (s.startsWith('/') && !UNSAFE_PATH_CHARS.test(s)) || isWindowsPath(s);
const SafePath = v.pipe(v.string(PATH_MESSAGE), v.maxLength(4096, PATH_MESSAGE), v.check(isSafePath, PATH_MESSAGE));

const SCHEDULE_MESSAGE = `must be ${SCHEDULE_PRESETS.join(', ')} or a systemd calendar expression (letters, digits, space and * / ~ . , : + -)`;
const Schedule = v.pipe(v.string(SCHEDULE_MESSAGE), v.maxLength(200, SCHEDULE_MESSAGE), v.regex(/^[A-Za-z0-9*/~.,:+ -]*[A-Za-z0-9*]$/, SCHEDULE_MESSAGE));

const HOURS = 'must be a number of hours from 0 to 8760';
const MINUTES = 'must be a whole number of minutes from 1 to 1440';
const DAYS = 'must be a whole number of days from 1 to 366';

/** Retention of automatic snapshots only (labels in AUTO_LABEL, automation/run.ts); pinned ones are always kept. */
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
  /** After its snapshot, `auto run` verifies the newest snapshot when the last verify is older than this many days. */
  verifyEveryDays: v.optional(v.pipe(v.number(DAYS), v.integer(DAYS), v.minValue(1, DAYS), v.maxValue(366, DAYS))),
});
export type AutoConfig = v.InferOutput<typeof AutoConfig>;

const When = v.object({ at: v.string(), trigger: v.string() });
/** /etc/devsnap/auto-state.json: what the automatic runs did last. */
export const AutoState = v.object({
  /** The last automatic snapshot taken: a hook's rate limit counts from it. */
  lastSnapshot: v.optional(v.object({ ...When.entries, id: v.string(), label: v.string() })),
  /** The last run, whatever it did. */
  lastRun: v.optional(v.object({ ...When.entries, outcome: v.picklist(['taken', 'skipped', 'failed']), message: v.optional(v.string()) })),
  /** The last periodic verify (verifyEveryDays): when, which snapshot, and whether it was intact. */
  lastVerify: v.optional(v.object({ at: v.string(), id: v.string(), ok: v.boolean(), message: v.optional(v.string()) })),
});
export type AutoState = v.InferOutput<typeof AutoState>;

/** Where automatic snapshots are installed: '/' on a real system, another folder to prepare an image (or in tests). */
const root = { root: v.optional(absolutePath()) };

export const AutoInstallRequest = v.strictObject({ ...root, config: AutoConfig });
export type AutoInstallRequest = v.InferOutput<typeof AutoInstallRequest>;
export const AutoRemoveRequest = v.strictObject({ ...root, purge: v.optional(bool()) });
export type AutoRemoveRequest = v.InferOutput<typeof AutoRemoveRequest>;
export const AutoStatusRequest = v.strictObject({ ...root });
export type AutoStatusRequest = v.InferOutput<typeof AutoStatusRequest>;

export const CommandRun = v.object({
  command: v.array(v.string()),
  ok: v.boolean(),
  output: v.optional(v.string()),
  /** Its failure means nothing (removing what may not be there). */
  optional: v.optional(v.boolean()),
});
export type CommandRun = v.InferOutput<typeof CommandRun>;

/** How the installed files start devsnap: the wrapper, and the node it runs. */
export const InstalledEngine = v.object({
  /** The wrapper the units and hooks run, as the installed system sees it: /usr/local/lib/devsnap/devsnap. */
  command: v.string(),
  /** The node it runs (absolute path). */
  node: v.string(),
  /** Where that node came from: the node running devsnap, a node on the system, or VS Code's own binary as node. */
  nodeKind: v.picklist(['running', 'system', 'electron']),
  /** The engine's version the copy holds. */
  version: v.string(),
});
export type InstalledEngine = v.InferOutput<typeof InstalledEngine>;

export const InstallResult = v.object({
  config: v.string(),
  written: v.array(v.string()),
  removed: v.array(v.string()),
  commands: v.array(CommandRun),
  notes: v.array(v.string()),
  engine: v.optional(InstalledEngine),
});
export type InstallResult = v.InferOutput<typeof InstallResult>;

export const RemoveResult = v.object({ removed: v.array(v.string()), commands: v.array(CommandRun) });
export type RemoveResult = v.InferOutput<typeof RemoveResult>;

export const AutoStatus = v.object({
  config: v.string(),
  /** The config as it is, or why it cannot be used. */
  settings: v.nullable(AutoConfig),
  problem: v.optional(v.object({ message: v.string(), hint: v.optional(v.string()) })),
  /** Each file the config calls for: there, and as this devsnap would write it now. */
  files: v.array(v.object({ path: v.string(), what: v.string(), installed: v.boolean(), current: v.boolean() })),
  /** Files of automatic snapshots the config no longer calls for. */
  leftovers: v.array(v.string()),
  /** systemctl's view of the timer (when systemd runs and root is '/'). */
  timer: v.optional(v.object({ active: v.string(), nextRun: v.optional(v.string()), lastRun: v.optional(v.string()) })),
  /** Whether systemd runs this machine (the timer can be started); false below another root. */
  systemd: v.optional(v.boolean()),
  /** The installed copy of devsnap the units and hooks run, and whether it is this engine's version. */
  engine: v.optional(v.object({ ...InstalledEngine.entries, outdated: v.boolean(), running: v.string() })),
  state: AutoState,
  /** The package managers found on the system below root (the hooks it can have). */
  managers: v.optional(v.array(v.picklist(MANAGERS))),
});
export type AutoStatus = v.InferOutput<typeof AutoStatus>;
