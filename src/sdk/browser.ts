/**
 * observerio's TypeScript SDK for browsers (`@observerio/sdk`'s "browser" build): the same API as
 * index.ts, over the WebSocket transport only (`GET /sdk` on the daemon's HTTP port), so the bundle
 * holds no node:net. A browser cannot open TCP sockets: `host`/`port` without `url` is a bad_option.
 */
import { ClientBase, startClient, type ConnectOptions } from './client.js';
import { SdkError } from './errors.js';
import type { TransportChoice } from './transport.js';
import { wsFromOptions } from './ws-transport.js';

function pickBrowserTransport(o: ConnectOptions, maxLineBytes: number): TransportChoice {
  if (o.url === undefined)
    throw new SdkError('bad_option', "a browser connects over a WebSocket: pass url, e.g. 'ws://127.0.0.1:4000/sdk' (the daemon's HTTP port), not host/port");
  return wsFromOptions(o, maxLineBytes);
}

/** A connection to the daemon. Create it with {@link connect} or {@link createClient}. */
export class Client extends ClientBase {
  /** Only checks the options and opens nothing; see {@link connect}. */
  constructor(options: ConnectOptions) {
    super(options, pickBrowserTransport);
  }
}

/**
 * Connects to the daemon over `options.url` and resolves once it answered `OK` (see index.ts's
 * connect; `background: true` resolves at once and retries in the background).
 *
 * @example
 * const client = await connect({ url: 'ws://127.0.0.1:4000/sdk', apiKey: 'abcDEF123456', defaults: { enemy_speed: 1.5 } });
 * const speed = client.getNumber('enemy_speed', 1.5);
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  return startClient(new Client(options), options);
}

/** Creates a client and connects it in the background; throws only for bad options (see index.ts). */
export function createClient(options: ConnectOptions): Client {
  const client = new Client(options);
  client.startInBackground();
  return client;
}

export * from './public.js';
