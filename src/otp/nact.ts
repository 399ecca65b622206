/**
 * The only door to nact. We use its actors and mailboxes (spawn, dispatch, stop) and its per-crash
 * decision hook; supervision, restart intensity and the registry are ours. Typed here by hand because
 * nact's bundled typings do not match its runtime (onCrash's child argument, afterStop, reset).
 */
import { createRequire } from 'node:module';

export interface NactRef {
  readonly path: { parts: string[]; toString(): string };
  readonly name: string;
  readonly type: string;
}

export interface NactCrashContext {
  readonly resume: symbol;
  readonly stop: symbol;
  readonly escalate: symbol;
}

export interface NactSpawnOptions {
  onCrash?: (msg: unknown, err: unknown, ctx: NactCrashContext, child?: NactRef) => symbol | Promise<symbol>;
  initialState?: unknown;
  /** Called after stop with the last state; nact makes a closure of its own per actor when absent. */
  afterStop?: (state: unknown, ctx: unknown) => void;
}

interface NactModule {
  start(opts: { name: string }): NactRef;
  spawn(parent: NactRef, f: (state: unknown, msg: unknown) => unknown, name: string, opts: NactSpawnOptions): NactRef;
  dispatch(ref: NactRef, msg: unknown): void;
  stop(ref: NactRef): void;
}

const nact = createRequire(import.meta.url)('nact') as NactModule;

export const startSystem = (name: string): NactRef => nact.start({ name });
export const spawnActor = nact.spawn;
export const dispatch = nact.dispatch;
export const stopActor = nact.stop;
