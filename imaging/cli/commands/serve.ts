// `devsnap serve --stdio`: the engine as a long-lived service of one client (the extension, one per
// window): every operation of ops/registry.ts over JSON-RPC on stdin/stdout; it exits when stdin closes.
import { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('serve')
    .description("serve the engine's operations over JSON-RPC on stdin/stdout (started by the extension)")
    .requiredOption('--stdio', 'speak JSON-RPC on stdin and stdout (the only transport)')
    .action(async () => {
      // Loaded here: the JSON-RPC service's modules are no part of any other command's start.
      const { serveStdio } = await import('../../ops/serve');
      await serveStdio();
    });
}
