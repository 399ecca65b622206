/**
 * What the primary of `observerio serve --workers N` and its worker processes say to each other over
 * node:cluster's IPC channel, and what the admin routes answer about the workers. The primary holds
 * no HTTP listener: a worker asked about another worker (its tree, a kill in it, its metrics) asks
 * the primary, which asks that worker and relays the answer (no Redis round trip, so the trees stay
 * readable while Redis is down).
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { TreeNode, TreeOptions } from '../otp/index.js';
import type { KillAnswer } from '../wire.js';

/** One worker's metrics as prom-client's JSON, for the answering worker to aggregate. */
export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** Set by the primary in each worker's environment: which slot it fills and the ports all share. */
export const WORKER_ENV = 'OBSERVERIO_CLUSTER_WORKER';

export interface WorkerRole {
  /** 1..count; a restarted worker keeps its slot's id. */
  id: number;
  count: number;
  tcpPort: number;
  httpPort: number;
}

export type WorkerStatus = 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped';

/** One slot of GET /admin/workers. */
export interface WorkerInfo {
  id: number;
  /** The process serving this slot now; null while it waits to be restarted. */
  pid: number | null;
  status: WorkerStatus;
  /** Times this slot's process was restarted after it died. */
  restarts: number;
  startedAt: string | null;
  /** The daemon node id of the running process (as in logs and presence records). */
  nodeId: string | null;
  lastExit: { pid: number; code: number | null; signal: string | null; at: string } | null;
}

/** GET /admin/workers → 200. */
export interface WorkersAnswer {
  /** The worker that answered. */
  self: number;
  primaryPid: number;
  workers: WorkerInfo[];
}

/** What the admin routes see of the other workers (null in a single-process daemon). */
export interface WorkerDirectory {
  readonly self: number;
  readonly count: number;
  workers(): Promise<WorkersAnswer>;
  /** Worker `id`'s supervision tree; rejects with an ObserverioError (not_found, unavailable). */
  tree(id: number, opts: TreeOptions): Promise<TreeNode>;
  /** Kills the actor at `path` in worker `id`, as POST /admin/kill does in the worker it reached. */
  kill(id: number, path: string, reason: string | null): Promise<KillAnswer>;
  /** Worker `id`'s metrics as Prometheus text. */
  metricsText(id: number): Promise<string>;
  /** Every ready worker's metrics as JSON (a worker that is not ready is left out, and named). */
  allMetrics(): Promise<{ metrics: WorkerMetrics[]; missing: number[] }>;
}

/** What one worker answers about itself. */
export type LocalQuestion = { what: 'tree'; opts: TreeOptions } | { what: 'kill'; path: string; reason: string | null } | { what: 'metrics'; format: 'text' | 'json' };

/** How a worker answers its LocalQuestions: set once its app runs. */
export interface LocalAnswers {
  tree(opts: TreeOptions): TreeNode;
  kill(path: string, reason: string | null): Promise<KillAnswer>;
  metrics(format: 'text' | 'json'): Promise<string | WorkerMetrics>;
}

/** Errors that cross the channel keep the code of the error catalog, so routes answer them as such. */
export interface Failure {
  code: 'not_found' | 'unavailable' | 'bad_request' | 'internal';
  message: string;
}

export type Answer = { ok: true; value: unknown } | ({ ok: false } & Failure);

export type Question = { what: 'workers' } | { what: 'worker'; worker: number; q: LocalQuestion };

/** Every message carries this tag so each side ignores whatever else travels on the channel. */
export const TAG = 'observerio-cluster';

export type ToPrimary =
  | { tag: typeof TAG; t: 'ready'; nodeId: string }
  | { tag: typeof TAG; t: 'ask'; rid: number; q: Question }
  | { tag: typeof TAG; t: 'answer'; rid: number; a: Answer };

export type ToWorker =
  | { tag: typeof TAG; t: 'stop' }
  | { tag: typeof TAG; t: 'ask'; rid: number; q: LocalQuestion }
  | { tag: typeof TAG; t: 'answer'; rid: number; a: Answer };

export function isMessage<T extends { tag: typeof TAG }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG;
}

/** How long a question to another worker may take before the route answers unavailable. */
export const ASK_TIMEOUT_MS = 3000;

/** Reads the role the primary gave this process; null when it is not a worker of `--workers`. */
export function workerRole(env: NodeJS.ProcessEnv = process.env): WorkerRole | null {
  const raw = env[WORKER_ENV];
  if (raw === undefined) return null;
  const r = JSON.parse(raw) as WorkerRole;
  if (![r.id, r.count, r.tcpPort, r.httpPort].every((n) => Number.isInteger(n) && n >= 0)) throw new Error(`${WORKER_ENV}: malformed ${raw.slice(0, 100)}`);
  return r;
}
