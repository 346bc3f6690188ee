// The package managers' hooks that take a snapshot before a transaction, as text (pure). Each runs
// `devsnap hook pre-upgrade`, which never fails (it exits 0 whatever happens); where the package
// manager would stop on a failure to start it at all (apt), the command line says `|| true` too.
import type { Manager } from './config';
import { checkCommand, type DevsnapCommand, hookArgs, WRITTEN_BY } from './units';

/** One word of a POSIX shell command line. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * apt runs the commands of DPkg::Pre-Install-Pkgs (through sh) before every dpkg run, with what is
 * about to change on stdin; it stops when one fails. Version 3 of that input names every package
 * with its old and new version (hook-input.ts reads it). apt finds a command's options by its first
 * word, so that word is one no other hook uses: an environment assignment.
 */
export const APT_OPTIONS_KEY = 'DEVSNAP_HOOK=apt';

export function aptHook(command: DevsnapCommand, configFile: string): string {
  checkCommand(command);
  const line = `${APT_OPTIONS_KEY} ${hookArgs(command, 'apt', configFile).map(shellQuote).join(' ')} || true`;
  return [
    `// ${WRITTEN_BY}`,
    '// A snapshot before apt installs, upgrades or removes packages, labelled with what changes.',
    `DPkg::Pre-Install-Pkgs { "${line}"; };`,
    `DPkg::Tools::Options::${APT_OPTIONS_KEY}::Version "3";`,
    '',
  ].join('\n');
}

/** alpm-hooks(5): before every transaction, the packages it touches on stdin (NeedsTargets). Without AbortOnFail a failing hook never stops pacman. */
export function pacmanHook(command: DevsnapCommand, configFile: string): string {
  checkCommand(command);
  return [
    `# ${WRITTEN_BY}`,
    '[Trigger]',
    'Operation = Install',
    'Operation = Upgrade',
    'Operation = Remove',
    'Type = Package',
    'Target = *',
    '',
    '[Action]',
    'Description = Taking a devsnap snapshot before the transaction...',
    'When = PreTransaction',
    `Exec = ${hookArgs(command, 'pacman', configFile).map(shellQuote).join(' ')}`,
    'NeedsTargets',
    '',
  ].join('\n');
}

/**
 * dnf's pre-transaction-actions plugin (package python3-dnf-plugin-pre-transaction-actions):
 * `package_filter:transaction_state:command`, run through sh, once per distinct command after its
 * $variables are substituted: a command without variables runs once per transaction. Its failures
 * are only logged. The label comes from dnf's own command line (hook-input.ts).
 */
export function dnfAction(command: DevsnapCommand, configFile: string): string {
  checkCommand(command);
  return [`# ${WRITTEN_BY}`, `*:any:${hookArgs(command, 'dnf', configFile).map(shellQuote).join(' ')}`, ''].join('\n');
}

export function hookFile(manager: Manager, command: DevsnapCommand, configFile: string): string {
  return manager === 'apt' ? aptHook(command, configFile) : manager === 'pacman' ? pacmanHook(command, configFile) : dnfAction(command, configFile);
}
