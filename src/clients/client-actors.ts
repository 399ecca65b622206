/**
 * ClientActors, the clients service and the one way into the client actors (Elixir's context
 * module): ensure(apiKey) finds the key's actor in the registry or starts it under the `clients`
 * dynamic supervisor, so concurrent verifies of one key start exactly one; deviceVerified(),
 * deviceReported() and deviceLabels() hand a device socket's events to it, in the order they
 * happened; `variables` is every change and view of DESIGN.md §8 for REST and WebSocket alike
 * (variables.ts over var-changes.ts), and change() the original "a dashboard changes a variable".
 */
import { createHash } from 'node:crypto';
import type { DeviceInfo } from '../gateway/gateway.js';
import type { Var } from '../model.js';
import { dynamicSupervisor, Turns, worker, type ActorRef, type ChildSpec, type DynamicSupervisorCell, type Registry } from '../otp/index.js';
import type { Labels } from '../variables/labels.js';
import type { DeviceStateEvent, SetOverrideAnswer } from '../wire.js';
import { clientChildSpec, type ClientDeps, type ClientMsg, type ConnUp, type DeviceConnEntry } from './client.js';
import { PresenceWatch } from './presence-watch.js';
import { VarChanges, type VarEdit } from './var-changes.js';
import { Variables } from './variables.js';

export function clientsChildSpec(): ChildSpec {
  return { id: 'clients', start: dynamicSupervisor({ childIntensity: 5, childPeriod: 10_000 }), shutdown: 10_000 };
}

/** A device socket that has just verified, as the TCP layer hands it over. */
export interface VerifiedConn {
  id: string;
  verified: { apiKey: string; deviceId: string | null } | null;
  readonly labels?: Labels;
  readonly remoteAddress?: string;
  /**
   * Set here once the socket is taken on, so a restart of its connection actor registers it again
   * without a new OK: a field of the socket's own rather than a WeakSet of every socket (whose
   * entries cost each verify a hash insert and every major GC an ephemeron each).
   */
  takenOn?: boolean;
  write(line: string): boolean;
  device(nodeId: string): DeviceInfo;
}

/**
 * The §8 name of a connection's device: its device id, or, for a connection that named none, an id
 * made up for its lifetime that no other node can make (a short hash of the node id) and that
 * matches DEVICE_ID_RE (`anon-<8 hex>-conn-<n>`).
 */
export function deviceKeyOf(conn: Pick<VerifiedConn, 'id' | 'verified'>, nodeId: string): { deviceKey: string; generated: boolean } {
  const id = conn.verified?.deviceId;
  if (id) return { deviceKey: id, generated: false };
  return { deviceKey: `anon-${createHash('sha256').update(nodeId).digest('hex').slice(0, 8)}-${conn.id}`.slice(0, 64), generated: true };
}

/**
 * A socket's report turns are this far apart at least: a report arriving sooner after the previous
 * turn read that socket's reports waits the rest (later ones join it). A turn costs two store round
 * trips and a fold over the device's reported list whatever it folds (the store itself now writes
 * only what changed), so a device streaming `i:` lines one per millisecond cost a turn per line
 * (most of the daemon's CPU in the latency bench, and the tail of every other event). A device that
 * reports now and then is read at once, as before. The dashboard's `vars` event of a report never
 * waits for its turn: the gateway publishes it in the tick the line arrived (gateway.ts).
 */
export const REPORT_TURN_MS = 20;

