/**
 * History: every change to a key's overrides and strategies as one entry with each variable's
 * before and after; applying operations to the state and recording them, reverting one entry,
 * rolling the key back to the state right after an entry, and bounding the history.
 *
 * Rollback works backwards from the current state, undoing each newer entry's changes (setting each
 * to its `before`), rather than replaying history from the start: the history is bounded, so its
 * beginning is gone after pruning, while every entry newer than the one rolled back to is always
 * still there (pruning drops the oldest first). It stays exact across reverts and earlier rollbacks
 * because those are entries with changes of their own. It relies on the store changing the state
 * and appending the entry in one atomic step (store-contract.ts `commit`), so that nothing changes
 * the state without an entry saying so.
 */
import { ObserverioError } from '../errors.js';
import type { Var } from '../model.js';
import { withOverrideOps, overrideWithKey } from './override-list.js';
import { keyOfOverride, overrideKey, type Override } from './overrides.js';
import type { Op, Strategy } from './strategies.js';
import type { Target } from './target.js';

export type HistoryAction =
  | 'override.set'
  | 'override.clear'
  | 'strategy.create'
  | 'strategy.update'
  | 'strategy.delete'
  | 'strategy.apply'
  | 'revert'
  | 'rollback';

/** An override as history keeps it: everything but its identity (name and target). */
export interface OverrideValue {
  readonly value: string;
  readonly type: string;
  readonly setBy: string;
  readonly setAt: number;
  readonly strategy?: string;
}

/** One (variable, target) before and after the entry; null means no override (the game's value). */
export interface OverrideChange {
  readonly name: string;
  readonly target: Target;
  readonly before: OverrideValue | null;
  readonly after: OverrideValue | null;
}

/** One strategy before and after the entry; null means it did not exist. */
export interface StrategyChange {
  readonly name: string;
  readonly before: readonly Var[] | null;
  readonly after: readonly Var[] | null;
}

export interface HistoryEntry {
  /** Assigned by the store, increasing in append order; opaque to these functions. */
  readonly id: string;
  readonly at: number;
  /** Account email, or the token's name. */
  readonly actor: string;
  readonly action: HistoryAction;
  /** The target acted on; null for strategy create/update/delete and for a rollback, which span targets. */
  readonly target: Target | null;
  readonly changes: readonly OverrideChange[];
  readonly strategies: readonly StrategyChange[];
  /** How many devices the change reached; filled in by the caller once delivered. */
  readonly delivered: number;
  /** For `revert`: the entry reverted. */
  readonly revertOf?: string;
  /** For `rollback`: the entry whose state was restored. */
  readonly rollbackTo?: string;
}

/** An entry before the store has given it an id. */
export type HistoryDraft = Omit<HistoryEntry, 'id'>;

/** What history acts on: a key's overrides and strategies. */
export interface VariablesState {
  readonly overrides: readonly Override[];
  readonly strategies: readonly Strategy[];
}

export const EMPTY_STATE: VariablesState = Object.freeze({ overrides: [], strategies: [] });

export function valueOf(o: Override): OverrideValue {
  const v: OverrideValue = { value: o.value, type: o.type, setBy: o.setBy, setAt: o.setAt };
  return o.strategy === undefined ? v : { ...v, strategy: o.strategy };
}

function withValue(name: string, target: Target, v: OverrideValue): Override {
  const o: Override = { name, target, value: v.value, type: v.type, setBy: v.setBy, setAt: v.setAt };
  return v.strategy === undefined ? o : { ...o, strategy: v.strategy };
}

export function sameOverrideValue(a: OverrideValue | null, b: OverrideValue | null): boolean {
  if (a === null || b === null) return a === b;
  return a.value === b.value && a.type === b.type && a.setBy === b.setBy && a.setAt === b.setAt && a.strategy === b.strategy;
}

export function sameVars(a: readonly Var[] | null, b: readonly Var[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v.name === b[i]?.name && v.type === b[i]?.type && v.value === b[i]?.value);
}

/**
 * The state after the operations, in order. Replacing an override or strategy keeps its place, a new
 * one goes last. The overrides through override-list.ts: in proportion to the operations, not to the
 * key's overrides, and the new list indexed from the old one's.
 */
