/**
 * What both stores share for DESIGN.md §8 data (store-contract.ts): history entry ids, the one way a
 * commit turns operations into new overrides and strategy records (history.ts applyOps, plus the
 * strategy versions), plain copies of caller objects, and the order devices are listed in. Keeping it
 * here means the memory and Redis stores cannot drift apart in what a commit means.
 */
import { ObserverioError } from '../errors.js';
import type { Var } from '../model.js';
import { applyOps, type HistoryDraft, type HistoryEntry } from '../variables/history.js';
import type { Labels } from '../variables/labels.js';
import type { Override } from '../variables/overrides.js';
import type { Op, Strategy } from '../variables/strategies.js';
import type { Target } from '../variables/target.js';
import type { CommitExpect, CommitResult, DeviceRecord, StrategyRecord } from '../variables/store-contract.js';

/** `<ms>-<seq>`, the shape of a Redis stream id; both stores use it so ids mean the same everywhere. */
export const HISTORY_ID_RE = /^(\d{1,16})-(\d{1,16})$/;

export function parseHistoryId(id: string): { ms: number; seq: number } | null {
  const m = typeof id === 'string' ? HISTORY_ID_RE.exec(id) : null;
  if (!m) return null;
  const ms = Number(m[1]);
  const seq = Number(m[2]);
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms, seq } : null;
}

export function compareHistoryIds(a: { ms: number; seq: number }, b: { ms: number; seq: number }): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

/**
 * The id of the next entry: its `at` in ms unless an earlier entry already has a later time (a clock
 * that went back, another node's clock ahead), then just after that one. So ids increase in append
 * order and an id's time is the entry's `at` whenever clocks behave; age pruning goes by the id's time.
 */
export function nextHistoryId(last: { ms: number; seq: number } | null, at: number): { ms: number; seq: number } {
  const ms = Math.max(0, Math.floor(at));
  if (last && last.ms >= ms) return { ms: last.ms, seq: last.seq + 1 };
  // 0-0 is not a valid stream id.
  return { ms, seq: ms === 0 ? 1 : 0 };
}

export const formatHistoryId = (id: { ms: number; seq: number }): string => `${id.ms}-${id.seq}`;

/** A `before` cursor: absent, or a well-formed id (else bad_request, so a route can pass it through). */
export function parseBefore(before: string | undefined): { ms: number; seq: number } | null {
  if (before === undefined) return null;
  const id = parseHistoryId(before);
  if (!id) throw new ObserverioError('bad_request', `history cursor ${JSON.stringify(String(before).slice(0, 40))} is not an entry id (<ms>-<seq>)`);
  return id;
}

export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ObserverioError('bad_request', `history limit must be a positive integer, got ${String(limit)}`);
  return limit;
}

export function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`presence ttl must be a positive number of ms, got ${ttlMs}`);
  return Math.ceil(ttlMs);
}

// Plain copies: a caller's objects may carry more fields, which must not reach the journal or Redis.

export const plainVar = (v: Var): Var => ({ name: v.name, type: v.type, value: v.value });

/**
 * The places of `after` that differ from `before`, when `after` is `before` with values changed and
 * names appended, each name once (what folding a device's reports gives: a report never removes or
 * moves a name); null when `after` is another list (then it is stored whole). `has` says whether a
 * name is one of `before`'s (an index kept beside it; else a set is made, only if names were
 * appended). Both stores write only these places of a report turn (Redis) or journal only them (memory).
 */
export function reportedChanges(before: readonly Var[], after: readonly Var[], has?: (name: string) => boolean): number[] | null {
  if (after.length < before.length) return null;
  const places: number[] = [];
  for (let i = 0; i < before.length; i++) {
    const a = after[i] as Var;
    const b = before[i] as Var;
    if (a.name !== b.name) return null;
    if (a !== b && (a.type !== b.type || a.value !== b.value)) places.push(i);
  }
  if (after.length > before.length) {
    let known = has;
    if (!known) {
      const names = new Set(before.map((v) => v.name));
      known = (n) => names.has(n);
    }
    const added = new Set<string>();
    for (let i = before.length; i < after.length; i++) {
      const name = (after[i] as Var).name;
      // A name past the end must be new, and only once.
      if (known(name) || added.has(name)) return null;
      added.add(name);
      places.push(i);
    }
  }
  return places;
}

