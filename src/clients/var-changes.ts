/**
 * Every change a person makes to a key's variables (REST, the WebSocket's `set_var`, strategies,
 * revert and rollback; DESIGN.md §8): computed from the key's state by src/variables/actions.ts,
 * committed with its history entry in one step through the store's `commit` (recomputed when another
 * commit won), then delivered: published on the key's `vars:callback` channel, where every node's
 * client actor sends each of its devices what changed for it and acks how many it reached. What
 * devices it did not reach stays pending, derived from the overrides and what each device was last
 * sent, never queued. One place, so every entry point behaves the same.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { VariablesConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import type { DashboardEvent, Gateway } from '../gateway/gateway.js';
import type { Metrics } from '../metrics.js';
import { canonicalVarValue, inferVarType, MAX_VAR_NAME, MAX_VAR_TYPE, varNameProblem, varTypeProblem, type Var, type VarValue } from '../model.js';
import { channels, type PubSub, type Unsubscribe } from '../pubsub/pubsub.js';
import { applyCommit, compareHistoryIds, parseHistoryId, plainOp } from '../store/variables-common.js';
import { affectedDevices, commit, overridesOfNames, type Action, type CommitManyResult, type HistoryDraft, type HistoryEntry, type StrategyRecord, type VariablesState, type Override } from '../variables/index.js';
import type { StrategyAnswer, VarDelivery } from '../wire.js';
import type { DeliveryAck, DeliveryAcks, VarChange, VarStore } from './client.js';

// The answer and the value's JSON type are declared in wire.ts with the other shapes that leave the process.
export type { VarDelivery, VarValue };

/** What a caller of VarChanges.act may ask for besides the answer. */
export interface ActOptions {
  /**
   * Called once, as soon as every node has acked the change (its devices' lines are written), or
   * its ack wait ended, or it failed: before the answer, which still waits for the delivered count's
   * write. A change published after this is in a later delivery pass of each client actor (the one
   * that acked had already taken this change's message), so its line is a line of its own.
   */
  sent?: () => void;
}

/** A change as a dashboard asks for it: the value in its JSON type, the var's type optional. */
export interface VarEdit {
  name: string;
  value: VarValue;
  type?: string | undefined;
}

export interface VarChangesDeps {
  store: VarStore;
  metrics: Metrics;
  pubsub: PubSub;
  gateway: Gateway;
  logger: Logger;
  nodeId: string;
  variables: VariablesConfig;
  /** How long to wait for the nodes' delivery acks (default 1 s). */
  ackTimeoutMs?: number;
}

/** The state a change is computed from, as the store read it. */
export interface ReadState {
  overrides: readonly Override[];
  strategies: StrategyRecord[];
  stateVersion: number;
}

/** What a change becomes: the action, and for strategy edits the version the editor saw (409 when stale). */
export interface Planned extends Action {
  strategyExpect?: { name: string; version: number | null; fromEditor: boolean };
}

/** A committed, delivered change. */
export interface Applied {
  entry: HistoryEntry;
  before: VariablesState;
  after: VariablesState;
  delivered: number;
  pending: number;
  unconfirmed?: number;
}

/** The node's channel for delivery acks; one per node so acks never fan out to every daemon. */
export function ackChannel(nodeId: string): string {
  return `observerio:acks:${nodeId}`;
}

/** The protocol's rule for names (model.ts), worded for the dashboard. */
export function checkVarName(name: string): string | null {
  const problem = varNameProblem(name);
  if (problem === 'control') return 'variable name must not contain control characters';
  return problem ? `variable name must be 1-${MAX_VAR_NAME} characters` : null;
}

/**
 * The variable to store and send: type from the request, else the existing variable's, else inferred
 * from the JSON value. Values of the well-known types must parse as such, because the SDK hands the
 * game a typed value and a typo must not reach it as NaN; they are sent in canonical form.
 */
export function resolveVar(edit: VarEdit, existing: Var | undefined): Var {
  const nameProblem = checkVarName(edit.name);
  if (nameProblem) throw new ObserverioError('bad_request', nameProblem);
  const type = edit.type ?? existing?.type ?? inferVarType(edit.value);
  if (varTypeProblem(type)) throw new ObserverioError('bad_request', `type must be 1-${MAX_VAR_TYPE} printable characters`);
  const { value } = edit;
  if (typeof value === 'number' && !Number.isFinite(value)) throw new ObserverioError('bad_request', 'value must be a finite number');
  const canonical = canonicalVarValue(type, value);
  if ('expected' in canonical)
    throw new ObserverioError('bad_request', `value ${JSON.stringify(value).slice(0, 40)} is not ${canonical.expected} (variable ${edit.name} has type ${type})`);
  return { name: edit.name, type, value: canonical.value };
}

