// A cancellation token like VS Code's, for driving the extension's engines outside VS Code.
import type { CancellationLike } from '../../extension/engine';

export class Token implements CancellationLike {
  isCancellationRequested = false;
  private listeners: ((e: unknown) => unknown)[] = [];
  onCancellationRequested(l: (e: unknown) => unknown) {
    this.listeners.push(l);
    return { dispose: () => (this.listeners = this.listeners.filter((x) => x !== l)) };
  }
  cancel() {
    this.isCancellationRequested = true;
    for (const l of this.listeners) l(undefined);
  }
}
