/**
 * The one definition of "newest first" both log indexes follow: receivedAt descending, then the id
 * descending, where an id `<receivedAt>-<node>-<seq>` compares by node and then by seq as a number
 * (plain string order would put `…-9` after `…-10`). The gateway writes seq in base 36, so it is read
 * in base 36: a decimal seq (digits only) reads as a larger number exactly when it is larger, so ids
 * of either kind keep their order.
 */
import type { LogEntry } from '../model.js';

export interface LogOrderKey {
  receivedAt: number;
  node: string;
  seq: number;
  id: string;
}

// 10 base-36 digits stay below 2^53, so the number is exact.
const ID_RE = /^\d+-(.+)-([0-9a-z]{1,10})$/;

/** Splits an id into its sort parts; an id of another shape sorts by the whole id as its node. */
export function idOrderParts(id: string): { node: string; seq: number } {
  const m = ID_RE.exec(id);
  return m ? { node: m[1]!, seq: parseInt(m[2]!, 36) } : { node: id, seq: 0 };
}

export function orderKey(e: Pick<LogEntry, 'id' | 'receivedAt'>): LogOrderKey {
  return { receivedAt: e.receivedAt, ...idOrderParts(e.id), id: e.id };
}

/** Ascending (oldest first); negate for newest first. */
export function compareOrder(a: LogOrderKey, b: LogOrderKey): number {
  if (a.receivedAt !== b.receivedAt) return a.receivedAt - b.receivedAt;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  if (a.seq !== b.seq) return a.seq - b.seq;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
