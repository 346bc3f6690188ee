// Helpers for the in-host tests: the extension's API, the engine CLI, settings, and running commands
// that may wait on a notification (an error message resolves only when it is closed, and with the
// smoke-test driver notifications are never shown, so they are cleared here as they appear).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DevsnapApi } from '../../../extension/extension';
import type { ShownMessage } from '../../../extension/ui';
import { hostContext } from './context';

export const EXTENSION_ID = 'devsnap.devsnap';

export async function api(): Promise<DevsnapApi> {
  const ext = vscode.extensions.getExtension<DevsnapApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

/** Runs the engine CLI with --json; resolves the parsed stdout (also for error results). */
export function cli<T = unknown>(args: string[]): { status: number | null; json: T; stderr: string } {
  const c = hostContext();
  const r = spawnSync(c.node, [c.cli, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`devsnap ${args.join(' ')} printed no JSON (exit ${r.status}): ${r.stdout}${r.stderr}`);
  }
  return { status: r.status, json, stderr: r.stderr };
}

/** Sets a devsnap setting in the workspace (.vscode/settings.json); undefined removes it. */
export async function setSetting(key: string, value: unknown): Promise<void> {
  await vscode.workspace.getConfiguration('devsnap').update(key, value, vscode.ConfigurationTarget.Workspace);
}

export interface CommandRun<T> {
  result: T | undefined;
  /** Messages the extension showed while the command ran. */
  messages: ShownMessage[];
}

/**
 * Executes a command, recording the messages it shows and closing notifications as they appear so
 * a command awaiting an error message's choice can finish. Rejects if the command throws.
 */
export async function runCommand<T>(id: string, ...args: unknown[]): Promise<CommandRun<T>> {
  const a = await api();
  const messages: ShownMessage[] = [];
  const sub = a.onDidShowMessage((m) => {
    messages.push(m);
    setTimeout(() => void vscode.commands.executeCommand('notifications.clearAll'), 50);
  });
  try {
    const result = await vscode.commands.executeCommand<T>(id, ...args);
    return { result, messages };
  } finally {
    sub.dispose();
  }
}

/**
 * The next quick input (pick, input box or password box) the extension shows that matches `want`;
 * notifications shown meanwhile are closed. Rejects after a minute.
 */
export function nextInput(a: DevsnapApi, want: (m: ShownMessage) => boolean, what: string): Promise<ShownMessage> {
  let sub: vscode.Disposable | undefined;
  return Promise.race([
    new Promise<ShownMessage>((resolve) => {
      sub = a.onDidShowMessage((m) => {
        if (want(m)) resolve(m);
        else if (m.level !== 'pick' && m.level !== 'input' && m.level !== 'password') setTimeout(() => void vscode.commands.executeCommand('notifications.clearAll'), 50);
      });
    }),
    sleep(60000).then(() => Promise.reject(new Error(`timed out waiting for ${what}`))),
  ]).finally(() => sub?.dispose());
}

/** Every file under dir (relative paths, sorted), for "nothing was left behind" checks. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let typed = 0;
/**
 * Types `value` into the input box on screen and presses Enter, as a user does: the extension host
 * cannot type, so the runner's browser does it (test/host/run.js, TYPE_REQUEST). The text goes
 * through a private file, never a log line (it may be a secret). Resolves once Enter was pressed:
 * wait for what the extension does next (its next box, the command's result).
 */
export async function typeInInputBox(value: string, timeoutMs = 60000): Promise<void> {
  const dir = fs.mkdtempSync(path.join(hostContext().scratch, 'type-'));
  const file = path.join(dir, `request-${++typed}`);
  fs.writeFileSync(file, value, { mode: 0o600 });
  console.log(`[devsnap-host] type-into-input-box ${file}`);
  try {
    for (const t0 = Date.now(); !fs.existsSync(`${file}.done`); await sleep(100)) {
      if (fs.existsSync(`${file}.failed`)) throw new Error(`typing into the input box failed: ${fs.readFileSync(`${file}.failed`, 'utf8')}`);
      if (Date.now() - t0 > timeoutMs) throw new Error('the runner did not type into the input box (run the suite through test/host/run.js)');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
