/**
 * The ClientActor: one per API key with connected devices on this node (Elixir's Web.Tcp.Client),
 * the owner of what the key's devices here are sent (DESIGN.md §8). It keeps nothing that the store
 * does not: for each device, what is pending is derived from the overrides in effect for it and what
 * it was last sent (src/variables/pending.ts), so a restart of the actor or of the node loses nothing.
 *
 * - right after a device's `OK`: one `v:` line with every override in effect for it (onVerify);
 * - on each `i:` report: the report kept as the device's own values, and the override sent again
 *   where the report disagrees with it (onReports; the reports of one turn, at most one per
 *   REPORT_TURN_MS per socket, are folded and answered with one line);
 * - on a `d:` line: the new labels stored, and whatever the device now has pending sent;
 * - on a change published on `<apiKey>:vars:callback` (by any node): every device of the key here is
 *   sent what changed for it, and the sender is told how many devices got a line;
 * - a heartbeat per interval keeps its devices' presence alive cluster-wide; a device whose last
 *   socket here closed is marked offline.
 * It stops itself after a grace period without device connections, which ends its subscription.
 */
import type { Logger } from 'pino';
import type { DeviceInfo, Gateway } from '../gateway/gateway.js';
import type { Metrics } from '../metrics.js';
import type { Var } from '../model.js';
import { worker, type ActorContext, type ChildSpec, type Registry } from '../otp/index.js';
import { channels, type PubSub, type Unsubscribe } from '../pubsub/pubsub.js';
import type { Store } from '../store/store.js';
import { packVars } from '../tcp/protocol.js';
import type { VariablesConfig } from '../config.js';
import { matches, type Target, onReports, pending, type DeviceView, type Labels, type Override, type VariablesStore } from '../variables/index.js';
import type { ChangeTimelineFields } from '../wire.js';
import { isVarChangeBatch } from './var-changes.js';
import { WinnersCache } from './winners.js';

/** The store as the client actors use it: the daemon's Store and the §8 contract. */
export type VarStore = Store & VariablesStore;

/** What the device-connection registry holds for each verified device socket. */
export interface DeviceConnEntry {
  connId: string;
  deviceId: string | null;
  /** The device as §8 names it: its id, or one generated for this connection (`generated`). */
  deviceKey: string;
  generated: boolean;
  address: string | null;
  /** The labels of the connection's last `d:` line. */
  labels(): Labels;
  /**
   * Set once the key's actor has sent this socket its overrides after OK. Kept here, not in the
   * actor, so a restarted actor resyncs exactly the sockets its predecessor had taken on, and leaves
   * the others to their own `conn_up` (else a socket would get its overrides twice).
   */
  up: boolean;
  write(line: string): boolean;
  /** The socket's current device info (counters move), for the dashboard's device events. */
  device(): DeviceInfo;
}

/** A change committed to the key's overrides, as published on `<apiKey>:vars:callback`. */
export interface VarChange {
  /** The history entry, for the devices' timelines. */
  historyId: string | null;
  actor: string | null;
  action: string | null;
  /** The overrides the change set (value and setAt) or cleared (null), to tell a device it already reached. */
  changes?: Array<{ name: string; target: Target; value: string | null; setAt: number | null }>;
  /** Set by the node that made the change so each node can tell it how many devices got it. */
  requestId?: string;
  replyTo?: string;
  /**
   * The key's state version once the change was committed: a node whose store already holds that
   * version (or a later one) sends from it without reading the state again (the node that committed
   * it always does). Absent from older nodes' messages: the state is read.
   */
  stateVersion?: number;
}

/**
 * The state version every change of the batch was committed at or before, or null when one does not
 * say (a resync, an older node's message, a malformed one): then the state is read from the store.
 */
function versionNeeded(batch: readonly VarChange[]): number | null {
  let needed = 0;
  for (const c of batch) {
    const v = c.stateVersion;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) return null;
    if (v > needed) needed = v;
  }
  return batch.length > 0 ? needed : null;
}

/** Each node's answer to a change, published on the `replyTo` channel: how many of its devices got a line. */
export interface DeliveryAck {
  requestId: string;
  delivered: number;
}

/** Several answers at once, one message: the changes one delivery pass of a node handled together. */
export interface DeliveryAcks {
  acks: DeliveryAck[];
}

/**
 * Whether a line with the vars named `sent` to the device `view` carried change `c` (a change that
 * names no variable: a resync, any line). The names as a set: a pass over a batch of hundreds of
 * changes asks this per change, and a scan of the line's vars each time made the pass quadratic.
 */
function reaches(c: VarChange, view: DeviceView, sent: ReadonlySet<string>): boolean {
  if (sent.size === 0) return false;
  if (!c.changes || c.changes.length === 0) return true;
  return c.changes.some((x) => sent.has(x.name) && matches(x.target, view));
}

const namesOf = (vars: readonly Var[]): Set<string> => new Set(vars.map((v) => v.name));

