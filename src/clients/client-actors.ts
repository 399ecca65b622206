/**
 * ClientActors, the clients service and the one way into the client actors (Elixir's context
 * module): ensure(apiKey) finds the key's actor in the registry or starts it under the `clients`
 * dynamic supervisor, so concurrent verifies of one key start exactly one; deviceVerified() wires a
 * verified device socket to it; change() is "a dashboard changes a variable" for REST and WebSocket
 * alike (var-changes.ts).
 */
import type { DeviceInfo } from '../gateway/gateway.js';
import { dynamicSupervisor, worker, type ActorRef, type ChildSpec, type DynamicSupervisorCell, type Registry } from '../otp/index.js';
import { clientChildSpec, type ClientDeps, type ClientMsg } from './client.js';
import { VarChanges, type VarDelivery, type VarEdit } from './var-changes.js';

export function clientsChildSpec(): ChildSpec {
  return { id: 'clients', start: dynamicSupervisor({ childIntensity: 5, childPeriod: 10_000 }), shutdown: 10_000 };
}

/** A device socket that has just verified, as the TCP layer hands it over. */
export interface VerifiedConn {
  id: string;
  verified: { apiKey: string; deviceId: string | null } | null;
  write(line: string): boolean;
  device(nodeId: string): DeviceInfo;
}

export class ClientActors {
  private readonly starting = new Map<string, Promise<ActorRef<ClientMsg>>>();
  private readonly changes: VarChanges;

  constructor(
    private readonly sup: () => DynamicSupervisorCell,
    private readonly deps: ClientDeps & { ackTimeoutMs?: number },
  ) {
    this.changes = new VarChanges({ ...deps, clients: this, logger: deps.logger.child({ component: 'var-changes' }) });
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
    const found = this.registry.whereis(apiKey);
    if (found) (found.ref as ActorRef<ClientMsg>).send(msg);
  }

  /**
   * A device socket verified (or its connection actor restarted): it joins the key's device connections for as
   * long as that actor incarnation lives, and the key's client actor flushes the outbox to it.
   */
  deviceVerified(conn: VerifiedConn, self: ActorRef<unknown>): void {
    const v = conn.verified;
    if (!v) return;
    const { nodeId, logger } = this.deps;
    this.deps.deviceConns.register(v.apiKey, self, { connId: conn.id, deviceId: v.deviceId, write: (line) => conn.write(line), device: () => conn.device(nodeId) });
    self.monitor(() => this.notify(v.apiKey, { kind: 'conn_down' }));
    this.ensure(v.apiKey).then(
      (ref) => ref.send({ kind: 'conn_up', connId: conn.id }),
      (err: unknown) => logger.error({ err, apiKey: v.apiKey }, 'cannot start client actor'),
    );
  }

  /** A dashboard changes a variable: stored, sent to the key's devices or kept in the outbox. */
  change(apiKey: string, edit: VarEdit): Promise<VarDelivery> {
    return this.changes.change(apiKey, edit);
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
