/**
 * The SDK's transport seam: the client runs the protocol (verify, labels, batching, reconnect, the
 * offline queue) over any SdkTransport, and a transport only moves lines. Two implementations: TCP
 * (node:net, tcp-transport.ts) for Node and WebSocket (`GET /sdk`, ws-transport.ts) for browsers and
 * for Node with a WebSocket class; the entry points (index.ts for Node, browser.ts) pick one.
 */
import type { SdkClock } from './clock.js';
import type { SdkError } from './errors.js';

/**
 * What a transport reports. Never called from within the call that opened it or from destroy(),
 * always from a later turn of the event loop, and nothing after `close`.
 */
export interface TransportEvents {
  /** Connected: lines may be written. */
  open(): void;
  /** One line from the daemon, trimmed, not blank. */
  line(line: string): void;
  /** A line from the daemon over the line limit was skipped. */
  tooLong(bytes: number): void;
  /** Writes may go on after `needsDrain` was true. */
  drain(): void;
  /** Why the connection is failing; `close` follows. */
  error(err: SdkError): void;
  /** Something the daemon sent that is not protocol text; the connection goes on. */
  problem(err: SdkError): void;
  /** The connection is gone (exactly once). */
  close(): void;
}

export interface SdkTransport {
  /** Sends one line (without its newline); `done` says whether it was handed to the connection. */
  write(line: string, done: (err: SdkError | null) => void): void;
  /** True while so much is buffered that the sender should wait for `drain`. */
  readonly needsDrain: boolean;
  /** Closes after what was written; `close` follows (the caller bounds the wait with destroy()). */
  end(): void;
  /** Closes now; `close` follows on a later turn. */
  destroy(): void;
  /** True once `close` was reported. */
  readonly isClosed: boolean;
  /** Settles when `close` is reported. */
  readonly closed: Promise<void>;
}

/** Opens one connection attempt. */
export type TransportFactory = (events: TransportEvents, clock: SdkClock) => SdkTransport;

/** A chosen transport: how to open it and how to name its peer in messages. */
export interface TransportChoice {
  where: string;
  open: TransportFactory;
}

/**
 * A WebSocket as far as the SDK uses it: the browser's, Node 22's global one, or the `ws` package's.
 * The handler parameters are `never` so that every implementation's own event types fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `globalThis.WebSocket`, or `WebSocket` from the `ws` package on Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;
