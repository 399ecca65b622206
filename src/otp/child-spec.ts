/**
 * Child specs as plain data, with every default in one place and one validation at start that names
 * the offending child precisely (OTP's check_childspecs).
 */
import type { Attachable } from './handle.js';
import type { BackoffFlags, Behaviour, DynamicSupervisorFlags, Restart, SupervisorFlags } from './types.js';

/** What a child runs: a worker's behaviour, or a static or dynamic supervisor. */
export type Startable = WorkerDef | SupervisorDef | DynamicSupervisorDef;

export interface WorkerDef {
  readonly kind: 'worker';
  // The runtime never looks inside S and M; behaviours are typed where they are written.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly behaviour: Behaviour<any, any>;
}

/** A backoff with its default filled in, or null for immediate restarts. */
export type NormalizedBackoff = Required<BackoffFlags> | null;

export interface SupervisorDef {
  readonly kind: 'supervisor';
  readonly flags: Required<Omit<SupervisorFlags, 'backoff'>> & { backoff: NormalizedBackoff };
  readonly children: readonly ChildSpec[];
}

export interface DynamicSupervisorDef {
  readonly kind: 'dynamic';
  readonly flags: Required<Omit<DynamicSupervisorFlags, 'childIntensity' | 'childPeriod' | 'maxChildren' | 'backoff'>> &
    Pick<DynamicSupervisorFlags, 'childIntensity' | 'childPeriod'> & { maxChildren: number | null; backoff: NormalizedBackoff };
}

export interface ChildSpec {
  /** Unique among siblings; also the actor's name, so [A-Za-z0-9-_.$+!*'(),] only. */
  id: string;
  start: Startable;
  restart?: Restart;
  type?: 'worker' | 'supervisor';
  /** Milliseconds to wait for terminate() during shutdown (default 5000). */
  shutdown?: number;
  /** Follows whichever cell runs this spec (handle.ts), so nobody looks the child up by path. */
  handle?: Attachable;
}

export interface NormalizedSpec {
  id: string;
  start: Startable;
  restart: Restart;
  type: 'worker' | 'supervisor';
  shutdown: number;
  handle?: Attachable;
}

export const DEFAULTS = {
  restart: 'permanent' as Restart,
  shutdown: 5000,
  intensity: 3,
  period: 5000,
  /**
   * A child that ran twice the longest delay without crashing has left its crash loop; shorter
   * would let a child crashing just slower than maxMs restart at once every time.
   */
  backoffResetAfter: (maxMs: number): number => 2 * maxMs,
};

export class ChildSpecError extends Error {
  override name = 'ChildSpecError';
}

const NAME_RE = /^[a-z0-9\-$_.+!*'(),]+$/i;
const RESTARTS: readonly Restart[] = ['permanent', 'transient', 'temporary'];
const START_KINDS: readonly string[] = ['worker', 'supervisor', 'dynamic'];
const STRATEGIES: readonly string[] = ['one_for_one', 'one_for_all', 'rest_for_one'];

export function worker<S, M>(behaviour: Behaviour<S, M>): WorkerDef {
  return { kind: 'worker', behaviour };
}

export function supervisor(flags: SupervisorFlags, children: readonly ChildSpec[]): SupervisorDef {
  return {
    kind: 'supervisor',
    flags: {
      strategy: flags.strategy,
      intensity: flags.intensity ?? DEFAULTS.intensity,
      period: flags.period ?? DEFAULTS.period,
      backoff: backoffDefaults(flags.backoff),
    },
    children,
  };
}

export function dynamicSupervisor(flags: DynamicSupervisorFlags = {}): DynamicSupervisorDef {
  return {
    kind: 'dynamic',
    flags: {
      maxChildren: flags.maxChildren ?? null,
      intensity: flags.intensity ?? DEFAULTS.intensity,
      period: flags.period ?? DEFAULTS.period,
      childIntensity: flags.childIntensity,
      childPeriod: flags.childPeriod,
      backoff: backoffDefaults(flags.backoff),
    },
  };
}

/** Fills resetAfterMs; anything that is not an object is kept as is for normalizeSpec to reject. */
function backoffDefaults(b: BackoffFlags | null | undefined): NormalizedBackoff {
  if (b === undefined || b === null) return null;
  if (typeof b !== 'object' || Array.isArray(b)) return b as NormalizedBackoff;
  return { ...b, resetAfterMs: b.resetAfterMs ?? DEFAULTS.backoffResetAfter(b.maxMs) };
}

const BACKOFF_KEYS = ['initialMs', 'maxMs', 'resetAfterMs'];
const positiveMs = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** Why a backoff is invalid, or null when it is fine. */
function backoffProblem(b: unknown): string | null {
  if (b === null) return null;
  if (typeof b !== 'object' || Array.isArray(b)) return 'backoff must be null or an object {initialMs, maxMs, resetAfterMs?}';
  const o = b as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !BACKOFF_KEYS.includes(k));
  if (unknown !== undefined) return `backoff: unknown key ${JSON.stringify(unknown)}; expected ${BACKOFF_KEYS.join(', ')}`;
  for (const k of BACKOFF_KEYS) if (!positiveMs(o[k])) return `backoff.${k} must be a positive finite number of milliseconds, got ${JSON.stringify(o[k]) ?? String(o[k])}`;
  if ((o.maxMs as number) < (o.initialMs as number)) return `backoff.maxMs (${String(o.maxMs)}) must be at least backoff.initialMs (${String(o.initialMs)})`;
  return null;
}

