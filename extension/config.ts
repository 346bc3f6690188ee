// Typed access to the `devsnap.*` settings (contributed in package.json). Read them fresh each
// time they are needed (readConfig()), so changes take effect without a reload; the extension
// also listens to onDidChangeConfiguration to refresh the tree.
import * as vscode from 'vscode';
import type { RetentionPolicy } from './engine';
import { resolveRepositorySetting, resolveSettingPath } from './paths';

export type Elevation = 'auto' | 'pkexec' | 'sudo' | 'none';

export interface DevsnapConfig {
  /** Absolute path of the snapshot repository, or undefined when not configured. */
  repository?: string;
  /** The repository setting as written (for messages). */
  repositoryRaw: string;
  /** Block device or image file preselected by Take Snapshot. */
  defaultSource?: string;
  /** Disk image files offered as sources besides the engine's disks (absolute paths). */
  diskImages: string[];
  /** zstd level, 1-19. */
  compressionLevel: number;
  retention: Required<RetentionPolicy>;
  elevation: Elevation;
  /** Minutes the elevated helper stays without a request before it exits. */
  helperIdleMinutes: number;
  /** Offer loop devices, RAM disks and zram in the disk pickers (they are left out by default). */
  showVirtualDisks: boolean;
  /** Keep the recovery kit (devsnap with its own Node) in the repository, written and refreshed in the background. */
  recoveryKit: boolean;
}

export const SECTION = 'devsnap';

function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function nonNegativeInt(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

export function readConfig(): DevsnapConfig {
  const c = vscode.workspace.getConfiguration(SECTION);
  const ws = workspaceFolder();
  const raw = c.get<string>('repository', '') ?? '';
  const level = c.get<number>('compressionLevel', 3);
  const images = c.get<unknown>('diskImages', []);
  const elevation = c.get<string>('elevation', 'auto');
  return {
    repository: resolveRepositorySetting(raw, ws),
    repositoryRaw: typeof raw === 'string' ? raw : '',
    defaultSource: resolveSettingPath(c.get<string>('defaultSource', ''), ws),
    diskImages: Array.isArray(images) ? images.map((p) => resolveSettingPath(p, ws)).filter((p): p is string => !!p) : [],
    compressionLevel: typeof level === 'number' && Number.isFinite(level) ? Math.min(19, Math.max(1, Math.round(level))) : 3,
    retention: {
      keepLast: nonNegativeInt(c.get('retention.keepLast')),
      keepDaily: nonNegativeInt(c.get('retention.keepDaily')),
      keepWeekly: nonNegativeInt(c.get('retention.keepWeekly')),
      keepMonthly: nonNegativeInt(c.get('retention.keepMonthly')),
    },
    elevation: (['auto', 'pkexec', 'sudo', 'none'] as const).includes(elevation as Elevation) ? (elevation as Elevation) : 'auto',
    helperIdleMinutes: Math.max(1, nonNegativeInt(c.get('helper.idleMinutes', 10)) || 10),
    showVirtualDisks: c.get<unknown>('showVirtualDisks', false) === true,
    recoveryKit: c.get<unknown>('recoveryKit', true) !== false,
  };
}

/** Writes the repository setting (user settings unless the workspace already overrides it). */
export async function writeRepository(folder: string, target?: vscode.ConfigurationTarget): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION);
  let where = target;
  if (where === undefined) {
    const inspect = c.inspect<string>('repository');
    where =
      inspect?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : inspect?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
  }
  await c.update('repository', folder, where);
}
