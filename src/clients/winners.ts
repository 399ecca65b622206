/**
 * What each device of a key is due, cheaply, for the key's client actor (client.ts): the overrides in
 * effect for a device (variables/overrides.ts inEffect) computed once per kind of device and kept from
 * one overrides list to the next, and its pending vars derived from them.
 *
 * Why: a key with a thousand overrides had them all matched, ranked and copied for every device on
 * every delivery pass, two or three times over (the line, the timeline, "already had it"), and the
 * pass before it had just done the same for a list that differs in one override.
 *
 * - Devices that no device-list target names and that carry the same labels have the same winners: one
 *   computation serves them all (a thousand devices of one label set cost one, not a thousand).
 * - A list that holds the very objects of the previous one (the stores hand out their frozen, cached
 *   overrides) reuses its winners; one whose overrides were replaced in place (same variable at the
 *   same place, the common dashboard change) has only those variables ranked again.
 * - Patching costs one pass of pointer compares over the list plus work per replaced override and kind
 *   (each entry keeps where each variable sits in its vars), so a pass after a burst of hundreds of
 *   changes costs in proportion to them, not to the key's thousand overrides (issue 14's profile).
 * Anything else (an override added or removed, a target that starts or stops matching) computes
 * afresh: the result is always inEffect's, in inEffect's order. A list with an override that is not
 * frozen is computed afresh at each use() (its objects say nothing of their content), but once per
 * kind of device until the next use(), not once per call.
 */
import type { Var } from '../model.js';
import { inEffect, isDevices, matches, outranks, toVar, type DeviceView, type LastSent, type Override } from '../variables/index.js';

/** The winners of one kind of device for one overrides list. */
interface Entry {
  view: DeviceView;
  winners: Map<string, Override>;
  /** The winners as the vars to send, in their order. */
  vars: Var[];
  /** Each variable's place in `vars`, made on the entry's first patch. */
  at: Map<string, number> | null;
}

/**
 * Kinds of device kept from one list to the next, and their winners in all (the memory bound: a
 * thousand overrides keep 32 kinds, a few keep 256); a pass computes what it needs beyond this, and
 * drops it after.
 */
const MAX_KEPT = 256;
const MAX_KEPT_WINNERS = 32_768;
/**
 * Past this share of the list replaced at once the winners are computed afresh: patching costs a hash
 * lookup per override and a little per replaced one, computing afresh a rank and a copy per override.
 */
const MAX_PATCHED_SHARE = 0.5;

function labelsKey(labels: DeviceView['labels']): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  keys.sort();
  // NUL cannot occur in a label key or value (variables/labels.ts), so the key is unambiguous.
  let out = '';
  for (const k of keys) out += `${k}\u0000${labels[k] as string}\u0000`;
  return out;
}

function isStored(o: Override): boolean {
  return Object.isFrozen(o) && Object.isFrozen(o.target);
}