export function applyOps(state: VariablesState, ops: readonly Op[]): VariablesState {
  const overrides = withOverrideOps(state.overrides, ops);
  if (!ops.some((op) => op.kind === 'strategy.put' || op.kind === 'strategy.delete')) return { overrides, strategies: state.strategies };
  const strategies = new Map<string, Strategy>(state.strategies.map((s) => [s.name, s]));
  for (const op of ops) {
    if (op.kind === 'strategy.put') strategies.set(op.strategy.name, op.strategy);
    else if (op.kind === 'strategy.delete') strategies.delete(op.name);
  }
  return { overrides, strategies: [...strategies.values()] };
}

export interface EntryMeta {
  readonly at: number;
  readonly actor: string;
  readonly action: HistoryAction;
  readonly target: Target | null;
  readonly revertOf?: string;
  readonly rollbackTo?: string;
}

/**
 * Applies the operations and describes them as one history entry: per (variable, target) and per
 * strategy, the value before the first operation and after the last; what ends as it began is left
 * out (re-setting an override to the very same value, setter and time changes nothing).
 */
export function commit(state: VariablesState, ops: readonly Op[], meta: EntryMeta): { state: VariablesState; draft: HistoryDraft } {
  const next = applyOps(state, ops);
  const changes: OverrideChange[] = [];
  const touched = new Set<string>();
  for (const op of ops) {
    if (op.kind !== 'override.set' && op.kind !== 'override.clear') continue;
    const name = op.kind === 'override.set' ? op.override.name : op.name;
    const target = op.kind === 'override.set' ? op.override.target : op.target;
    const key = overrideKey(name, target);
    if (touched.has(key)) continue;
    touched.add(key);
    const b = overrideWithKey(state.overrides, name, key);
    const a = overrideWithKey(next.overrides, name, key);
    const bv = b ? valueOf(b) : null;
    const av = a ? valueOf(a) : null;
    if (!sameOverrideValue(bv, av)) changes.push({ name, target: (a ?? b)?.target ?? target, before: bv, after: av });
  }
  const sBefore = new Map(state.strategies.map((s) => [s.name, s.vars]));
  const sAfter = new Map(next.strategies.map((s) => [s.name, s.vars]));
  const strategies: StrategyChange[] = [];
  const sTouched = new Set<string>();
  for (const op of ops) {
    if (op.kind !== 'strategy.put' && op.kind !== 'strategy.delete') continue;
    const name = op.kind === 'strategy.put' ? op.strategy.name : op.name;
    if (sTouched.has(name)) continue;
    sTouched.add(name);
    const b = sBefore.get(name) ?? null;
    const a = sAfter.get(name) ?? null;
    if (!sameVars(b, a)) strategies.push({ name, before: b, after: a });
  }
  const draft: HistoryDraft = { at: meta.at, actor: meta.actor, action: meta.action, target: meta.target, changes, strategies, delivered: 0 };
  if (meta.revertOf !== undefined) Object.assign(draft, { revertOf: meta.revertOf });
  if (meta.rollbackTo !== undefined) Object.assign(draft, { rollbackTo: meta.rollbackTo });
  return { state: next, draft };
}

/** A change revert could not undo, because something later changed the same variable or strategy. */
export type RevertConflict =
  | { readonly kind: 'override'; readonly name: string; readonly target: Target; readonly expected: OverrideValue | null; readonly current: OverrideValue | null }
  | { readonly kind: 'strategy'; readonly name: string; readonly expected: readonly Var[] | null; readonly current: readonly Var[] | null };

/**
 * The operations that undo one entry, to be committed as a new `revert` entry. A change is undone
 * only where the state still holds what the entry left (so reverting an old entry never clobbers a
 * later edit of the same variable); the others come back as conflicts for the caller to show, or,
 * with `force`, are undone anyway. Undone overrides get their exact former value, setter and time,
 * so precedence among overrides is what it was.
 */
export function revert(entry: HistoryEntry, state: VariablesState, options: { force?: boolean } = {}): { ops: Op[]; conflicts: RevertConflict[] } {
  const overrides = new Map(state.overrides.map((o) => [keyOfOverride(o), o]));
  const strategies = new Map(state.strategies.map((s) => [s.name, s.vars]));
  const ops: Op[] = [];
  const conflicts: RevertConflict[] = [];
  for (const c of [...entry.changes].reverse()) {
    const cur = overrides.get(overrideKey(c.name, c.target));
    const current = cur ? valueOf(cur) : null;
    if (!sameOverrideValue(current, c.after)) {
      conflicts.push({ kind: 'override', name: c.name, target: c.target, expected: c.after, current });
      if (!options.force) continue;
    }
    ops.push(overrideOp(c.name, c.target, c.before));
  }
  for (const c of [...entry.strategies].reverse()) {
    const current = strategies.get(c.name) ?? null;
    if (!sameVars(current, c.after)) {
      conflicts.push({ kind: 'strategy', name: c.name, expected: c.after, current });
      if (!options.force) continue;
    }
    ops.push(c.before === null ? { kind: 'strategy.delete', name: c.name } : { kind: 'strategy.put', strategy: { name: c.name, vars: c.before } });
  }
  return { ops, conflicts };
}

