/**
 * Each thing a person does to a key's variables (DESIGN.md §4 routes) as the operations to commit
 * and the history entry's metadata, checked against the current state: the one place the HTTP
 * routes, the WebSocket and the CLI turn a request into a change.
 */
import { ObserverioError } from '../errors.js';
import type { EntryMeta, HistoryEntry, VariablesState } from './history.js';
import { revert as revertOps, rollback as rollbackOps, type RevertConflict } from './history.js';
import { firstOverrideOf, overrideWithKey } from './override-list.js';
import { makeOverride, overrideKey } from './overrides.js';
import { applyStrategy, type Op, type Strategy } from './strategies.js';
import type { Target } from './target.js';
import { resolveVarValue } from './var-rules.js';

export interface Action {
  readonly ops: Op[];
  readonly meta: EntryMeta;
}

export interface Who {
  readonly actor: string;
  readonly at: number;
}

/**
 * `PUT /api/vars/:name {value, type?, target?}`: the type given, else that of an override of the
 * variable already set, else `existingType` (the key's `<apiKey>:vs`), else inferred.
 */
export function setOverride(state: VariablesState, name: unknown, value: unknown, type: unknown, target: Target, existingType: string | undefined, who: Who): Action {
  // The variable's first override, found through the list's index (override-list.ts), not a pass over the key's overrides.
  const known = typeof name === 'string' ? firstOverrideOf(state.overrides, name)?.type : undefined;
  const v = resolveVarValue(name, value, type, known ?? existingType);
  return { ops: [{ kind: 'override.set', override: makeOverride(v, target, who.actor, who.at) }], meta: { ...who, action: 'override.set', target } };
}

/** `DELETE /api/vars/:name/override {target?}`: not_found when that variable has no override for that target. */
export function clearOverride(state: VariablesState, name: string, target: Target, who: Who): Action {
  const key = overrideKey(name, target);
  const o = overrideWithKey(state.overrides, name, key);
  if (!o) throw new ObserverioError('not_found', `variable ${JSON.stringify(name.slice(0, 130))} has no override for that target`);
  return { ops: [{ kind: 'override.clear', name, target: o.target }], meta: { ...who, action: 'override.clear', target: o.target } };
}

/** `POST /api/strategies`: bad_request when the name is taken (the store's version check decides races). */
export function createStrategy(state: VariablesState, strategy: Strategy, who: Who): Action {
  if (state.strategies.some((s) => s.name === strategy.name)) throw new ObserverioError('bad_request', `strategy ${strategy.name} already exists; PUT /api/strategies/${strategy.name} to change it`);
  return { ops: [{ kind: 'strategy.put', strategy }], meta: { ...who, action: 'strategy.create', target: null } };
}

/**
 * `PUT /api/strategies/:name`: replaces the preset. Overrides it already set keep their values
 * (devices running it become "mixed") until it is applied again.
 */
export function updateStrategy(state: VariablesState, strategy: Strategy, who: Who): Action {
  requireStrategy(state, strategy.name);
  return { ops: [{ kind: 'strategy.put', strategy }], meta: { ...who, action: 'strategy.update', target: null } };
}

/** `DELETE /api/strategies/:name`: the overrides it set stay (their tag shows where they came from). */
export function deleteStrategy(state: VariablesState, name: string, who: Who): Action {
  requireStrategy(state, name);
  return { ops: [{ kind: 'strategy.delete', name }], meta: { ...who, action: 'strategy.delete', target: null } };
}

/** `POST /api/strategies/:name/apply {target?}`. */
export function applyStrategyTo(state: VariablesState, name: string, target: Target, who: Who): Action {
  const s = requireStrategy(state, name);
  return { ops: applyStrategy(s, target, state.overrides, who.actor, who.at), meta: { ...who, action: 'strategy.apply', target } };
}

/** `POST /api/history/:id/revert`; the conflicts say what was left as a later change made it. */
export function revertEntry(state: VariablesState, entry: HistoryEntry, who: Who, force = false): Action & { conflicts: RevertConflict[] } {
  const { ops, conflicts } = revertOps(entry, state, { force });
  return { ops, conflicts, meta: { ...who, action: 'revert', target: entry.target, revertOf: entry.id } };
}

/** `POST /api/history/rollback {"to": id}`; `newestFirst` from the newest entry down to at least `to`. */
export function rollbackTo(state: VariablesState, newestFirst: readonly HistoryEntry[], to: string, who: Who): Action {
  return { ops: rollbackOps(state, newestFirst, to), meta: { ...who, action: 'rollback', target: null, rollbackTo: to } };
}

function requireStrategy(state: VariablesState, name: string): Strategy {
  const s = state.strategies.find((x) => x.name === name);
  if (!s) throw new ObserverioError('not_found', `no strategy ${JSON.stringify(name.slice(0, 70))}`);
  return s;
}
