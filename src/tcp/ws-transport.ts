/**
 * The LineTransport of a browser SDK's WebSocket (`GET /sdk`, uWebSockets.js): the same connection
 * actor as TCP runs the protocol over it. The route's handlers feed it (`message`, `peerClosed`).
 *
 * Framing (docs/PROTOCOL.md, "WebSocket transport"): each text message holds whole lines, and a
 * message that does not end with a newline ends its last line there, so a line never spans two
 * messages. Each `write` is one text message (the replies are complete lines, newline included).
 * A binary message is not text of the protocol: the socket is closed with 1003, as a WebSocket
 * says "unsupported data", rather than an `e:` line, like every fault of the WebSocket layer itself
 * (uWS drops a socket whose message is over `maxPayloadLength`, before any handler sees it).
 */
import type { WebSocket } from 'uWebSockets.js';
import type { LineTransport, LineTransportEvents } from './transport.js';

/** Close code of a binary message (RFC 6455 §7.4.1: "a type of data it cannot accept"). */
export const WS_CLOSE_UNSUPPORTED_DATA = 1003;
/** Close code of `end()`: the reason, if any, went out before it as an `e:` line. */
export const WS_CLOSE_NORMAL = 1000;
/** Buffered bytes past which a corked `write` reports backpressure (a socket's default highWaterMark). */
const HIGH_WATER = 16 * 1024;
const NL = 0x0a;

/** Close codes of a peer that left on purpose: reported as plain "peer closed", as a TCP FIN is. */
const NORMAL_CLOSES = new Set([1000, 1001, 1005]);

export class WsTransport implements LineTransport {
  readonly kind = 'ws';
  private events: LineTransportEvents | null = null;
  private early: Buffer[] | null = null;
  /** Set once uWS reported the close: the socket may not be touched after that (uWS throws). */
  private closedWith: string | null = null;
  /** Why this side closed it, reported instead of the peer's code. */
  private closing: string | null = null;
  private corks = 0;
  private corked: string[] = [];
  private corkedBytes = 0;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket<unknown>,
    readonly remoteAddress: string,
  ) {}

  get buffered(): number {
    if (this.closedWith !== null) return this.corkedBytes;
    return this.ws.getBufferedAmount() + this.corkedBytes;
  }

  /** Whether uWS has reported the socket closed. */
  get isClosed(): boolean {
    return this.closedWith !== null;
  }

  // ---- fed by the route's uWS handlers ----

  /** One message from the peer (uWS's `message` handler; the ArrayBuffer dies when it returns). */
  message(message: ArrayBuffer, isBinary: boolean): void {
    if (this.closedWith !== null || this.closing !== null) return;
    this.lastActivity = Date.now();
    if (isBinary) {
      this.endWith(WS_CLOSE_UNSUPPORTED_DATA, 'binary messages are not accepted; send text');
      return;
    }
    const n = message.byteLength;
    if (n === 0) return;
    const view = Buffer.from(message);
    // Copied, with the newline that ends the message's last line if it has none.
    const ends = view[n - 1] === NL;
    const chunk = Buffer.allocUnsafe(ends ? n : n + 1);
    view.copy(chunk);
    if (!ends) chunk[n] = NL;
    if (this.events) this.events.data(chunk);
    else (this.early ??= []).push(chunk);
  }

  /** uWS's `close` handler: the socket is gone, whoever closed it. */
  peerClosed(code: number): void {
    if (this.closedWith !== null) return;
    clearTimeout(this.idleTimer);
    this.closedWith = this.closing ?? (NORMAL_CLOSES.has(code) ? 'peer closed' : `peer closed: ${code}`);
    this.corked = [];
    this.corkedBytes = 0;
    this.events?.closed(this.closedWith);
  }

  /** Closes with a code of our choosing after what was written (shutdown's 1001, a binary message's 1003). */
  endWith(code: number, reason: string): void {
    if (this.closedWith !== null) return;
    this.closing ??= reason;
    this.flushCorked();
    // uWS calls the close handler from within `end`, which reports it.
    this.ws.end(code, reason);
  }

  // ---- LineTransport ----

  listen(events: LineTransportEvents): void {
    this.events = events;
    const early = this.early;
    this.early = null;
    if (early) for (const chunk of early) events.data(chunk);
    if (this.closedWith !== null) {
      const reason = this.closedWith;
      queueMicrotask(() => events.closed(reason));
    }
  }

  write(text: string): boolean {
    if (this.closedWith !== null) return false;
    this.lastActivity = Date.now();
    if (this.corks > 0) {
      this.corked.push(text);
      this.corkedBytes += Buffer.byteLength(text);
      return this.buffered < HIGH_WATER;
    }
    let status = 1;
    // Corked even for one message: uWS sends a message outside its own callbacks with a system call
    // of its own, and one cork is what lets it put the frame with whatever else is due.
    this.ws.cork(() => {
      status = this.ws.send(text, false);
    });
    // 0 = queued behind backpressure, 2 = dropped at maxBackpressure (and the socket closed).
    return status === 1;
  }

  cork(): void {
    this.corks += 1;
  }

  uncork(): void {
    if (this.corks === 0) return;
    this.corks -= 1;
    if (this.corks === 0) this.flushCorked();
  }

  setIdleTimeout(ms: number, onIdle: () => void): void {
    clearTimeout(this.idleTimer);
    this.lastActivity = Date.now();
    // One timer per connection, re-armed for what is left rather than reset on every message.
    const check = (): void => {
      if (this.closedWith !== null) return;
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= ms) onIdle();
      else this.idleTimer = setTimeout(check, ms - quiet).unref();
    };
    this.idleTimer = setTimeout(check, ms).unref();
  }

  end(): void {
    this.endWith(WS_CLOSE_NORMAL, '');
  }

  destroy(): void {
    if (this.closedWith !== null) return;
    this.closing ??= 'destroyed';
    this.corked = [];
    this.corkedBytes = 0;
    this.ws.close();
  }

  /** Sends the messages written while corked, as one batch. */
  private flushCorked(): void {
    if (this.corked.length === 0 || this.closedWith !== null) return;
    const messages = this.corked;
    this.corked = [];
    this.corkedBytes = 0;
    this.ws.cork(() => {
      for (const m of messages) this.ws.send(m, false);
    });
  }
}
