// The quick pick and input box of one step of a multi-step flow (extension/steps.ts): the step
// counter in the title ("Take Snapshot 1/2"), a Back button from the second step on
// (vscode.QuickInputButtons.Back), and one widget reused from step to step, as VS Code's
// extension-samples' multiStepInput does. Each is recorded in ui.messageLog like ui.pick.
import * as vscode from 'vscode';
import { BACK, CANCEL, stepCounter } from './steps';
import { record } from './ui';

export interface StepPickOptions {
  title: string;
  placeholder: string;
  /** This step's number and the flow's total (stepCounter). */
  n: number;
  total: number;
}

export interface StepInputOptions extends StepPickOptions {
  prompt: string;
  value?: string;
  validate?: (value: string) => string | undefined;
}

/** The widget the flow shows now (disposed when the next one is shown, or when the flow ends). */
let current: vscode.QuickInput | undefined;

function show(next: vscode.QuickInput): void {
  const prev = current;
  current = next;
  next.show();
  prev?.dispose();
}

/** Closes the flow's last widget (call when the flow ends, however it ends). */
export function endSteps(): void {
  current?.dispose();
  current = undefined;
}

/** Runs `flow` and closes its widget afterwards. */
export async function withSteps<T>(flow: () => Promise<T>): Promise<T> {
  try {
    return await flow();
  } finally {
    endSteps();
  }
}

/** A step's quick pick: resolves with the item accepted; throws BACK or CANCEL. */
export function stepPick<T extends vscode.QuickPickItem>(items: readonly T[] | Thenable<readonly T[]>, o: StepPickOptions, active?: T): Promise<T> {
  const qp = vscode.window.createQuickPick<T>();
  qp.title = o.title;
  Object.assign(qp, stepCounter(o.n, o.total));
  qp.placeholder = o.placeholder;
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.buttons = o.n > 1 ? [vscode.QuickInputButtons.Back] : [];
  qp.busy = true;
  const disposables: vscode.Disposable[] = [];
  return new Promise<T>((resolve, reject) => {
    disposables.push(
      qp.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && reject(BACK)),
      qp.onDidAccept(() => {
        const picked = qp.selectedItems[0] ?? qp.activeItems[0];
        if (!picked || picked.kind === vscode.QuickPickItemKind.Separator) return;
        // What follows (a check, the next list) may take a moment: the pick stays, busy, until the next step replaces it.
        qp.busy = true;
        qp.enabled = false;
        resolve(picked);
      }),
      qp.onDidHide(() => reject(CANCEL)),
    );
    show(qp);
    void Promise.resolve(items).then(
      (list) => {
        qp.items = list;
        if (active) qp.activeItems = [active];
        qp.busy = false;
        record('pick', [o.title, o.placeholder].filter(Boolean).join(': '), {
          items: list.filter((i) => i.kind !== vscode.QuickPickItemKind.Separator).map((i) => [i.label, i.description, i.detail].filter(Boolean).join(' · ')),
          ...stepRecord(o),
        });
      },
      (err) => reject(err),
    );
  }).finally(() => disposables.forEach((d) => d.dispose()));
}

/** A step's input box: resolves with the text entered (valid by `validate`); throws BACK or CANCEL. */
export function stepText(o: StepInputOptions): Promise<string> {
  const box = vscode.window.createInputBox();
  box.title = o.title;
  Object.assign(box, stepCounter(o.n, o.total));
  box.prompt = o.prompt;
  box.placeholder = o.placeholder;
  box.value = o.value ?? '';
  box.ignoreFocusOut = true;
  box.buttons = o.n > 1 ? [vscode.QuickInputButtons.Back] : [];
  const disposables: vscode.Disposable[] = [];
  return new Promise<string>((resolve, reject) => {
    disposables.push(
      box.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && reject(BACK)),
      box.onDidChangeValue((v) => (box.validationMessage = o.validate?.(v))),
      box.onDidAccept(() => {
        const problem = o.validate?.(box.value);
        box.validationMessage = problem;
        if (problem) return;
        box.busy = true;
        box.enabled = false;
        resolve(box.value);
      }),
      box.onDidHide(() => reject(CANCEL)),
    );
    show(box);
    record('input', [o.title, o.prompt].filter(Boolean).join(': '), stepRecord(o));
  }).finally(() => disposables.forEach((d) => d.dispose()));
}

function stepRecord(o: StepPickOptions): { step?: string; back?: boolean } {
  const c = stepCounter(o.n, o.total);
  return { ...(c.step ? { step: `${c.step}/${c.totalSteps}` } : {}), back: o.n > 1 };
}
