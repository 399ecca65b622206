/**
 * The LineTransport contract (CONVENTIONS.md §2): what a connection actor needs from the pipe its
 * device talks through, so the same actor serves a TCP socket (net-transport.ts) and, later, the
 * browser SDK's WebSocket (ws-transport.ts), and its tests need no real socket (ranch's transport).
 *
 * The stream carries newline-terminated protocol lines in both directions. The transport knows
 * nothing of lines: it moves bytes and reports when the peer is gone.
 */

/** What a transport tells its connection. Called at most once `listen` has been called. */
export interface LineTransportEvents {
  /**
   * Bytes from the peer: any number of lines, the last possibly incomplete (TCP splits anywhere).
   * A message-based transport passes each message with its lines newline-terminated. The chunk is
   * handled later, through the actor's mailbox, so it must stay valid after this call returns
   * (uWebSockets.js reuses its ArrayBuffer: copy it).
   */
  data(chunk: Buffer): void;
  /**
   * The pipe is gone, whoever closed it, and nothing more follows. Called exactly once, also when
   * the pipe closed before `listen`. An error is no event of its own: it ends the pipe, and its
   * code is in `reason`. There is no half-close: the peer ending its side ends both.
   */
  closed(reason: string): void;
}

export interface LineTransport {
  /** Which pipe this is (`tcp`, `ws`), for the admin tree and the metrics' `transport` label. */
  readonly kind: string;
  /**
   * The peer as `host:port`, for logs and the device list; the host alone where the port is not
   * known (uWebSockets.js does not tell a WebSocket's remote port).
   */
  readonly remoteAddress: string;
  /**
   * Bytes accepted by `write` that the peer has not taken yet. The connection drops a reader that
   * lets this grow past its limit rather than buffering without end, so it reads this, not a drain
   * event: nothing ever waits for the peer to catch up.
   */
  readonly buffered: number;
  /** Starts delivering events (bytes wait in the transport until then). Called once. */
  listen(events: LineTransportEvents): void;
  /**
   * Queues complete lines for the peer. False when the transport is now above its own high-water
   * mark (as `socket.write` and uWebSockets.js `send` report backpressure); the text is queued
   * either way, and `buffered` says how far behind the peer is.
   */
  write(text: string): boolean;
  /**
   * Holds the writes made until `uncork` and sends them together: one system call (TCP) or one
   * frame batch (uWebSockets.js `cork`) for all the replies to one chunk.
   */
  cork(): void;
  uncork(): void;
  /** Calls `onIdle` once, when nothing has moved either way for `ms`. */
  setIdleTimeout(ms: number, onIdle: () => void): void;
  /** Closes after what was written has been sent (TCP FIN, WebSocket close frame). */
  end(): void;
  /** Closes now, dropping what is still queued. */
  destroy(): void;
}
