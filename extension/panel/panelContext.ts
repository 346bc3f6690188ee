// What the compare panel's parts share, passed to each explicitly: the extension's command context,
// posting to the webview and the snapshot lookups; plus the small helpers they all use.
import { EngineError, hasSnapshotFiles, SnapshotFilesEngine } from '../engine';
import type { CommandContext } from '../commands/common';
import type { HostMessage } from '../../webview-ui/messages';
import type { PanelSnapshots } from './snapshotList';

export interface PanelContext {
  readonly ctx: CommandContext;
  readonly snapshots: PanelSnapshots;
  /** Posts to the webview (and keeps the message for the in-host tests). */
  post(m: HostMessage): void;
}

export function repoOf(pc: PanelContext): string | undefined {
  return pc.ctx.config().repository;
}

export function snapshotFiles(pc: PanelContext): SnapshotFilesEngine {
  const e = pc.ctx.engine();
  if (!hasSnapshotFiles(e)) throw new EngineError('INTERNAL', 'This engine cannot look inside snapshots.');
  return e;
}

export function messageOf(err: unknown): string {
  return err instanceof EngineError ? err.toUserMessage() : ((err as Error)?.message ?? String(err));
}
