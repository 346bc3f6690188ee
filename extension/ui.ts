// Every prompt and notification the extension shows goes through here: quick picks, input
// boxes, modal confirmations, messages, the open dialog. Tests do not replace this module;
// they call the commands with arguments instead (see commands/index.ts), which skips the
// prompts. Messages shown are also recorded in `messageLog` (exposed on the extension's API)
// so in-host tests can check what the user was told.
import * as vscode from 'vscode';

export type MessageLevel = 'info' | 'warning' | 'error';
export interface ShownMessage {
  level: MessageLevel;
  text: string;
  at: number;
}

const MAX_LOG = 100;
export const messageLog: ShownMessage[] = [];
const onDidShowEmitter = new vscode.EventEmitter<ShownMessage>();
export const onDidShowMessage = onDidShowEmitter.event;

function record(level: MessageLevel, text: string): void {
  const m = { level, text, at: Date.now() };
  messageLog.push(m);
  if (messageLog.length > MAX_LOG) messageLog.shift();
  onDidShowEmitter.fire(m);
}

/** Shows a non-modal message; resolves with the action chosen, if any. */
export function message<A extends string>(level: MessageLevel, text: string, ...actions: A[]): Thenable<A | undefined> {
  record(level, text);
  switch (level) {
    case 'error':
      return vscode.window.showErrorMessage(text, ...actions);
    case 'warning':
      return vscode.window.showWarningMessage(text, ...actions);
    default:
      return vscode.window.showInformationMessage(text, ...actions);
  }
}

export const info = <A extends string>(text: string, ...actions: A[]) => message('info', text, ...actions);
export const warn = <A extends string>(text: string, ...actions: A[]) => message('warning', text, ...actions);
export const error = <A extends string>(text: string, ...actions: A[]) => message('error', text, ...actions);

/**
 * A modal confirmation: resolves true only when the user pressed `confirmLabel`.
 * `detail` is the second paragraph (what exactly will happen).
 */
export async function confirm(text: string, detail: string, confirmLabel: string): Promise<boolean> {
  record('warning', `${text} ${detail}`);
  const choice = await vscode.window.showWarningMessage(text, { modal: true, detail }, confirmLabel);
  return choice === confirmLabel;
}

export function pick<T extends vscode.QuickPickItem>(items: readonly T[] | Thenable<readonly T[]>, options: vscode.QuickPickOptions): Thenable<T | undefined> {
  return vscode.window.showQuickPick(items, { ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true, ...options });
}

export function input(options: vscode.InputBoxOptions): Thenable<string | undefined> {
  return vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
}

export function openFolder(title: string, openLabel: string, defaultUri?: vscode.Uri): Thenable<vscode.Uri[] | undefined> {
  return vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, title, openLabel, defaultUri });
}

export function saveFile(title: string, saveLabel: string, defaultUri?: vscode.Uri): Thenable<vscode.Uri | undefined> {
  return vscode.window.showSaveDialog({ title, saveLabel, defaultUri });
}

export function disposeUi(): void {
  onDidShowEmitter.dispose();
}
