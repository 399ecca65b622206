/**
 * The `clients` dynamic supervisor and the one way into it: ensureClient(apiKey) finds the key's
 * client actor in the registry or starts it, so concurrent verifies of one key start exactly one.
 */
import { dynamicSupervisor, type ActorRef, type ChildSpec, type DynamicSupervisorCell, type Registry } from '../otp/index.js';
import { clientChildSpec, type ClientDeps, type ClientMsg } from './client.js';

export function clientsChildSpec(): ChildSpec {
  return { id: 'clients', start: dynamicSupervisor({ childIntensity: 5, childPeriod: 10_000 }), shutdown: 10_000 };
}

export class Clients {
  private readonly starting = new Map<string, Promise<ActorRef<ClientMsg>>>();

  constructor(
    private readonly sup: () => DynamicSupervisorCell,
    private readonly deps: ClientDeps,
  ) {}

  private get registry(): Registry<null> {
    return this.deps.clients;
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

  /** Tells the key's client actor, if any, that a socket came or went. */
  notify(apiKey: string, msg: ClientMsg): void {
    const found = this.registry.whereis(apiKey);
    if (found) (found.ref as ActorRef<ClientMsg>).send(msg);
  }
}
