// devsnap's VS Code extension: the Snapshots view, the commands and the settings around the
// imaging engine. activate() wires the pieces together and returns the API below, which the
// in-host tests use (vscode.extensions.getExtension('devsnap.devsnap').exports).
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { SnapshotSummary } from '../imaging/protocol';
import { registerCommands } from './commands';
import { setGlobalStoragePath } from './commands/takeSnapshot';
import type { CommandContext, LogLevel } from './commands/common';
import { DevsnapConfig, readConfig, SECTION } from './config';
import { Engine, RoutingEngine } from './engine';
import { EngineClient } from './engineClient';
import { ServedEngine } from './servedEngine';
import { chooseMethod } from './elevation';
import { HelperEngine } from './helperClient';
import { RepositoryMemory, SnapshotNode, SnapshotTreeNode, SnapshotTreeProvider } from './snapshotTree';
import { nextRun, onNextRunChange, refreshNextRun, removeAutomatic, setUpAutomatic, type AutomaticArgs } from './commands/automatic';
import { StaleReminder } from './reminder';
import * as ui from './ui';
import { ActivityTracker } from './activity';
import { Glance } from './glance';
import { StatusBar } from './statusBar';
import { ViewSummary } from './viewSummary';
import { RepoPasswords } from './passwords';
import { S3Keys } from './s3Keys';
import { SecretsEngine } from './secrets';
import { askPassword } from './commands/encryption';
import { askS3Keys } from './commands/credentials';
import { StorageUsage } from './storageUsage';
import { createRecoveryMedia, RecoveryKitKeeper, type RecoveryMediaArgs } from './recoveryKit';

export interface DevsnapApi {
  /** The engine the commands use: the CLI as the current user, routed to the elevated helper for disks (see RoutingEngine). */
  readonly engine: Engine;
  /** Replaces the engine (tests); `undefined` restores the default one. */
  setEngine(engine: Engine | undefined): void;
  /** The elevated helper's engine of this window (undefined when devsnap.elevation is "none"). */
  readonly helper: HelperEngine | undefined;
  readonly treeProvider: SnapshotTreeProvider;
  readonly treeView: vscode.TreeView<SnapshotTreeNode>;
  /** The settings as the commands see them now. */
  config(): DevsnapConfig;
  /** Reloads the tree; resolves with the snapshots now shown. */
  refresh(): Promise<readonly SnapshotSummary[]>;
  /** The last messages shown to the user (newest last), for tests. */
  readonly messages: readonly ui.ShownMessage[];
  readonly onDidShowMessage: vscode.Event<ui.ShownMessage>;
  /** The devsnap output channel (a log channel: info, warn and error lines). */
  readonly output: vscode.LogOutputChannel;
  /** Path of the engine CLI bundle. */
  readonly cliPath: string;
  /** The state at a glance (status bar, view header); `glance.setNextRunProvider` is the scheduling hook. */
  readonly glance: Glance;
  readonly statusBar: vscode.StatusBarItem;
  readonly viewSummary: ViewSummary;
  /** The engine that adds the kept secrets (passwords, S3 keys) to every request on a repository. */
  readonly secrets: SecretsEngine;
  /** The encrypted repositories' passwords (SecretStorage). */
  readonly passwords: RepoPasswords;
  /** The keys of repositories in S3 buckets (SecretStorage, else VS Code's environment). */
  readonly s3Keys: S3Keys;
  /** The space per snapshot, as the Snapshots view's tooltips show it. */
  readonly storage: StorageUsage;
  /** Keeps the repository's recovery kit written and up to date. */
  readonly recoveryKit: RecoveryKitKeeper;
  /** The output channel's last lines (tests check what is logged). */
  readonly logLines: readonly string[];
}

