/**
 * The operator's window on the actor tree, like Erlang's observer: GET /admin/tree serves the
 * supervision tree (paged, so 10,000 connections stay one small answer) and POST /admin/kill crashes
 * one actor so its supervisor applies its strategy. Both need `Authorization: Bearer <adminToken>`;
 * with no token configured they answer 404, as if they did not exist. Under `serve --workers N`,
 * GET /admin/workers lists the worker processes, GET /admin/tree?worker=<n> serves worker n's tree
 * and POST /admin/kill {"worker": n, ...} kills in worker n, from whichever worker the request
 * reached (relayed by the primary, cluster/).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ObserverioError } from '../errors.js';
import { NoSuchActor, type Cell, type Runtime, type TreeNode, type TreeOptions } from '../otp/index.js';
import { route, type HttpContext, type RouteModule } from './context.js';
import { bearer, readJson, type Reply, type RequestInfo } from './respond.js';
import type { KillAnswer, KillBody, TreeNode as WireTreeNode } from '../wire.js';
import type { WorkersAnswer } from '../cluster/protocol.js';

export const TREE_LIMIT_DEFAULT = 50;
export const TREE_LIMIT_MAX = 1000;
/** Deeper than any tree this daemon builds; a bound so `depth` stays a small number. */
const DEPTH_MAX = 64;
/** A killed supervisor is shown with its direct children only: the answer is about the kill. */
const KILL_VIEW: TreeOptions = { limit: TREE_LIMIT_DEFAULT, depth: 1 };
const PATH_MAX = 1024;

const killSchema = z
  .object({
    path: z
      .string({ error: 'path must be a string' })
      .min(1, 'path must not be empty')
      .max(PATH_MAX, `path is longer than ${PATH_MAX} characters`)
      .regex(/^\/[^\s]*$/, 'path must be an actor path such as /observerio/tcp/listener'),
    reason: z.string({ error: 'reason must be a string' }).min(1, 'reason must not be empty').max(200, 'reason is longer than 200 characters').optional(),
    worker: z.number({ error: 'worker must be a worker number' }).int('worker must be a whole number').min(1, 'worker must be at least 1').max(999, 'worker must be at most 999').optional(),
  })
  .strict();

const TREE_PARAMS = ['limit', 'offset', 'expand', 'depth'] as const;

function bad(message: string): never {
  throw new ObserverioError('bad_request', message);
}

function intParam(params: URLSearchParams, name: string, max: number): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  if (!/^\d{1,9}$/.test(raw)) bad(`${name} must be a whole number between 0 and ${max}, got ${JSON.stringify(raw.slice(0, 40))}`);
  const n = Number(raw);
  if (n > max) bad(`${name} must be at most ${max}, got ${n}`);
  return n;
}

/** Reads and checks /admin/tree's query: limit, depth, and expand with offset to page one supervisor. */
export function parseTreeQuery(query: string): TreeOptions {
  const params = new URLSearchParams(query);
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!(TREE_PARAMS as readonly string[]).includes(key)) bad(`unknown query parameter ${JSON.stringify(key.slice(0, 40))}; expected ${TREE_PARAMS.join(', ')}`);
    if (seen.has(key)) bad(`query parameter ${key} is given more than once`);
    seen.add(key);
  }
  const opts: TreeOptions = { limit: intParam(params, 'limit', TREE_LIMIT_MAX) ?? TREE_LIMIT_DEFAULT };
  const depth = intParam(params, 'depth', DEPTH_MAX);
  if (depth !== undefined) opts.depth = depth;
  const expand = params.get('expand');
  if (expand !== null) {
    if (!expand.startsWith('/') || expand.length > PATH_MAX) bad('expand must be an actor path such as /observerio/tcp/conns');
    opts.expand = expand;
  }
  const offset = intParam(params, 'offset', 999_999_999);
  if (offset !== undefined) {
    if (opts.expand === undefined) bad('offset pages the children of one supervisor: give expand=<path> with it');
    opts.offset = offset;
  }
  return opts;
}

/**
 * Takes `worker=<n>` (1..count) out of /admin/tree's query; the rest is parseTreeQuery's. A daemon
 * without workers is worker 1 of 1, so scripts written for --workers work against it too.
 */
export function takeWorker(query: string, count: number): { worker: number | null; query: string } {
  const params = new URLSearchParams(query);
  const all = params.getAll('worker');
  if (all.length === 0) return { worker: null, query };
  if (all.length > 1) bad('query parameter worker is given more than once');
  const raw = all[0] as string;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1) bad(`worker must be a worker number 1-${count}, got ${JSON.stringify(raw.slice(0, 40))}`);
  const worker = Number(raw);
  if (worker > count) throw new ObserverioError('not_found', count === 1 ? `no worker ${worker}; this daemon runs one process (serve --workers N runs more)` : `no worker ${worker}; this daemon runs workers 1-${count}`);
  params.delete('worker');
  return { worker, query: params.toString() };
}

/** SHA-256 first, so the comparison is constant-time whatever the length of what was sent. */
const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

