/**
 * The only door to nact. We use its actors and mailboxes (spawn, dispatch, stop) and its per-crash
 * decision hook; supervision, restart intensity and the registry are ours. Typed here by hand because
 * nact's bundled typings do not match its runtime (onCrash's child argument, afterStop, reset). A
 * node holds one actor per connection, so the few things nact keeps or allocates per actor and per
 * message that we never use are adjusted here, on nact's Actor prototype (each says why).
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
  dispatch(ref: NactRef, msg: unknown, sender?: unknown): void;
  stop(ref: NactRef): void;
}

const require = createRequire(import.meta.url);
const nact = require('nact') as NactModule;

/** The fields of nact's Actor (lib/actor.js) that the adjustments below touch. */
interface NactActor {
  immediate: unknown;
  path: { parts: string[] };
  children: Map<string, unknown>;
  childReferences: Map<string, unknown>;
  parent?: { reference: unknown };
  reference: unknown;
  name: string;
  log: unknown;
}
interface ActorPrototype {
  afterMessage(this: NactActor): void;
  childSpawned(this: NactActor, child: NactActor): void;
  createContext(this: NactActor, sender: unknown): unknown;
}
const { Actor } = require('nact/lib/actor') as { Actor: { prototype: ActorPrototype } };
const { Nobody } = require('nact/lib/references') as { Nobody: new () => unknown };

/** The sender of every message we dispatch (we never reply through nact): nact made one per message. */
const NOBODY = new Nobody();

/**
 * The context nact hands each message, without the copy of the actor's children map it made for
 * every message (an empty Map is about 300 B of garbage): no message function of ours reads the
 * context, and nact's own uses (supervision, stop) read nothing of the children.
 */
Actor.prototype.createContext = function createContext(this: NactActor, sender: unknown): unknown {
  return { parent: this.parent?.reference, path: this.path, self: this.reference, name: this.name, children: this.childReferences, sender, log: this.log };
};

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
 * so its two children maps (an empty Map costs about 280 B) become the shared NO_CHILDREN, and its
 * path's parts a copy of their size (about 150 B less per worker, one per connection).
 */
let spawningLeaf = false;
const childSpawned = Actor.prototype.childSpawned;
Actor.prototype.childSpawned = function (this: NactActor, child: NactActor): void {
  childSpawned.call(this, child);
  if (!spawningLeaf) return;
  child.children = child.childReferences = NO_CHILDREN;
  // nact builds the path with a spread, whose array keeps room for about 20 more parts.
  child.path.parts = child.path.parts.slice();
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
export const dispatch = (ref: NactRef, msg: unknown): void => nact.dispatch(ref, msg, NOBODY);
export const stopActor = nact.stop;