/**
 * In a connect storm a key's conn_up turns are this far apart at least: a verify arriving sooner
 * after the key's actor took the previous conn_up waits the rest, and the verifies of the key that
 * follow join it. Each turn costs the key's actor a few store round trips (record the devices, read
 * the overrides, write last-sent) whatever it carries, and in a storm the actor took its sockets one
 * or two per turn: most of a verify's CPU and of its garbage. A storm is a key's third verify within
 * UP_TURN_MS: a lone verify, or a device's pair of sockets, is taken at once as before (and its
 * device is in the store right after its OK); in a storm a socket's overrides follow its OK by up
 * to this much more. 50 ms rather than 20: a turn's cost is mostly fixed, and with 10 keys at
 * 2,000 verifies/s a 20 ms turn carried ~4 sockets; at 50 ms the storm's Redis commands per
 * connection halved and the daemon's allocation per connection fell by a quarter (36 → 28 KB).
 */
export const UP_TURN_MS = 50;

/** The reports of one socket waiting for its next turn, and the timer that sends them once due. */
interface HeldReports {
  apiKey: string;
  reports: Array<readonly Var[]>;
  timer: NodeJS.Timeout | null;
}

/** A socket's entry in the device-connection registry: methods on the prototype, not three closures per socket. */
class SocketEntry implements DeviceConnEntry {
  readonly connId: string;
  readonly address: string | null;
  up = false;

  constructor(
    private readonly conn: VerifiedConn,
    readonly deviceId: string | null,
    readonly deviceKey: string,
    readonly generated: boolean,
    private readonly nodeId: string,
  ) {
    this.connId = conn.id;
    this.address = conn.remoteAddress ?? null;
  }

  labels(): Labels {
    return this.conn.labels ?? {};
  }

  write(line: string): boolean {
    return this.conn.write(line);
  }

  device(): DeviceInfo {
    return this.conn.device(this.nodeId);
  }
}

/**
 * A conn_up message still open to joins: its sockets, the actor it went to (undefined: not sent yet;
 * null: lost), and the timer that sends it once its turn is due (UP_TURN_MS).
 */
interface HeldUps {
  ups: ConnUp[];
  ref: ActorRef<ClientMsg> | null | undefined;
  timer: NodeJS.Timeout | null;
}

export class ClientActors {
  private readonly starting = new Map<string, Promise<ActorRef<ClientMsg>>>();
  private readonly changes: VarChanges;
  /** Messages for a key waiting for its actor to start, so they reach it in the order they were sent. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Per socket, the reports waiting for their turn or in the key's mailbox, which later reports join (deviceReported). */
  private readonly heldReports = new Map<string, HeldReports>();
  /** Per socket, its report turns: when the key's actor last read its reports (REPORT_TURN_MS). */
  private readonly reportTurns: Turns<string>;
  /** Per key, the verified sockets' conn_up waiting for its turn or in its mailbox, which later verifies join (deviceVerified). */
  private readonly heldUps = new Map<string, HeldUps>();
  /** Per key with sockets here: its conn_up turns, when its actor last took one (UP_TURN_MS). */
  private readonly upTurns: Turns<string>;
  /** Per key with sockets here: when its last two sockets were verified (a third within UP_TURN_MS is a storm). */
  private readonly verifies = new Map<string, { last: number; before: number }>();
  private readonly now: () => number;
  /** Every change and view of §8. */
  readonly variables: Variables;

  constructor(
    private readonly sup: () => DynamicSupervisorCell,
    private readonly deps: ClientDeps & { ackTimeoutMs?: number; now?: () => number },
  ) {
    // The clock of the turns, a test's own where it gives one.
    this.now = deps.now ?? (() => performance.now());
    this.reportTurns = new Turns(REPORT_TURN_MS, this.now);
    this.upTurns = new Turns(UP_TURN_MS, this.now);
    this.changes = new VarChanges({ ...deps, logger: deps.logger.child({ component: 'var-changes' }) });
    this.variables = new Variables({ store: deps.store, changes: this.changes, variables: deps.variables, gateway: deps.gateway, logger: deps.logger.child({ component: 'variables' }) });
  }

  private get registry(): Registry<null> {
    return this.deps.clientActors;
  }

