/**
 * What the admin, supervision and metrics tests share: calls to /admin with the token, lookups in
 * the tree, a reader for Prometheus text, and devices that verify over real TCP.
 */
import { expect } from 'chai';
import type { TreeNode } from '../../src/otp/index.js';
import type { Daemon } from './daemon.js';
import { LineClient } from './tcp-client.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  bytes: number;
}

async function answer<T>(res: Response): Promise<Answer<T>> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Prometheus text or an empty body: kept as text.
  }
  return { status: res.status, headers: res.headers, body: body as T, bytes: Buffer.byteLength(text) };
}

export interface KillAnswer {
  node: TreeNode;
  supervisor: TreeNode | null;
}

export class AdminClient {
  constructor(
    private readonly daemon: Daemon,
    private readonly token: string | null = ADMIN_TOKEN,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token === null ? extra : { authorization: `Bearer ${this.token}`, ...extra };
  }

  async tree(query = ''): Promise<Answer<TreeNode>> {
    return answer<TreeNode>(await fetch(`${this.daemon.http}/admin/tree${query}`, { headers: this.headers() }));
  }

  /** The tree, asserting a 200. */
  async tree200(query = ''): Promise<TreeNode> {
    const a = await this.tree(query);
    expect(a.status, JSON.stringify(a.body)).to.equal(200);
    return a.body;
  }

  async killRaw(body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer<KillAnswer>> {
    return answer<KillAnswer>(await fetch(`${this.daemon.http}/admin/kill`, { method: 'POST', headers: this.headers(headers), body }));
  }

  kill(path: string): Promise<Answer<KillAnswer>> {
    return this.killRaw(JSON.stringify({ path }));
  }

  /** Kills `path`, asserting a 200, and returns the answer. */
  async kill200(path: string): Promise<KillAnswer> {
    const a = await this.kill(path);
    expect(a.status, JSON.stringify(a.body)).to.equal(200);
    return a.body;
  }
}

/** The node at `path` in a rendered tree, or undefined. */
export function findNode(root: TreeNode, path: string): TreeNode | undefined {
  if (root.path === path) return root;
  for (const c of root.children ?? []) {
    const hit = findNode(c, path);
    if (hit) return hit;
  }
  return undefined;
}

export function nodeAt(root: TreeNode, path: string): TreeNode {
  const n = findNode(root, path);
  if (!n) throw new Error(`no ${path} in the tree`);
  return n;
}

/** The connection actors' nodes, read from the daemon's tree (all of them, up to 1000). */
export function connectionNodes(daemon: Daemon): TreeNode[] {
  return daemon.runtime.tree({ expand: '/observerio/tcp/conns', limit: 1000 }).children ?? [];
}

/** The connection actor of a device, found by its device id. */
export function connectionOf(daemon: Daemon, deviceId: string): TreeNode {
  const n = connectionNodes(daemon).find((c) => c.info?.deviceId === deviceId && c.status !== 'stopped');
  if (!n) throw new Error(`no connection actor for device ${deviceId}`);
  return n;
}

/** Opens a TCP connection and verifies it for `apiKey` (as device `deviceId` when given). */
export async function device(daemon: Daemon, apiKey: string, deviceId?: string): Promise<LineClient> {
  const c = await LineClient.open(daemon.tcpPort);
  c.line(deviceId ? `v:${apiKey}:${deviceId}` : `v:${apiKey}`);
  expect(await c.next()).to.equal('OK');
  return c;
}

/** Decodes a daemon → SDK `v:<apiKey>:<base64>` line. */
export function decodeVarsLine(line: string, apiKey: string): Array<{ name: string; type: string; value: string }> {
  expect(line.startsWith(`v:${apiKey}:`), line).to.equal(true);
  return JSON.parse(Buffer.from(line.slice(apiKey.length + 3), 'base64').toString('utf8')) as Array<{ name: string; type: string; value: string }>;
}

/**
 * The value of one series in Prometheus text: `name` with every label in `labels` (others may be
 * present); the sum when several series match, undefined when none does.
 */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1] as string] = l[2] as string;
    if (!Object.entries(labels).every(([k, v]) => have[k] === v)) continue;
    total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

export async function scrape(daemon: Daemon): Promise<string> {
  const res = await fetch(`${daemon.http}/metrics`);
  expect(res.status).to.equal(200);
  return res.text();
}
