/**
 * Overrides and the rule that they win: which override is in effect for a device (the most specific
 * matching target; within one specificity the latest set), each variable's effective value and its
 * source, and what a device must be sent right after `OK` and after an `i:` report (DESIGN.md §8).
 */
import type { Var } from '../model.js';
import { sameValue } from './var-rules.js';
import { canonicalTarget, matches, specificity, targetKey, type DeviceView, type Target } from './target.js';

/** A value set from the dashboard, CLI or API for a target; it persists until cleared. */
export interface Override {
  readonly name: string;
  readonly type: string;
  /** Canonical for its type (var-rules.ts). */
  readonly value: string;
  readonly target: Target;
  /** Account email, or the token's name. */
  readonly setBy: string;
  /** Milliseconds since the epoch. */
  readonly setAt: number;
  /** The strategy this override was set by (absent when set on its own). */
  readonly strategy?: string;
}

/** One variable as a device view shows it. */
export interface EffectiveVar {
  name: string;
  type: string;
  /** What the device itself reported (its game's value), or null when it never reported it. */
  reported: string | null;
  /** The value of the override in effect, or null when none is. */
  override: string | null;
  effective: string;
  source: 'override' | 'reported';
  /** The target of the override in effect (null when the source is the report). */
  target: Target | null;
  /** The strategy that set the override in effect, if any. */
  strategy: string | null;
}

/** The identity of an override: one per variable and target; setting it again replaces it. */
export function overrideKey(name: string, target: Target): string {
  return `${name}\u0000${targetKey(target)}`;
}

/** overrideKey of an override, computed once for a frozen (stored) one. */
export function keyOfOverride(o: Override): string {
  const frozen = Object.isFrozen(o);
  if (frozen) {
    const known = overrideKeys.get(o);
    if (known !== undefined) return known;
  }
  const key = overrideKey(o.name, o.target);
  if (frozen && Object.isFrozen(o.target)) overrideKeys.set(o, key);
  return key;
}

const overrideKeys = new WeakMap<Override, string>();

/**
 * True when `a` takes precedence over `b` for a device both match: higher specificity; then the
 * later setAt ("the last edit wins", what a person setting values one after the other expects);
 * then, for the same millisecond, the greater target key, so every node picks the same one.
 */
export function outranks(a: Override, b: Override): boolean {
  const sa = specificity(a.target);
  const sb = specificity(b.target);
  if (sa !== sb) return sa > sb;
  if (a.setAt !== b.setAt) return a.setAt > b.setAt;
  return targetKey(a.target) > targetKey(b.target);
}

/** The override in effect per variable for this device, in the order of first appearance in `overrides`. */
export function inEffect(device: DeviceView, overrides: readonly Override[]): Map<string, Override> {
  const winners = new Map<string, Override>();
  for (const o of overrides) {
    if (!matches(o.target, device)) continue;
    const current = winners.get(o.name);
    if (!current || outranks(o, current)) winners.set(o.name, o);
  }
  return winners;
}

/** The overrides in effect as the variables to send, in the order of first appearance. */
export function inEffectVars(device: DeviceView, overrides: readonly Override[]): Var[] {
  return [...inEffect(device, overrides).values()].map(toVar);
}

export function toVar(o: Override): Var {
  return { name: o.name, type: o.type, value: o.value };
}

/**
 * Every variable of the device: those it reported (in its order), then those only an override names
 * (in the overrides' order). `reported` is the device's own report; a name it holds twice counts once,
 * the later value, as on the wire.
 */
export function effective(device: DeviceView, reported: readonly Var[], overrides: readonly Override[]): EffectiveVar[] {
  const winners = inEffect(device, overrides);
  const own = new Map<string, Var>();
  for (const v of reported) own.set(v.name, v);
  const out: EffectiveVar[] = [];
  for (const v of own.values()) out.push(view(v.name, v, winners.get(v.name)));
  for (const o of winners.values()) if (!own.has(o.name)) out.push(view(o.name, undefined, o));
  return out;
}

function view(name: string, rep: Var | undefined, o: Override | undefined): EffectiveVar {
  if (o)
    return { name, type: o.type, reported: rep?.value ?? null, override: o.value, effective: o.value, source: 'override', target: o.target, strategy: o.strategy ?? null };
  const r = rep as Var;
  return { name, type: r.type, reported: r.value, override: null, effective: r.value, source: 'reported', target: null, strategy: null };
}

/** What a device's lastSent holds per variable: what the daemon last sent it. */
export type LastSent = ReadonlyMap<string, Var>;

/**
 * Right after `OK`: one `v:` line with every override in effect (a reconnected game starts on its
 * defaults again), and what the device has then been sent, replacing whatever it was sent before.
 */
export function onVerify(device: DeviceView, overrides: readonly Override[]): { send: Var[]; lastSent: Map<string, Var> } {
  const send = inEffectVars(device, overrides);
  return { send, lastSent: new Map(send.map((v) => [v.name, v])) };
}