/** Later duplicates win but keep the first one's place, as on the wire. */
export function uniqueVars(vars: readonly Var[]): Var[] {
  const m = new Map<string, Var>();
  for (const v of vars) m.set(v.name, plainVar(v));
  return [...m.values()];
}

export function plainLabels(labels: Labels): Labels {
  return Object.fromEntries(Object.keys(labels).filter((k) => Object.hasOwn(labels, k)).map((k) => [k, String(labels[k])]));
}

export function plainTarget(t: Target): Target {
  if ('all' in t) return { all: true };
  if ('devices' in t) return { devices: [...t.devices] };
  return { labels: plainLabels(t.labels) };
}

export function plainOverride(o: Override): Override {
  const p: Override = { name: o.name, type: o.type, value: o.value, target: plainTarget(o.target), setBy: o.setBy, setAt: o.setAt };
  return o.strategy === undefined ? p : { ...p, strategy: o.strategy };
}

export function plainOp(op: Op): Op {
  switch (op.kind) {
    case 'override.set':
      return { kind: op.kind, override: plainOverride(op.override) };
    case 'override.clear':
      return { kind: op.kind, name: op.name, target: plainTarget(op.target) };
    case 'strategy.put':
      return { kind: op.kind, strategy: { name: op.strategy.name, vars: op.strategy.vars.map(plainVar) } };
    case 'strategy.delete':
      return { kind: op.kind, name: op.name };
  }
}

export function plainDraft(d: HistoryDraft): HistoryDraft {
  return JSON.parse(JSON.stringify(d)) as HistoryDraft;
}

export interface CommitState {
  readonly overrides: readonly Override[];
  readonly strategies: readonly StrategyRecord[];
}

/**
 * The state after a commit's operations: history.ts applyOps, then every strategy a `strategy.put`
 * touched becomes a new record (version +1 over the one before the commit, 1 when new), the others
 * keep theirs. Order is applyOps' (a replaced override or strategy keeps its place). The overrides list
 * is applyOps' own (override-list.ts: never changed once made, indexed from the one before).
 */
export function applyCommit(state: CommitState, ops: readonly Op[], at: number, by: string): { overrides: readonly Override[]; strategies: StrategyRecord[] } {
  const next = applyOps(state, ops);
  const put = new Set<string>();
  for (const op of ops) if (op.kind === 'strategy.put') put.add(op.strategy.name);
  const before = new Map(state.strategies.map((s) => [s.name, s]));
  const strategies = next.strategies.map((s: Strategy): StrategyRecord => {
    const prior = before.get(s.name);
    if (!put.has(s.name) && prior) return prior;
    return { name: s.name, vars: s.vars.map(plainVar), version: (prior?.version ?? 0) + 1, updatedAt: at, updatedBy: by };
  });
  return { overrides: next.overrides, strategies };
}

/** Whether `expect` holds for a state; the failure to answer when it does not. */
export function checkExpect(stateVersion: number, strategies: readonly StrategyRecord[], expect: CommitExpect): CommitResult | null {
  const strategyVersion = expect.strategy ? (strategies.find((s) => s.name === expect.strategy?.name)?.version ?? null) : undefined;
  const fail = (): CommitResult => (strategyVersion === undefined ? { ok: false, stateVersion } : { ok: false, stateVersion, strategyVersion });
  if (stateVersion !== expect.stateVersion) return fail();
  if (expect.strategy && strategyVersion !== expect.strategy.version) return fail();
  return null;
}

export function toEntry(id: string, draft: HistoryDraft): HistoryEntry {
  return { id, ...draft };
}

/** Newest seen first; the same second, by id, so every store and node lists them alike. */
export function byLastSeen(a: DeviceRecord, b: DeviceRecord): number {
  return b.lastSeen - a.lastSeen || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0);
}
