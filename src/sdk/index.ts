/**
 * observerio's TypeScript SDK for Node (`observerio/sdk`, and `@observerio/sdk` built from it): a game
 * connects to the daemon over TCP (`host`/`port`) or a WebSocket (`url`, `GET /sdk`), streams its
 * variables and logs, declares its labels, and receives variable changes made on the dashboard. The
 * wire protocol is in docs/PROTOCOL.md; this SDK speaks the original protocol plus the optional device
 * id on `v:` and, when given labels, the devices extension's `d:` line (§13). browser.ts is the same
 * API with the WebSocket transport only.
 */
import { ClientBase, intOption, startClient, type ConnectOptions } from './client.js';
import { SdkError } from './errors.js';
import { tcpTransport } from './tcp-transport.js';
import type { TransportChoice } from './transport.js';
import { wsFromOptions } from './ws-transport.js';

/** `url` selects the WebSocket transport, else TCP to host:port; both at once is a mistake. */
function pickNodeTransport(o: ConnectOptions, maxLineBytes: number): TransportChoice {
  if (o.url !== undefined) return wsFromOptions(o, maxLineBytes);
  return tcpTransport(o.host ?? '127.0.0.1', intOption('port', o.port, 4040, 1), maxLineBytes);
}

/** A connection to the daemon. Create it with {@link connect} or {@link createClient}. */
export class Client extends ClientBase {
  /** Only checks the options and opens nothing; see {@link connect}. */
  constructor(options: ConnectOptions) {
    super(options, pickNodeTransport);
  }
}

/**
 * Connects to the daemon and resolves once it answered `OK` to the client's `v:` line.
 *
 * Rejects with an {@link SdkError} whose `code` says why: `bad_api_key` / `bad_device_id` / `bad_option`
 * (checked locally, nothing is sent), the daemon's own code such as `unknown_api_key` or `server_busy`,
 * `connection_refused`, `connection_error` or `connect_timeout`. The first connection is not retried;
 * once connected, the client reconnects by itself. With `background: true` it resolves at once.
 *
 * @example
 * const client = await connect({ host: '127.0.0.1', port: 4040, apiKey: 'abcDEF123456' });
 * // or over a WebSocket: connect({ url: 'ws://127.0.0.1:4000/sdk', apiKey, WebSocket })
 * client.on('vars', (changes) => { for (const c of changes) tune(c.name, c.value); });
 * client.setVar('enemy_speed', 1.5);
 * client.log('level started', { level: 'info', stage: 3 });
 * await client.close();
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  return startClient(new Client(options), options);
}

/**
 * Creates a client and connects it in the background; never rejects or throws for the daemon. Until
 * the first `OK` (and while reconnecting) the game runs on its `defaults`: the getters return them,
 * setVar and log queue, flush() waits. A daemon that is down or refuses the key is retried with the
 * reconnect backoff (watch 'reconnecting' to see why). Throws SdkError only for bad options
 * (`bad_api_key`, `bad_device_id`, `bad_labels`, `bad_var`, `bad_option`), which are the game's bugs.
 *
 * @example
 * const client = createClient({ apiKey: 'abcDEF123456', deviceId: 'pixel-8', labels: { platform: 'android' }, defaults: { enemy_speed: 1.5 } });
 * const speed = client.getNumber('enemy_speed', 1.5);
 */
export function createClient(options: ConnectOptions): Client {
  const client = new Client(options);
  client.startInBackground();
  return client;
}

export * from './public.js';
