/** The LineTransport of a TCP connection: a thin layer over an accepted `net.Socket`. */
import type { Socket } from 'node:net';
import { idleSweep, type IdleSweep, type IdleWatched } from './idle-sweep.js';
import type { LineTransport, LineTransportEvents } from './transport.js';

/** The transport a socket belongs to, so its listeners are shared functions rather than closures per socket. */
const TRANSPORT = Symbol('observerio.netTransport');
type OwnedSocket = Socket & { [TRANSPORT]: NetTransport };

function onSocketError(this: OwnedSocket, err: NodeJS.ErrnoException): void {
  this[TRANSPORT].failed(err);
}

function onSocketClose(this: OwnedSocket): void {
  this[TRANSPORT].socketClosed();
}

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  const t = this[TRANSPORT];
  t.idleSince = performance.now();
  t.received(chunk);
}

export class NetTransport implements LineTransport, IdleWatched {
  readonly kind = 'tcp';
  private events: LineTransportEvents | null = null;
  private error: string | null = null;
  private closedWith: string | null = null;
  private peer: string | null = null;
  private sweep: IdleSweep | null = null;
  private onIdle: (() => void) | null = null;
  idleSince = 0;
  idleSlot = -1;
  idleQueued = 0;

  /**
   * `onClose` runs when the socket has closed, however it ended (before the connection hears of it);
   * it may be set after construction, before the socket's events run.
   */
  constructor(
    private readonly socket: Socket,
    public onClose: (() => void) | null = null,
  ) {
    (socket as OwnedSocket)[TRANSPORT] = this;
    // An error is always followed by 'close', which reports it; unhandled, it would crash the daemon.
    // `on`, not `once`: 'close' comes once anyway, and `once` costs a wrapper and a bound function per socket.
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** The socket's 'error' listener. */
  failed(err: NodeJS.ErrnoException): void {
    this.error ??= err.code ?? err.message;
  }

  /** The socket's 'close' listener. */
  socketClosed(): void {
    this.closedWith = this.error === null ? 'peer closed' : `peer closed: ${this.error}`;
    this.sweep?.remove(this);
    this.onClose?.();
    this.events?.closed(this.closedWith);
  }

  /** The socket's 'data' listener, once listening. */
  received(chunk: Buffer): void {
    this.events?.data(chunk);
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
    this.socket.on('data', onSocketData);
  }

  write(text: string): boolean {
    const ok = this.socket.write(text);
    this.idleSince = performance.now();
    this.idleQueued = this.socket.writableLength;
    return ok;
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  /** Watched by the node's shared sweep for `ms` (idle-sweep.ts), not a timer of the socket's own. */
  setIdleTimeout(ms: number, onIdle: () => void): void {
    this.sweep?.remove(this);
    if (this.closedWith !== null) return;
    this.onIdle = onIdle;
    this.sweep = idleSweep(ms);
    this.sweep.add(this);
  }

  fireIdle(): void {
    this.onIdle?.();
  }

  end(): void {
    // Ending a socket that is already ended or gone makes Node build an error (with its stack) for
    // nobody: every disconnect whose peer closed first came through here so.
    const { socket } = this;
    if (socket.writableEnded || socket.destroyed) return;
    socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