  /** The key's client actor, started on first use. */
  ensure(apiKey: string): Promise<ActorRef<ClientMsg>> {
    const found = this.registry.whereis(apiKey);
    if (found) return Promise.resolve(found.ref as ActorRef<ClientMsg>);
    let p = this.starting.get(apiKey);
    if (p) return p;
    const sup = this.sup();
    const id = `client-${apiKey}`;
    p = (async () => {
      // A crashed-and-restarting or idle-stopping actor of that key may still be in the supervisor.
      const existing = sup.childByName(id);
      if (existing && existing.status !== 'stopped' && 'ref' in existing) return existing.ref as ActorRef<ClientMsg>;
      // The actor registers itself in its init (every incarnation does).
      return sup.startChild<ClientMsg>(clientChildSpec(apiKey, this.deps));
    })().finally(() => this.starting.delete(apiKey));
    this.starting.set(apiKey, p);
    return p;
  }

  /** Tells the key's client actor, if any, that a device connection came or went. */
  notify(apiKey: string, msg: ClientMsg): void {
    this.releaseUps(apiKey);
    const found = this.registry.whereis(apiKey);
    if (found) (found.ref as ActorRef<ClientMsg>).send(msg);
  }

  /**
   * Sends to the key's actor, starting it if needed; messages of one key arrive in the order sent,
   * even while the actor is starting.
   */
  private dispatch(apiKey: string, msg: ClientMsg, sent?: (ref: ActorRef<ClientMsg> | null) => void): void {
    // Verifies waiting for their turn go first: every event of the key reaches it in the order it happened.
    this.releaseUps(apiKey);
    const queued = this.queues.get(apiKey);
    if (!queued) {
      const found = this.registry.whereis(apiKey);
      if (found) {
        (found.ref as ActorRef<ClientMsg>).send(msg);
        sent?.(found.ref as ActorRef<ClientMsg>);
        return;
      }
    }
    const next = (queued ?? Promise.resolve())
      .then(() => this.ensure(apiKey))
      .then(
        (ref) => {
          ref.send(msg);
          sent?.(ref);
        },
        (err: unknown) => {
          sent?.(null);
          this.deps.logger.error({ err, apiKey }, 'cannot start client actor');
        },
      );
    this.queues.set(apiKey, next);
    void next.then(() => {
      if (this.queues.get(apiKey) === next) this.queues.delete(apiKey);
    });
  }

  /**
   * A device socket verified (or its connection actor restarted): it joins the key's device
   * connections until its connection actor stops for good, and the key's client actor sends it every
   * override in effect. A restart keeps the socket, and so its entry: it never left the key's device
   * connections (every change reached it meanwhile, written to the same socket), and its presence,
   * labels and last-sent are what they were, so a restart costs the key's actor and the store
   * nothing (it cost a conn_down, a conn_up, a presence write and a resync per crash).
   */
  deviceVerified(conn: VerifiedConn, self: ActorRef<unknown>): void {
    const v = conn.verified;
    if (!v) return;
    const resume = conn.takenOn === true;
    if (resume && this.deps.deviceConns.get(v.apiKey, conn.id)) return;
    const { nodeId } = this.deps;
    const { deviceKey, generated } = deviceKeyOf(conn, nodeId);
    this.deps.deviceConns.register(v.apiKey, self, new SocketEntry(conn, v.deviceId, deviceKey, generated, nodeId), { untilStopped: true });
    this.watchSocket(conn.id, v.apiKey, deviceKey, self);
    conn.takenOn = true;
    const up: ConnUp = { connId: conn.id, deviceKey, generated, address: conn.remoteAddress ?? null };
    // A socket taken on before whose entry is gone all the same goes alone, in its place among the
    // socket's messages, and is sent what it missed (its entry lives as long as its actor: a fallback).
    if (resume) return this.dispatch(v.apiKey, { kind: 'conn_up', resume: true, take: () => [up] });
    this.upJoin(v.apiKey, up);
  }

