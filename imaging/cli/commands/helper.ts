// `devsnap helper` (hidden): the elevated helper (imaging/helper/README.md), started by the extension, as root, never by hand.
import { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('helper', { hidden: true })
    .description('serve the extension over its authenticated socket (started by the extension)')
    .requiredOption('--socket <path>', "the extension's Unix socket to connect to")
    .requiredOption('--secret-file <file>', 'file holding the one-time secret (deleted once read)')
    .option('--uid <uid>', 'uid of the user the helper works for (default: $PKEXEC_UID, $SUDO_UID or our own)')
    .option('--idle-timeout <seconds>', 'exit after this long without a request', '600')
    .action(async (o) => {
      const { runHelperCommand } = await import('../../helper/server'); // no part of any other command's start
      process.exitCode = await runHelperCommand({ socket: o.socket, secretFile: o.secretFile, uid: o.uid, idleTimeout: o.idleTimeout });
    });
}
