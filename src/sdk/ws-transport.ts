/**
 * The SDK's WebSocket transport: `GET /sdk` on the daemon's HTTP port (docs/PROTOCOL.md §14), for
 * games in browsers and for Node given a WebSocket class. Each line goes out as one text message, and
 * each message received is split into its lines (the end of a message ends its last line). Nothing
 * the server sends, binary, oversized or broken, throws into the game: it becomes a `problem` or
 * `tooLong` event and the connection goes on.
 */
import type { SdkClock, TimerHandle } from './clock.js';
import { SdkError } from './errors.js';
import { splitMessage } from './line-splitter.js';
import type { SdkTransport, TransportChoice, TransportEvents, WebSocketConstructor, WebSocketLike } from './transport.js';

/** WebSocket.OPEN; the constant is not on every implementation's instances. */
const OPEN = 1;
/**
 * Bytes queued in the WebSocket past which the client holds logs back in its bounded queue, as it
 * does on a TCP socket that needs draining. A WebSocket has no drain event, so it is polled.
 */
export const WS_HIGH_WATER = 64 * 1024;
export const WS_DRAIN_POLL_MS = 25;
const NORMAL_CLOSES = new Set([1000, 1001, 1005]);

const noop = (): void => undefined;
const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

class WsTransport implements SdkTransport {
  private readonly ws: WebSocketLike | null = null;
  private opened = false;
  private done = false;
  private destroying = false;
  private drainTimer: TimerHandle | null = null;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    Ctor: WebSocketConstructor,
    private readonly url: string,
    private readonly maxLineBytes: number,
    private readonly events: TransportEvents,
    private readonly clock: SdkClock,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    let ws: WebSocketLike;
    try {
      ws = new Ctor(url);
    } catch (err) {
      // A page may refuse the URL (a ws: from an https: page): a failed attempt, retried like any other.
      void Promise.resolve().then(() => this.finish(new SdkError('connection_error', `cannot open a WebSocket to ${url}: ${describe(err)}`, { cause: err })));
      return;
    }
    this.ws = ws;
    ws.onopen = () =>
      this.guard(() => {
        this.opened = true;
        this.events.open();
      });
    ws.onmessage = (ev: { data?: unknown }) => this.guard(() => this.onMessage(ev.data));
    ws.onerror = (ev: { message?: unknown }) =>
      this.guard(() => {
        // Browsers say nothing more about a failed WebSocket; `ws` gives a message.
        const detail = typeof ev?.message === 'string' && ev.message ? `: ${ev.message}` : '';
        if (this.opened) this.events.error(new SdkError('connection_lost', `the WebSocket to ${url} failed${detail}`));
        else this.events.error(new SdkError('connection_error', `cannot open a WebSocket to ${url}${detail}`));
      });
    ws.onclose = (ev: { code?: unknown; reason?: unknown }) =>
      this.guard(() => {
        const code = typeof ev?.code === 'number' ? ev.code : 1005;
        const reason = typeof ev?.reason === 'string' && ev.reason ? ` ${JSON.stringify(ev.reason.slice(0, 120))}` : '';
        const err = NORMAL_CLOSES.has(code) ? null : new SdkError('connection_lost', `${url} closed the WebSocket (code ${code}${reason})`);
        this.finish(err);
      });
  }

  write(line: string, done: (err: SdkError | null) => void): void {
    const ws = this.ws;
    if (!ws || this.done || this.destroying || ws.readyState !== OPEN) return done(new SdkError('connection_lost', `the WebSocket to ${this.url} is not open`));
    try {
      ws.send(`${line}\n`);
    } catch (err) {
      return done(new SdkError('connection_lost', `cannot send on the WebSocket to ${this.url}: ${describe(err)}`, { cause: err }));
    }
    done(null);
  }

  get needsDrain(): boolean {
    const ws = this.ws;
    if (!ws || this.done || ws.bufferedAmount <= WS_HIGH_WATER) return false;
    this.pollDrain();
    return true;
  }

  end(): void {
    if (!this.ws || this.ws.readyState !== OPEN || this.destroying) return this.destroy();
    try {
      this.ws.close(1000);
    } catch {
      this.destroy();
    }
  }

  destroy(): void {
    if (this.done || this.destroying) return;
    this.destroying = true;
    const ws = this.ws;
    if (ws) {
      // Handlers that do nothing rather than null: the `ws` package throws an 'error' nobody listens to.
      ws.onopen = noop;
      ws.onmessage = noop;
      ws.onerror = noop;
      ws.onclose = noop;
      try {
        ws.close(1000);
      } catch {
        // Already closing; nothing more to ask of it.
      }
    }
    // Not waiting for the closing handshake: like a destroyed TCP socket, it is gone for the client now.
    void Promise.resolve().then(() => this.finish(null));
  }

  get isClosed(): boolean {
    return this.done;
  }

  private onMessage(data: unknown): void {
    if (this.done || this.destroying) return;
    if (typeof data !== 'string') {
      this.events.problem(new SdkError('bad_server_line', 'the daemon sent a binary WebSocket message; ignored (the protocol is text)'));
      return;
    }
    for (const ev of splitMessage(data, this.maxLineBytes)) {
      // A line may have closed the connection (an e: reply to v:); the rest of the message is moot.
      if (this.done || this.destroying) return;
      if (ev.kind === 'line') this.events.line(ev.line);
      else this.events.tooLong(ev.bytes);
    }
  }

  private pollDrain(): void {
    if (this.drainTimer !== null) return;
    this.drainTimer = this.clock.setTimeout(() => {
      this.drainTimer = null;
      if (this.done || this.destroying || !this.ws) return;
      if (this.ws.bufferedAmount <= WS_HIGH_WATER) this.guard(() => this.events.drain());
      else this.pollDrain();
    }, WS_DRAIN_POLL_MS);
  }

  private finish(err: SdkError | null): void {
    if (this.done) return;
    if (err) this.events.error(err);
    this.done = true;
    if (this.drainTimer !== null) this.clock.clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.markClosed();
    this.events.close();
  }

  /** Runs a handler of the WebSocket's: an exception there would reach the game's event loop. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.events.problem(new SdkError('internal', `observerio sdk: a WebSocket handler threw: ${describe(err)}`, { cause: err }));
      } catch {
        // Nothing is left to tell.
      }
    }
  }
}

/**
 * Checks `url` (ws: or wss:) and the WebSocket class (given, or the global one) and returns the
 * WebSocket transport; throws SdkError `bad_option` for either.
 */
