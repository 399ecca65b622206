/**
 * The storage contract for DESIGN.md §8 data (devices, reported values per device, overrides,
 * last-sent per device, strategies, history), as an interface only: the memory and Redis stores
 * implement it beside the existing Store, and one contract suite runs against both.
 *
 * Consistency: overrides, strategies and history change together through `commit`, one atomic step
 * guarded by the key's state version (optimistic concurrency), so two nodes editing at once resolve
 * to one winner and the loser recomputes from the fresh state; the history therefore always
 * explains the state exactly (history.ts rollback relies on it). Strategies carry their own version
 * as well, so an editor that read version 3 cannot overwrite someone else's version 4 unseen.
 *
 * Redis layout: every key of one API key K carries the hash tag `{K:vs}`, so all of them share the
 * slot of the original `K:vs` and one Lua script can touch them all on Redis Cluster; `K:vs` keeps
 * its layout and meaning. The key list is in src/store/redis-store.ts and README.md ("Data layout in
 * Redis"). `commit` is one Lua script guarded by the state version; the per-device keys are deleted
 * together with the device's record when it is forgotten.
 */
import type { Var } from '../model.js';
import type { HistoryBounds, HistoryDraft, HistoryEntry } from './history.js';
import type { Labels } from './labels.js';
import type { Override } from './overrides.js';
import type { Op, Strategy } from './strategies.js';

/**
 * The earlier versions of a key's state a store keeps besides its newest, for lastState(key,
 * version): a key's commits run at most one batch ahead of the one being delivered (var-changes.ts
 * drain), and a client actor's pass takes what arrived while it was busy together, so a delivery
 * pass finds its batch among the last few.
 */
export const EARLIER_STATES = 4;

export interface DeviceRecord {
  readonly deviceId: string;
  readonly labels: Labels;
  /** True while a presence heartbeat for it has not lapsed, on any node. */
  readonly online: boolean;
  /** Last verify, report or heartbeat, ms since the epoch. */
  readonly lastSeen: number;
  readonly lastAddress: string | null;
  /** True for a connection without a device id (the id was made up for its lifetime). */
  readonly generated: boolean;
}

export interface StrategyRecord extends Strategy {
  /** 1 on create, +1 on every update. */
  readonly version: number;
  readonly updatedAt: number;
  readonly updatedBy: string;
}

/** A commit's preconditions: what the caller read its state at. */
export interface CommitExpect {
  /** The key's state version the ops were computed from. */
  readonly stateVersion: number;
  /** For strategy.update/delete: the strategy's version the editor saw; null: it must not exist. */
  readonly strategy?: { readonly name: string; readonly version: number | null };
}

export type CommitResult =
  | { readonly ok: true; readonly entry: HistoryEntry; readonly stateVersion: number }
  /** Someone else committed first: re-read, recompute, retry (or tell the editor, for a strategy). */
  | { readonly ok: false; readonly stateVersion: number; readonly strategyVersion?: number | null };

export type CommitManyResult =
  | { readonly ok: true; readonly entries: HistoryEntry[]; readonly stateVersion: number }
  | { readonly ok: false; readonly stateVersion: number };

/** How commitMany takes its state version. */
export interface CommitManyOptions {
  /**
   * The commits were computed from the state this store's last commitMany of the key leaves, sent
   * before that one's answer: taken only right behind it, when it was taken and nothing was
   * committed in between (by any node); else refused, nothing written. A key's changes then need
   * not wait a round trip per batch for the one before.
   */
  readonly chained?: boolean;
}

export interface VariablesStore {
  // Devices -----------------------------------------------------------------------------------------

  /** A device verified (or heartbeats): record it, refresh its presence for `ttlMs`. Labels stay as they were. */
  touchDevice(apiKey: string, device: { deviceId: string; address: string | null; generated: boolean }, at: number, ttlMs: number): Promise<void>;
  /** touchDevice of many devices at once (a burst of verifies of one key), one round trip; a device listed twice: the later. */
  touchDevices(apiKey: string, devices: ReadonlyArray<{ deviceId: string; address: string | null; generated: boolean }>, at: number, ttlMs: number): Promise<void>;
  /** Many devices of this node at once (the heartbeat); one round trip. */
  heartbeat(apiKey: string, deviceIds: readonly string[], at: number, ttlMs: number): Promise<void>;
  /** The labels a `d:` line declared; replaces the previous set. */
  setLabels(apiKey: string, deviceId: string, labels: Labels): Promise<void>;
  /** The device's last socket closed: offline now rather than when its presence lapses. */
  markOffline(apiKey: string, deviceId: string, at: number): Promise<void>;
  /** Online devices and those seen within `rememberMs`, newest first. */
  listDevices(apiKey: string, rememberMs: number, now: number): Promise<DeviceRecord[]>;
  getDevice(apiKey: string, deviceId: string, now: number): Promise<DeviceRecord | null>;
  /** Forgets devices not seen since `before` and offline now (wall clock), with their labels, reported values and last-sent; returns how many. */
  forgetDevices(apiKey: string, before: number): Promise<number>;