/** Fills defaults and checks a spec; throws ChildSpecError naming the child and the bad field. */
export function normalizeSpec(spec: ChildSpec, where: string): NormalizedSpec {
  const bad = (msg: string): never => {
    throw new ChildSpecError(`${where}: child ${JSON.stringify(spec?.id)}: ${msg}`);
  };
  if (typeof spec !== 'object' || spec === null) bad('child spec must be an object');
  if (typeof spec.id !== 'string' || !NAME_RE.test(spec.id)) bad("id must be a non-empty string of [A-Za-z0-9-_.$+!*'(),]");
  const start = spec.start;
  if (typeof start !== 'object' || start === null || !START_KINDS.includes(start.kind))
    bad('start must come from worker(), supervisor() or dynamicSupervisor()');
  const restart = spec.restart ?? DEFAULTS.restart;
  if (!RESTARTS.includes(restart)) bad(`restart must be one of ${RESTARTS.join(', ')}`);
  const type = spec.type ?? (start.kind === 'worker' ? 'worker' : 'supervisor');
  if ((type === 'worker') !== (start.kind === 'worker')) bad(`type ${type} does not match a ${start.kind} start`);
  const shutdown = spec.shutdown ?? DEFAULTS.shutdown;
  if (!(shutdown > 0)) bad('shutdown must be a positive number of milliseconds');
  if (spec.handle !== undefined && spec.handle?.follows !== start.kind) bad(`handle follows a ${String(spec.handle?.follows)} child, not a ${start.kind}`);
  if (start.kind !== 'worker') {
    const { intensity, period } = start.flags;
    if (!Number.isInteger(intensity) || intensity < 0) bad('intensity must be an integer >= 0');
    if (!(period > 0)) bad('period must be a positive number of milliseconds');
    const problem = backoffProblem(start.flags.backoff);
    if (problem !== null) bad(problem);
  }
  if (start.kind === 'supervisor') {
    if (!STRATEGIES.includes(start.flags.strategy)) bad('strategy must be one_for_one, one_for_all or rest_for_one');
    const ids = new Set<string>();
    for (const c of start.children) {
      if (ids.has(c.id)) bad(`duplicate child id ${JSON.stringify(c.id)}`);
      ids.add(c.id);
    }
  }
  if (start.kind === 'dynamic') {
    const { maxChildren, childIntensity, childPeriod } = start.flags;
    if (maxChildren !== null && (!Number.isInteger(maxChildren) || maxChildren < 0)) bad('maxChildren must be an integer >= 0');
    if (childIntensity !== undefined && (!Number.isInteger(childIntensity) || childIntensity < 0)) bad('childIntensity must be an integer >= 0');
    if (childIntensity !== undefined && !((childPeriod ?? 0) > 0)) bad('childPeriod must be set with childIntensity');
  }
  // A spec that names every field already is its own normal form: a connection's spec, made per
  // socket, is then one object rather than two.
  if (spec.restart === restart && spec.type === type && spec.shutdown === shutdown && spec.handle === undefined) return spec as NormalizedSpec;
  return spec.handle ? { id: spec.id, start, restart, type, shutdown, handle: spec.handle } : { id: spec.id, start, restart, type, shutdown };
}