function authorizer(token: string): (info: RequestInfo) => boolean {
  const expected = digest(token);
  return (info) => {
    const given = bearer(info);
    return given !== null && timingSafeEqual(digest(given), expected);
  };
}

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Bearer realm="observerio-admin"' };

/** A node without its subtree: enough to show what happened to a killed actor's supervisor. */
function summary(n: TreeNode): TreeNode {
  const { children: _children, truncated: _truncated, ...rest } = n;
  return rest;
}

function afterKill(rt: Runtime, path: string, killed: Cell): KillAnswer {
  // When the kill escalated, the supervisor above restarted and built new cells: show those.
  const now = rt.find(path) ?? killed;
  const sup = rt.find(path.slice(0, path.lastIndexOf('/')));
  return { node: now.node(KILL_VIEW, 0), supervisor: sup ? summary(sup.node({ limit: 0, depth: 0 }, 0)) : null };
}

/**
 * Crashes the actor at `path` so its supervisor applies its strategy, and answers what became of it:
 * POST /admin/kill in the worker the request reached, or in another worker on the primary's word.
 */
export async function killActor(rt: Runtime, rawPath: string, reason: string | null, log: Logger, by: string | null = null): Promise<KillAnswer> {
  const path = rawPath.replace(/\/+$/, '') || '/';
  if (path === rt.root.path || path === '/') bad('the root supervisor cannot be killed; stop the daemon instead');
  // Logged before acting, so the crash reports that follow have their cause above them.
  log.warn({ path, by, reason }, `operator kills ${path}`);
  let killed: Cell;
  try {
    killed = await rt.kill(path, reason ?? 'killed by operator');
  } catch (err) {
    if (err instanceof NoSuchActor) throw new ObserverioError('not_found', err.message);
    throw err;
  }
  return afterKill(rt, path, killed);
}

export const adminRoutes: RouteModule = (app, ctx: HttpContext) => {
  const token = ctx.config.adminToken;
  const authorized = token === null ? () => false : authorizer(token);
  const log = ctx.logger.child({ component: 'admin' });

  /** Runs `handler` only for an authorised operator; disabled admin answers like an unknown route. */
  const guarded = (name: string, handler: (reply: Reply, info: RequestInfo) => void | Promise<void>) =>
    route(ctx, name, (reply, info) => {
      if (token === null) return reply.error('not_found', 'no such route');
      if (!authorized(info)) return reply.error('unauthorized', 'admin routes need Authorization: Bearer <admin token>', UNAUTHORIZED_HEADERS);
      return handler(reply, info);
    });

  app.get(
    '/admin/workers',
    guarded('admin_workers', async (reply) => {
      const answer: WorkersAnswer = ctx.workers
        ? await ctx.workers.workers()
        : { self: 1, primaryPid: process.pid, workers: [{ id: 1, pid: process.pid, status: 'ready', restarts: 0, startedAt: null, nodeId: ctx.nodeId, lastExit: null }] };
      reply.json(200, answer);
    }),
  );

  app.get(
    '/admin/tree',
    guarded('admin_tree', async (reply, info) => {
      const { worker, query } = takeWorker(info.query, ctx.workers?.count ?? 1);
      const opts = parseTreeQuery(query);
      if (worker !== null && ctx.workers && worker !== ctx.workers.self) {
        reply.json(200, (await ctx.workers.tree(worker, opts)) satisfies WireTreeNode);
        return;
      }
      try {
        reply.json(200, ctx.runtime().tree(opts) satisfies WireTreeNode);
      } catch (err) {
        if (err instanceof NoSuchActor) throw new ObserverioError('not_found', err.message);
        throw err;
      }
    }),
  );

  app.post(
    '/admin/kill',
    guarded('admin_kill', async (reply, info) => {
      const body: KillBody = await readJson(reply, info, ctx.config.http.maxBodyBytes, killSchema);
      const reason = body.reason ?? null;
      const count = ctx.workers?.count ?? 1;
      if (body.worker !== undefined && body.worker > count) {
        throw new ObserverioError('not_found', count === 1 ? `no worker ${body.worker}; this daemon runs one process (serve --workers N runs more)` : `no worker ${body.worker}; this daemon runs workers 1-${count}`);
      }
      if (body.worker !== undefined && ctx.workers && body.worker !== ctx.workers.self) {
        log.warn({ path: body.path, worker: body.worker, by: info.remoteAddress, reason }, `operator asks worker ${body.worker} to kill ${body.path}`);
        reply.json(200, await ctx.workers.kill(body.worker, body.path, reason));
        return;
      }
      reply.json(200, await killActor(ctx.runtime(), body.path, reason, log, info.remoteAddress));
    }),
  );

  // Anything else under /admin (another method, another path) is an API mistake, never a page, even
  // if a catch-all route serves the dashboard; disabled or not, it answers like an unknown route.
  app.any(
    '/admin/*',
    route(ctx, 'admin_unknown', (reply) => reply.error('not_found', 'no such route')),
  );
};