export function activate(context: vscode.ExtensionContext): DevsnapApi {
  // A log channel: VS Code adds the time and level to each line, and its level filter (Output view → Set Log Level) applies.
  const output = vscode.window.createOutputChannel('devsnap', { log: true });
  setGlobalStoragePath(context.globalStorageUri.fsPath); // Take Snapshot says when a pause would hold VS Code's own state
  const logLines: string[] = [];
  const log = (line: string, level: LogLevel = 'info') => {
    logLines.push(line);
    if (logLines.length > 1000) logLines.shift();
    output[level](line);
  };
  const cliPath = context.asAbsolutePath(path.join('dist', 'devsnap.js'));
  // The engine as the current user: one long-lived service process per window (extension/engineClient.ts).
  const engineClient = new EngineClient({ cliPath, nodePath: process.execPath, log });
  const userEngine = new ServedEngine(engineClient);
  // The elevated helper: one per window, started on first need (see extension/helperClient.ts).
  let helper: HelperEngine | undefined;
  let routedEngine: Engine = userEngine;
  // Every call on a repository passes its bucket's keys and its password from SecretStorage (and asks when they are needed).
  const passwords = new RepoPasswords(context.secrets, askPassword);
  const s3Keys = new S3Keys(context.secrets, askS3Keys);
  const secretsEngine = new SecretsEngine(() => routedEngine, [s3Keys, passwords], log);
  const defaultEngine: Engine = secretsEngine;
  const setUpElevation = () => {
    const cfg = readConfig();
    const method = chooseMethod(cfg.elevation, { platform: process.platform, uid: process.getuid?.(), pkexecUsable: pkexecUsable() });
    void helper?.dispose();
    helper = method
      ? new HelperEngine({
          cliPath,
          nodePath: process.execPath,
          method,
          idleTimeoutSeconds: cfg.helperIdleMinutes * 60,
          log,
          askPassword: (prompt) => Promise.resolve(vscode.window.showInputBox({ title: 'devsnap needs administrator rights', prompt, password: true, ignoreFocusOut: true })),
          onCrash: (err, failedRequests) => {
            // A failed request reports the error itself; a helper that died between requests is reported here.
            if (!failedRequests) void ui.warn(`${err.message} ${err.hint ?? ''} The next disk operation starts a new one.`);
          },
        })
      : undefined;
    routedEngine = helper ? new RoutingEngine(userEngine, helper, undefined, log) : userEngine;
    log(method ? `Elevation: ${method} (the helper starts on the first disk operation)` : 'Elevation: none (the engine runs as the current user)');
  };
  setUpElevation();
  let engine: Engine | undefined;
  const getEngine = () => engine ?? defaultEngine;

  // Snapshots, restores and verifies through the commands' engine show in the status bar and the view.
  const activity = new ActivityTracker();
  const trackedEngine = () => activity.track(getEngine());
  const treeProvider = new SnapshotTreeProvider(getEngine, readConfig, log, repositoryMemory(context.globalState));
  const treeView = vscode.window.createTreeView('devsnap.snapshots', { treeDataProvider: treeProvider, showCollapseAll: true, canSelectMany: true });
  const updateViewMessage = () => {
    const damaged = treeProvider.damaged.length;
    // A repository that cannot be read is told by the welcome content (with its buttons): a
    // TreeView.message would hide them. Its error is in the output channel.
    treeView.message = damaged ? `${damaged} snapshot${damaged === 1 ? ' has a damaged manifest' : 's have damaged manifests'} and cannot be used (listed first).` : undefined;
  };
  treeProvider.onDidLoad(updateViewMessage);
  // How many snapshots are selected: "Compare Selected" is offered for exactly two.
  const countSelected = () => void vscode.commands.executeCommand('setContext', 'devsnap.selectedSnapshots', treeView.selection.filter((n) => n instanceof SnapshotNode).length);
  context.subscriptions.push(treeView.onDidChangeSelection(countSelected), treeProvider.onDidLoad(countSelected));

  const storage = new StorageUsage(getEngine, () => readConfig().repository, log);
  treeProvider.spaceOf = (id) => {
    const u = storage.of(id);
    return u ? { uniqueBytes: u.uniqueBytes, totalBytes: storage.total?.storedBytes } : undefined;
  };
  treeProvider.onDidLoad((snapshots) => void storage.update(snapshots));
  storage.onDidChange(() => treeProvider.refreshAges()); // re-renders the rows: their tooltips now say what deleting frees
  const recoveryKit = new RecoveryKitKeeper(getEngine, readConfig, log);
  treeProvider.onDidLoad((snapshots) => void recoveryKit.update(snapshots));
  const ctx: CommandContext = { engine: trackedEngine, config: readConfig, tree: treeProvider, treeView, output, log, secrets: secretsEngine, passwords, s3Keys, storage };
  context.subscriptions.push(
    output,
    treeProvider,
    treeView,
    ...registerCommands(ctx),
    vscode.commands.registerCommand('devsnap.setUpAutomatic', (args?: AutomaticArgs) => setUpAutomatic(ctx, args && typeof args === 'object' && !('id' in args) ? args : undefined)),
    vscode.commands.registerCommand('devsnap.createRecoveryMedia', (args?: RecoveryMediaArgs) =>
      createRecoveryMedia(getEngine, log, args && typeof args === 'object' && !('id' in args) ? args : undefined),
    ),
    vscode.commands.registerCommand('devsnap.removeAutomatic', (args?: { root?: string }) => removeAutomatic(ctx, args && typeof args === 'object' ? args : undefined)),
    { dispose: ui.disposeUi },
  );
  const glance = new Glance(treeProvider, treeView, activity, () => readConfig().repository, log);
  const statusBar = new StatusBar(glance);
  const viewSummary = new ViewSummary(glance, treeProvider, treeView);
  context.subscriptions.push(viewSummary, statusBar, glance, activity, storage);
  // "Next run" from autoStatus; after an update of the extension, an installed copy of devsnap that is another version is offered an update.
  glance.setNextRunProvider(nextRun);
  onNextRunChange(() => glance.setNextRunProvider(nextRun));
  void refreshNextRun(ctx).then(async (st) => {
    if (!st?.engine?.outdated || !st.settings) return;
    const update = 'Update Automatic Snapshots';
    if ((await ui.info(`Automatic snapshots run devsnap ${st.engine.version}; this is ${st.engine.running}.`, update)) === update)
      await setUpAutomatic(ctx, { source: st.settings.source, schedule: (st.settings.schedule ?? 'off') as AutomaticArgs['schedule'], hooks: st.settings.hooks });
  });
  const reminder = new StaleReminder(context.globalState, () => readConfig().repository);
  treeProvider.onDidLoad((snapshots) => void reminder.check(snapshots));

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      const cfg = readConfig();
      log(`Settings changed: repository=${cfg.repository ?? '(none)'}, compression=${cfg.compressionLevel}, elevation=${cfg.elevation}`);
      if (e.affectsConfiguration(`${SECTION}.elevation`) || e.affectsConfiguration(`${SECTION}.helper`)) setUpElevation();
      if (e.affectsConfiguration(`${SECTION}.repository`)) void treeProvider.refresh();
    }),
  );

  context.subscriptions.push({ dispose: () => void helper?.dispose() }, { dispose: () => engineClient.dispose() });
  log(`devsnap activated (engine ${cliPath}, node ${process.execPath})`);
  void treeProvider.refresh();

  return {
    get engine() {
      return getEngine();
    },
    setEngine(e: Engine | undefined) {
      engine = e;
      void treeProvider.refresh();
    },
    get helper() {
      return helper;
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
    glance,
    statusBar: statusBar.item,
    viewSummary,
    secrets: secretsEngine,
    passwords,
    s3Keys,
    storage,
    recoveryKit,
    logLines,
  };
}

/** Repositories that held snapshots on this machine (a missing one then reads as an unplugged drive). */
function repositoryMemory(state: vscode.Memento): RepositoryMemory {
  const KEY = 'devsnap.knownRepositories';
  const list = () => state.get<string[]>(KEY, []);
  return {
    known: (repo) => list().includes(repo),
    remember: (repo) => {
      const l = list();
      if (!l.includes(repo)) void state.update(KEY, [...l.slice(-19), repo]);
    },
  };
}

export function deactivate(): void {}

/** pkexec is installed and there is a graphical session for polkit's dialog. */
function pkexecUsable(): boolean {
  if (process.platform !== 'linux' || !(process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) return false;
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, 'pkexec')));
}
