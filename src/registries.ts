/**
 * The `registry` child: it owns the two registries (API key → sockets, API key → client actor) and
 * shows their sizes in the tree. Its restart keeps their entries, on purpose. In OTP a Registry is
 * linked to the processes registered in it, so its crash kills them and their restarts register
 * again; here an entry belongs to its actor's monitor (it goes when that incarnation ends), so the
 * entries of a restarted registry worker are still exactly the live actors, and dropping them
 * would only cut every device off from dashboard changes until it reconnects.
 */
import type { SocketEntry } from './clients/client.js';
import { Registry, worker, type ChildSpec } from './otp/index.js';

export interface RegistryChild {
  spec: ChildSpec;
  sockets: Registry<SocketEntry>;
  clients: Registry<null>;
}

export function registryChild(): RegistryChild {
  const sockets = new Registry<SocketEntry>('sockets', 'duplicate');
  const clients = new Registry<null>('clients', 'unique');
  const spec: ChildSpec = {
    id: 'registry',
    start: worker<null, never>({
      init: () => null,
      info: () => ({ sockets: sockets.size, keysWithSockets: sockets.keysList().length, clients: clients.size }),
    }),
  };
  return { spec, sockets, clients };
}
