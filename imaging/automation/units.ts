// The systemd service + timer pair of scheduled snapshots, as text (pure: `devsnap auto install`
// writes it, test/unit/automation/ checks it with `systemd-analyze verify`), and the command lines
// every scheduler and hook runs.
import { DevsnapError } from '../core/errors';
import { type AutoConfig, type Manager, SERVICE_NAME, UNSAFE_PATH_CHARS } from './config';

/** How to start devsnap: absolute paths, e.g. ['/usr/bin/node', '/opt/devsnap/bin/devsnap.js']. */
export type DevsnapCommand = readonly string[];

export const WRITTEN_BY = 'Written by `devsnap auto install` (automatic snapshots); `devsnap auto remove` removes it.';

/** Refuses a command that the generated files could not carry unchanged (see UNSAFE_PATH_CHARS). */
export function checkCommand(command: DevsnapCommand): void {
  const bad = command.find((a) => !a.startsWith('/') || UNSAFE_PATH_CHARS.test(a));
  if (!command.length || bad !== undefined) {
    throw new DevsnapError(
      'USAGE',
      `devsnap cannot be started from the files it would install: ${bad === undefined ? 'no command' : JSON.stringify(bad)} is not an absolute path without quotes, backslashes, $, %, \` or control characters.`,
      'Install devsnap (and node) under such a path, then run `devsnap auto install` again.',
    );
  }
}

/** What the timer runs: a snapshot now, then retention of the automatic snapshots (run.ts). */
export const runArgs = (command: DevsnapCommand, configFile: string): string[] => [...command, 'auto', 'run', '--config', configFile];

/** What a package manager's hook runs. */
export const hookArgs = (command: DevsnapCommand, manager: Manager, configFile: string): string[] => [...command, 'hook', 'pre-upgrade', '--manager', manager, '--config', configFile];

/** One word of a systemd command line (systemd.service(5), "Command lines"): quoted when needed, specifiers and variables escaped. */
export function systemdQuote(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? escaped : `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Undoes systemdQuote over a whole command line (for tests and `auto status`: what ExecStart runs). */
export function systemdUnquote(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m; (m = re.exec(line));) words.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]).replace(/%%/g, '%').replace(/\$\$/g, '$'));
  return words;
}

/** OnCalendar= takes the presets (hourly, daily, ...) and calendar expressions as they are. */
export function systemdService(command: DevsnapCommand, configFile: string, cfg: AutoConfig): string {
  checkCommand(command);
  return [
    `# ${WRITTEN_BY}`,
    '[Unit]',
    `Description=devsnap: scheduled snapshot of ${cfg.source}`,
    // The repository may be on a drive mounted on demand: wait for it (and fail clearly when it is missing).
    `RequiresMountsFor=${systemdQuote(cfg.repository)}`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${runArgs(command, configFile).map(systemdQuote).join(' ')}`,
    // Run in the background of whatever the machine is doing.
    'Nice=19',
    'IOSchedulingClass=idle',
    '',
  ].join('\n');
}

export function systemdTimer(schedule: string): string {
  return [
    `# ${WRITTEN_BY}`,
    '[Unit]',
    `Description=devsnap: scheduled snapshots (${schedule})`,
    '',
    '[Timer]',
    `OnCalendar=${schedule}`,
    `Unit=${SERVICE_NAME}`,
    // A run missed while the machine was off happens at the next boot; machines sharing a schedule
    // (and a backup server) are not all started at the same second.
    'Persistent=true',
    'RandomizedDelaySec=30min',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}