export function wsTransport(url: unknown, Ctor: WebSocketConstructor | undefined, maxLineBytes: number): TransportChoice {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new SdkError('bad_option', `url must be a ws:// or wss:// URL such as ws://127.0.0.1:4000/sdk, got ${JSON.stringify(url)}`);
  }
  if (typeof url !== 'string' || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:'))
    throw new SdkError('bad_option', `url must be a ws:// or wss:// URL such as ws://127.0.0.1:4000/sdk, got ${JSON.stringify(url)}`);
  const WebSocketClass = Ctor ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof WebSocketClass !== 'function')
    throw new SdkError('bad_option', 'no WebSocket class here: pass one as the WebSocket option (on Node 20, the ws package\'s WebSocket)');
  const where = parsed.href;
  return { where, open: (events, clock) => new WsTransport(WebSocketClass, where, maxLineBytes, events, clock) };
}

/** The WebSocket transport from connect's options: `url` names it, and host/port beside it is a mistake. */
export function wsFromOptions(o: { url?: unknown; host?: unknown; port?: unknown; WebSocket?: WebSocketConstructor | undefined }, maxLineBytes: number): TransportChoice {
  if (o.host !== undefined || o.port !== undefined) throw new SdkError('bad_option', 'give either url (WebSocket) or host/port (TCP), not both');
  return wsTransport(o.url, o.WebSocket, maxLineBytes);
}
