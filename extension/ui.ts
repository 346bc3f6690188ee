// Every prompt and notification the extension shows goes through here: quick picks, input
// boxes, modal confirmations, messages, the open dialog. Tests do not replace this module;
// they call the commands with arguments instead (see commands/index.ts), which skips the
// prompts. Messages shown are also recorded in `messageLog` (exposed on the extension's API)
// so in-host tests can check what the user was told; so are modal questions (with their buttons
// in order) and quick picks (level "pick", with the rows offered), which is what the user was asked.
import * as vscode from 'vscode';

export type MessageLevel = 'info' | 'warning' | 'error';
export interface ShownMessage {
  /** "pick": a quick pick was shown (text: its title and placeholder; items: its rows); "input": an input box (text: its title and prompt); "password": a password box (text: its prompt). */
  level: MessageLevel | 'pick' | 'input' | 'password';
  text: string;
  at: number;
  /** A modal question: its buttons in the order given; the first is the one VS Code focuses (Enter). */
  buttons?: string[];
  /** A quick pick's rows: "label · description · detail" (separators left out). */
  items?: string[];
  /** A step of a multi-step flow: "2/3" as its title shows it; `back` when it offers the Back button. */
  step?: string;
  back?: boolean;
}

const MAX_LOG = 100;
export const messageLog: ShownMessage[] = [];
const onDidShowEmitter = new vscode.EventEmitter<ShownMessage>();
export const onDidShowMessage = onDidShowEmitter.event;

export function record(level: ShownMessage['level'], text: string, more: Partial<ShownMessage> = {}): void {
  const m: ShownMessage = { level, text, at: Date.now(), ...more };
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
 * A modal confirmation of something that is not destructive: resolves true only when the user
 * pressed `confirmLabel` (the focused button). `detail` is the second paragraph (what exactly will happen).
 */
export async function confirm(text: string, detail: string, confirmLabel: string): Promise<boolean> {
  return (await ask(text, detail, [confirmLabel])) === confirmLabel;
}

export const CANCEL = 'Cancel';

/**
 * A modal question; resolves with the button pressed, undefined for Cancel, Escape or the close
 * box. VS Code focuses the first of `buttons` (Enter presses it) and adds a Cancel button of its own
 * for Escape. A dialog VS Code refuses to show (its extension tests do) counts as cancelled.
 */
export async function ask<A extends string>(text: string, detail: string, buttons: A[]): Promise<A | undefined> {
  record('warning', `${text} ${detail}`, { buttons: [...buttons, CANCEL] });
  try {
    const choice = await vscode.window.showWarningMessage(text, { modal: true, detail }, ...buttons.map((title) => ({ title })));
    return choice?.title;
  } catch {
    return undefined;
  }
}

/**
 * A modal confirmation of something destructive (restore, delete, prune), whose default is not to
 * do it: Cancel is the first, focused button, so Enter cancels; then the safe alternatives
 * (`others`: "Dry Run", "Snapshot Target First"), then `action` itself. Resolves with the button
 * pressed, undefined when cancelled.
 *
 * VS Code focuses the first button it is given and always adds one for Escape and the close box (a
 * MessageItem marked isCloseAffordance becomes that one, leaving the focus on the button after it),
 * so the focused Cancel is a button of ours and the one VS Code adds is labelled "Close".
 */
export async function confirmDestructive<A extends string>(text: string, detail: string, action: A, others: A[] = []): Promise<A | undefined> {
  const buttons = [CANCEL, ...others, action];
  record('warning', `${text} ${detail}`, { buttons });
  try {
    const items: vscode.MessageItem[] = [...buttons.map((title) => ({ title })), { title: CLOSE, isCloseAffordance: true }];
    const choice = await vscode.window.showWarningMessage(text, { modal: true, detail }, ...items);
    return choice && choice.title !== CANCEL && choice.title !== CLOSE ? (choice.title as A) : undefined;
  } catch {
    return undefined;
  }
}
const CLOSE = 'Close';

export function pick<T extends vscode.QuickPickItem>(items: readonly T[] | Thenable<readonly T[]>, options: vscode.QuickPickOptions): Thenable<T | undefined> {
  void Promise.resolve(items).then((list) =>
    record('pick', [options.title, options.placeHolder].filter(Boolean).join(': '), {
      items: list.filter((i) => i.kind !== vscode.QuickPickItemKind.Separator).map((i) => [i.label, i.description, i.detail].filter(Boolean).join(' · ')),
    }),
  );
  return vscode.window.showQuickPick(items, { ignoreFocusOut: true, matchOnDescription: true, matchOnDetail: true, ...options });
}

export function input(options: vscode.InputBoxOptions): Thenable<string | undefined> {
  return vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
}

/** A password box (the typed text hidden); recorded with its prompt, never with what was typed. */
export function password(options: Omit<vscode.InputBoxOptions, 'password'>): Thenable<string | undefined> {
  record('password', [options.title, options.prompt].filter(Boolean).join(': '));
  return vscode.window.showInputBox({ ignoreFocusOut: true, ...options, password: true });
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
