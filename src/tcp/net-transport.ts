/** The LineTransport of a TCP connection: a thin layer over an accepted `net.Socket`. */
import type { Socket } from 'node:net';
import type { LineTransport, LineTransportEvents } from './transport.js';

export class NetTransport implements LineTransport {
  readonly kind = 'tcp';
  private events: LineTransportEvents | null = null;
  private error: string | null = null;
  private closedWith: string | null = null;
  private peer: string | null = null;

  /** `onClose` runs when the socket has closed, however it ended (before the connection hears of it). */
  constructor(
    private readonly socket: Socket,
    private readonly onClose: (() => void) | null = null,
  ) {
    // An error is always followed by 'close', which reports it; unhandled, it would crash the daemon.
    // `on`, not `once`: 'close' comes once anyway, and `once` costs a wrapper and a bound function per socket.
    socket.on('error', (err: NodeJS.ErrnoException) => (this.error ??= err.code ?? err.message));
    socket.on('close', () => {
      this.closedWith = this.error === null ? 'peer closed' : `peer closed: ${this.error}`;
      this.onClose?.();
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
    this.socket.on('data', events.data);
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
    this.socket.setTimeout(ms);
    // Not setTimeout's own callback, which is a `once` listener (a wrapper and a bound function per socket).
    let fired = false;
    this.socket.on('timeout', () => {
      if (fired) return;
      fired = true;
      onIdle();
    });
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
