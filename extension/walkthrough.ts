// What the first-run walkthrough (package.json contributes.walkthroughs) types for the user. No
// `vscode` import (unit-tested in test/unit/extension/extension-walkthrough.test.ts).

/** A word for a POSIX shell, single-quoted when it needs to be. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that sets up automatic snapshots of `source` into `repo` (placeholders in capitals
 * where a setting is empty): a daily timer and a snapshot before package upgrades, as root.
 */
export function autoInstallCommand(o: { cliPath: string; repo?: string; source?: string }): string {
  return [
    'sudo',
    'node',
    shellWord(o.cliPath),
    'auto',
    'install',
    '--repo',
    o.repo ? shellWord(o.repo) : 'REPOSITORY',
    '--source',
    o.source ? shellWord(o.source) : 'DISK',
    '--schedule',
    'daily',
  ].join(' ');
}
