/** The LineTransport of a TCP connection: a thin layer over an accepted `net.Socket`. */
import type { Socket } from 'node:net';
import type { LineTransport, LineTransportEvents } from './transport.js';

export class NetTransport implements LineTransport {
  readonly kind = 'tcp';
  private events: LineTransportEvents | null = null;
  private error: string | null = null;
  private closedWith: string | null = null;
  private peer: string | null = null;

  constructor(private readonly socket: Socket) {
    // An error is always followed by 'close', which reports it; unhandled, it would crash the daemon.
    socket.on('error', (err: NodeJS.ErrnoException) => (this.error ??= err.code ?? err.message));
    socket.once('close', () => {
      this.closedWith = this.error === null ? 'peer closed' : `peer closed: ${this.error}`;
      this.events?.closed(this.closedWith);
    });
  }

  get remoteAddress(): string {
    // Read once, while the socket is open: a closed socket no longer knows its peer, and a device
    // that disconnects is still listed by address.
    this.peer ??= `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
    return this.peer;
  }

  get buffered(): number {
    return this.socket.writableLength;
  }

  listen(events: LineTransportEvents): void {
    this.events = events;
    if (this.closedWith !== null) {
      const reason = this.closedWith;
      queueMicrotask(() => events.closed(reason));
      return;
    }
    // Attaching 'data' is what starts the flow: bytes received before this waited in the socket.
    this.socket.on('data', (chunk: Buffer) => events.data(chunk));
  }

  write(text: string): boolean {
    return this.socket.write(text);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  setIdleTimeout(ms: number, onIdle: () => void): void {
    this.socket.setTimeout(ms, onIdle);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