  // Reported values and last-sent, per device --------------------------------------------------------

  /** The device's own values (overrides.ts onReport decides what they are), first-seen order; replaces the whole list (a name twice: the later value). */
  setReported(apiKey: string, deviceId: string, vars: readonly Var[]): Promise<void>;
  getReported(apiKey: string, deviceId: string): Promise<Var[]>;
  /** What the device was last sent; `replace` drops everything else first (after OK, overrides.ts onVerify). */
  setLastSent(apiKey: string, deviceId: string, vars: readonly Var[], replace: boolean): Promise<void>;
  /** Drops variables from last-sent (a report superseded them). */
  forgetLastSent(apiKey: string, deviceId: string, names: readonly string[]): Promise<void>;
  getLastSent(apiKey: string, deviceId: string): Promise<Map<string, Var>>;
  /**
   * getLastSent and getReported of many devices, in the order given, in one round trip (a change
   * reaching every device of a key); with `names`, each last-sent holds only those of these variables
   * it has (a delivery pass that knows which variables can be pending).
   */
  getSentAndReported(apiKey: string, deviceIds: readonly string[], names?: readonly string[]): Promise<Array<{ lastSent: Map<string, Var>; reported: Var[] }>>;
  /** setLastSent(…, replace false) of many devices in one round trip; a device listed twice gets both, in order. */
  addLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void>;
  /** setLastSent(…, replace true) of many devices in one round trip (a burst of verifies); a device listed twice: the later. */
  replaceLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void>;

  // Overrides, strategies, history: read, and change in one step ------------------------------------

  /**
   * The whole state a change is computed from, with its version. The overrides list is the store's
   * own, never changed (readonly), the same array while the state is unchanged: a copy per read was
   * a pass over every override per change, and override-list.ts keeps its index by the array.
   */
  readState(apiKey: string): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }>;
  /**
   * readState without a round trip when this store holds the key's state: as it last read or
   * committed it here, so possibly stale when another node committed since (a commit at its version
   * is then refused, and the caller reads again). A store that holds none reads it.
   *
   * With `version`: the state at exactly that version when this store still holds it (its own
   * commits' and reads' last few versions of the key, EARLIER_STATES), else as without. A delivery
   * pass sends from its batch's own state, not from the next batch's committed meanwhile.
   */
  lastState(apiKey: string, version?: number): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }>;
  listOverrides(apiKey: string): Promise<Override[]>;
  listStrategies(apiKey: string): Promise<StrategyRecord[]>;
  getStrategy(apiKey: string, name: string): Promise<StrategyRecord | null>;
  /**
   * Applies the ops (history.ts applyOps semantics) and appends the draft (the store assigns its id),
   * atomically, if `expect` still holds; prunes the history to `bounds` in the same step.
   */
  commit(apiKey: string, ops: readonly Op[], draft: HistoryDraft, expect: CommitExpect, bounds: HistoryBounds, by: string): Promise<CommitResult>;
  /**
   * Several commits computed one after the other from the state at `stateVersion` (each from the state
   * the ones before it leave), applied in that order in one atomic step, each with its own history
   * entry: the same as committing them one by one, in one round trip. All or none: when the version
   * moved, nothing is written. The version moves by one per commit. Strategy expectations are the
   * caller's to check against the state it computed each commit from. `options.chained`: see CommitManyOptions.
   */
  commitMany(apiKey: string, commits: ReadonlyArray<{ ops: readonly Op[]; draft: HistoryDraft; by: string }>, stateVersion: number, bounds: HistoryBounds, options?: CommitManyOptions): Promise<CommitManyResult>;
  /** Records how many devices an entry reached, once delivery is known (the entry's only mutable field); an id no longer there is ignored. */
  setDelivered(apiKey: string, entryId: string, delivered: number): Promise<void>;
  /** setDelivered for several entries in one step (the changes one delivery pass handled together); ids no longer there are ignored. */
  setDeliveredMany(apiKey: string, counts: ReadonlyArray<{ id: string; delivered: number }>): Promise<void>;
  /** Newest first, at most `limit`, only entries older than `before` (an id) when given; a malformed `before` or limit is bad_request. */
  listHistory(apiKey: string, options: { limit: number; before?: string }): Promise<HistoryEntry[]>;
  getHistoryEntry(apiKey: string, id: string): Promise<HistoryEntry | null>;
  /** Entries newer than `id` and `id` itself, newest first, what rollback needs; null when `id` is not there. */
  historySince(apiKey: string, id: string): Promise<HistoryEntry[] | null>;
  /** Drops what history.ts prune would drop (also done by every commit); returns how many. */
  pruneHistory(apiKey: string, bounds: HistoryBounds, now: number): Promise<number>;
}