interface Committed {
  entry: HistoryEntry;
  before: VariablesState;
  after: VariablesState;
  /** The variables the change's operations set or clear: the only ones whose winners can differ. */
  names: ReadonlySet<string>;
  /** The caller's `sent` hook (ActOptions), called once its nodes have all acked (or the wait ended). */
  sent?: (() => void) | undefined;
  /** The key's state version once the change's batch was committed (the store's answer). */
  stateVersion: number;
}

/** A change computed for its batch's commit. */
interface PlannedChange {
  item: Queued;
  ops: Planned['ops'];
  draft: HistoryDraft;
  before: VariablesState;
  after: VariablesState;
}

/** A batch whose commit is on its way (VarChanges.drain), and the state it leaves if the store takes it. */
interface Ahead {
  planned: PlannedChange[];
  /** Its changes whose strategy moved under them, computed again once it lands. */
  later: Queued[];
  result: Promise<CommitManyResult>;
  leaves: ReadState;
}

/** What one attempt at a batch came to (VarChanges.attempt). */
type Attempt =
  | { kind: 'doubt' }
  | { kind: 'abort' }
  | { kind: 'none'; next: Queued[] }
  | { kind: 'sent'; planned: PlannedChange[]; next: Queued[]; result: Promise<CommitManyResult>; stillCached: boolean; leaves: ReadState };

/** A change waiting for its key's commit. */
interface Queued {
  actor: string;
  plan: (state: ReadState) => Planned | Promise<Planned>;
  sent?: (() => void) | undefined;
  resolve: (a: Applied) => void;
  reject: (err: unknown) => void;
}

/**
 * A batch of changes on `<apiKey>:vars:callback`, one message for the changes committed together
 * (clients/client.ts unpacks it): one publish instead of one each.
 */
export interface VarChangeBatch {
  batch: VarChange[];
}

/** Changes in one message at most, so a hostile publisher's batch costs little (a commit batch is ≤ MAX_BATCH). */
export const MAX_CHANGES_PER_MESSAGE = 10_000;

export function isVarChangeBatch(m: unknown): m is VarChangeBatch {
  if (typeof m !== 'object' || m === null) return false;
  const list = (m as Record<string, unknown>).batch;
  return Array.isArray(list) && list.length <= MAX_CHANGES_PER_MESSAGE;
}

/**
 * Resolves once the callbacks of the event loop's current turn have run (setImmediate: after the
 * poll phase's other socket reads, each of which may be a change of the same key). An idle loop
 * goes straight on, so a lone change waits for nothing.
 */
