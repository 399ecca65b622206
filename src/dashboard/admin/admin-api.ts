/**
 * The admin endpoints and where their token lives: sessionStorage, so it is forgotten with the tab
 * and never shared with the user session.
 */
import { request } from '../api';
import type { TreeNode } from '../../wire.js';

const KEY = 'observerio.adminToken';
/** Who wants to know when the token is given or forgotten (the shell shows the Admin tab only then). */
const tokenListeners = new Set<(hasToken: boolean) => void>();

export function onAdminTokenChange(fn: (hasToken: boolean) => void): () => void {
  tokenListeners.add(fn);
  return () => tokenListeners.delete(fn);
}

export function loadAdminToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveAdminToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage disabled: the token lasts for this page only
  }
  for (const fn of tokenListeners) fn(!!token);
}

export function fetchTree(token: string, signal?: AbortSignal): Promise<TreeNode> {
  return request<TreeNode>('GET', '/admin/tree', { token, signal });
}

/** One page of a node's children (`?expand=<path>&offset=&limit=`). */
export async function fetchChildren(
  token: string,
  path: string,
  offset: number,
  limit: number,
  signal?: AbortSignal,
): Promise<{ children: TreeNode[]; childCount: number | null }> {
  const qs = new URLSearchParams({ expand: path, offset: String(offset), limit: String(limit) });
  const res = await request<unknown>('GET', `/admin/tree?${qs}`, { token, signal });
  return extractPage(res, path);
}

/**
 * The page answer may be the expanded node itself, `{ node }`, `{ children }`, or the whole tree
 * with that node's children paged; all of them are read the same way.
 */
export function extractPage(res: unknown, path: string): { children: TreeNode[]; childCount: number | null } {
  const obj = (res ?? {}) as { node?: TreeNode; children?: TreeNode[]; childCount?: number; path?: string };
  const candidates: unknown[] = [obj.node, obj];
  for (const c of candidates) {
    const found = c && typeof c === 'object' ? findNode(c as TreeNode, path) : null;
    if (found && Array.isArray(found.children)) {
      return { children: found.children, childCount: found.childCount ?? null };
    }
  }
  if (Array.isArray(obj.children)) return { children: obj.children, childCount: obj.childCount ?? null };
  return { children: [], childCount: null };
}

export function findNode(root: TreeNode, path: string): TreeNode | null {
  if (root.path === path) return root;
  // Paths' separator is the server's business, so search the whole (small, paged) tree.
  for (const c of root.children ?? []) {
    const hit = findNode(c, path);
    if (hit) return hit;
  }
  return null;
}

/** A copy of `root` with the node at `path` given these children (the other nodes are shared). */
export function withChildren(root: TreeNode, path: string, children: TreeNode[], childCount: number | null): TreeNode {
  if (root.path === path) {
    return { ...root, children, childCount: childCount ?? root.childCount, truncated: (childCount ?? root.childCount ?? 0) > children.length };
  }
  if (!root.children) return root;
  let changed = false;
  const next = root.children.map((c) => {
    const r = withChildren(c, path, children, childCount);
    if (r !== c) changed = true;
    return r;
  });
  return changed ? { ...root, children: next } : root;
}

export function killNode(token: string, path: string): Promise<{ node?: Partial<TreeNode> }> {
  return request('POST', '/admin/kill', { token, body: { path } });
}

export function walk(root: TreeNode, fn: (n: TreeNode, depth: number) => void, depth = 0): void {
  fn(root, depth);
  for (const c of root.children ?? []) walk(c, fn, depth + 1);
}
