/**
 * The node's open dashboard WebSockets, by session token: shutdown closes them all (uWS keeps them
 * open otherwise) and a sign-out, on this node or another (session-revocations.ts), closes that
 * session's. One per daemon, built by app.ts and passed in the HTTP context.
 */

/** What the registry needs of a socket: uWS's `end`. */
export interface DashboardSocket {
  end(code?: number, reason?: string): void;
}

/** Close code the dashboard reads as "sign in again". */
export const WS_CLOSE_SESSION_ENDED = 4401;

export interface DashboardSocketsOptions {
  /** How long a closed session's token stays remembered, to close a socket whose upgrade was under way. */
  endedMemoryMs?: number;
  /** Ended tokens remembered at once; the oldest is forgotten first. */
  endedMax?: number;
  now?: () => number;
}

export class DashboardSockets {
  private readonly bySession = new Map<string, Set<DashboardSocket>>();
  private count = 0;
  /**
   * Token → when it may be forgotten, oldest first. An upgrade reads the session before its socket
   * opens; a sign-out landing in between would otherwise leave that socket open until expiry.
   */
  private readonly ended = new Map<string, number>();
  private readonly endedMemoryMs: number;
  private readonly endedMax: number;
  private readonly now: () => number;

  constructor(opts: DashboardSocketsOptions = {}) {
    this.endedMemoryMs = opts.endedMemoryMs ?? 60_000;
    this.endedMax = opts.endedMax ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Registers an open socket; one of a session that has just ended is closed right after its open handler. */
  add(token: string, ws: DashboardSocket): void {
    if (this.hasEnded(token)) {
      // Not at once: uWS's open handler goes on using the socket after this returns.
      setImmediate(() => endQuietly(ws, WS_CLOSE_SESSION_ENDED, 'signed out'));
    }
    let set = this.bySession.get(token);
    if (!set) this.bySession.set(token, (set = new Set()));
    if (set.has(ws)) return;
    set.add(ws);
    this.count += 1;
  }

  remove(token: string, ws: DashboardSocket): void {
    const set = this.bySession.get(token);
    if (!set?.delete(ws)) return;
    this.count -= 1;
    if (set.size === 0) this.bySession.delete(token);
  }

  /** Open sockets on this node. */
  get size(): number {
    return this.count;
  }

  /** Closes this node's sockets of a session (sign-out), and any that opens here in the next moments. */
  closeSession(token: string): void {
    this.remember(token);
    for (const ws of [...(this.bySession.get(token) ?? [])]) endQuietly(ws, WS_CLOSE_SESSION_ENDED, 'signed out');
  }

  /** Ended tokens remembered (bounded by endedMax). */
  get endedSize(): number {
    return this.ended.size;
  }

  private remember(token: string): void {
    const now = this.now();
    this.ended.delete(token);
    this.ended.set(token, now + this.endedMemoryMs);
    for (const [t, until] of this.ended) {
      if (until > now && this.ended.size <= this.endedMax) break;
      this.ended.delete(t);
    }
  }

  private hasEnded(token: string): boolean {
    const until = this.ended.get(token);
    return until !== undefined && until > this.now();
  }

  /** Closes every socket (shutdown); each one's close handler removes it. */
  closeAll(code: number, reason: string): void {
    for (const set of [...this.bySession.values()]) for (const ws of [...set]) endQuietly(ws, code, reason);
    this.bySession.clear();
    this.count = 0;
  }
}

function endQuietly(ws: DashboardSocket, code: number, reason: string): void {
  try {
    ws.end(code, reason);
  } catch {
    // Closed by the peer in the meantime.
  }
}
