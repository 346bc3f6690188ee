// Read-only documents of files inside snapshots: `devsnap-snapshot:/etc/hosts?repo=…&id=…&partition=2`,
// served by reading the file through the engine (`devsnap cat`). The compare panel opens two of them
// in VS Code's diff editor (vscode.diff). A file missing from a snapshot (added or removed) reads as
// an empty document.
import * as vscode from 'vscode';
import { EngineError, hasSnapshotFiles } from './engine';
import type { CommandContext } from './commands/common';

export const SNAPSHOT_SCHEME = 'devsnap-snapshot';

export interface SnapshotFileRef {
  repo: string;
  id: string;
  path: string;
  partition?: number;
  /** Shown in the tab title: the snapshot's label. */
  label?: string;
}

export function snapshotFileUri(r: SnapshotFileRef): vscode.Uri {
  const q = new URLSearchParams({ repo: r.repo, id: r.id, ...(r.partition !== undefined ? { partition: String(r.partition) } : {}), ...(r.label ? { label: r.label } : {}) });
  return vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: r.path, query: q.toString() });
}

export function parseSnapshotFileUri(uri: vscode.Uri): SnapshotFileRef {
  const q = new URLSearchParams(uri.query);
  const repo = q.get('repo');
  const id = q.get('id');
  if (uri.scheme !== SNAPSHOT_SCHEME || !repo || !id) throw new Error(`Not a devsnap snapshot file: ${uri.toString()}`);
  const p = q.get('partition');
  return { repo, id, path: uri.path, ...(p ? { partition: Number(p) } : {}), ...(q.get('label') ? { label: q.get('label')! } : {}) };
}

/** First 8000 bytes contain a NUL: treat as binary (what git does). */
export function looksBinary(b: Buffer): boolean {
  return b.subarray(0, 8000).includes(0);
}

export class SnapshotDocumentProvider implements vscode.TextDocumentContentProvider {
  /** Contents read ahead (by the panel, which checks for binary files first), by URI. */
  private readonly cache = new Map<string, string>();

  constructor(private readonly ctx: CommandContext) {}

  /** Reads a file of a snapshot; null when the snapshot has no such file. */
  async read(r: SnapshotFileRef, maxBytes = 16 << 20): Promise<Buffer | null> {
    const engine = this.ctx.engine();
    if (!hasSnapshotFiles(engine)) throw new EngineError('INTERNAL', 'This engine cannot read files inside snapshots.');
    try {
      return await engine.readFile(r.repo, r.id, r.path, { partition: r.partition, maxBytes });
    } catch (err) {
      if (err instanceof EngineError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  remember(uri: vscode.Uri, text: string): void {
    this.cache.set(uri.toString(), text);
    while (this.cache.size > 40) this.cache.delete(this.cache.keys().next().value as string);
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const hit = this.cache.get(uri.toString());
    if (hit !== undefined) return hit;
    const buf = await this.read(parseSnapshotFileUri(uri));
    const text = buf ? buf.toString('utf8') : '';
    this.remember(uri, text);
    return text;
  }
}
