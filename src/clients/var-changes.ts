/**
 * A variable changed from the dashboard (REST `PUT /api/vars/:name` or the WebSocket's `set_var`):
 * checked, stored in `<apiKey>:vs`, announced to the key's dashboards, and sent to every node's client
 * actor of that key, whose acks say how many sockets got it; with no client actor anywhere it waits in
 * the outbox. One place, so both entry points behave the same.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ObserverioError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Metrics } from '../metrics.js';
import { canonicalVarValue, inferVarType, MAX_VAR_NAME, MAX_VAR_TYPE, varNameProblem, varTypeProblem, type Var, type VarValue } from '../model.js';
import type { Registry } from '../otp/index.js';
import { channels, type PubSub, type Unsubscribe } from '../pubsub/pubsub.js';
import type { Store } from '../store/store.js';
import type { VarDelivery } from '../wire.js';
import type { ClientMsg, DeliveryAck, DeviceConnEntry, VarChange } from './client.js';

// The answer and the value's JSON type are declared in wire.ts with the other shapes that leave the process.
export type { VarDelivery, VarValue };

/** A change as a dashboard asks for it: the value in its JSON type, the var's type optional. */
export interface VarEdit {
  name: string;
  value: VarValue;
  type?: string | undefined;
}

export interface VarChangesDeps {
  store: Store;
  metrics: Metrics;
  pubsub: PubSub;
  gateway: Gateway;
  deviceConns: Registry<DeviceConnEntry>;
  /** The client actors' service (client-actors.ts). */
  clients: { notify(apiKey: string, msg: ClientMsg): void; ensure(apiKey: string): Promise<{ send(msg: ClientMsg): void }> };
  logger: Logger;
  nodeId: string;
  /** How long to wait for the nodes' delivery acks (default 1 s). */
  ackTimeoutMs?: number;
}

