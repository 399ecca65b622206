/**
 * Rendering the supervision tree for operators (Erlang's which_children / count_children): every
 * supervisor lists a page of its children plus counts, so a supervisor with 10,000 connections
 * answers in one page instead of 10,000 nodes.
 */
import type { Cell } from './cell.js';
import type { Status, TreeNode, TreeOptions } from './types.js';

export const DEFAULT_TREE_LIMIT = 50;

export function renderChildren(node: TreeNode, kids: Iterable<Cell>, opts: TreeOptions, depth: number, size?: number): TreeNode {
  const all = Array.isArray(kids) ? (kids as Cell[]) : null;
  const limit = Math.max(0, opts.limit ?? DEFAULT_TREE_LIMIT);
  const paged = opts.expand === node.path;
  const offset = paged ? Math.max(0, opts.offset ?? 0) : 0;
  const counts: Partial<Record<Status, number>> = {};
  const page: Cell[] = [];
  let i = 0;
  for (const c of kids) {
    counts[c.status] = (counts[c.status] ?? 0) + 1;
    if (i >= offset && page.length < limit) page.push(c);
    i += 1;
  }
  const total = size ?? all?.length ?? i;
  node.childCount = total;
  node.counts = counts;
  if (offset > 0) node.offset = offset;
  node.truncated = offset + page.length < total || offset > 0;
  if (opts.depth !== undefined && depth >= opts.depth) {
    node.children = [];
    node.truncated = total > 0;
    return node;
  }
  node.children = page.map((c) => c.node(opts, depth + 1));
  return node;
}
