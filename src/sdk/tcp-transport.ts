/**
 * The SDK's TCP transport for Node (node:net): one socket to the daemon's TCP port, its bytes framed
 * into lines by LineSplitter. Not in the browser bundle.
 */
import { createConnection, type Socket } from 'node:net';
import type { SdkClock } from './clock.js';
import { socketError, type SdkError } from './errors.js';
import { LineSplitter } from './line-splitter.js';
import type { SdkTransport, TransportChoice, TransportEvents } from './transport.js';

const KEEPALIVE_DELAY_MS = 30_000;

class TcpTransport implements SdkTransport {
  private readonly socket: Socket;
  private done = false;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    host: string,
    port: number,
    maxLineBytes: number,
    events: TransportEvents,
    private readonly where = `${host}:${port}`,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    const socket = createConnection({ host, port });
    this.socket = socket;
    const splitter = new LineSplitter(maxLineBytes);
    socket.on('connect', () => {
      // Variable pushes are tiny and latency is the point; Nagle would hold them back.
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
      events.open();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const ev of splitter.push(chunk)) {
        // A line may have closed the socket (an e: reply to v:); the rest of the chunk is moot.
        if (socket.destroyed) return;
        if (ev.kind === 'line') events.line(ev.line);
        else events.tooLong(ev.bytes);
      }
    });
    socket.on('drain', () => events.drain());
    // Always listened to: an 'error' without a listener would throw into the game.
    socket.on('error', (err: Error & { code?: string }) => events.error(socketError(err, this.where)));
    socket.on('close', () => {
      this.done = true;
      this.markClosed();
      events.close();
    });
  }

  write(line: string, done: (err: SdkError | null) => void): void {
    this.socket.write(`${line}\n`, (err) => done(err ? socketError(err, this.where) : null));
  }

  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.done;
  }
}

/** A TCP connection to host:port. */
export function tcpTransport(host: string, port: number, maxLineBytes: number): TransportChoice {
  return { where: `${host}:${port}`, open: (events: TransportEvents, _clock: SdkClock) => new TcpTransport(host, port, maxLineBytes, events) };
}
