/**
 * Elixir's Registry: key → entries of (actor, value). Unique registries hold one live entry per key,
 * duplicate ones many. An entry vanishes by itself when its actor's incarnation ends (a crash-restart
 * or a stop), through a monitor, so nobody ever finds a dead actor; one registered `untilStopped`
 * stays through in-place restarts and vanishes when the actor stops for good. A registry made with `id` also
 * finds an entry by its value's id in constant time (`get`), however many entries its key holds; one
 * made with `group` finds a key's entries of one group (`inGroup`) without scanning the others.
 */
import type { ActorRef } from './types.js';

export interface Entry<V> {
  ref: ActorRef<unknown>;
  value: V;
}

interface Held<V> extends Entry<V> {
  key: string;
  demonitor: () => void;
}

const noop = (): void => undefined;

export class AlreadyRegistered extends Error {
  override name = 'AlreadyRegistered';
}

export interface RegistryOptions<V> {
  /**
   * The id of a value, unique across the registry, for `get`: a duplicate key with thousands of
   * entries (one per socket) would otherwise be scanned per lookup, quadratic over a connect storm.
   */
  id?: (value: V) => string;
  /**
   * The group of a value within its key, for `inGroup`: the few entries of one group (a device's
   * sockets among its key's thousands) without a scan of the key per lookup.
   */
  group?: (value: V) => string;
}

export class Registry<V> {
  private readonly byKey = new Map<string, Map<string, Held<V>>>();
  /** Every entry by its value's id (with `id` only): one map for the registry, not one per key. */
  private readonly byId: Map<string, Held<V>> | null;
  private readonly idOf: ((value: V) => string) | null;
  /** Per key, its entries by group (with `group` only), each group's in registration order. */
  private readonly byGroup: Map<string, Map<string, Set<Held<V>>>> | null;
  private readonly groupOf: ((value: V) => string) | null;
  private count = 0;

  constructor(
    readonly name: string,
    readonly keys: 'unique' | 'duplicate',
    opts: RegistryOptions<V> = {},
  ) {
    this.idOf = opts.id ?? null;
    this.byId = this.idOf ? new Map() : null;
    this.groupOf = opts.group ?? null;
    this.byGroup = this.groupOf ? new Map() : null;
  }

  /**
   * Registers `ref` under `key`; a unique registry throws AlreadyRegistered if another actor holds it.
   * `untilStopped`: the entry belongs to the actor, not to its current incarnation (ActorRef.monitorStop).
   */
  register(key: string, ref: ActorRef<unknown>, value: V, opts?: { untilStopped?: boolean }): void {
    let entries = this.byKey.get(key);
    const existing = entries?.get(ref.path);
    if (existing) {
      this.unindex(existing);
      existing.value = value;
      this.index(existing);
      return;
    }
    if (this.keys === 'unique' && entries && entries.size > 0) {
      const holder = entries.values().next().value as Held<V>;
      throw new AlreadyRegistered(`${this.name}: ${key} is held by ${holder.ref.path}`);
    }
    if (!entries) this.byKey.set(key, (entries = new Map()));
    const held: Held<V> = { ref, value, key, demonitor: noop };
    entries.set(ref.path, held);
    this.index(held);
    this.count += 1;
    const drop = (): void => this.drop(key, ref.path, held);
    held.demonitor = opts?.untilStopped ? ref.monitorStop(drop) : ref.monitor(drop);
  }

  private index(held: Held<V>): void {
    if (this.byId && this.idOf) this.byId.set(this.idOf(held.value), held);
    if (this.byGroup && this.groupOf) {
      let groups = this.byGroup.get(held.key);
      if (!groups) this.byGroup.set(held.key, (groups = new Map()));
      const g = this.groupOf(held.value);
      let members = groups.get(g);
      if (!members) groups.set(g, (members = new Set()));
      members.add(held);
    }
  }

  private unindex(held: Held<V>): void {
    if (this.byId && this.idOf) {
      const id = this.idOf(held.value);
      if (this.byId.get(id) === held) this.byId.delete(id);
    }
    if (this.byGroup && this.groupOf) {
      const groups = this.byGroup.get(held.key);
      const g = this.groupOf(held.value);
      const members = groups?.get(g);
      if (!groups || !members) return;
      members.delete(held);
      if (members.size === 0) groups.delete(g);
      if (groups.size === 0) this.byGroup.delete(held.key);
    }
  }

  unregister(key: string, ref: ActorRef<unknown>): boolean {
    const held = this.byKey.get(key)?.get(ref.path);
    if (!held) return false;
    held.demonitor();
    this.drop(key, ref.path, held);
    return true;
  }

  private drop(key: string, path: string, held: Held<V>): void {
    const entries = this.byKey.get(key);
    if (entries?.get(path) !== held) return;
    entries.delete(path);
    this.unindex(held);
    this.count -= 1;
    if (entries.size === 0) this.byKey.delete(key);
  }

  lookup(key: string): Entry<V>[] {
    const entries = this.byKey.get(key);
    if (!entries) return [];
    return [...entries.values()].map(({ ref, value }) => ({ ref, value }));
  }

  /** Calls `fn` with each value under `key`, in registration order, without copying the key's entries. */
  forEachValue(key: string, fn: (value: V) => void): void {
    const entries = this.byKey.get(key);
    if (entries) for (const held of entries.values()) fn(held.value);
  }

  /** The first value under `key` that `pred` accepts, without copying the key's entries. */
  find(key: string, pred: (value: V) => boolean): V | undefined {
    const entries = this.byKey.get(key);
    if (!entries) return undefined;
    for (const held of entries.values()) if (pred(held.value)) return held.value;
    return undefined;
  }

  /** The value under `key` whose id is `id` (a registry made with `id` only). */
  get(key: string, id: string): V | undefined {
    if (!this.byId) throw new Error(`registry ${this.name} has no id index: make it with the id option`);
    const held = this.byId.get(id);
    return held && held.key === key ? held.value : undefined;
  }

  /** The values under `key` of group `group`, in registration order (a registry made with `group` only). */
  inGroup(key: string, group: string): V[] {
    if (!this.byGroup) throw new Error(`registry ${this.name} has no group index: make it with the group option`);
    const members = this.byGroup.get(key)?.get(group);
    if (!members) return [];
    const out: V[] = [];
    for (const held of members) out.push(held.value);
    return out;
  }

  /** The one entry of a unique key, if any. */
  whereis(key: string): Entry<V> | undefined {
    const entries = this.byKey.get(key);
    if (!entries) return undefined;
    const held = entries.values().next().value;
    return held ? { ref: held.ref, value: held.value } : undefined;
  }

  countKey(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  get size(): number {
    return this.count;
  }

  keysList(): string[] {
    return [...this.byKey.keys()];
  }
}
