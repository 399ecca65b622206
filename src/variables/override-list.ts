/**
 * Where each override of a key's list is, by identity (overrideKey) and by variable name, kept beside
 * the list and handed on to the list a change derives from it: a change of one variable of a key with
 * a thousand overrides finds that variable's overrides without a pass over the thousand, and a list
 * derived by replacing overrides shares its parent's index as it is (issue 14: the change path's
 * passes over the whole list, per change and per commit, were most of its CPU).
 *
 * An index belongs to one array (by identity) and describes it as it was made: lists are not changed
 * once made (the stores hand theirs out readonly, and every function here returns a new array). A lookup
 * still checks the names it finds and rebuilds an index that no longer fits, so a list changed in
 * place anyway gets slower, never wrong answers, for every change that keeps names where they were.
 */
import { keyOfOverride, overrideKey, type Override } from './overrides.js';
import type { Op } from './strategies.js';

interface ListIndex {
  readonly length: number;
  readonly byKey: ReadonlyMap<string, number>;
  /** Positions of each variable's overrides, ascending. */
  readonly byName: ReadonlyMap<string, readonly number[]>;
  /** Overrides appended since the maps above were built, looked up first (null: none). */
  readonly moreKey: ReadonlyMap<string, number> | null;
  readonly moreName: ReadonlyMap<string, readonly number[]> | null;
}

const indexes = new WeakMap<readonly Override[], ListIndex>();

/**
 * Appended overrides an index carries on top of its maps before a derived list gets maps of its own:
 * appending copies only these, and the maps are rebuilt once per this many appends.
 */
const MAX_APPENDED = 64;

const NONE: readonly number[] = Object.freeze([]);

function build(list: readonly Override[]): ListIndex {
  const byKey = new Map<string, number>();
  const byName = new Map<string, number[]>();
  for (let i = 0; i < list.length; i++) {
    const o = list[i] as Override;
    byKey.set(keyOfOverride(o), i);
    const at = byName.get(o.name);
    if (at) at.push(i);
    else byName.set(o.name, [i]);
  }
  const idx: ListIndex = { length: list.length, byKey, byName, moreKey: null, moreName: null };
  indexes.set(list, idx);
  return idx;
}

function indexOf(list: readonly Override[]): ListIndex {
  const idx = indexes.get(list);
  return idx && idx.length === list.length ? idx : build(list);
}

/** The position of the override of `name` with identity `key` in `list`, or -1. */
export function positionOf(list: readonly Override[], name: string, key: string): number {
  let idx = indexOf(list);
  for (let attempt = 0; attempt < 2; attempt++) {
    const at = idx.moreKey?.get(key) ?? idx.byKey.get(key);
    if (at === undefined) return -1;
    if (list[at]?.name === name) return at;
    // Changed in place since it was indexed.
    idx = build(list);
  }
  return -1;
}

/** The override of `name` with identity `key` (overrideKey), if the list holds it. */
export function overrideWithKey(list: readonly Override[], name: string, key: string): Override | undefined {
  const at = positionOf(list, name, key);
  return at < 0 ? undefined : list[at];
}

function positionsOfName(list: readonly Override[], name: string): readonly number[] {
  let idx = indexOf(list);
  for (let attempt = 0; attempt < 2; attempt++) {
    const at = idx.moreName?.get(name) ?? idx.byName.get(name) ?? NONE;
    if (at.every((i) => list[i]?.name === name)) return at;
    idx = build(list);
  }
  return NONE;
}

/** The variable's overrides, in list order. */
export function overridesOfName(list: readonly Override[], name: string): Override[] {
  return positionsOfName(list, name).map((i) => list[i] as Override);
}

/** The overrides of these variables, in list order (what ofNames in overrides.ts gives, without the pass). */
export function overridesOfNames(list: readonly Override[], names: Iterable<string>): Override[] {
  const at: number[] = [];
  let count = 0;
  for (const name of names) {
    for (const i of positionsOfName(list, name)) at.push(i);
    count++;
  }
  if (count > 1) at.sort((a, b) => a - b);
  return at.map((i) => list[i] as Override);
}

/** The variable's first override in list order, if any. */
export function firstOverrideOf(list: readonly Override[], name: string): Override | undefined {
  const at = positionsOfName(list, name)[0];
  return at === undefined ? undefined : list[at];
}

/**
 * The list after these override operations (others are ignored), as history.ts applyOps defines it:
 * a replaced override keeps its place, a new one (or one cleared and set again) goes last, a cleared
 * one leaves. Work in proportion to the operations plus one copy of the array; a clear that removes
 * something costs a pass more. The new list gets an index made from this one's.
 */
export function withOverrideOps(list: readonly Override[], ops: readonly Op[]): readonly Override[] {
  let idx: ListIndex | null = null;
  let out: Override[] | null = null;
  // Overrides this call appended, by key → position in `out`; positions removed from `out`.
  const appended = new Map<string, number>();
  let removed: Set<number> | null = null;
  const find = (name: string, key: string): number => {
    const mine = appended.get(key);
    if (mine !== undefined) return mine;
    const at = positionOf(list, name, key);
    return at >= 0 && !removed?.has(at) ? at : -1;
  };
  for (const op of ops) {
    if (op.kind === 'override.set') {
      const { name, target } = op.override;
      const key = overrideKey(name, target);
      idx ??= indexOf(list);
      out ??= list.slice();
      const at = find(name, key);
      if (at >= 0) out[at] = op.override;
      else {
        appended.set(key, out.length);
        out.push(op.override);
      }
    } else if (op.kind === 'override.clear') {
      const key = overrideKey(op.name, op.target);
      idx ??= indexOf(list);
      const at = find(op.name, key);
      if (at < 0) continue;
      out ??= list.slice();
      (removed ??= new Set()).add(at);
      appended.delete(key);
    }
  }
  if (!out || !idx) return list;
  if (removed) return out.filter((_, i) => !(removed as Set<number>).has(i));
  const next = appended.size === 0 ? { ...idx, length: out.length } : extend(idx, out, appended);
  if (next) indexes.set(out, next);
  return out;
}

/** `idx` with the overrides appended at the positions given (`list` is the new list); null: too many carried, the new list gets maps of its own when first looked in. */
function extend(idx: ListIndex, list: readonly Override[], appended: ReadonlyMap<string, number>): ListIndex | null {
  if ((idx.moreKey?.size ?? 0) + appended.size > MAX_APPENDED) return null;
  const moreKey = new Map(idx.moreKey ?? []);
  const moreName = new Map(idx.moreName ?? []);
  // In position order, so each name's positions stay ascending.
  for (const [key, at] of [...appended].sort((a, b) => a[1] - b[1])) {
    moreKey.set(key, at);
    const name = (list[at] as Override).name;
    moreName.set(name, [...(moreName.get(name) ?? idx.byName.get(name) ?? NONE), at]);
  }
  return { length: list.length, byKey: idx.byKey, byName: idx.byName, moreKey, moreName };
}