function latestKey(apiKey: string, name: string): string {
  return `${apiKey}\u0000${name}`;
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

interface AckTotals {
  received: number;
  delivered: number;
}

interface PendingAck extends AckTotals {
  /** Nodes to hear from; unknown (Infinity) until publish has told us. */
  expected: number;
  done: (result: AckTotals) => void;
  timer: NodeJS.Timeout | null;
}

function isAck(m: unknown): m is DeliveryAck {
  if (typeof m !== 'object' || m === null) return false;
  const a = m as Record<string, unknown>;
  return typeof a.requestId === 'string' && typeof a.delivered === 'number' && Number.isFinite(a.delivered) && a.delivered >= 0;
}

export class VarChanges {
  readonly replyTo: string;
  private readonly pending = new Map<string, PendingAck>();
  private readonly chains = new Map<string, Promise<void>>();
  /** The newest change sent per key and variable (request id), while its acks are awaited. */
  private readonly latest = new Map<string, string>();
  private subscription: Promise<Unsubscribe> | null = null;
  private readonly ackTimeoutMs: number;

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
    const sub = this.subscription;
    this.subscription = null;
    for (const [id, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(id);
      p.done({ received: p.received, delivered: p.delivered });
    }
    if (sub) await (await sub.catch(() => null))?.();
  }

  /** Stores the change and sends it to the key's devices; resolves with how it was delivered. */
  async change(apiKey: string, edit: VarEdit): Promise<VarDelivery> {
    const nameProblem = checkVarName(edit.name);
    if (nameProblem) throw new ObserverioError('bad_request', nameProblem);
    // Store write and publish run one change at a time per key, so two quick changes of one variable
    // reach the store, the outbox and the devices in the order they were made; acks are awaited
    // outside, so a slow node does not hold up the next change.
    const sent = await this.serial(apiKey, () => this.send(apiKey, edit));
    if ('delivery' in sent) return sent.delivery;
    const r = await sent.acks;
    let buffered = false;
    // No socket on any node got it: this node keeps it for the next device to verify. Client actors
    // never buffer themselves, so an idle actor on one node cannot shadow a delivery on another; and a
    // newer change of the same variable makes this one moot (buffering it would resurrect a stale value).
    if (r.delivered === 0 && this.latest.get(latestKey(apiKey, sent.var.name)) === sent.requestId) {
      await this.buffer(apiKey, sent.var);
      buffered = true;
    }
    if (this.latest.get(latestKey(apiKey, sent.var.name)) === sent.requestId) this.latest.delete(latestKey(apiKey, sent.var.name));
    const result: VarDelivery = { var: sent.var, delivered: r.delivered, buffered };
    if (r.received < sent.nodes) result.unconfirmed = sent.nodes - r.received;
    return result;
  }

  /** Puts a change in the outbox and tells the dashboards it waits. */
  private async buffer(apiKey: string, v: Var): Promise<void> {
    const { store, gateway, logger } = this.deps;
    const length = await backend(store.outboxPush(apiKey, [v]), 'store', logger);
    this.deps.metrics.setOutbox(apiKey, length);
    this.deps.clients.notify(apiKey, { kind: 'outbox_length', length });
    gateway.publish(channels.vars(apiKey), { type: 'delivery', name: v.name, names: [v.name], delivered: 0, buffered: true, node: this.deps.nodeId }, 'delivery');
    // Device connections of the key on this node mean a device verified between our publish and our
    // push (or its client actor is missing): a key with connections must have a client actor, and it flushes the
    // outbox now instead of at the next verify.
    if (this.deps.deviceConns.countKey(apiKey) > 0) {
      this.deps.clients.ensure(apiKey).then(
        (ref) => ref.send({ kind: 'conn_up', connId: 'outbox-recheck' }),
        (err: unknown) => logger.error({ err, apiKey }, 'cannot start the client actor to flush the outbox'),
      );
    }
  }

  private async send(apiKey: string, edit: VarEdit): Promise<{ delivery: VarDelivery } | { var: Var; nodes: number; requestId: string; acks: Promise<AckTotals> }> {
    const { store, pubsub, gateway, logger } = this.deps;
    const existing = edit.type === undefined ? (await backend(store.getVars(apiKey), 'store', logger)).find((v) => v.name === edit.name) : undefined;
    const v = resolveVar(edit, existing);
    await backend(store.setVars(apiKey, [v]), 'store', logger);
    // Every dashboard of the key shows the new value, whichever one made the change.
    gateway.publish(channels.vars(apiKey), { type: 'vars', apiKey, deviceId: null, vars: [v], source: 'dashboard' }, 'vars');
    await backend(this.start(), 'pubsub', logger);

    const requestId = randomBytes(9).toString('base64url');
    this.latest.set(latestKey(apiKey, v.name), requestId);
    // Registered before publishing: an ack may come back before publish() resolves.
    const acks = new Promise<AckTotals>((done) => {
      this.pending.set(requestId, { expected: Infinity, received: 0, delivered: 0, done, timer: null });
    });
    const change: VarChange = { vars: [v], requestId, replyTo: this.replyTo };
    let nodes: number;
    try {
      nodes = await pubsub.publish(channels.varsCallback(apiKey), change);
    } catch (err) {
      this.settle(requestId);
      logger.error({ err, apiKey }, 'cannot publish a variable change');
      throw new ObserverioError('unavailable', 'cannot send the change right now; it is stored, retry to send it');
    }

    if (nodes === 0) {
      this.settle(requestId);
      this.latest.delete(latestKey(apiKey, v.name));
      await this.buffer(apiKey, v);
      return { delivery: { var: v, delivered: 0, buffered: true } };
    }

    const p = this.pending.get(requestId);
    if (p) {
      p.expected = nodes;
      if (p.received >= nodes) this.settle(requestId);
      else {
        p.timer = setTimeout(() => this.settle(requestId), this.ackTimeoutMs);
        p.timer.unref();
      }
    }
    return { var: v, nodes, requestId, acks };
  }

  /** Runs `fn` after every earlier call for the same key has finished (whatever their outcome). */
  private serial<T>(apiKey: string, fn: () => Promise<T>): Promise<T> {
    const before = this.chains.get(apiKey) ?? Promise.resolve();
    const run = before.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(apiKey, tail);
    void tail.then(() => {
      if (this.chains.get(apiKey) === tail) this.chains.delete(apiKey);
    });
    return run;
  }

  private onAck(message: unknown): void {
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
    if (p.timer) clearTimeout(p.timer);
    p.done({ received: p.received, delivered: p.delivered });
  }
}

/** A backend failure becomes a 503 for the dashboard (logged once here), not an opaque 500. */
async function backend<T>(p: Promise<T>, name: string, logger: Logger): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ObserverioError) throw err;
    logger.error({ err, backend: name }, 'variable change failed on a backend');
    throw new ObserverioError('unavailable', `the ${name} is unavailable; retry`);
  }
}