/** A verified socket, as its conn_up tells the key's actor. */
export interface ConnUp {
  connId: string;
  deviceKey: string;
  generated: boolean;
  address: string | null;
}

export type ClientMsg =
  /**
   * Changes that arrived while this message waited in the mailbox, appended to it until the actor
   * takes it (`taken`): a burst of changes costs one delivery pass, not one each.
   */
  | { kind: 'changes'; changes: VarChange[]; taken: boolean }
  /**
   * Sockets that verified; `take()` hands over those that joined until now (ClientActors.deviceVerified).
   * `resume`: one socket whose connection actor restarted; the device saw no new OK, so it is only
   * sent what it misses.
   */
  | { kind: 'conn_up'; resume: boolean; take(): readonly ConnUp[] }
  | { kind: 'conn_down'; deviceKey: string }
  /** `take()` hands over the socket's reports that arrived until now, in order (see ClientActors.deviceReported). */
  | { kind: 'report'; connId: string; take(): ReadonlyArray<readonly Var[]> }
  | { kind: 'labels'; connId: string; labels: Labels }
  | { kind: 'heartbeat' }
  | { kind: 'recount' }
  | { kind: 'idle_check' };

export interface ClientDeps {
  store: VarStore;
  pubsub: PubSub;
  /** Verified device connections by API key (duplicate keys). */
  deviceConns: Registry<DeviceConnEntry>;
  /** Client actors by API key (unique); each incarnation registers itself. */
  clientActors: Registry<null>;
  gateway: Gateway;
  metrics: Metrics;
  logger: Logger;
  nodeId: string;
  /** How long a client actor waits without device connections before stopping. */
  idleMs: number;
  variables: VariablesConfig;
}

interface State {
  unsubscribe: Unsubscribe | null;
  idleTimer: NodeJS.Timeout | null;
  heartbeat: NodeJS.Timeout | null;
  delivered: number;
  /** Distinct variables waiting for the key's offline devices: what the outbox's length used to say. */
  outboxLength: number;
  /** Set while a recount is scheduled: recounts coalesce, so N connects cost one, not N (each reads every device). */
  recountTimer: NodeJS.Timeout | null;
  /** The delay the next recount is put off by (RECOUNT_DELAY_MS, doubled up to RECOUNT_MAX_DELAY_MS while asked for back to back). */
  recountDelay: number;
  /** performance.now() when the last recount was taken from the mailbox. */
  recountedAt: number;
}

/** A key's state as the store reads it, with its version. */
type KeyState = Awaited<ReturnType<VarStore['readState']>>;

/** Variables one device may have pending before its last-sent is read whole again (a long outage of its messages). */
const MAX_DIRTY = 256;

/** How long a recount of what waits for offline devices is put off, to coalesce a burst of connects and changes. */
const RECOUNT_DELAY_MS = 1000;
/**
 * In a storm of connects the recount was asked for again the moment it ran, so it ran every second
 * for as long as the storm lasted, in every worker (most of the garbage each worker's heap grew by).
 * A recount asked for within RECOUNT_DELAY_MS of the last one waits twice as long as that one did, up
 * to this; a quiet spell brings the delay back to RECOUNT_DELAY_MS. The gauge lags a storm by this much at most.
 */
const RECOUNT_MAX_DELAY_MS = 8000;

export function clientChildSpec(apiKey: string, deps: ClientDeps): ChildSpec {
  return { id: `client-${apiKey}`, restart: 'transient', shutdown: 5000, start: clientBehaviour(apiKey, deps) };
}

