/**
 * An in-memory LineTransport for connection tests: the test plays the peer (`send`, `close`, reads
 * `lines`) and can stall its reading to build a write backlog. It passes the same contract suite as
 * NetTransport (test/contracts/line-transport.test.ts), so what the tests learn holds for TCP.
 */
import type { LineTransport, LineTransportEvents } from '../../../src/tcp/transport.js';

/** Bytes queued past which `write` reports backpressure, as a socket's default highWaterMark. */
const HIGH_WATER = 16 * 1024;

export class MemoryTransport implements LineTransport {
  readonly kind = 'memory';
  readonly remoteAddress: string;
  /** Everything the peer has read, in order. */
  received = '';
  ended = false;
  destroyed = false;
  private events: LineTransportEvents | null = null;
  private early: Buffer[] = [];
  private queued: string[] = [];
  private queuedBytes = 0;
  private corked = 0;
  private stalled = false;
  private closedWith: string | null = null;
  private idle: { ms: number; onIdle: () => void; timer: NodeJS.Timeout | undefined } | null = null;

  constructor(remoteAddress = '203.0.113.7:40000') {
    this.remoteAddress = remoteAddress;
  }

  // ---- LineTransport ----

  get buffered(): number {
    return this.queuedBytes;
  }

  listen(events: LineTransportEvents): void {
    if (this.events) throw new Error('listen called twice');
    this.events = events;
    if (this.closedWith !== null) {
      const reason = this.closedWith;
      queueMicrotask(() => events.closed(reason));
      return;
    }
    for (const chunk of this.early.splice(0)) events.data(chunk);
  }

  write(text: string): boolean {
    if (this.closedWith !== null || this.ended) return false;
    this.queued.push(text);
    this.queuedBytes += Buffer.byteLength(text);
    this.touch();
    this.flush();
    return this.queuedBytes <= HIGH_WATER;
  }

  cork(): void {
    this.corked += 1;
  }

  uncork(): void {
    if (this.corked > 0) this.corked -= 1;
    this.flush();
  }

  setIdleTimeout(ms: number, onIdle: () => void): void {
    if (this.idle) clearTimeout(this.idle.timer);
    this.idle = { ms, onIdle, timer: undefined };
    this.touch();
  }

  end(): void {
    if (this.ended || this.closedWith !== null) return;
    this.ended = true;
    this.corked = 0;
    this.flush();
    // The peer reads to the end, then closes its side too (the daemon does not allow half-open).
    if (!this.stalled) setImmediate(() => this.finish('peer closed'));
  }

  destroy(): void {
    this.destroyed = true;
    this.queued = [];
    this.queuedBytes = 0;
    this.finish('peer closed');
  }

  // ---- the peer's side ----

  /** The peer sends bytes (one chunk, as one TCP read or one WebSocket message). */
  send(text: string | Buffer): void {
    if (this.closedWith !== null) throw new Error('send on a closed transport');
    const chunk = typeof text === 'string' ? Buffer.from(text) : text;
    this.touch();
    if (this.events) this.events.data(chunk);
    else this.early.push(chunk);
  }

  /** The peer goes away (optionally with an error code, as a reset connection). */
  close(error?: string): void {
    this.finish(error ? `peer closed: ${error}` : 'peer closed');
  }

  /** The peer stops reading: writes pile up in `buffered`. */
  stall(): void {
    this.stalled = true;
  }

  /** The peer reads again, everything queued. */
  resume(): void {
    this.stalled = false;
    this.flush();
    if (this.ended) setImmediate(() => this.finish('peer closed'));
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** The complete lines the peer has read. */
  get lines(): string[] {
    return this.received.split('\n').slice(0, -1);
  }

  private flush(): void {
    if (this.corked > 0 || this.stalled || this.destroyed) return;
    this.received += this.queued.join('');
    this.queued = [];
    this.queuedBytes = 0;
  }

  private touch(): void {
    const idle = this.idle;
    if (!idle || this.closedWith !== null) return;
    clearTimeout(idle.timer);
    // Once, as net.Socket's setTimeout callback.
    idle.timer = setTimeout(() => {
      this.idle = null;
      idle.onIdle();
    }, idle.ms);
    idle.timer.unref();
  }

  private finish(reason: string): void {
    if (this.closedWith !== null) return;
    this.closedWith = reason;
    if (this.idle) clearTimeout(this.idle.timer);
    this.events?.closed(reason);
  }
}
