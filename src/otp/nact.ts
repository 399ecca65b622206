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

const require = createRequire(import.meta.url);
const nact = require('nact') as NactModule;

/** The fields of nact's Actor (lib/actor.js) that the two adjustments below touch. */
interface NactActor {
  immediate: unknown;
  children: Map<string, unknown>;
  childReferences: Map<string, unknown>;
}
const { Actor } = require('nact/lib/actor') as { Actor: { prototype: { afterMessage(this: NactActor): void; childSpawned(this: NactActor, child: NactActor): void } } };

/**
 * nact keeps an actor's last setImmediate handle after it ran (only to clear it at stop), and an
 * Immediate that ran still links the one queued after it: an idle actor held its last message (a
 * socket's first chunk), that message's callback and a chain of other callbacks' handles, about
 * 330 B per connection. afterMessage is nact's own hook after each message, empty in nact.
 */
Actor.prototype.afterMessage = function afterMessage(this: NactActor): void {
  this.immediate = undefined;
};

/** The children of every leaf actor: one shared empty map that refuses to grow. */
class NoChildren extends Map<string, unknown> {
  override set(): this {
    throw new Error('a worker actor has no children');
  }
}
const NO_CHILDREN = new NoChildren();

/**
 * Set while spawnLeaf runs: the actor spawned is a worker, which never spawns an actor of its own,
 * so its two children maps (an empty Map costs about 280 B) become the shared NO_CHILDREN.
 */
let spawningLeaf = false;
const childSpawned = Actor.prototype.childSpawned;
Actor.prototype.childSpawned = function (this: NactActor, child: NactActor): void {
  childSpawned.call(this, child);
  if (spawningLeaf) child.children = child.childReferences = NO_CHILDREN;
};

export const startSystem = (name: string): NactRef => nact.start({ name });
export const spawnActor = nact.spawn;
/** spawnActor for an actor that will never have children (a worker). */
export function spawnLeaf(...args: Parameters<NactModule['spawn']>): NactRef {
  spawningLeaf = true;
  try {
    return nact.spawn(...args);
  } finally {
    spawningLeaf = false;
  }
}
export const dispatch = nact.dispatch;
export const stopActor = nact.stop;
