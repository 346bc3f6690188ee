// Multi-step flows (Take Snapshot, Restore, Undo, Compare With…) as a stack of steps, the pattern of
// VS Code's extension-samples (quickinput-sample/multiStepInput.ts): each step shows one quick pick
// or input box and returns the next step; Back (QuickInputButtons.Back) goes to the step before,
// Escape ends the flow. No `vscode` import (unit-tested in test/unit/extension/extension-steps.test.ts);
// extension/stepInput.ts draws the steps.

/** Thrown by a step when the user pressed Back. */
export const BACK = Symbol('back');
/** Thrown by a step when the user dismissed it (Escape, focus elsewhere with no ignoreFocusOut). */
export const CANCEL = Symbol('cancel');

/** One step: shows its input (number `n`, 1-based, counting the steps taken to reach it) and returns the next step, or nothing when the flow is complete. */
export type Step = (n: number) => Promise<Step | void>;

/**
 * Runs a flow from `start`: resolves 'done' when a step returns no next step, 'cancelled' when a
 * step threw CANCEL. A step that threw BACK runs the step before it again (the first step again
 * if there is none). Other errors end the flow and are rethrown.
 */
export async function runSteps(start: Step): Promise<'done' | 'cancelled'> {
  const stack: Step[] = [];
  let step: Step | undefined = start;
  while (step) {
    stack.push(step);
    try {
      const next: Step | void = await step(stack.length);
      if (!next) return 'done';
      step = next;
    } catch (err) {
      if (err === BACK) {
        stack.pop(); // this step
        step = stack.pop() ?? start; // the one before, shown again
      } else if (err === CANCEL) {
        return 'cancelled';
      } else {
        throw err;
      }
    }
  }
  return 'done';
}

/**
 * The counter a step shows ("2/3" in the title): none for a flow of one step. `total` counts the
 * steps of the whole flow as it stands (a flow may skip steps: Restore asks for a partition only
 * when the snapshot has more than one).
 */
export function stepCounter(n: number, total: number): { step?: number; totalSteps?: number } {
  return total > 1 ? { step: n, totalSteps: Math.max(total, n) } : {};
}
