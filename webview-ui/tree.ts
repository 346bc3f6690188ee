// The file tree of the compare panel: changed paths (as the engine pages them, depth-first in name
// order, a directory before its contents) grouped under their directories, with per-directory
// counts and sizes; filtering; flattening into the rows a virtual list shows. Pure logic (no DOM):
// test/unit/webview-tree.test.ts.
import type { ChangeKind, FileChange } from './messages';

export interface Counts {
  added: number;
  removed: number;
  modified: number;
  metadata: number;
}

export interface TreeNode {
  path: string;
  name: string;
  parent: TreeNode | null;
  children: TreeNode[];
  /** The change of this entry itself; null for a directory that only contains changes. */
  change: FileChange | null;
  /** A path changed twice (a type change: removed, then added): the earlier one. */
  previous?: FileChange;
  isDir: boolean;
  depth: number;
  /** Changes of this entry and everything below it. */
  counts: Counts;
  bytesBefore: number;
  bytesAfter: number;
  /** Set by applyFilter: this node or something below matches. */
  visible: boolean;
  /** Set by applyFilter: this node itself matches. */
  matches: boolean;
}

export interface Row {
  node: TreeNode;
  depth: number;
  expanded: boolean;
}

export interface TreeFilter {
  /** Case-insensitive substring of the path; words separated by spaces must all occur. */
  text: string;
  kinds: ReadonlySet<ChangeKind>;
}

const zero = (): Counts => ({ added: 0, removed: 0, modified: 0, metadata: 0 });

function newNode(path: string, name: string, parent: TreeNode | null, isDir: boolean): TreeNode {
  return { path, name, parent, children: [], change: null, isDir, depth: parent ? parent.depth + 1 : -1, counts: zero(), bytesBefore: 0, bytesAfter: 0, visible: true, matches: false };
}

export class ChangeTree {
  readonly root: TreeNode = newNode('/', '/', null, true);
  private readonly byPath = new Map<string, TreeNode>([['/', this.root]]);
  /** Changes added so far. */
  size = 0;

  get(path: string): TreeNode | undefined {
    return this.byPath.get(path);
  }

  private ensureDir(path: string): TreeNode {
    const found = this.byPath.get(path);
    if (found) {
      found.isDir = true;
      return found;
    }
    const cut = path.lastIndexOf('/');
    const parent = this.ensureDir(cut <= 0 ? '/' : path.slice(0, cut));
    const node = newNode(path, path.slice(cut + 1), parent, true);
    parent.children.push(node);
    this.byPath.set(path, node);
    return node;
  }

  /** Adds a page of changes (in the engine's order; later pages after earlier ones). */
  add(changes: readonly FileChange[]): void {
    for (const c of changes) {
      if (c.path === '/') continue;
      const cut = c.path.lastIndexOf('/');
      const parent = this.ensureDir(cut <= 0 ? '/' : c.path.slice(0, cut));
      let node = this.byPath.get(c.path);
      if (!node) {
        node = newNode(c.path, c.path.slice(cut + 1), parent, c.type === 'dir');
        parent.children.push(node);
        this.byPath.set(c.path, node);
      } else if (node.change) {
        node.previous = node.change;
      }
      node.change = c;
      node.isDir = node.isDir || c.type === 'dir';
      const before = c.type === 'dir' ? 0 : (c.sizeBefore ?? 0);
      const after = c.type === 'dir' ? 0 : (c.sizeAfter ?? 0);
      for (let n: TreeNode | null = node; n; n = n.parent) {
        n.counts[c.change]++;
        n.bytesBefore += before;
        n.bytesAfter += after;
      }
      this.size++;
    }
  }

  /** Marks visible/matching nodes; returns how many changes match. */
  applyFilter(f: TreeFilter): number {
    const words = f.text.toLowerCase().split(/\s+/).filter(Boolean);
    const all = f.kinds.size === 4;
    let matched = 0;
    const visit = (n: TreeNode): boolean => {
      let any = false;
      for (const c of n.children) if (visit(c)) any = true;
      const path = n.path.toLowerCase();
      n.matches = !!n.change && (all || f.kinds.has(n.change.change)) && words.every((w) => path.includes(w));
      if (n.matches) matched++;
      n.visible = n === this.root || n.matches || any;
      return n.matches || any;
    };
    visit(this.root);
    return matched;
  }

  /** Every node, depth-first (for selection over a subtree and the like). */
  *walk(from: TreeNode = this.root): Generator<TreeNode> {
    const stack = [from];
    while (stack.length) {
      const n = stack.pop()!;
      yield n;
      for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
    }
  }
}

/**
 * The rows to show: visible nodes below the root, children of expanded directories only.
 * `isExpanded(node)` decides per directory (a filter with text expands everything that matches).
 */
export function flatten(tree: ChangeTree, isExpanded: (n: TreeNode) => boolean): Row[] {
  const rows: Row[] = [];
  const visit = (n: TreeNode): void => {
    for (const c of n.children) {
      if (!c.visible) continue;
      const expanded = c.children.length > 0 && isExpanded(c);
      rows.push({ node: c, depth: c.depth, expanded });
      if (expanded) visit(c);
    }
  };
  visit(tree.root);
  return rows;
}

/** The expansion rule: explicit choices first, then a filter with text opens all, else the top two levels. */
export function expansionRule(expanded: ReadonlySet<string>, collapsed: ReadonlySet<string>, filtering: boolean, autoDepth = 2): (n: TreeNode) => boolean {
  return (n) => {
    if (collapsed.has(n.path)) return false;
    if (expanded.has(n.path)) return true;
    return filtering || n.depth < autoDepth;
  };
}

export const CHANGE_LETTER: Record<ChangeKind, string> = { added: 'A', removed: 'D', modified: 'M', metadata: 'm' };

/** "mode, owner" and the like for a tooltip. */
export function describeChange(c: FileChange): string {
  const what = c.change === 'metadata' ? 'metadata changed' : c.change;
  return c.detail.length ? `${what} (${c.detail.join(', ')})` : what;
}

/** Whether a change can be shown in a text diff editor (a regular file on at least one side). */
export function canDiff(n: TreeNode): boolean {
  return !!n.change && n.change.type === 'file';
}

/** The next focus index for a key in the tree (null: not a movement key). */
export function moveFocus(key: string, index: number, count: number, pageRows: number): number | null {
  if (count === 0) return null;
  switch (key) {
    case 'ArrowDown':
      return Math.min(count - 1, index + 1);
    case 'ArrowUp':
      return Math.max(0, index - 1);
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    case 'PageDown':
      return Math.min(count - 1, index + Math.max(1, pageRows - 1));
    case 'PageUp':
      return Math.max(0, index - Math.max(1, pageRows - 1));
    default:
      return null;
  }
}
