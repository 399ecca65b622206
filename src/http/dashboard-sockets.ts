/**
 * The node's open dashboard WebSockets, by session token: shutdown closes them all (uWS keeps them
 * open otherwise) and a sign-out closes that session's. One per daemon, built by app.ts and passed in
 * the HTTP context.
 */

/** What the registry needs of a socket: uWS's `end`. */
export interface DashboardSocket {
  end(code?: number, reason?: string): void;
}

/** Close code the dashboard reads as "sign in again". */
export const WS_CLOSE_SESSION_ENDED = 4401;

export class DashboardSockets {
  private readonly bySession = new Map<string, Set<DashboardSocket>>();
  private count = 0;

  add(token: string, ws: DashboardSocket): void {
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

  /** Closes this node's sockets of a session (sign-out); other nodes close theirs at expiry. */
  closeSession(token: string): void {
    for (const ws of [...(this.bySession.get(token) ?? [])]) endQuietly(ws, WS_CLOSE_SESSION_ENDED, 'signed out');
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