  /**
   * What a socket's end (its connection actor's stop for good) sets off. A method of its own, so that
   * the monitor's closure holds these four and not the rest of deviceVerified's locals for the
   * socket's lifetime.
   */
  private watchSocket(connId: string, apiKey: string, deviceKey: string, self: ActorRef<unknown>): void {
    self.monitorStop(() => {
      // Reports still waiting for their turn go first, as they would have without the wait.
      this.releaseHeld(connId);
      this.heldReports.delete(connId);
      this.reportTurns.forget(connId);
      this.notify(apiKey, { kind: 'conn_down', deviceKey });
      // The registry's own monitor ran first (it registered first): the count is without this socket.
      if (this.deps.deviceConns.countKey(apiKey) === 0) {
        this.verifies.delete(apiKey);
        this.upTurns.forget(apiKey);
      }
    });
  }

  /**
   * A fresh socket's conn_up joins the key's one still waiting for its turn or in the mailbox, if
   * any, so a burst of verifies costs the key's actor one turn and one store round trip per step, not
   * one each. Only earlier: nothing of a socket is sent before its conn_up, so its order with its own
   * messages holds. A message the actor can no longer take (it stopped, or never started) is joined
   * no more. In a storm the key's turns are UP_TURN_MS apart at least.
   */
  private upJoin(apiKey: string, up: ConnUp): void {
    const now = this.now();
    let v = this.verifies.get(apiKey);
    if (!v) this.verifies.set(apiKey, (v = { last: -Infinity, before: -Infinity }));
    const storm = now - v.before < UP_TURN_MS;
    v.before = v.last;
    v.last = now;
    const held = this.heldUps.get(apiKey);
    if (held && (held.ref === undefined || held.ref?.alive())) {
      held.ups.push(up);
      return;
    }
    const fresh: HeldUps = { ups: [up], ref: undefined, timer: null };
    this.heldUps.set(apiKey, fresh);
    if (storm) fresh.timer = this.upTurns.schedule(apiKey, () => this.sendUps(apiKey, fresh));
    else this.sendUps(apiKey, fresh);
  }

  /** Puts a key's held conn_up in its mailbox; the actor takes every socket that joined it by then. */
  private sendUps(apiKey: string, fresh: HeldUps): void {
    fresh.timer = null;
    const take = (): ConnUp[] => {
      if (this.heldUps.get(apiKey) === fresh) {
        this.heldUps.delete(apiKey);
        // Only while the key has sockets here: its last one may have gone since.
        if (this.verifies.has(apiKey)) this.upTurns.taken(apiKey);
      }
      return fresh.ups;
    };
    this.dispatch(apiKey, { kind: 'conn_up', resume: false, take }, (ref) => {
      fresh.ref = ref;
      if (ref === null && this.heldUps.get(apiKey) === fresh) this.heldUps.delete(apiKey);
    });
  }

  /** Sends the key's conn_up that waits for its turn now: an event of the key that follows it must not overtake it. */
  private releaseUps(apiKey: string): void {
    const held = this.heldUps.get(apiKey);
    if (!held?.timer) return;
    clearTimeout(held.timer);
    this.sendUps(apiKey, held);
  }

  /**
   * A verified device reported variables (`i:`). Reports of one socket that arrive while its previous
   * one still waits in the key's mailbox join that message instead of queueing behind it: a device
   * streaming `i:` lines faster than the key's actor reads the store would otherwise grow the mailbox
   * by one message per line and hold every dashboard change for the key behind that backlog. The
   * actor reads them all in one turn, in order (each still one report of §8), and they stay in
   * order with the socket's other events (a `d:` line starts a new message after it). A socket's
   * turns are REPORT_TURN_MS apart at least, so a stream of lines is read in a few turns a second.
   */
  deviceReported(conn: VerifiedConn, vars: readonly Var[]): void {
    if (!conn.verified || vars.length === 0) return;
    const found = this.heldReports.get(conn.id);
    if (found) {
      found.reports.push(vars);
      return;
    }
    const held: HeldReports = { apiKey: conn.verified.apiKey, reports: [vars], timer: null };
    this.heldReports.set(conn.id, held);
    // A socket whose previous turn was moments ago waits out the rest of REPORT_TURN_MS.
    held.timer = this.reportTurns.schedule(conn.id, () => this.sendHeld(conn.id, held));
  }

