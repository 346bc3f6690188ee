// devsnap's VS Code extension: the Snapshots view, the commands and the settings around the
// imaging engine. activate() wires the pieces together and returns the API below, which the
// in-host tests use (vscode.extensions.getExtension('devsnap.devsnap').exports).
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../imaging/protocol';
import { registerCommands } from './commands';
import type { CommandContext } from './commands/common';
import { DevsnapConfig, readConfig, SECTION } from './config';
import { CliEngine, Engine } from './engine';
import { SnapshotTreeNode, SnapshotTreeProvider } from './snapshotTree';
import * as ui from './ui';

export interface DevsnapApi {
  /** The engine the commands use (the CLI, run as the current user). */
  readonly engine: Engine;
  /** Replaces the engine (tests, the elevated helper); `undefined` restores the CLI engine. */
  setEngine(engine: Engine | undefined): void;
  readonly treeProvider: SnapshotTreeProvider;
  readonly treeView: vscode.TreeView<SnapshotTreeNode>;
  /** The settings as the commands see them now. */
  config(): DevsnapConfig;
  /** Reloads the tree; resolves with the snapshots now shown. */
  refresh(): Promise<readonly SnapshotSummary[]>;
  /** The last messages shown to the user (newest last), for tests. */
  readonly messages: readonly ui.ShownMessage[];
  readonly onDidShowMessage: vscode.Event<ui.ShownMessage>;
  readonly output: vscode.OutputChannel;
  /** Path of the engine CLI bundle. */
  readonly cliPath: string;
}

export function activate(context: vscode.ExtensionContext): DevsnapApi {
  const output = vscode.window.createOutputChannel('devsnap');
  const log = (line: string) => output.appendLine(`[${new Date().toLocaleTimeString()}] ${line}`);
  const cliPath = context.asAbsolutePath(path.join('dist', 'devsnap.js'));
  const cliEngine = new CliEngine({ cliPath, nodePath: process.execPath, log });
  let engine: Engine = cliEngine;
  const getEngine = () => engine;

  const treeProvider = new SnapshotTreeProvider(getEngine, readConfig, log);
  const treeView = vscode.window.createTreeView('devsnap.snapshots', { treeDataProvider: treeProvider, showCollapseAll: true, canSelectMany: true });
  const updateViewMessage = () => {
    const err = treeProvider.lastError;
    treeView.message = treeProvider.state === 'error' && err ? `Could not read the repository: ${err.message}` : undefined;
  };
  treeProvider.onDidLoad(updateViewMessage);

  const ctx: CommandContext = { engine: getEngine, config: readConfig, tree: treeProvider, treeView, output, log };
  context.subscriptions.push(output, treeProvider, treeView, ...registerCommands(ctx), { dispose: ui.disposeUi });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      const cfg = readConfig();
      log(`Settings changed: repository=${cfg.repository ?? '(none)'}, compression=${cfg.compressionLevel}, elevation=${cfg.elevation}`);
      if (e.affectsConfiguration(`${SECTION}.elevation`) && cfg.elevation !== 'none') {
        log('Note: elevation is not available yet; the engine runs as the current user.');
      }
      if (e.affectsConfiguration(`${SECTION}.repository`)) void treeProvider.refresh();
    }),
  );

  log(`devsnap activated (engine ${cliPath}, node ${process.execPath})`);
  void treeProvider.refresh();

  return {
    get engine() {
      return engine;
    },
    setEngine(e: Engine | undefined) {
      engine = e ?? cliEngine;
      void treeProvider.refresh();
    },
    treeProvider,
    treeView,
    config: readConfig,
    async refresh() {
      await treeProvider.refresh();
      return treeProvider.snapshots;
    },
    messages: ui.messageLog,
    onDidShowMessage: ui.onDidShowMessage,
    output,
    cliPath,
  };
}

export function deactivate(): void {}
