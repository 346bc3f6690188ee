// Scheduled snapshots on Windows (Task Scheduler, `schtasks`) and macOS (a launchd daemon), as
// pure builders. Untested on those systems: their output is checked against the documented formats
// only (test/unit/automation/), as the helper's Windows and macOS launch paths are.
import { DevsnapError } from '../core/errors';
import { isWindowsPath, LAUNCHD_LABEL, SCHEDULE_PRESETS, WINDOWS_TASK } from './config';
import { checkCommand, type DevsnapCommand, runArgs } from './units';

type Preset = (typeof SCHEDULE_PRESETS)[number];

function preset(schedule: string, scheduler: string): Preset {
  if ((SCHEDULE_PRESETS as readonly string[]).includes(schedule)) return schedule as Preset;
  throw new DevsnapError('USAGE', `${scheduler} cannot run on the schedule "${schedule}": only systemd takes calendar expressions.`, `Choose one of ${SCHEDULE_PRESETS.join(', ')}.`);
}

/** schtasks /TR is one command line of at most 261 characters. */
export const SCHTASKS_MAX_TR = 261;

/**
 * The arguments of `schtasks` that create the task (run as SYSTEM, highest rights, replacing an
 * older one). Times as systemd's presets: on the hour, midnight, Monday, the 1st of the month.
 * Node passes the arguments quoted as the Windows C runtime parses them (the quotes of /TR's
 * paths included). A run missed while the machine was off is not caught up (that takes the XML form).
 */
export function schtasksCreate(command: readonly string[], configFile: string, schedule: string): string[] {
  const args = [...command, 'auto', 'run', '--config', configFile];
  const bad = [...command, configFile].find((a) => !isWindowsPath(a));
  if (bad !== undefined)
    throw new DevsnapError('USAGE', `The scheduled task cannot start devsnap from ${JSON.stringify(bad)}: not a drive path (C:\\...) without quotes or %.`, 'Install devsnap under such a path.');
  const tr = args.map((a) => (/[\s&|<>^()]/.test(a) ? `"${a}"` : a)).join(' ');
  if (tr.length > SCHTASKS_MAX_TR) {
    throw new DevsnapError(
      'USAGE',
      `The scheduled task's command line is ${tr.length} characters; schtasks takes at most ${SCHTASKS_MAX_TR}.`,
      'Install devsnap (and its configuration) under a shorter path.',
    );
  }
  const when: Record<Preset, string[]> = {
    hourly: ['/SC', 'HOURLY'],
    daily: ['/SC', 'DAILY', '/ST', '00:00'],
    weekly: ['/SC', 'WEEKLY', '/D', 'MON', '/ST', '00:00'],
    monthly: ['/SC', 'MONTHLY', '/D', '1', '/ST', '00:00'],
  };
  return ['/Create', '/TN', WINDOWS_TASK, '/TR', tr, ...when[preset(schedule, 'Task Scheduler')], '/RU', 'SYSTEM', '/RL', 'HIGHEST', '/F'];
}

export const schtasksDelete = (): string[] => ['/Delete', '/TN', WINDOWS_TASK, '/F'];

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A launchd daemon (/Library/LaunchDaemons, runs as root) started on the schedule; launchd runs a
 * start missed while the machine slept when it wakes. Background priority, low-priority I/O.
 */
export function launchdPlist(command: DevsnapCommand, configFile: string, schedule: string): string {
  checkCommand(command);
  const when: Record<Preset, [string, number][]> = {
    hourly: [['Minute', 0]],
    daily: [
      ['Hour', 0],
      ['Minute', 0],
    ],
    weekly: [
      ['Weekday', 1],
      ['Hour', 0],
      ['Minute', 0],
    ],
    monthly: [
      ['Day', 1],
      ['Hour', 0],
      ['Minute', 0],
    ],
  };
  const interval = when[preset(schedule, 'launchd')];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `devsnap auto install` (automatic snapshots); `devsnap auto remove` removes it. -->',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...runArgs(command, configFile).map((a) => `    <string>${xml(a)}</string>`),
    '  </array>',
    '  <key>StartCalendarInterval</key>',
    '  <dict>',
    ...interval.flatMap(([k, n]) => [`    <key>${k}</key>`, `    <integer>${n}</integer>`]),
    '  </dict>',
    '  <key>ProcessType</key>',
    '  <string>Background</string>',
    '  <key>Nice</key>',
    '  <integer>19</integer>',
    '  <key>LowPriorityIO</key>',
    '  <true/>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
