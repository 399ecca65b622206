/**
 * The shapes the dashboard exchanges with the daemon (HTTP API, /ws events, /admin tree), as the
 * browser sees them. Variables and logs are the daemon's own shapes (type-only imports: nothing of
 * the daemon ends up in the bundle).
 */
import type { LogEntry, Var } from '../model.js';

export type { LogEntry, Var };

/** A time the server may send as epoch milliseconds or as an ISO string. */
export type Instant = number | string | null;

export interface Device {
  /** Connection id: unique per socket. */
  id: string;
  /** The name the SDK gave (v:<apiKey>:<deviceId>), or null for the original SDK. */
  deviceId: string | null;
  remoteAddress: string;
  connectedAt: Instant;
  lastLineAt?: Instant;
  linesIn?: number;
}

export interface PutVarResult {
  var: Var;
  delivered: number;
  buffered: boolean;
}

export interface LogSearch {
  hits: LogEntry[];
  total: number;
}

export type LiveEvent =
  | { type: 'vars'; apiKey: string; deviceId: string | null; vars: Var[]; source?: 'dashboard' }
  | { type: 'logs'; apiKey: string; deviceId: string | null; logs: LogEntry[] }
  | { type: 'device'; event: 'connected' | 'disconnected'; device: Device }
  | { type: 'var_delivery'; name: string; delivered: number; buffered: boolean }
  | { type: 'outbox_flushed'; names: string[]; delivered: number }
  | { type: 'error'; code: string; message: string }
  | { type: 'ready'; apiKey: string; email: string };

export type NodeStatus = 'running' | 'restarting' | 'stopped';

/** One node of the supervision tree served by GET /admin/tree. */
export interface TreeNode {
  name: string;
  path: string;
  kind: 'supervisor' | 'worker';
  strategy?: string;
  intensity?: number;
  period?: number;
  restart?: string;
  status: NodeStatus;
  restarts: number;
  lastCrash: { reason: string; at: Instant } | null;
  startedAt?: Instant;
  mailbox?: number;
  /** The restart delay in force (backoff), in ms; 0 when none. */
  backoffMs?: number;
  /** Supervisors: their restart backoff, null when restarts are immediate. */
  backoff?: { initialMs: number; maxMs: number; resetAfterMs: number } | null;
  info?: Record<string, unknown>;
  children?: TreeNode[];
  /** How many children the node has in all, when only the first ones were sent. */
  childCount?: number;
  truncated?: boolean;
  /** Supervisors: how many children are in each status (all of them, not just the page sent). */
  counts?: Partial<Record<NodeStatus, number>>;
}