/** The device ids any device-list target of the list names (those devices are a kind of their own). */
function namedDevices(list: readonly Override[]): Set<string> {
  const out = new Set<string>();
  for (const o of list) if (isDevices(o.target)) for (const id of o.target.devices) out.add(id);
  return out;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

export class WinnersCache {
  private list: readonly Override[] = [];
  /** False when the list holds an override that is not frozen: its objects say nothing of its content. */
  private reusable = false;
  private named = new Set<string>();
  private entries = new Map<string, Entry>();
  /** The winners of the kept entries, in all. */
  private kept = 0;
  /** Kinds of device kept (tests). */
  get kinds(): number {
    return this.entries.size;
  }

  /** Full computations and in-place updates (tests). */
  computed = 0;
  patched = 0;

  /**
   * What the last use() knows of how its list differs from the one before (`from`): only the winners
   * of `names` can differ between the two, for any device (the variables whose overrides were
   * replaced in place; none for the same overrides). Null when it could not tell (an override added
   * or removed, a replaced one of another variable, a device list changed, a list not frozen).
   */
  change: { from: readonly Override[]; names: ReadonlySet<string> } | null = null;

  /**
   * Makes `overrides` the list the next calls answer for: a list as a store read hands it out, never
   * changed afterwards (its places are compared with the previous list's). The winners of the previous
   * list are updated in place: a map or vars list handed out before this call must not be used after it.
   */
  use(overrides: readonly Override[]): void {
    this.change = null;
    // The same list again: unchanged if it was all frozen; otherwise its objects may have changed.
    if (overrides === this.list) {
      if (this.reusable) this.change = { from: overrides, names: new Set() };
      else this.reset(overrides);
      return;
    }
    const before = this.list;
    this.list = overrides;
    if (!this.reusable || before.length !== overrides.length) {
      this.reusable = overrides.every(isStored);
      return this.reset(overrides);
    }
    // The objects found at the same place were found stored before (isFrozen is no cheap check).
    const changed: number[] = [];
    for (let i = 0; i < overrides.length; i++) if (overrides[i] !== before[i]) changed.push(i);
    if (changed.length === 0) {
      this.change = { from: before, names: new Set() };
      return;
    }
    if (!changed.every((i) => isStored(overrides[i] as Override))) {
      this.reusable = false;
      return this.reset(overrides);
    }
    let devicesTouched = false;
    for (const i of changed) {
      const a = before[i] as Override;
      const b = overrides[i] as Override;
      if (a.name !== b.name) return this.reset(overrides);
      if (isDevices(a.target) || isDevices(b.target)) devicesTouched = true;
    }
    if (devicesTouched) {
      const named = namedDevices(overrides);
      if (!sameSet(named, this.named)) return this.reset(overrides, named);
    }
    // Most replaced at once: ranking them one by one would cost more than starting over.
    if (changed.length > MAX_PATCHED_SHARE * overrides.length) return this.reset(overrides);
    const places = new Map<string, number[]>();
    for (const i of changed) places.set((overrides[i] as Override).name, []);
    this.change = { from: before, names: new Set(places.keys()) };
    if (places.size === 1) {
      // One variable changed (the common case): a string compare per override, not a hash lookup.
      const [name, at] = places.entries().next().value as [string, number[]];
      for (let i = 0; i < overrides.length; i++) if ((overrides[i] as Override).name === name) at.push(i);
    } else for (let i = 0; i < overrides.length; i++) places.get((overrides[i] as Override).name)?.push(i);
    for (const [key, e] of this.entries) {
      // The same places match as before: every variable keeps its place among the winners.
      if (!changed.every((i) => matches((before[i] as Override).target, e.view) === matches((overrides[i] as Override).target, e.view))) {
        this.entries.delete(key);
        this.kept -= e.vars.length;
        continue;
      }
      for (const [name, at] of places) {
        let w: Override | undefined;
        for (const i of at) {
          const o = overrides[i] as Override;
          if (matches(o.target, e.view) && (!w || outranks(o, w))) w = o;
        }
        if (!w || e.winners.get(name) === w) continue;
        e.winners.set(name, w);
        // Where the variable sits, from the entry's index (a findIndex per replaced override was a
        // pass over the thousand vars each).
        if (!e.at) {
          e.at = new Map();
          for (let v = 0; v < e.vars.length; v++) e.at.set((e.vars[v] as Var).name, v);
        }
        const v = e.at.get(name);
        if (v !== undefined) e.vars[v] = toVar(w);
      }
      this.patched += 1;
    }
  }

  private reset(overrides: readonly Override[], named?: Set<string>): void {
    this.entries.clear();
    this.kept = 0;
    // Also for a list kept only until the next use(): its entries are by kind of device too.
    this.named = named ?? namedDevices(overrides);
  }

  private entry(view: DeviceView): Entry {
    // A device a device-list target names is a kind of its own (its labels still count: they change).
    const labels = labelsKey(view.labels);
    const key = this.named.has(view.deviceId) ? `d\u0000${view.deviceId}\u0000${labels}` : `l\u0000${labels}`;
    let e = this.entries.get(key);
    if (e) return e;
    const winners = inEffect(view, this.list);
    e = { view, winners, vars: [...winners.values()].map(toVar), at: null };
    this.computed += 1;
    // A pass over more kinds than are kept: the oldest are dropped; the pass still gets its own.
    this.entries.set(key, e);
    this.kept += e.vars.length;
    for (const [k, old] of this.entries) {
      if (this.entries.size <= MAX_KEPT && this.kept <= MAX_KEPT_WINNERS) break;
      if (old === e) continue;
      this.entries.delete(k);
      this.kept -= old.vars.length;
    }
    return e;
  }

  /** inEffect(view, list): the override in effect per variable, in the order of first appearance. */
  winners(view: DeviceView): ReadonlyMap<string, Override> {
    return this.entry(view).winners;
  }

  /** inEffectVars(view, list). */
  vars(view: DeviceView): readonly Var[] {
    return this.entry(view).vars;
  }

  /**
   * pending(inEffectVars(view, list), lastSent, reported) for a device known to have nothing pending
   * but in `names` (its last-sent holding at least those of them it has), in pending's order; null
   * when one of them would be a restore (a variable with no override in effect that it was sent),
   * whose place in pending follows the whole last-sent's order: the caller reads it whole then.
   */
  pendingOf(view: DeviceView, names: ReadonlySet<string>, lastSent: LastSent): Var[] | null {
    const e = this.entry(view);
    const out: Array<{ at: number; v: Var }> = [];
    let at: Map<string, number> | null = null;
    for (const name of names) {
      const w = e.winners.get(name);
      const s = lastSent.get(name);
      if (!w) {
        if (s) return null;
        continue;
      }
      if (s && s.value === w.value && s.type === w.type) continue;
      if (!at) {
        if (!e.at) {
          e.at = new Map();
          for (let v = 0; v < e.vars.length; v++) e.at.set((e.vars[v] as Var).name, v);
        }
        at = e.at;
      }
      out.push({ at: at.get(name) ?? 0, v: { name: w.name, type: w.type, value: w.value } });
    }
    return out.sort((a, b) => a.at - b.at).map((x) => x.v);
  }

  /** pending(inEffectVars(view, list), lastSent, reported) (variables/pending.ts), from the kept winners. */
  pending(view: DeviceView, lastSent: LastSent, reported: readonly Var[]): Var[] {
    const e = this.entry(view);
    return pendingFrom(e.vars, e.winners, lastSent, reported);
  }
}

/**
 * variables/pending.ts's rule, with the winners' map as the set of covered names (pending builds that
 * set afresh from the list on every call, most of its cost for a long list): the overrides in effect
 * whose value or type differs from what was last sent, then the restores, each as a new Var.
 */
export function pendingFrom(vars: readonly Var[], covered: ReadonlyMap<string, unknown>, lastSent: LastSent, reported: readonly Var[]): Var[] {
  const out: Var[] = [];
  let found = 0;
  for (const v of vars) {
    const s = lastSent.get(v.name);
    if (s) found += 1;
    if (!s || s.value !== v.value || s.type !== v.type) out.push({ name: v.name, type: v.type, value: v.value });
  }
  // Every name last sent is one of the winners (vars has each name once): nothing to restore.
  if (found === lastSent.size) return out;
  let own: Map<string, Var> | null = null;
  for (const [name, s] of lastSent) {
    if (covered.has(name)) continue;
    if (!own) {
      own = new Map();
      for (const v of reported) own.set(v.name, v);
    }
    const r = own.get(name);
    if (r && (r.value !== s.value || r.type !== s.type)) out.push({ name, type: r.type, value: r.value });
  }
  return out;
}
