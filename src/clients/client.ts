/**
 * The ClientActor: one per API key with connected devices on this node (Elixir's Web.Tcp.Client).
 * Subscribed to `<apiKey>:vars:callback`, it packs each change as `v:<apiKey>:<base64 JSON>` and
 * writes it to every verified device connection of the key; when none is left it keeps the change in the
 * outbox (in the store) until a device verifies, then flushes right after that device's OK. It stops
 * itself after a grace period without device connections, which ends its subscription.
 */
import type { Logger } from 'pino';
import type { DeviceInfo, Gateway } from '../gateway/gateway.js';
import type { Metrics } from '../metrics.js';
import type { Var } from '../model.js';
import { worker, type ActorContext, type ChildSpec, type Registry } from '../otp/index.js';
import { channels, type PubSub, type Unsubscribe } from '../pubsub/pubsub.js';
import type { Store } from '../store/store.js';
import { packVars } from '../tcp/protocol.js';

/** What the device-connection registry holds for each verified device socket. */
export interface DeviceConnEntry {
  connId: string;
  deviceId: string | null;
  write(line: string): boolean;
  /** The socket's current device info (counters move), for GET /api/devices. */
  device(): DeviceInfo;
}

/** A variable change on its way to devices, as published on `<apiKey>:vars:callback`. */
export interface VarChange {
  vars: Var[];
  /** Set by the node that made the change so each node can tell it how many sockets got it. */
  requestId?: string;
  replyTo?: string;
}

/** Each node's answer to a change, published on the `replyTo` channel: how many of its sockets got it. */
export interface DeliveryAck {
  requestId: string;
  delivered: number;
}

export type ClientMsg =
  | { kind: 'change'; change: VarChange }
  | { kind: 'conn_up'; connId: string }
  | { kind: 'conn_down' }
  | { kind: 'outbox_length'; length: number }
  | { kind: 'idle_check' };

export interface ClientDeps {
  store: Store;
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
}

interface State {
  unsubscribe: Unsubscribe | null;
  idleTimer: NodeJS.Timeout | null;
  delivered: number;
  outboxLength: number;
}

export function clientChildSpec(apiKey: string, deps: ClientDeps): ChildSpec {
  return { id: `client-${apiKey}`, restart: 'transient', shutdown: 5000, start: clientBehaviour(apiKey, deps) };
}

function clientBehaviour(apiKey: string, deps: ClientDeps) {
  const { store, pubsub, deviceConns, metrics } = deps;

  const writeAll = (line: string): number => {
    let n = 0;
    for (const { value } of deviceConns.lookup(apiKey)) if (value.write(line)) n += 1;
    if (n > 0) metrics.varChangesSent.inc(n);
    return n;
  };

  const armIdle = (state: State, ctx: ActorContext<ClientMsg>): void => {
    if (state.idleTimer || deviceConns.countKey(apiKey) > 0) return;
    state.idleTimer = setTimeout(() => ctx.self.send({ kind: 'idle_check' }), deps.idleMs);
    state.idleTimer.unref();
  };

  /**
   * Writes a change to this node's sockets of the key and tells the sender how many got it. It never
   * buffers: only the sender knows whether a socket on another node got the change, so only the
   * sender puts it in the outbox when none did (clients/var-changes.ts).
   */
  const deliver = async (state: State, change: VarChange): Promise<void> => {
    const names = change.vars.map((v) => v.name);
    const delivered = writeAll(packVars(apiKey, change.vars));
    if (delivered > 0) state.delivered += change.vars.length;
    if (change.requestId && change.replyTo) {
      const ack: DeliveryAck = { requestId: change.requestId, delivered };
      await pubsub.publish(change.replyTo, ack);
    }
    if (delivered > 0) deps.gateway.publish(channels.vars(apiKey), { type: 'delivery', name: names[0] ?? '', names, delivered, buffered: false, node: deps.nodeId }, 'delivery');
  };

  const flushOutbox = async (state: State): Promise<number> => {
    const waiting = await store.outboxTake(apiKey);
    state.outboxLength = 0;
    metrics.setOutbox(apiKey, 0);
    if (waiting.length === 0) return 0;
    const delivered = writeAll(packVars(apiKey, waiting));
    if (delivered === 0) {
      // Every socket went away meanwhile: put the changes back, oldest first.
      state.outboxLength = await store.outboxPush(apiKey, waiting);
      metrics.setOutbox(apiKey, state.outboxLength);
      return 0;
    }
    state.delivered += waiting.length;
    deps.gateway.publish(channels.vars(apiKey), { type: 'outbox_flushed', names: waiting.map((v) => v.name), delivered }, 'outbox_flushed');
    return delivered;
  };

  return worker<State, ClientMsg>({
    async init(ctx) {
      const unsubscribe = await pubsub.subscribe(channels.varsCallback(apiKey), (message) => {
        ctx.self.send({ kind: 'change', change: message as VarChange });
      });
      const state: State = { unsubscribe, idleTimer: null, delivered: 0, outboxLength: 0 };
      deps.clientActors.register(apiKey, ctx.self, null);
      // Changes that waited while no actor existed (or while this one restarted) go out now.
      if (deviceConns.countKey(apiKey) > 0) await flushOutbox(state);
      else metrics.setOutbox(apiKey, (state.outboxLength = await store.outboxLength(apiKey)));
      armIdle(state, ctx);
      return state;
    },

    async handle(state, msg, ctx) {
      switch (msg.kind) {
        case 'change':
          await deliver(state, msg.change);
          break;
        case 'conn_up':
          if (state.idleTimer) clearTimeout(state.idleTimer);
          state.idleTimer = null;
          await flushOutbox(state);
          break;
        case 'conn_down':
          armIdle(state, ctx);
          break;
        case 'outbox_length':
          state.outboxLength = msg.length;
          break;
        case 'idle_check':
          state.idleTimer = null;
          if (deviceConns.countKey(apiKey) === 0) ctx.stop('normal');
          break;
      }
    },

    async terminate(state) {
      if (state.idleTimer) clearTimeout(state.idleTimer);
      await state.unsubscribe?.();
    },

    info(state) {
      // `sockets` is the admin tree's established key for this count.
      return { apiKey, sockets: deviceConns.countKey(apiKey), outboxLength: state.outboxLength, delivered: state.delivered };
    },
  });
}