  /** Puts a socket's held reports in its key's mailbox; the actor takes all that joined them by then. */
  private sendHeld(connId: string, held: HeldReports): void {
    held.timer = null;
    this.dispatch(held.apiKey, {
      kind: 'report',
      connId,
      take: () => {
        if (this.heldReports.get(connId) === held) {
          this.heldReports.delete(connId);
          this.reportTurns.taken(connId);
        }
        return held.reports;
      },
    });
  }

  /** Sends a socket's reports that wait for their turn now: an event of the socket that follows them must not overtake them. */
  private releaseHeld(connId: string): void {
    const held = this.heldReports.get(connId);
    if (!held?.timer) return;
    clearTimeout(held.timer);
    this.sendHeld(connId, held);
  }

  /** A verified device declared its labels (`d:`). */
  deviceLabels(conn: VerifiedConn, labels: Labels): void {
    if (!conn.verified) return;
    this.releaseHeld(conn.id);
    // A report after these labels is a new message behind them, never folded into one before them.
    this.heldReports.delete(conn.id);
    this.dispatch(conn.verified.apiKey, { kind: 'labels', connId: conn.id, labels });
  }

  /** A dashboard changes a variable for every device (the original PUT): an override for all. */
  change(apiKey: string, edit: VarEdit, actor = 'dashboard'): Promise<SetOverrideAnswer> {
    return this.variables.setVar(apiKey, actor, { name: edit.name, value: edit.value, type: edit.type, target: undefined });
  }

  /** A presence watch for this node's dashboards: `forward` hands each `device_state` to the key's sockets here. */
  presenceWatch(forward: (apiKey: string, event: DeviceStateEvent) => void): PresenceWatch {
    const { store, variables, logger } = this.deps;
    return new PresenceWatch({ store, variables, summaries: (apiKey, records) => this.variables.summaries(apiKey, records), forward, logger: logger.child({ component: 'presence-watch' }) });
  }

  /** Subscribes to this node's delivery-ack channel (idempotent; a failure is retried by the next change). */
  start(): Promise<void> {
    return this.changes.start();
  }

  /** Ends the ack subscription and settles changes still waiting for acks. */
  stop(): Promise<void> {
    return this.changes.stop();
  }

  /**
   * The `registry` worker of the tree: its info counts the registries, and it brackets the service's
   * ack subscription, so the subscription starts before TCP and HTTP do and ends at shutdown after
   * they and the client actors have stopped, while pubsub is still up. Its restart keeps the
   * registries' entries on purpose: in OTP a Registry is linked to the processes registered in it, so
   * its crash kills them and they register again; here an entry belongs to its actor's monitor (it
   * goes when that incarnation ends), so the entries are still exactly the live actors, and dropping
   * them would only cut every device off from dashboard changes until it reconnects.
   */
  registryChildSpec(): ChildSpec {
    const { deviceConns, clientActors } = this.deps;
    return {
      id: 'registry',
      start: worker<null, never>({
        init: () => {
          // Not awaited: a pubsub that is down at boot must not stop the daemon; the first change retries.
          this.start().catch(() => undefined);
          return null;
        },
        terminate: async (_state, _reason, restarting) => {
          if (!restarting) await this.stop();
        },
        // The admin tree's established keys: sockets = device connections, clients = client actors.
        info: () => ({ sockets: deviceConns.size, keysWithSockets: deviceConns.keysList().length, clients: clientActors.size }),
      }),
    };
  }
}
