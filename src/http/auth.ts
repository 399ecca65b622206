/**
 * Dashboard authentication: `Authorization: Bearer <token>` resolved to a session through the store.
 * The per-email limiter that slows down password guessing on `POST /api/sessions` is login-attempts.ts.
 */
import { ObserverioError } from '../errors.js';
import type { Session } from '../model.js';
import type { HttpContext } from './context.js';
import { bearer, type RequestInfo } from './respond.js';

/** Session tokens are 32 random bytes in base64url; anything else is refused before the store is asked. */
export const TOKEN_RE = /^[A-Za-z0-9_-]{16,128}$/;

/** The request's session, or ObserverioError('unauthorized') for a missing, malformed, unknown or expired token. */
export async function requireSession(ctx: HttpContext, info: RequestInfo): Promise<Session> {
  const token = bearer(info);
  if (!token) {
    const hasHeader = info.headers.authorization !== undefined;
    throw new ObserverioError('unauthorized', hasHeader ? 'expected Authorization: Bearer <token>' : 'missing Authorization: Bearer <token>');
  }
  return sessionOf(ctx, token);
}

/**
 * The token's session, or ObserverioError('unauthorized'); a store failure is a 503, not a 401.
 * Answered from this node's SessionCache when it holds the token (see there for what that risks).
 */
export async function sessionOf(ctx: HttpContext, token: string): Promise<Session> {
  if (!TOKEN_RE.test(token)) throw new ObserverioError('unauthorized', 'invalid or expired session token');
  const hit = cachedSession(ctx, token);
  if (hit) return hit;
  const cache = ctx.sessionRevocations?.sessions;
  const now = Date.now();
  const generation = cache?.generation ?? 0;
  let session: Session | null;
  try {
    session = await ctx.store.getSession(token);
  } catch (err) {
    ctx.logger.error({ err }, 'cannot read a session');
    throw new ObserverioError('unavailable', 'cannot check the session right now; retry');
  }
  if (!session) throw new ObserverioError('unauthorized', 'invalid or expired session token');
  cache?.set(token, session, now, generation);
  return session;
}

/**
 * The token's session if this node's SessionCache holds it, without waiting: the /ws upgrade then
 * upgrades synchronously (ws.ts). Null for a token it does not hold (a malformed one never is: both
 * callers have checked TOKEN_RE already).
 */
export function cachedSession(ctx: HttpContext, token: string): Session | null {
  return ctx.sessionRevocations?.sessions.get(token, Date.now()) ?? null;
}

/**
 * A session this node just created (POST /api/sessions), kept as if read from the store at
 * `createdAt`: the dashboard's first requests and its /ws upgrade, which follow at once, need no
 * store read. No sign-out can have dropped it meanwhile: its token is not out yet.
 */
export function rememberSession(ctx: HttpContext, session: Session, createdAt: number): void {
  const cache = ctx.sessionRevocations?.sessions;
  cache?.set(session.token, session, createdAt, cache.generation);
}

/**
 * Sessions this node read from the store in the last `ttlMs`, so that every request and every
 * set_var frame of a busy dashboard does not read its session again (at thousands of changes/s that
 * was one store round trip each). Bounded (the oldest entry goes first) and short-lived; an entry
 * is dropped at once on this node when the session is deleted here or a sign-out from any node
 * arrives (SessionRevocations). The worst case, accepted: a node that missed a sign-out message
 * (pubsub is at-most-once: its subscriber connection was down) accepts that token for up to `ttlMs`
 * after it last read it from the store; it then reads the store again and refuses it. `ttlMs` 0
 * turns the cache off.
 */
export class SessionCache {
  private readonly entries = new Map<string, { session: Session; until: number }>();
  /** Moves at every drop: a read that started before a drop does not put the dropped session back. */
  generation = 0;

  constructor(
    readonly ttlMs: number,
    readonly maxEntries = 10_000,
  ) {}

  get(token: string, now: number): Session | null {
    const e = this.entries.get(token);
    if (!e) return null;
    if (e.until <= now || e.session.expiresAt <= now) {
      this.entries.delete(token);
      return null;
    }
    return e.session;
  }

  /** Keeps a session read at `readAt`, unless something was dropped since `generation` was read. */
  set(token: string, session: Session, readAt: number, generation: number): void {
    if (this.ttlMs <= 0 || generation !== this.generation) return;
    this.entries.delete(token);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(token, { session, until: Math.min(readAt + this.ttlMs, session.expiresAt) });
  }

  drop(token: string): void {
    this.generation += 1;
    this.entries.delete(token);
  }

  get size(): number {
    return this.entries.size;
  }
}

// The in-process limiter lives with the store that keeps it (the embedded one); Redis runs its rule
// in a script. Re-exported here, where the HTTP layer and its tests have always found it.
export { LoginLimiter, type LoginLimiterOptions } from '../store/login-limiter.js';