function clientBehaviour(apiKey: string, deps: ClientDeps) {
  const { store, pubsub, deviceConns, metrics, gateway } = deps;
  /**
   * The overrides in effect per kind of device, kept from one overrides list to the next (winners.ts).
   * Each step hands it the list it read (`use`) before asking; steps never interleave (one message at
   * a time), so what it handed out stays valid until the step's end.
   */
  const cache = new WinnersCache();

  /**
   * Per device here whose last-sent this actor knows: the variables that may be pending for it,
   * against the list the cache was last given (`basis`); nothing else is (its last-sent holds the
   * winners of every other variable, and nothing to restore). A delivery pass reads only those and
   * the batch's variables of its last-sent, not the whole of it (a thousand fields per device per
   * pass was most of a pass's cost in issue 14's profile). Absent: unknown, read whole. Every step
   * that writes a device's last-sent or reported, or changes its labels or sockets, forgets it first;
   * a list the cache cannot relate to `basis` forgets all.
   */
  const dirty = new Map<string, Set<string>>();
  let basis: readonly Override[] | null = null;
  /**
   * The newest state version a line of this actor was computed from (every `v:` line of the key's
   * devices on this node is this actor's). A delivery pass sends from its own batch's state, which
   * may be older than the newest; it never sends from one older than this, so no device is sent a
   * value back in time after a verify, report or resync sent it a newer one.
   */
  let sentFrom = 0;
  /** The state read for a step that sends lines: its version raises `sentFrom`. */
  const readForSend = async (): Promise<KeyState> => {
    const s = await store.readState(apiKey);
    if (s.stateVersion > sentFrom) sentFrom = s.stateVersion;
    return s;
  };
  /** cache.use, keeping `dirty` relative to the list given. */
  const useList = (list: readonly Override[]): void => {
    cache.use(list);
    const ch = cache.change;
    if (ch && ch.from === basis) {
      if (ch.names.size > 0)
        for (const [key, names] of dirty) {
          for (const n of ch.names) names.add(n);
          if (names.size > MAX_DIRTY) dirty.delete(key);
        }
    } else dirty.clear();
    basis = list;
  };

  /** This node's sockets of the key, grouped by device (one device may hold several sockets). */
  const devicesHere = (includeStarting = false): Map<string, DeviceConnEntry[]> => {
    const out = new Map<string, DeviceConnEntry[]>();
    for (const { value } of deviceConns.lookup(apiKey)) {
      // A socket whose conn_up is still on its way gets everything then.
      if (!value.up && !includeStarting) continue;
      const list = out.get(value.deviceKey);
      if (list) list.push(value);
      else out.set(value.deviceKey, [value]);
    }
    return out;
  };

  // By id, not a scan: a key's thousands of sockets would make a connect storm quadratic.
  const entryOf = (connId: string): DeviceConnEntry | undefined => deviceConns.get(apiKey, connId);
  /** The entries of these sockets that are still registered, in order. */
  const sockets = (ups: readonly ConnUp[]): DeviceConnEntry[] => ups.flatMap((u) => deviceConns.get(apiKey, u.connId) ?? []);
  const connsOf = (deviceKey: string): DeviceConnEntry[] => deviceConns.inGroup(apiKey, deviceKey);
  const viewOf = (e: DeviceConnEntry): DeviceView => ({ deviceId: e.deviceKey, labels: e.labels() });

  /** Writes one `v:` line to the device's sockets; true when at least one took it. */
  const send = (conns: readonly DeviceConnEntry[], vars: readonly Var[]): boolean => {
    if (vars.length === 0) return false;
    const line = packVars(apiKey, vars);
    let n = 0;
    for (const c of conns) if (c.write(line)) n += 1;
    if (n > 0) metrics.varChangesSent.inc(n);
    return n > 0;
  };

  /** The device's log timeline gets one `change` entry per variable it was sent (DESIGN.md §8 Timeline). */
  const timeline = (deviceId: string, sent: readonly Var[], before: (name: string) => string | null, who: { actor: string; action: string; historyId: string | null } | ((name: string) => { actor: string; action: string; historyId: string | null })) => {
    const entries: Array<{ message: string; fields: ChangeTimelineFields }> = sent.map((v) => {
      const w = typeof who === 'function' ? who(v.name) : who;
      const from = before(v.name);
      return {
        message: `${w.actor} changed ${v.name} from ${from ?? '(game value)'} to ${v.value}`,
        fields: { kind: 'change', actor: w.actor, action: w.action, name: v.name, before: from, after: v.value, historyId: w.historyId },
      };
    });
    gateway.timeline(apiKey, deviceId, entries);
  };

  /**
   * True when the device already holds what the change set for it: its socket verified between the
   * commit and this message, and the verify sent it the change with every other override.
   */
  const alreadyHas = (view: DeviceView, last: ReadonlyMap<string, Var>, cause: VarChange | null): boolean => {
    if (!cause?.changes) return false;
    return cause.changes.some((c) => c.value !== null && matches(c.target, view) && last.get(c.name)?.value === c.value && cache.winners(view).get(c.name)?.setAt === c.setAt);
  };

  /**
   * Sends a device what it has pending, from its last-sent and reported as read: the vars it got a
   * line with (empty: none), and whether it already held `cause` (verified in between).
   */
  const sendPending = (conns: readonly DeviceConnEntry[], cause: VarChange | null, last: ReadonlyMap<string, Var>, reported: readonly Var[]): { sent: Var[]; had: boolean } => {
    const view = viewOf(conns[0] as DeviceConnEntry);
    const todo = cache.pending(view, last, reported);
    if (todo.length === 0) return { sent: [], had: alreadyHas(view, last, cause) };
    return send(conns, todo) ? { sent: todo, had: false } : { sent: [], had: false };
  };

  /** The timeline entries of what a device was sent; `causeOf` names the change behind each variable, if known. */
  const sentTimeline = (first: DeviceConnEntry, sent: readonly Var[], last: ReadonlyMap<string, Var>, reported: readonly Var[], causeOf: (name: string) => VarChange | null): void => {
    const own = new Map(reported.map((v) => [v.name, v.value]));
    const winners = cache.winners(viewOf(first));
    timeline(
      first.deviceKey,
      sent,
      (name) => last.get(name)?.value ?? own.get(name) ?? null,
      (name) => {
        const cause = causeOf(name);
        return { actor: cause?.actor ?? winners.get(name)?.setBy ?? 'unknown', action: cause?.action ?? (winners.has(name) ? 'override.set' : 'override.clear'), historyId: cause?.historyId ?? null };
      },
    );
  };

  /** Sends a device what it has pending; true when it got a line (or already had the change). */
  const sync = async (conns: readonly DeviceConnEntry[], overrides: readonly Override[], cause: VarChange | null): Promise<boolean> => {
    const first = conns[0];
    if (!first) return false;
    dirty.delete(first.deviceKey);
    const [last, reported] = await Promise.all([store.getLastSent(apiKey, first.deviceKey), store.getReported(apiKey, first.deviceKey)]);
    useList(overrides);
    const r = sendPending(conns, cause, last, reported);
    if (r.sent.length === 0) return r.had;
    await store.setLastSent(apiKey, first.deviceKey, r.sent, false);
    sentTimeline(first, r.sent, last, reported, () => cause);
    return true;
  };

  /**
   * Right after OK: every override in effect, in one line; lastSent becomes exactly that. For the
   * sockets of one conn_up message together: each store step is one round trip for all of them, and
   * the result is what verifying them one after the other would give (a device's second socket
   * reads the last-sent its first one left).
   *
   * `inPass`: a delivery pass verifies sockets whose conn_up is still behind its message (takeUp in
   * deliver), from the pass's state; `reached` then gets, per device whose line went out (or that had
   * nothing in effect), the variables that were pending for it before the line: what the pass counts
   * its changes delivered by.
   */
  const verify = async (es: readonly DeviceConnEntry[], inPass?: { state: KeyState; reached: Map<string, Set<string>> }): Promise<void> => {
    // From here on the sockets take part in changes, even if a store call below fails.
    for (const e of es) {
      e.up = true;
      dirty.delete(e.deviceKey);
    }
    const overrides = (inPass?.state ?? (await readForSend())).overrides;
    useList(overrides);
    // Copied: the cache's lists change with the next list it is given, and these go to the store.
    const inEs = es.map((e) => [...cache.vars(viewOf(e))]);
    // Only a device with something in effect needs its last-sent and reported read: with nothing in
    // effect nothing reaches it, and its last-sent becomes empty whatever it held (a key without
    // overrides, the common case, costs its verifies no read). In a pass every device is read: what
    // was pending for it (a restore among them) is what its changes count by, as for a device up.
    const keys = [...new Set(es.flatMap((e, i) => (inPass || (inEs[i] as Var[]).length > 0 ? [e.deviceKey] : [])))];
    const reads = keys.length > 0 ? await store.getSentAndReported(apiKey, keys) : [];
    const winnersOf = new Map(es.map((e) => [e, cache.winners(viewOf(e))]));
    const lastOf = new Map(keys.map((k, i) => [k, reads[i]?.lastSent ?? new Map<string, Var>()]));
    const reportedOf = new Map(keys.map((k, i) => [k, reads[i]?.reported ?? []]));
    const writes: Array<{ deviceId: string; vars: readonly Var[] }> = [];
    const flushed: Array<() => void> = [];
    const sentOk = new Set<DeviceConnEntry>();
    /** In a pass: per device, what was pending for it before its first socket's line. */
    const before = new Map<string, Set<string>>();
    es.forEach((e, i) => {
      const view = viewOf(e);
      const inE = inEs[i] as Var[];
      if (inPass && !before.has(e.deviceKey)) before.set(e.deviceKey, namesOf(cache.pending(view, lastOf.get(e.deviceKey) ?? new Map<string, Var>(), reportedOf.get(e.deviceKey) ?? [])));
      if (inE.length === 0) {
        if (inPass) inPass.reached.set(e.deviceKey, before.get(e.deviceKey) as Set<string>);
        writes.push({ deviceId: e.deviceKey, vars: inE });
        lastOf.set(e.deviceKey, new Map());
        return;
      }
      const last = lastOf.get(e.deviceKey) ?? new Map<string, Var>();
      const reported = reportedOf.get(e.deviceKey) ?? [];
      // What it had not been sent before this connection is what reaches it now, for the timeline.
      const fresh = pending(inE, last, reported).filter((v) => inE.some((x) => x.name === v.name));
      const sent = send([e], inE);
      if (sent) sentOk.add(e);
      if (sent && inPass) inPass.reached.set(e.deviceKey, before.get(e.deviceKey) as Set<string>);
      writes.push({ deviceId: e.deviceKey, vars: inE });
      lastOf.set(e.deviceKey, new Map(inE.map((v) => [v.name, v])));
      if (fresh.length > 0) {
        const winners = winnersOf.get(e) as ReadonlyMap<string, Override>;
        flushed.push(() => {
          const own = new Map(reported.map((v) => [v.name, v.value]));
          timeline(e.deviceKey, fresh, (name) => last.get(name)?.value ?? own.get(name) ?? null, (name) => ({ actor: winners.get(name)?.setBy ?? 'unknown', action: 'override.set', historyId: null }));
          // A change that waited for a device has reached one: dashboards turn "waiting" into "sent on reconnect".
          if (sent) gateway.publish(channels.vars(apiKey), { type: 'outbox_flushed', names: fresh.map((v) => v.name), delivered: 1 }, 'outbox_flushed');
        });
      }
    });
    await store.replaceLastSent(apiKey, writes);
    // Each device's last-sent is now exactly what is in effect for it (a device whose line could not
    // be written stays unknown). A later socket of the same device replaced it again: the same holds.
    es.forEach((e, i) => {
      if ((inEs[i] as Var[]).length === 0 || sentOk.has(e)) dirty.set(e.deviceKey, new Set());
      else dirty.delete(e.deviceKey);
    });
    for (const f of flushed) f();
  };

  /** An `i:` report: kept as the game's own values; an override it disagrees with is sent again. */
  const report = async (e: DeviceConnEntry, reports: ReadonlyArray<readonly Var[]>): Promise<void> => {
    dirty.delete(e.deviceKey);
    // Independent reads, one round trip together.
    const [{ overrides }, last, reported] = await Promise.all([readForSend(), store.getLastSent(apiKey, e.deviceKey), store.getReported(apiKey, e.deviceKey)]);
    // The socket's reports since the last one read, folded in order as if read one by one (a game's
    // own value followed by an echo of the override stays the game's own), stored once; what they ask
    // to be sent again goes in one line.
    const r = onReports(viewOf(e), reported, reports, overrides, last);
    await store.setReported(apiKey, e.deviceKey, r.reported);
    const forgotten = [...last.keys()].filter((name) => !r.lastSent.has(name));
    if (forgotten.length > 0) await store.forgetLastSent(apiKey, e.deviceKey, forgotten);
    if (r.send.length > 0 && send(connsOf(e.deviceKey), r.send)) {
      await store.setLastSent(apiKey, e.deviceKey, r.send, false);
      // An override the device had not been sent before (it was committed while this report was on its
      // way) reaches it now: that is a change in its timeline; re-sending what it had is not.
      const fresh = r.send.filter((v) => last.get(v.name)?.value !== v.value);
      if (fresh.length > 0) {
        useList(overrides);
        const winners = cache.winners(viewOf(e));
        const own = new Map(reported.map((v) => [v.name, v.value]));
        timeline(e.deviceKey, fresh, (name) => last.get(name)?.value ?? own.get(name) ?? null, (name) => ({ actor: winners.get(name)?.setBy ?? 'unknown', action: 'override.set', historyId: null }));
      }
    }
  };

  /**
   * Changes from any node (those that arrived while the previous ones were being delivered, together):
   * each device here gets one line with what is pending for it, every device's reads and writes are
   * one store round trip each whatever the number of devices, and each sender hears, per change, how
   * many devices got it. A change reached a device that got a line carrying one of its variables (any
   * line, for a resync), or that already held it.
   */
  const deliver = async (state: State, batch: readonly VarChange[]): Promise<void> => {
    if (batch.length === 0) return;
    const delivered = new Map<VarChange, number>(batch.map((c) => [c, 0]));
    const writes: Array<{ deviceId: string; vars: readonly Var[] }> = [];
    const here = devicesHere(true);
    /** Devices whose every pending variable read this pass went out: once their last-sent is written, `dirty` knows them. */
    const settled: Array<{ key: string; left: Set<string> }> = [];
    // The state as of this batch: exactly the version its last change was committed at when this
    // node's store still holds it (it committed it, or read it), else the newest it holds if that is
    // at least as new (another node's commit), else a read. Not older than any line this actor sent
    // from (`sentFrom`). Sending from a later commit's state would send that commit's values in this
    // batch's line, and a value it replaced (its own line due) would never reach the device.
    const needed = versionNeeded(batch);
    const want = needed === null ? null : Math.max(needed, sentFrom);
    const stateP = here.size === 0 ? null : want === null ? store.readState(apiKey) : store.lastState(apiKey, want).then((s) => (s.stateVersion >= want ? s : store.readState(apiKey)));
    // A device none of whose sockets is up yet (verified, its conn_up behind this message) is verified
    // now, from this pass's state, before the pass answers: counted as reached only by a line it got.
    // Left to its conn_up, it would be sent whatever is in effect by then, and a change whose answer
    // let the next change of the variable go (the /ws same-variable wait) would never get a line of
    // its own. Not for a resync (no change to answer; the restarted actor's conn_ups follow).
    const takeUp = batch.some((c) => c.changes !== undefined && c.changes.length > 0);
    if (stateP && takeUp) {
      const starting: DeviceConnEntry[] = [];
      for (const all of here.values()) if (all.every((c) => !c.up)) starting.push(...all);
      if (starting.length > 0) {
        const reached = new Map<string, Set<string>>();
        const state = await stateP;
        if (state.stateVersion > sentFrom) sentFrom = state.stateVersion;
        await verify(starting, { state, reached });
        const firstOf = new Map<string, DeviceConnEntry>();
        for (const e of starting) {
          here.delete(e.deviceKey);
          if (!firstOf.has(e.deviceKey)) firstOf.set(e.deviceKey, e);
        }
        for (const [key, names] of reached) {
          const view = viewOf(firstOf.get(key) as DeviceConnEntry);
          for (const c of batch) if (reaches(c, view, names)) delivered.set(c, (delivered.get(c) ?? 0) + 1);
        }
      }
    }
    if (stateP && here.size > 0) {
      const groups = [...here.values()];
      const keys = groups.map((all) => (all[0] as DeviceConnEntry).deviceKey);
      // The batch's variables; a change that names none (a resync) reads every device whole.
      const batchNames = new Set<string>();
      let resync = false;
      for (const c of batch) {
        if (!c.changes || c.changes.length === 0) resync = true;
        for (const x of c.changes ?? []) batchNames.add(x.name);
      }
      // A device whose sockets are all up and whose last-sent this actor knows is read in part: the
      // variables that may be pending for it, and the batch's (for "already had it" and the timeline).
      const planned = groups.map((all, i): Set<string> | null => {
        const known = dirty.get(keys[i] as string);
        if (resync || !known || all.some((c) => !c.up)) return null;
        const names = new Set(known);
        for (const n of batchNames) names.add(n);
        return names;
      });
      const wholeKeys = keys.filter((_, i) => planned[i] === null);
      const partKeys = keys.filter((_, i) => planned[i] !== null);
      // One read of the variables those devices need (a batch's devices mostly need the same ones).
      const partNames = new Set<string>();
      for (const p of planned) if (p) for (const n of p) partNames.add(n);
      // Independent reads, one round trip together. The state's own list, not listOverrides' copy of
      // it: the cache only reads it, and a pass per batch copied a thousand overrides each time. The
      // state (stateP above) as this node's store holds it when it holds the batch's commit (the node
      // that committed the batch does): a later commit is delivered by a pass of its own, so a read
      // would only have asked Redis for a version it already has, once per pass.
      const [keyState, wholeReads, partReads] = await Promise.all([
        stateP,
        wholeKeys.length > 0 ? store.getSentAndReported(apiKey, wholeKeys) : Promise.resolve([]),
        partKeys.length > 0 ? store.getSentAndReported(apiKey, partKeys, [...partNames]) : Promise.resolve([]),
      ]);
      if (keyState.stateVersion > sentFrom) sentFrom = keyState.stateVersion;
      useList(keyState.overrides);
      const reads: Array<{ lastSent: Map<string, Var>; reported: Var[] } | undefined> = [];
      /** Per device read in part: its line (pending among what was read) and what may be pending beyond it. */
      const lines: Array<{ todo: Var[]; left: Set<string> } | null> = [];
      const again: number[] = [];
      let w = 0;
      let q = 0;
      groups.forEach((all, i) => {
        const names = planned[i];
        lines[i] = null;
        if (!names) {
          reads[i] = wholeReads[w++];
          return;
        }
        const read = partReads[q++];
        reads[i] = read;
        const now = dirty.get(keys[i] as string);
        // The list moved in a way the cache cannot follow: read whole. So is a device with a restore
        // to make among them (a restore's place in the line follows its whole last-sent).
        const todo = now && read ? cache.pendingOf(viewOf(all[0] as DeviceConnEntry), names, read.lastSent) : null;
        if (!now || !todo) {
          again.push(i);
          return;
        }
        // What became pending after the read was planned (changes committed after this batch's were
        // taken, their own messages on their way) waits for the next pass: it stays in `dirty`.
        const left = new Set<string>();
        for (const n of now) if (!names.has(n)) left.add(n);
        lines[i] = { todo, left };
      });
      if (again.length > 0) {
        const more = await store.getSentAndReported(apiKey, again.map((i) => keys[i] as string));
        again.forEach((i, j) => (reads[i] = more[j]));
      }
      // The latest change of the batch behind each variable, for the timeline.
      const causes = new Map<string, VarChange>();
      for (const c of batch) for (const x of c.changes ?? []) causes.set(x.name, c);
      const last = batch.at(-1) ?? null;
      const causeOf = (name: string): VarChange | null => causes.get(name) ?? (batch.length === 1 ? last : null);
      const timelines: Array<() => void> = [];
      groups.forEach((all, i) => {
        const first = all[0] as DeviceConnEntry;
        const read = reads[i] ?? { lastSent: new Map<string, Var>(), reported: [] };
        const conns = all.filter((c) => c.up);
        if (conns.length === 0) {
          // A resync only (changes take such a device up above): verified, its conn_up right behind this
          // message, which sends it every override in effect.
          const view = viewOf(first);
          const todo = namesOf(cache.pending(view, read.lastSent, read.reported));
          for (const c of batch) if (reaches(c, view, todo)) delivered.set(c, (delivered.get(c) ?? 0) + 1);
          return;
        }
        const head = conns[0] as DeviceConnEntry;
        const view = viewOf(head);
        const planned = lines[i];
        const line = planned ? planned.todo : cache.pending(view, read.lastSent, read.reported);
        let sent: Var[] = [];
        let names: ReadonlySet<string> = new Set();
        let wrote = line.length === 0;
        for (const c of batch) {
          // The line goes out once, with the first change; the others are judged by what it carried.
          const first = sent.length === 0 && c === batch[0];
          let r: { sent: Var[]; had: boolean };
          if (!first || line.length === 0) r = { sent, had: alreadyHas(view, read.lastSent, c) };
          else r = send(conns, line) ? { sent: line, had: false } : { sent: [], had: false };
          if (first) {
            sent = r.sent;
            names = namesOf(sent);
            if (sent.length > 0) wrote = true;
          }
          if (r.had || reaches(c, view, names)) delivered.set(c, (delivered.get(c) ?? 0) + 1);
        }
        // Known again once its last-sent is written; a line no socket took leaves it unknown.
        if (wrote && conns.length === all.length) settled.push({ key: head.deviceKey, left: planned?.left ?? new Set() });
        else dirty.delete(head.deviceKey);
        if (sent.length > 0) {
          const vars = sent;
          writes.push({ deviceId: head.deviceKey, vars });
          timelines.push(() => sentTimeline(head, vars, read.lastSent, read.reported, causeOf));
        }
      });
      for (const t of timelines) t();
    }
    // The acks leave with the last-sent write rather than after it: the lines are on the sockets
    // already, and the sender has its own reads to do before it answers.
    const lastSent = (writes.length > 0 ? store.addLastSent(apiKey, writes) : Promise.resolve()).then(
      () => {
        for (const d of settled) dirty.set(d.key, d.left);
      },
      (err: unknown) => {
        for (const d of settled) dirty.delete(d.key);
        throw err;
      },
    );
    const acks = new Map<string, DeliveryAck[]>();
    for (const [c, n] of delivered) {
      state.delivered += n;
      if (!c.requestId || !c.replyTo) continue;
      const list = acks.get(c.replyTo);
      const ack: DeliveryAck = { requestId: c.requestId, delivered: n };
      if (list) list.push(ack);
      else acks.set(c.replyTo, [ack]);
    }
    // One message per asking node: a lone ack as it always was, several as one batch.
    await Promise.all([lastSent, ...[...acks].map(([replyTo, list]) => pubsub.publish(replyTo, list.length === 1 ? list[0] : ({ acks: list } satisfies DeliveryAcks)))]);
  };

  /**
   * Recounts what waits for the key's offline (remembered) devices, collapsed per variable as the
   * outbox was, for the admin tree and the `observerio_outbox_vars` gauge. Derived, like pending.
   */
  const recount = async (state: State): Promise<void> => {
    // Only the offline devices: the online ones are neither read nor parsed (in a storm, all of them).
    const offline = await store.listOfflineDevices(apiKey, deps.variables.deviceRememberMs, Date.now());
    const names = new Set<string>();
    if (offline.length > 0) {
      // Every offline device's reads in one round trip: a key remembers many devices, and a burst of
      // connects recounts every second.
      const [overrides, reads] = await Promise.all([store.listOverrides(apiKey), store.getSentAndReported(apiKey, offline.map((d) => d.deviceId))]);
      useList(overrides);
      offline.forEach((d, i) => {
        const read = reads[i];
        if (read) for (const v of cache.pending(d, read.lastSent, read.reported)) names.add(v.name);
      });
    }
    state.outboxLength = names.size;
    metrics.setOutbox(apiKey, names.size);
  };

  const scheduleRecount = (state: State, ctx: ActorContext<ClientMsg>): void => {
    if (state.recountTimer) return;
    const backToBack = performance.now() - state.recountedAt < RECOUNT_DELAY_MS;
    state.recountDelay = backToBack ? Math.min(RECOUNT_MAX_DELAY_MS, state.recountDelay * 2) : RECOUNT_DELAY_MS;
    state.recountTimer = setTimeout(() => ctx.self.send({ kind: 'recount' }), state.recountDelay);
    state.recountTimer.unref();
  };

  const armIdle = (state: State, ctx: ActorContext<ClientMsg>): void => {
    if (state.idleTimer || deviceConns.countKey(apiKey) > 0) return;
    state.idleTimer = setTimeout(() => ctx.self.send({ kind: 'idle_check' }), deps.idleMs);
    state.idleTimer.unref();
  };

  /** Store calls that fail are logged and skipped: one bad moment of a backend must not crash the key's devices off. */
  const guarded = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      deps.logger.warn({ err, apiKey, what }, 'client actor step failed');
    }
  };

  return worker<State, ClientMsg>({
    async init(ctx) {
      let open: Extract<ClientMsg, { kind: 'changes' }> | null = null;
      const unsubscribe = await pubsub.subscribe(channels.varsCallback(apiKey), (message) => {
        // The changes one node committed together come as one message (var-changes.ts deliver).
        const list = isVarChangeBatch(message) ? message.batch : [message as VarChange];
        if (open && !open.taken) open.changes.push(...list);
        else {
          open = { kind: 'changes', changes: [...list], taken: false };
          ctx.self.send(open);
        }
      });
      const heartbeat = setInterval(() => ctx.self.send({ kind: 'heartbeat' }), deps.variables.heartbeatMs);
      heartbeat.unref();
      const state: State = { unsubscribe, idleTimer: null, heartbeat, delivered: 0, outboxLength: 0, recountTimer: null, recountDelay: RECOUNT_DELAY_MS, recountedAt: -Infinity };
      deps.clientActors.register(apiKey, ctx.self, null);
      // A restarted actor: whatever changed while no actor was here goes out now (pending is derived, nothing was lost).
      await guarded('resync', () => deliver(state, [{ historyId: null, actor: null, action: null }]));
      await guarded('recount', () => recount(state));
      armIdle(state, ctx);
      return state;
    },

    async handle(state, msg, ctx) {
      switch (msg.kind) {
        case 'changes':
          msg.taken = true;
          await guarded('deliver', () => deliver(state, msg.changes));
          scheduleRecount(state, ctx);
          break;
        case 'conn_up': {
          if (state.idleTimer) clearTimeout(state.idleTimer);
          state.idleTimer = null;
          const ups = msg.take();
          // Recorded even when the socket is already gone again: a device that connected is remembered.
          // Not awaited before the verify: it needs nothing of it, and its write then leaves with the
          // verify's first read (one write and one round trip less per message).
          const touched = guarded('touch', () => store.touchDevices(apiKey, ups.map((u) => ({ deviceId: u.deviceKey, address: u.address, generated: u.generated })), Date.now(), deps.variables.presenceTtlMs));
          const live = sockets(ups);
          const e = live[0];
          if (e && msg.resume) {
            e.up = true;
            await guarded('resume', async () => void (await sync(connsOf(e.deviceKey), (await readForSend()).overrides, null)));
          } else {
            // A socket a delivery pass took up already got its line there.
            const fresh = live.filter((x) => !x.up);
            if (fresh.length > 0) await guarded('verify', () => verify(fresh));
          }
          await touched;
          scheduleRecount(state, ctx);
          break;
        }
        case 'report': {
          const e = entryOf(msg.connId);
          const reports = msg.take();
          if (e) await guarded('report', () => report(e, reports));
          break;
        }
        case 'labels': {
          const e = entryOf(msg.connId);
          if (!e) break;
          dirty.delete(e.deviceKey);
          await guarded('labels', async () => {
            await store.setLabels(apiKey, e.deviceKey, msg.labels);
            await sync(connsOf(e.deviceKey), (await readForSend()).overrides, null);
          });
          break;
        }
        case 'conn_down':
          dirty.delete(msg.deviceKey);
          if (connsOf(msg.deviceKey).length === 0) await guarded('offline', () => store.markOffline(apiKey, msg.deviceKey, Date.now()));
          scheduleRecount(state, ctx);
          armIdle(state, ctx);
          break;
        case 'recount':
          state.recountTimer = null;
          state.recountedAt = performance.now();
          await guarded('recount', () => recount(state));
          break;
        case 'heartbeat': {
          // The devices with a socket taken on, collected without copying the key's entries: it runs
          // for every key every heartbeat, and what an idle node allocates keeps V8 from shrinking its heap.
          const set = new Set<string>();
          deviceConns.forEachValue(apiKey, (e) => {
            if (e.up) set.add(e.deviceKey);
          });
          const keys = [...set];
          if (keys.length > 0) await guarded('heartbeat', () => store.heartbeat(apiKey, keys, Date.now(), deps.variables.presenceTtlMs));
          break;
        }
        case 'idle_check':
          state.idleTimer = null;
          if (deviceConns.countKey(apiKey) === 0) ctx.stop('normal');
          break;
      }
    },

    async terminate(state) {
      if (state.idleTimer) clearTimeout(state.idleTimer);
      if (state.heartbeat) clearInterval(state.heartbeat);
      if (state.recountTimer) clearTimeout(state.recountTimer);
      await state.unsubscribe?.();
    },

    info(state) {
      // `sockets` is the admin tree's established key for this count.
      return { apiKey, sockets: deviceConns.countKey(apiKey), devices: devicesHere().size, outboxLength: state.outboxLength, delivered: state.delivered };
    },
  });
}