function turnEnd(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** The variables the operations set or clear. */
function opNames(ops: Planned['ops']): Set<string> {
  const out = new Set<string>();
  for (const op of ops) {
    if (op.kind === 'override.set') out.add(op.override.name);
    else if (op.kind === 'override.clear') out.add(op.name);
  }
  return out;
}

/**
 * How long a burst of changes shares one overrides event: the list is the key's whole state (a
 * hundred kilobytes for a thousand overrides), and sending it per change at thousands of changes/s
 * was most of the daemon's work in the profile, while a dashboard is no worse for 25 ms.
 */
const OVERRIDES_EVENT_MS = 25;

/**
 * A long list waits longer, in proportion, up to OVERRIDES_EVENT_MAX_MS: sending, decoding and
 * fanning out a thousand overrides forty times a second was still the largest single cost of a
 * burst in the profile (at 1,000 changes/s), while a dashboard showing them is no worse for 100 ms.
 */
const OVERRIDES_PER_EVENT_MS = 10;
const OVERRIDES_EVENT_MAX_MS = 100;

/** How long a burst shares one overrides event for a list this long. */
export function overridesEventMs(length: number): number {
  return Math.min(OVERRIDES_EVENT_MAX_MS, Math.max(OVERRIDES_EVENT_MS, Math.ceil(length / OVERRIDES_PER_EVENT_MS)));
}

/** Keys whose newest overrides event one node remembers past its tick (a few numbers each). */
const MAX_KEYS_REMEMBERED = 100_000;

/** Changes committed in one step at most: a bigger batch would hold the first ones' answers back. */
const MAX_BATCH = 256;

interface AckTotals {
  received: number;
  delivered: number;
}

interface PendingAck extends AckTotals {
  /** Nodes to hear from; unknown (Infinity) until publish has told us. */
  expected: number;
  done: (result: AckTotals) => void;
}

function isAck(m: unknown): m is DeliveryAck {
  if (typeof m !== 'object' || m === null) return false;
  const a = m as Record<string, unknown>;
  return typeof a.requestId === 'string' && typeof a.delivered === 'number' && Number.isFinite(a.delivered) && a.delivered >= 0;
}

/** A node's answers to several changes in one message (clients/client.ts deliver); capped so a hostile one costs little. */
function isAcks(m: unknown): m is DeliveryAcks {
  if (typeof m !== 'object' || m === null) return false;
  const list = (m as Record<string, unknown>).acks;
  return Array.isArray(list) && list.length <= MAX_ACKS_PER_MESSAGE;
}

/** More acks than any delivery pass gives in one message is not a message of ours. */
const MAX_ACKS_PER_MESSAGE = 100_000;

export class VarChanges {
  readonly replyTo: string;
  private readonly pending = new Map<string, PendingAck>();
  /** Per key, the newest overrides list sent to dashboards (by entry id) and the one waiting for the end of the tick. */
  private readonly overridesSent = new Map<string, { id: { ms: number; seq: number }; tick: boolean; latest: readonly Override[] | null }>();
  /** Changes waiting to be committed, per key; a key is here while its drain runs. */
  private readonly queues = new Map<string, Queued[]>();
  /** Per key whose drain waits for a batch's answer with nothing behind it: wakes it when a change joins the queue. */
  private readonly wakers = new Map<string, () => void>();
  /** The overrides spells' timers (publishOverrides), cleared by stop(). */
  private readonly spells = new Set<NodeJS.Timeout>();
  private subscription: Promise<Unsubscribe> | null = null;
  private readonly ackTimeoutMs: number;
  /** Request ids are `<requestPrefix>.<batch>.<i>`: the prefix is drawn once, so a late ack from another incarnation never matches. */
  private readonly requestPrefix = randomBytes(9).toString('base64url');
  private batches = 0;

  constructor(private readonly deps: VarChangesDeps) {
    this.replyTo = ackChannel(deps.nodeId);
    this.ackTimeoutMs = deps.ackTimeoutMs ?? 1000;
  }

  /** Subscribes to this node's ack channel, once; a failed attempt is retried by the next call. */
  start(): Promise<void> {
    if (!this.subscription) {
      const p = this.deps.pubsub.subscribe(this.replyTo, (m) => this.onAck(m));
      this.subscription = p;
      p.catch((err: unknown) => {
        if (this.subscription === p) this.subscription = null;
        this.deps.logger.warn({ err, channel: this.replyTo }, 'cannot subscribe to the delivery ack channel');
      });
    }
    return this.subscription.then(() => undefined);
  }

  async stop(): Promise<void> {
    // A stopped instance sends dashboards nothing more (a spell's end would otherwise still publish).
    for (const t of this.spells) clearTimeout(t);
    this.spells.clear();
    this.overridesSent.clear();
    const sub = this.subscription;
    this.subscription = null;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.done({ received: p.received, delivered: p.delivered });
    }
    if (sub) await (await sub.catch(() => null))?.();
  }

  /**
   * Computes the change from the key's current state (`plan` may throw a 4xx), commits it with its
   * history entry, and delivers it. A commit that lost a race is recomputed from the fresh state;
   * a strategy edit whose editor named a version that is no longer current is a 409 instead.
   *
   * One change at a time per key on this node, so quick changes reach the devices in the order made
   * (other nodes are ordered by the store's version check). Changes that queue up behind a commit in
   * flight are computed one after the other, each from the state the ones before it leave, and
   * committed together in one step (store.commitMany): the same result as one by one, at one read
   * and one write for the lot instead of two round trips each. Such a batch's commit leaves while the
   * one ahead of it is still on its way, chained on it (see drain): committed, answered and delivered
   * in the order made all the same.
   */
  act(apiKey: string, actor: string, plan: (state: ReadState) => Planned | Promise<Planned>, options: ActOptions = {}): Promise<Applied> {
    const hook = options.sent;
    let sent: (() => void) | undefined;
    if (hook) {
      let called = false;
      sent = () => {
        if (called) return;
        called = true;
        hook();
      };
    }
    return new Promise<Applied>((resolve, reject) => {
      let q = this.queues.get(apiKey);
      if (!q) {
        q = [];
        this.queues.set(apiKey, q);
        void this.drain(apiKey, q);
      }
      // Whatever the outcome, `sent` has been called by the time the caller hears it.
      q.push({
        actor,
        plan,
        sent,
        resolve: (a) => {
          sent?.();
          resolve(a);
        },
        reject: (err) => {
          sent?.();
          reject(err);
        },
      });
      this.wakers.get(apiKey)?.();
    });
  }

  /**
   * Commits what waits for the key, batch after batch, until nothing does. A batch's commit leaves
   * while the one before it is still on its way (at most one ahead): computed from the state that one
   * leaves, and taken by the store only right behind it (CommitManyOptions.chained), so a key's
   * changes do not wait a round trip per batch for the previous batch's answer. Answers, deliveries
   * and retries follow in commit order: each batch lands (delivered, or computed again from a fresh
   * read when refused) before the one behind it. A batch with a change that would be refused on that
   * state (a plan that throws, a strategy at another version) waits for the one ahead instead and is
   * committed as it always was, so no change is refused on a state that may not come to be.
   */
  private async drain(apiKey: string, q: Queued[]): Promise<void> {
    // Started from act() before its push: let the pushes of this I/O turn join the first batch.
    await turnEnd();
    let ahead: Ahead | null = null;
    for (;;) {
      if (q.length === 0 && ahead) {
        // Nothing behind it yet: its answer, or a change to send behind it, whichever comes first.
        const arrived = await Promise.race([ahead.result.then(() => false, () => false), this.arrival(apiKey)]);
        this.wakers.delete(apiKey);
        // Woken by the first change of an I/O turn that may hold many (a burst of requests read
        // together): they join it before it leaves, rather than one leaving alone with the rest
        // behind it (half the batches of the bulk PUT bench were of one change: a commit, a
        // delivery pass, an ack and a delivered-count write each).
        if (arrived) await turnEnd();
        if (!arrived || q.length === 0) {
          await this.land(apiKey, ahead);
          ahead = null;
          continue;
        }
      }
      if (q.length === 0) break;
      // Changes of the batch ahead that are computed again once it lands go before any behind it.
      if (ahead && ahead.later.length > 0) {
        await this.land(apiKey, ahead);
        ahead = null;
      }
      const batch = q.splice(0, MAX_BATCH);
      let sent: Ahead | { rest: Queued[]; cacheFirst: boolean } | { err: unknown };
      try {
        sent = await this.send(apiKey, batch, ahead?.leaves ?? null);
      } catch (err) {
        sent = { err };
      }
      if (ahead) await this.land(apiKey, ahead);
      ahead = null;
      if ('err' in sent) for (const item of batch) item.reject(sent.err);
      else if ('rest' in sent) {
        if (sent.rest.length > 0) await this.commitCarefully(apiKey, sent.rest, sent.cacheFirst);
      } else ahead = sent;
    }
    this.queues.delete(apiKey);
  }

  /** Resolves when a change joins the key's queue (act). */
  private arrival(apiKey: string): Promise<boolean> {
    return new Promise<boolean>((resolve) => this.wakers.set(apiKey, () => resolve(true)));
  }

  /**
   * The batch's first attempt (VarChanges.attempt) from `base`, the state the batch ahead leaves (null:
   * the state this node's store last saw), its commit sent and not awaited; else what is left to
   * commit as before (after the batch ahead lands), and whether from the cache first.
   */
  private async send(apiKey: string, batch: Queued[], base: ReadState | null): Promise<Ahead | { rest: Queued[]; cacheFirst: boolean }> {
    const { store, logger } = this.deps;
    const state = base ?? (await backend(store.lastState(apiKey), 'store', logger));
    const a = await this.attempt(apiKey, batch, state, base ? 'projected' : 'cached');
    if (a.kind === 'sent') return { planned: a.planned, later: a.next, result: a.result, leaves: a.leaves };
    if (a.kind === 'abort') return { rest: batch, cacheFirst: true };
    return { rest: a.kind === 'none' ? a.next : batch, cacheFirst: false };
  }

  /**
   * A sent batch's answer: delivered when taken (then its changes whose strategy moved under them
   * computed again), computed again from a fresh read when refused.
   */
  private async land(apiKey: string, a: Ahead): Promise<void> {
    let r: CommitManyResult;
    try {
      r = await a.result;
    } catch (err) {
      for (const x of a.planned) x.item.reject(err);
      if (a.later.length > 0) await this.commitCarefully(apiKey, a.later, false);
      return;
    }
    if (r.ok) {
      this.deliverLanded(apiKey, a.planned, r.entries, r.stateVersion);
      if (a.later.length > 0) await this.commitCarefully(apiKey, a.later, false);
      return;
    }
    // Refused (another node committed, or the batch it was chained on was refused): from a fresh read.
    await this.commitCarefully(apiKey, [...a.planned.map((x) => x.item), ...a.later], false);
  }

  /** commitBatch, its failure answering the batch's changes. */
  private async commitCarefully(apiKey: string, batch: Queued[], fromCache: boolean): Promise<void> {
    try {
      await this.commitBatch(apiKey, batch, fromCache);
    } catch (err) {
      for (const item of batch) item.reject(err);
    }
  }

  private async commitBatch(apiKey: string, batch: Queued[], cacheFirst: boolean): Promise<void> {
    const { store, logger, variables } = this.deps;
    let open = batch;
    // First from the state as this node's store last saw it, without a round trip: exact, because
    // COMMIT refuses a stale version, and before a change is refused on it (a plan that throws, a
    // strategy at another version) a read makes sure it is still the key's state (else the batch is
    // computed again from the fresh one). That attempt is not counted when its commit is refused: the
    // retries on fresh reads are as many as they always were.
    let fromCache = cacheFirst;
    for (let attempt = 0; attempt < variables.maxCommitRetries && open.length > 0; attempt++) {
      const cached = fromCache;
      fromCache = false;
      const state = await backend(cached ? store.lastState(apiKey) : store.readState(apiKey), 'store', logger);
      const a = await this.attempt(apiKey, open, state, cached ? 'cached' : 'fresh');
      if (a.kind === 'doubt') {
        attempt--;
        continue;
      }
      if (a.kind !== 'sent') {
        open = a.kind === 'none' ? a.next : open;
        continue;
      }
      const r = await a.result.catch((err: unknown) => {
        for (const x of a.planned) x.item.reject(err);
        return null;
      });
      if (!r) {
        open = a.next;
        continue;
      }
      if (r.ok) {
        this.deliverLanded(apiKey, a.planned, r.entries, r.stateVersion);
        open = a.next;
      } else {
        open = [...a.planned.map((x) => x.item), ...a.next];
        if (a.stillCached) attempt--;
      }
    }
    for (const item of open) item.reject(new ObserverioError('unavailable', 'too many concurrent changes of this key; retry'));
  }

  /**
   * One attempt at a batch: its changes computed one after the other from `state`, and their commit
   * sent (its answer not awaited). `cached`: the state as this node's store last saw it; before a
   * change is refused on it, one read makes sure it is still the key's (`doubt` when not: nothing
   * sent, nothing refused). `fresh`: read for this attempt. `projected`: the state a commit on its way
   * leaves; any refusal ends the attempt (`abort`: nothing sent, nothing refused), since that state
   * may not come to be. Changes whose strategy moved under them (not the editor's) are in `next`.
   */
  private async attempt(apiKey: string, open: readonly Queued[], state: ReadState, basis: 'cached' | 'fresh' | 'projected'): Promise<Attempt> {
    const { store, logger, variables } = this.deps;
    let overrides = state.overrides;
    let strategies = state.strategies;
    // The strategies as the pure functions take them, made again only when a change edits them.
    let plainStrategies = strategies.map((x) => ({ name: x.name, vars: x.vars }));
    const planned: PlannedChange[] = [];
    const next: Queued[] = [];
    let cached = basis === 'cached';
    let doubt = false;
    /** Whether the state read from the cache is still the key's: asked once, before the first refusal. */
    const stillCurrent = async (): Promise<boolean> => {
      if (!cached) return true;
      cached = false;
      doubt = (await backend(store.readState(apiKey), 'store', logger)).stateVersion !== state.stateVersion;
      return !doubt;
    };
    for (const item of open) {
      let p: Planned;
      try {
        p = await item.plan({ overrides, strategies, stateVersion: state.stateVersion + planned.length });
      } catch (err) {
        if (basis === 'projected') return { kind: 'abort' };
        if (!(await stillCurrent())) break;
        item.reject(err);
        continue;
      }
      const se = p.strategyExpect;
      if (se) {
        const current = strategies.find((x) => x.name === se.name)?.version ?? null;
        if (current !== se.version) {
          if (basis === 'projected') return { kind: 'abort' };
          if (!(await stillCurrent())) break;
          if (se.fromEditor) item.reject(new ObserverioError('conflict', `strategy ${se.name} is at version ${current ?? '(deleted)'}, not ${se.version ?? '(new)'}; re-read it and retry`));
          // Computed from an older state than this one: computed again on the next attempt.
          else next.push(item);
          continue;
        }
      }
      const before: VariablesState = { overrides, strategies: plainStrategies };
      const { state: after, draft } = commit(before, p.ops, p.meta);
      planned.push({ item, ops: p.ops, draft, before, after });
      // What the next change of the batch is computed from: the records this one leaves, as the store
      // will write them (the overrides are applyOps', already in `after`; strategy records get versions).
      if (p.ops.some((op) => op.kind === 'strategy.put' || op.kind === 'strategy.delete')) {
        const records = applyCommit({ overrides, strategies }, p.ops.map(plainOp), Math.max(0, Math.floor(draft.at)), item.actor);
        overrides = records.overrides;
        strategies = records.strategies;
        plainStrategies = strategies.map((x) => ({ name: x.name, vars: x.vars }));
      } else overrides = after.overrides;
    }
    if (doubt) return { kind: 'doubt' };
    if (planned.length === 0) return { kind: 'none', next };
    const result = backend(
      store.commitMany(apiKey, planned.map((x) => ({ ops: x.ops, draft: x.draft, by: x.item.actor })), state.stateVersion, { maxEntries: variables.historyMaxEntries, maxAgeMs: variables.historyMaxAgeMs }, { chained: basis === 'projected' }),
      'store',
      logger,
    );
    result.catch(() => undefined);
    return { kind: 'sent', planned, next, result, stillCached: cached, leaves: { overrides, strategies, stateVersion: state.stateVersion + planned.length } };
  }

  /** A committed batch delivered, started before the next batch lands so batches reach the nodes in commit order. */
  private deliverLanded(apiKey: string, planned: readonly PlannedChange[], entries: readonly HistoryEntry[], stateVersion: number): void {
    // The next batch's commit does not wait for this one's acks.
    void this.deliverBatch(
      apiKey,
      planned.map((x, i) => ({ item: x.item, c: { entry: entries[i] as HistoryEntry, before: x.before, after: x.after, names: opNames(x.ops), sent: x.item.sent, stateVersion } })),
    );
  }

  /** Delivers a committed batch and answers each of its changes (a failure answers the changes it concerns). */
  private async deliverBatch(apiKey: string, done: ReadonlyArray<{ item: Queued; c: Committed }>): Promise<void> {
    let results: Array<Applied | { error: unknown }>;
    try {
      results = await this.deliver(apiKey, done.map((d) => d.c));
    } catch (err) {
      for (const d of done) d.item.reject(err);
      return;
    }
    done.forEach((d, i) => {
      const r = results[i] as Applied | { error: unknown };
      if ('error' in r) d.item.reject(r.error);
      else d.item.resolve(r);
    });
  }

  /**
   * Publishes changes committed together to every node's client actor, in one message, and counts,
   * per change, who got it and who it waits for: one publish, one ack wait (each node answers the lot
   * in one message), one read of the key's devices and one write of the delivered counts for the
   * batch, each change's answer what it would have been on its own.
   */
  private async deliver(apiKey: string, list: readonly Committed[]): Promise<Array<Applied | { error: unknown }>> {
    const { store, pubsub, gateway, logger, variables } = this.deps;
    const changed = list.filter((c) => c.entry.changes.length > 0);
    // The devices to count what waits against, read while the acks are on their way.
    const devicesP = changed.length > 0 ? backend(store.listDeviceViews(apiKey, variables.deviceRememberMs, Date.now()), 'store', logger) : Promise.resolve([]);
    devicesP.catch(() => undefined);
    const acks = new Map<Committed, { totals: AckTotals; nodes: number }>();
    let failed: unknown = null;
    if (changed.length > 0) {
      try {
        await backend(this.start(), 'pubsub', logger);
        // This process's random prefix, the batch's number, the change's place: unique, with no draw
        // per batch (a synchronous randomBytes and its encoding per batch showed in the profile).
        const prefix = `${this.requestPrefix}.${(this.batches += 1)}`;
        const requests = changed.map((c, i) => {
          const requestId = `${prefix}.${i}`;
          // Registered before publishing: an ack may come back before publish() resolves.
          const totals = new Promise<AckTotals>((done) => {
            this.pending.set(requestId, { expected: Infinity, received: 0, delivered: 0, done });
          });
          const changes = c.entry.changes.map((x) => ({ name: x.name, target: x.target, value: x.after?.value ?? null, setAt: x.after?.setAt ?? null }));
          const change: VarChange = { historyId: c.entry.id, actor: c.entry.actor, action: c.entry.action, changes, requestId, replyTo: this.replyTo, stateVersion: c.stateVersion };
          return { c, requestId, change, totals };
        });
        // A lone change as it always was; several in one message.
        const message = requests.length === 1 ? (requests[0] as (typeof requests)[number]).change : ({ batch: requests.map((r) => r.change) } satisfies VarChangeBatch);
        let nodes: number;
        try {
          nodes = await pubsub.publish(channels.varsCallback(apiKey), message);
        } catch (err) {
          for (const r of requests) this.settle(r.requestId);
          logger.error({ err, apiKey }, 'cannot publish a variable change');
          throw new ObserverioError('unavailable', 'the change is stored but cannot be sent right now; devices get it when they next connect');
        }
        const open: string[] = [];
        for (const r of requests) {
          const p = this.pending.get(r.requestId);
          if (!p) continue;
          p.expected = nodes;
          if (p.received >= nodes) this.settle(r.requestId);
          else open.push(r.requestId);
        }
        // One timer for the batch: the nodes answer its changes together.
        if (open.length > 0) setTimeout(() => open.forEach((id) => this.settle(id)), this.ackTimeoutMs).unref();
        for (const r of requests) {
          acks.set(r.c, { totals: await r.totals, nodes });
          r.c.sent?.();
        }
      } catch (err) {
        failed = err;
      }
    }
    let devices: Awaited<typeof devicesP> = [];
    if (failed === null)
      try {
        devices = await devicesP;
      } catch (err) {
        failed = err;
      }
    const out: Array<Applied | { error: unknown }> = list.map((c) => {
      const overridesChanged = c.entry.changes.length > 0;
      if (overridesChanged && failed !== null) return { error: failed };
      const a = acks.get(c);
      const delivered = a?.totals.delivered ?? 0;
      // The overrides of the change's variables, found through the lists' indexes (override-list.ts),
      // not by a pass over every override of the key per change.
      const affected = overridesChanged ? affectedDevices(devices, overridesOfNames(c.before.overrides, c.names), overridesOfNames(c.after.overrides, c.names)).length : 0;
      const applied: Applied = { entry: { ...c.entry, delivered }, before: c.before, after: c.after, delivered, pending: Math.max(0, affected - delivered) };
      if (a && a.totals.received < a.nodes) applied.unconfirmed = a.nodes - a.totals.received;
      return applied;
    });
    const counts = out.flatMap((r) => ('error' in r || r.delivered === 0 ? [] : [{ id: r.entry.id, delivered: r.delivered }]));
    if (counts.length > 0) {
      try {
        await backend(store.setDeliveredMany(apiKey, counts), 'store', logger);
      } catch (err) {
        // As one by one: the changes whose count could not be written fail, the others stand.
        for (let i = 0; i < out.length; i++) {
          const r = out[i] as Applied | { error: unknown };
          if (!('error' in r) && r.delivered > 0) out[i] = { error: err };
        }
      }
    }
    // Every dashboard of the key sees each change, whichever node or socket made it: the batch's events
    // in one message, in the batch's order, the vars of its changes in one `vars` event. (Batches whose
    // acks come back in another order publish in that order; only the overrides list is kept from
    // going back in time, by its entry id.)
    const strategiesP = list.some((c) => c.entry.strategies.length > 0) ? backend(store.listStrategies(apiKey), 'store', logger) : null;
    const strategyList = strategiesP ? await strategiesP.catch((err: unknown) => ({ error: err })) : null;
    const events: DashboardEvent[] = [];
    // The list after the batch's last committed change: the one state worth showing (an earlier
    // change's list is already out of date when the event leaves).
    let last = -1;
    out.forEach((r, i) => {
      if (!('error' in r) && r.entry.changes.length > 0) last = i;
    });
    if (last >= 0) this.publishOverrides(apiKey, (out[last] as Applied).entry.id, (list[last] as Committed).after.overrides, events);
    const set = new Map<string, Var>();
    const answers = out.map((r) => {
      if ('error' in r) return r;
      const entry = r.entry;
      if (entry.changes.length > 0) {
        for (const x of entry.changes) if (x.after) set.set(x.name, { name: x.name, type: x.after.type, value: x.after.value });
        const names = [...new Set(entry.changes.map((x) => x.name))];
        events.push({ type: 'delivery', name: names[0] ?? '', names, delivered: r.delivered, buffered: r.delivered === 0, node: this.deps.nodeId });
      }
      if (entry.strategies.length > 0) {
        if (strategyList === null || 'error' in strategyList) return { error: strategyList?.error ?? new ObserverioError('unavailable', 'the store is unavailable; retry') };
        events.push({ type: 'strategies', strategies: strategyList.map((s) => strategyAnswer(s, 0)) });
      }
      events.push({ type: 'history', entry });
      return r;
    });
    // Dashboards written before overrides show a change through the `vars` event, as they always did;
    // it goes first, as a lone change's did, right after the overrides it may have sent.
    if (set.size > 0) {
      const at = events.findIndex((e) => e.type !== 'overrides');
      events.splice(at < 0 ? events.length : at, 0, { type: 'vars', apiKey, deviceId: null, vars: [...set.values()], source: 'dashboard' });
    }
    gateway.publishMany(channels.vars(apiKey), events);
    return answers;
  }

  /**
   * The key's dashboards get the overrides after a change: the whole list, so of a burst of changes
   * only the newest list matters. The first after a quiet spell goes out at once (a lone change is
   * seen as it always was, before its vars, delivery and history events); the newest of those in the
   * next overridesEventMs (25 ms, up to 100 ms for a long list) goes out once at its end, and while
   * changes keep coming, the newest of each such spell at its end: one list per spell under a steady
   * stream, not two (a thousand overrides encoded, sent, decoded and fanned out 20 times a second was
   * the largest cost of a stream of 1,000 changes/s after the commit). A list older than one sent is
   * never sent after it.
   */
  private publishOverrides(apiKey: string, entryId: string, overrides: readonly Override[], events: DashboardEvent[]): void {
    const ch = channels.vars(apiKey);
    const id = parseHistoryId(entryId) ?? { ms: 0, seq: 0 };
    const sent = this.overridesSent.get(apiKey);
    if (sent && compareHistoryIds(id, sent.id) <= 0) return;
    if (!sent?.tick) {
      this.overridesSent.set(apiKey, { id, tick: true, latest: null });
      events.push({ type: 'overrides', overrides: [...overrides] });
      const spell = (ms: number): void => {
        const timer = setTimeout(() => {
          this.spells.delete(timer);
          const s = this.overridesSent.get(apiKey);
          if (!s) return;
          if (s.latest) {
            const list = s.latest;
            s.latest = null;
            this.deps.gateway.publish(ch, { type: 'overrides', overrides: [...list] }, 'overrides');
            // Changes kept coming: the next spell's newest goes out at its end too.
            spell(overridesEventMs(list.length));
            return;
          }
          // Quiet for a spell: only the newest id is kept, so an older list arriving late is still dropped.
          this.overridesSent.delete(apiKey);
          if (this.overridesSent.size < MAX_KEYS_REMEMBERED) this.overridesSent.set(apiKey, { id: s.id, tick: false, latest: null });
        }, ms);
        timer.unref();
        this.spells.add(timer);
      };
      spell(overridesEventMs(overrides.length));
      return;
    }
    sent.id = id;
    sent.latest = overrides;
  }

  private onAck(message: unknown): void {
    if (isAcks(message)) {
      for (const a of message.acks) this.onAck(a);
      return;
    }
    if (!isAck(message)) return;
    const p = this.pending.get(message.requestId);
    // Late acks (after the timeout) and foreign ones are ignored.
    if (!p) return;
    p.received += 1;
    p.delivered += message.delivered;
    if (p.received >= p.expected) this.settle(message.requestId);
  }

  private settle(requestId: string): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    p.done({ received: p.received, delivered: p.delivered });
  }
}

/** A strategy as the API serves it; `devices` is counted by the caller that knows the devices. */
export function strategyAnswer(s: StrategyRecord, devices: number): StrategyAnswer {
  return { name: s.name, vars: [...s.vars], version: s.version, updatedAt: s.updatedAt, updatedBy: s.updatedBy, devices };
}

/** A backend failure becomes a 503 for the dashboard (logged once here), not an opaque 500. */
export async function backend<T>(p: Promise<T>, name: string, logger: Logger): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ObserverioError) throw err;
    logger.error({ err, backend: name }, 'variable change failed on a backend');
    throw new ObserverioError('unavailable', `the ${name} is unavailable; retry`);
  }
}