function overrideOp(name: string, target: Target, v: OverrideValue | null): Op {
  return v === null ? { kind: 'override.clear', name, target } : { kind: 'override.set', override: withValue(name, target, v) };
}

/**
 * The operations that bring the state back to what it was right after entry `toId`, to be
 * committed as a new `rollback` entry. `newestFirst` is the history as the store lists it, newest
 * first, from the newest entry down to at least `toId`. Nothing to do (the entry is the newest)
 * gives no operations. An id not in the list (unknown, or pruned) is not_found.
 */
export function rollback(state: VariablesState, newestFirst: readonly HistoryEntry[], toId: string): Op[] {
  const at = newestFirst.findIndex((e) => e.id === toId);
  if (at < 0) throw new ObserverioError('not_found', `history entry ${JSON.stringify(toId.slice(0, 40))} is not in the history (unknown, or pruned)`);
  const overrides = new Map(state.overrides.map((o) => [keyOfOverride(o), o]));
  const strategies = new Map(state.strategies.map((s) => [s.name, s]));
  const goalOverrides = new Map(overrides);
  const goalStrategies = new Map(strategies);
  // Undo the newer entries, newest first, and each entry's changes last first.
  for (let i = 0; i < at; i++) {
    const e = newestFirst[i] as HistoryEntry;
    for (let j = e.changes.length - 1; j >= 0; j--) {
      const c = e.changes[j] as OverrideChange;
      const key = overrideKey(c.name, c.target);
      if (c.before === null) goalOverrides.delete(key);
      else goalOverrides.set(key, withValue(c.name, c.target, c.before));
    }
    for (let j = e.strategies.length - 1; j >= 0; j--) {
      const c = e.strategies[j] as StrategyChange;
      if (c.before === null) goalStrategies.delete(c.name);
      else goalStrategies.set(c.name, { name: c.name, vars: c.before });
    }
  }
  const ops: Op[] = [];
  for (const [key, o] of overrides) if (!goalOverrides.has(key)) ops.push({ kind: 'override.clear', name: o.name, target: o.target });
  for (const [key, o] of goalOverrides) {
    const cur = overrides.get(key);
    if (!cur || !sameOverrideValue(valueOf(cur), valueOf(o))) ops.push({ kind: 'override.set', override: o });
  }
  for (const [name] of strategies) if (!goalStrategies.has(name)) ops.push({ kind: 'strategy.delete', name });
  for (const [name, s] of goalStrategies) {
    const cur = strategies.get(name);
    if (!cur || !sameVars(cur.vars, s.vars)) ops.push({ kind: 'strategy.put', strategy: s });
  }
  return ops;
}

export interface HistoryBounds {
  /** Keep at most this many entries (the newest). */
  readonly maxEntries: number;
  /** Drop entries older than this. */
  readonly maxAgeMs: number;
}

/** Checks bounds from configuration: positive integers. */
export function checkHistoryBounds(b: HistoryBounds): HistoryBounds {
  if (!Number.isSafeInteger(b.maxEntries) || b.maxEntries < 1) throw new RangeError(`history maxEntries must be a positive integer, got ${b.maxEntries}`);
  if (!Number.isSafeInteger(b.maxAgeMs) || b.maxAgeMs < 1) throw new RangeError(`history maxAgeMs must be a positive integer, got ${b.maxAgeMs}`);
  return b;
}

/**
 * Bounded history: of the entries (newest first) keeps the newest `maxEntries` that are at most
 * `maxAgeMs` old at `now`; an entry dropped for its age takes every older one with it, so what is
 * kept is always a contiguous newest run (which rollback relies on).
 */
export function prune<E extends Pick<HistoryEntry, 'at'>>(newestFirst: readonly E[], bounds: HistoryBounds, now: number): { kept: E[]; dropped: E[] } {
  checkHistoryBounds(bounds);
  const cutoff = now - bounds.maxAgeMs;
  let keep = 0;
  while (keep < newestFirst.length && keep < bounds.maxEntries && (newestFirst[keep] as E).at >= cutoff) keep++;
  return { kept: newestFirst.slice(0, keep), dropped: newestFirst.slice(keep) };
}
