// Pure path helpers for settings (no `vscode` import).
import * as os from 'os';
import * as path from 'path';

/**
 * Resolves a path from a setting: `~` is the home folder, `${workspaceFolder}` the first
 * workspace folder, relative paths are relative to that folder (or home without one).
 * Empty or blank values give undefined.
 */
export function resolveSettingPath(value: unknown, workspaceFolder?: string, home: string = os.homedir()): string | undefined {
  if (typeof value !== 'string') return undefined;
  let p = value.trim();
  if (!p) return undefined;
  if (workspaceFolder) p = p.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  if (p === '~') p = home;
  else if (p.startsWith('~/')) p = path.join(home, p.slice(2));
  if (!path.isAbsolute(p)) p = path.resolve(workspaceFolder ?? home, p);
  return path.normalize(p);
}

/**
 * The repository setting: a folder, resolved as above, or an S3 location ("s3:https://host/bucket")
 * kept as written, so that the engine names it (it takes folders only for now) instead of it
 * becoming a folder called "s3:https:" in the workspace.
 */
export function resolveRepositorySetting(value: unknown, workspaceFolder?: string, home: string = os.homedir()): string | undefined {
  if (typeof value === 'string' && /^\s*s3:/.test(value)) return value.trim();
  return resolveSettingPath(value, workspaceFolder, home);
}
