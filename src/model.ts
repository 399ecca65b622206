/**
 * The domain's shared shapes: what a variable, a log and a user are, independent of any backend.
 */

/** API keys are exactly 12 characters of [A-Za-z0-9] (DESIGN.md §2). */
export const API_KEY_RE = /^[A-Za-z0-9]{12}$/;
/** Device ids (the v:<apiKey>:<deviceId> extension). */
export const DEVICE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** A tunable value as the wire and Redis carry it: type and value are strings. */
export interface Var {
  name: string;
  type: string;
  value: string;
}

export interface User {
  email: string;
  apiKey: string;
  createdAt: number;
}

export interface Session {
  token: string;
  apiKey: string;
  email: string;
  expiresAt: number;
}

/** One log line as indexed: the client's object plus who sent it and when it arrived. */
export interface LogEntry {
  /** Unique and increasing with receivedAt on one node: `<receivedAt>-<node>-<seq>`. */
  id: string;
  apiKey: string;
  deviceId: string | null;
  level: string;
  message: string;
  /** The client's own timestamp, as sent (unit chosen by the client), or null. */
  timestamp: number | null;
  /** Milliseconds since the epoch when the daemon received the line. */
  receivedAt: number;
  /** Any other fields the client sent. */
  fields: Record<string, unknown>;
}

/** A backend's answer to a health check. */
export interface BackendHealth {
  ok: boolean;
  kind: string;
  detail?: string;
}
