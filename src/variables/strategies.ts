/**
 * Strategies: named presets of variable values. Validation of a strategy body, applying one to a
 * target as a set of override operations, and which strategy a device runs (or "mixed" once edited).
 */
import { ObserverioError } from '../errors.js';
import type { Var } from '../model.js';
import { inEffect, makeOverride, type Override } from './overrides.js';
import { sameValue, resolveVarValue } from './var-rules.js';
import { targetKey, type DeviceView, type Target } from './target.js';

/** A strategy as stored: every variable with its type resolved and its value canonical. */
export interface Strategy {
  readonly name: string;
  readonly vars: readonly Var[];
}

/** URL-safe (it is a path segment of /api/strategies/:name); "mixed" is what a device view shows instead. */
export const STRATEGY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RESERVED_STRATEGY_NAMES: ReadonlySet<string> = new Set(['mixed']);
export const MAX_STRATEGY_VARS = 256;

const bad = (detail: string): ObserverioError => new ObserverioError('bad_request', detail);

export function checkStrategyName(name: unknown): string | null {
  if (typeof name !== 'string' || !STRATEGY_NAME_RE.test(name))
    return `strategy name ${JSON.stringify(typeof name === 'string' ? name.slice(0, 70) : name ?? null)} must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit`;
  if (RESERVED_STRATEGY_NAMES.has(name.toLowerCase())) return `strategy name ${JSON.stringify(name)} is reserved`;
  return null;
}

/**
 * A strategy from a JSON body `{name, vars: [{name, value, type?}]}`. A var's type is the one given,
 * else the key's existing variable's (`typeOf`), else inferred from the JSON value; values are
 * checked against their type. Errors name the strategy or the variable.
 */
export function parseStrategy(body: unknown, typeOf: (name: string) => string | undefined = () => undefined): Strategy {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('strategy must be an object {name, vars: [{name, value, type?}]}');
  const b = body as Record<string, unknown>;
  const nameProblem = checkStrategyName(b.name);
  if (nameProblem) throw bad(nameProblem);
  const name = b.name as string;
  const unknown = Object.keys(b).find((k) => k !== 'name' && k !== 'vars');
  if (unknown !== undefined) throw bad(`strategy ${name} has an unknown field ${JSON.stringify(unknown.slice(0, 40))}`);
  if (!Array.isArray(b.vars)) throw bad(`strategy ${name}: vars must be an array of {name, value, type?}`);
  if (b.vars.length === 0) throw bad(`strategy ${name} has no variables`);
  if (b.vars.length > MAX_STRATEGY_VARS) throw bad(`strategy ${name} has ${b.vars.length} variables; at most ${MAX_STRATEGY_VARS}`);
  const seen = new Set<string>();
  const vars: Var[] = [];
  for (let i = 0; i < b.vars.length; i++) {
    const item: unknown = b.vars[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad(`strategy ${name}: vars[${i}] must be an object {name, value, type?}`);
    const it = item as Record<string, unknown>;
    let v: Var;
    try {
      v = resolveVarValue(it.name, it.value, it.type, typeof it.name === 'string' ? typeOf(it.name) : undefined);
    } catch (err) {
      if (err instanceof ObserverioError) throw bad(`strategy ${name}: vars[${i}]: ${err.message}`);
      throw err;
    }
    if (seen.has(v.name)) throw bad(`strategy ${name}: variable ${v.name} appears twice`);
    seen.add(v.name);
    vars.push(v);
  }
  return { name, vars };
}

/** One change to the key's state; history entries are made of these and revert to these. */
export type Op =
  | { readonly kind: 'override.set'; readonly override: Override }
  | { readonly kind: 'override.clear'; readonly name: string; readonly target: Target }
  | { readonly kind: 'strategy.put'; readonly strategy: Strategy }
  | { readonly kind: 'strategy.delete'; readonly name: string };

/**
 * Applying a strategy to a target: one override per variable, tagged with the strategy, and, so that
 * switching presets (or re-applying an edited one) leaves the target on this one rather than a blend,
 * a clear for each override on the same target that a strategy set for a variable this one does not name.
 * Overrides on other targets (a more specific device list, say) are left alone: they still win.
 */
export function applyStrategy(strategy: Strategy, target: Target, current: readonly Override[], setBy: string, setAt: number): Op[] {
  const ops: Op[] = strategy.vars.map((v) => ({ kind: 'override.set', override: makeOverride(v, target, setBy, setAt, strategy.name) }));
  const names = new Set(strategy.vars.map((v) => v.name));
  const key = targetKey(target);
  for (const o of current)
    if (o.strategy !== undefined && !names.has(o.name) && targetKey(o.target) === key)
      ops.push({ kind: 'override.clear', name: o.name, target: o.target });
  return ops;
}

/** Which strategy a device runs. */
export type StrategyStatus = { kind: 'none' } | { kind: 'strategy'; name: string } | { kind: 'mixed'; names: string[] };

/**
 * A device runs strategy S when S's overrides are the ones in effect for every variable of S, with
 * S's current values, and no other strategy's override is in effect. Once one of them is edited (a
 * plain override wins for one of S's variables, S itself was edited or deleted since it was applied,
 * or two strategies each win somewhere) it is "mixed". Plain overrides of variables S does not name
 * do not make it mixed: they are not part of the preset.
 */
export function strategyOf(device: DeviceView, overrides: readonly Override[], strategies: readonly Strategy[]): StrategyStatus {
  const winners = inEffect(device, overrides);
  const tagged = new Set<string>();
  for (const o of winners.values()) if (o.strategy !== undefined) tagged.add(o.strategy);
  if (tagged.size === 0) return { kind: 'none' };
  const names = [...tagged].sort();
  if (tagged.size > 1) return { kind: 'mixed', names };
  const name = names[0] as string;
  const s = strategies.find((x) => x.name === name);
  if (!s) return { kind: 'mixed', names };
  for (const v of s.vars) {
    const o = winners.get(v.name);
    if (!o || o.strategy !== name || o.type !== v.type || !sameValue(v.type, o.value, v.value)) return { kind: 'mixed', names };
  }
  return { kind: 'strategy', name };
}

/** The `strategy` field of a device view: the name, "mixed", or null. */
export function strategyLabel(s: StrategyStatus): string | null {
  return s.kind === 'none' ? null : s.kind === 'mixed' ? 'mixed' : s.name;
}
