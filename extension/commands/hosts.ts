// devsnap.filterByHost: in a repository several workstations share, show one host's snapshots (this
// computer's first) or every host's. The Snapshots view's groups name their host either way.
import * as os from 'os';
import * as vscode from 'vscode';
import * as ui from '../ui';
import type { CommandContext } from './common';

interface HostItem extends vscode.QuickPickItem {
  host: string | undefined;
}

/** `{ host }` picks without asking (tests, keybindings); `{ host: null }` shows every host. Resolves with the filter now in place. */
export async function filterByHost(ctx: CommandContext, args: { host?: string | null } = {}): Promise<string | undefined> {
  const hosts = ctx.tree.hosts;
  let host: string | undefined;
  if ('host' in args) host = args.host ?? undefined;
  else {
    const count = (h: string) => ctx.tree.snapshots.filter((s) => s.host === h).length;
    const me = os.hostname();
    const items: HostItem[] = [
      { label: 'All hosts', description: `${hosts.length} hosts · ${ctx.tree.snapshots.length} snapshots`, host: undefined },
      ...[...hosts]
        .sort((a, b) => Number(b === me) - Number(a === me) || a.localeCompare(b))
        .map((h) => ({ label: h, description: `${h === me ? 'this computer · ' : ''}${count(h)} snapshot${count(h) === 1 ? '' : 's'}`, host: h })),
    ];
    const picked = await ui.pick(items, { title: 'devsnap: Filter by Host', placeHolder: `Whose snapshots? (now: ${ctx.tree.hostFilter ?? 'all hosts'})` });
    if (!picked) return ctx.tree.hostFilter;
    host = picked.host;
  }
  if (host !== undefined && !hosts.includes(host)) {
    void ui.warn(`The repository holds no snapshot of a host called ${host}.`);
    return ctx.tree.hostFilter;
  }
  ctx.tree.setHostFilter(host); // every group still says whose disk it is ("on alice-laptop")
  return host;
}