/**
 * After an `i:` report: the reported values to keep as the game's own, the overrides to send again
 * (each variable at most once per report, for values that disagree with the override in effect),
 * and the device's lastSent afterwards.
 *
 * - A value that disagrees with the override in effect is the game's own (an SDK setting its defaults
 *   after connecting): kept as reported, and the override is sent again.
 * - A value equal to the override in effect (in canonical form) is the SDK echoing what it was sent
 *   (`confirmRemoteVars`), not the game's own value: the previous report is kept, so clearing the
 *   override gives the game its own value back; with no previous report it is kept, being all we know.
 * - A variable with no override in effect is plainly the game's: kept, and lastSent forgets it, since
 *   whatever the daemon sent before has been superseded by the game.
 */
export function onReport(
  device: DeviceView,
  reported: readonly Var[],
  report: readonly Var[],
  overrides: readonly Override[],
  lastSent: LastSent,
): { reported: Var[]; send: Var[]; lastSent: Map<string, Var> } {
  return onReports(device, reported, [report], overrides, lastSent);
}

/**
 * Several reports of one device, in order: the same as onReport applied to each in turn (each is
 * still one report: a game's own value followed by an echo of the override stays the game's own),
 * with what they ask to be sent again in one list, each variable once. One pass: the lists are built
 * once, not once per report (a device streaming `i:` lines hands the client actor hundreds at once,
 * and re-copying a list of a thousand values per report made that quadratic).
 */
export function onReports(
  device: DeviceView,
  reported: readonly Var[],
  reports: ReadonlyArray<readonly Var[]>,
  overrides: readonly Override[],
  lastSent: LastSent,
): { reported: Var[]; send: Var[]; lastSent: Map<string, Var> } {
  const winners = inEffect(device, overrides);
  const own = new Map<string, Var>();
  for (const v of reported) own.set(v.name, v);
  const sent = new Map(lastSent);
  const send = new Map<string, Var>();
  const latest = new Map<string, Var>();
  for (const report of reports) {
    // A name twice in one report: the later one wins, as the protocol says.
    latest.clear();
    for (const v of report) latest.set(v.name, v);
    for (const v of latest.values()) {
      const o = winners.get(v.name);
      if (!o) {
        own.set(v.name, v);
        sent.delete(v.name);
        continue;
      }
      if (sameValue(o.type, o.value, v.value)) {
        if (!own.has(v.name)) own.set(v.name, v);
        continue;
      }
      own.set(v.name, v);
      const again = toVar(o);
      send.set(o.name, again);
      sent.set(o.name, again);
    }
  }
  return { reported: [...own.values()], send: [...send.values()], lastSent: sent };
}

/** A new override, its target in canonical form. */
export function makeOverride(v: Var, target: Target, setBy: string, setAt: number, strategy?: string): Override {
  const o: Override = { name: v.name, type: v.type, value: v.value, target: canonicalTarget(target), setBy, setAt };
  return strategy === undefined ? o : { ...o, strategy };
}

/**
 * The devices whose overrides in effect differ between two override sets: who a change reaches
 * (the PUT's delivered/pending counts, the history entry's `delivered`). `names`, when given, are
 * the only variables whose overrides differ between the two sets (those the change's operations
 * name): which override wins is decided per variable, so the others cannot make a difference and
 * are left out before each device's winners are computed (a change of one variable of a key with a
 * thousand overrides looks at that variable's few, not at the thousand, for every device).
 */
export function affectedDevices(devices: Iterable<DeviceView>, before: readonly Override[], after: readonly Override[], names?: ReadonlySet<string>): string[] {
  if (names) {
    before = ofNames(before, names);
    after = ofNames(after, names);
  }
  const out: string[] = [];
  for (const d of devices) {
    const a = inEffect(d, before);
    const b = inEffect(d, after);
    let differs = a.size !== b.size;
    if (!differs)
      for (const [name, o] of a) {
        const p = b.get(name);
        if (!p || p.value !== o.value || p.type !== o.type || p.strategy !== o.strategy) {
          differs = true;
          break;
        }
      }
    if (differs) out.push(d.deviceId);
  }
  return out;
}

/** The overrides of these variables; one pass, a plain comparison for the usual single name (this runs per change over every override of the key). */
function ofNames(overrides: readonly Override[], names: ReadonlySet<string>): Override[] {
  const out: Override[] = [];
  if (names.size === 1) {
    const [only] = names;
    for (let i = 0; i < overrides.length; i++) {
      const o = overrides[i] as Override;
      if (o.name === only) out.push(o);
    }
    return out;
  }
  for (let i = 0; i < overrides.length; i++) {
    const o = overrides[i] as Override;
    if (names.has(o.name)) out.push(o);
  }
  return out;
}
