// The CLI commands that look inside snapshots, as one group: ls, cat, inventory, changes (file-level and
// inventory diff) and restore-files, each in imaging/cli/commands/. test/unit/file-restore.test.ts registers them this way.
import { Command } from 'commander';
import type { CliContext } from './cli/context';
import * as ls from './cli/commands/ls';
import * as cat from './cli/commands/cat';
import * as inventory from './cli/commands/inventory';
import * as changes from './cli/commands/changes';
import * as restoreFiles from './cli/commands/restore-files';

export type { CliContext } from './cli/context';

export function registerFileCommands(program: Command, ctx: CliContext): void {
  ls.register(program, ctx);
  cat.register(program, ctx);
  inventory.register(program, ctx);
  changes.register(program, ctx);
  restoreFiles.register(program, ctx);
}
