/**
 * Dashboard authentication: `Authorization: Bearer <token>` resolved to a session through the store,
 * and the per-email limiter that slows down password guessing on `POST /api/sessions`.
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

/** The token's session, or ObserverioError('unauthorized'); a store failure is a 503, not a 401. */
export async function sessionOf(ctx: HttpContext, token: string): Promise<Session> {
  if (!TOKEN_RE.test(token)) throw new ObserverioError('unauthorized', 'invalid or expired session token');
  let session: Session | null;
  try {
    session = await ctx.store.getSession(token);
  } catch (err) {
    ctx.logger.error({ err }, 'cannot read a session');
    throw new ObserverioError('unavailable', 'cannot check the session right now; retry');
  }
  if (!session) throw new ObserverioError('unauthorized', 'invalid or expired session token');
  return session;
}

export interface LoginLimiterOptions {
  /** Failed logins for one email within `windowMs` before attempts are refused. */
  maxFailures?: number;
  windowMs?: number;
  /** First lockout; each further failure doubles it, up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Emails tracked at once; the least recently seen is forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

interface Attempts {
  /** Times of failed logins within the window, oldest first. */
  failures: number[];
  lockedUntil: number;
  inFlight: number;
}

/**
 * Per-email failed-login limiter: after `maxFailures` failures within `windowMs`, further attempts
 * are refused until a lockout ends, and each failure after that doubles the lockout. Attempts in
 * flight count too, so parallel guesses cannot slip past the limit before their failures land.
 * Memory is bounded by `maxEntries`.
 */
export class LoginLimiter {
  private readonly entries = new Map<string, Attempts>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: LoginLimiterOptions = {}) {
    this.maxFailures = opts.maxFailures ?? 5;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 15 * 60_000;
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.now = opts.now ?? Date.now;
  }

  /** Starts an attempt: null when it may go ahead (then call fail or succeed), else ms to wait. */
  begin(email: string): number | null {
    const now = this.now();
    const e = this.touch(email, now);
    if (e.lockedUntil > now) return e.lockedUntil - now;
    if (e.failures.length + e.inFlight >= this.maxFailures && e.inFlight > 0) return Math.min(this.baseDelayMs, this.windowMs);
    e.inFlight += 1;
    return null;
  }

  fail(email: string): void {
    const now = this.now();
    const e = this.touch(email, now);
    e.inFlight = Math.max(0, e.inFlight - 1);
    e.failures.push(now);
    const over = e.failures.length - this.maxFailures;
    if (over >= 0) e.lockedUntil = now + Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(over, 30));
  }

  succeed(email: string): void {
    this.entries.delete(email);
  }

  /** An attempt that ended without an answer (e.g. the store failed): neither a failure nor a success. */
  abandon(email: string): void {
    const e = this.entries.get(email);
    if (e) e.inFlight = Math.max(0, e.inFlight - 1);
  }

  get size(): number {
    return this.entries.size;
  }

  private touch(email: string, now: number): Attempts {
    let e = this.entries.get(email);
    if (e) {
      // Re-inserted so Map order is least recently seen first, which is what eviction drops.
      this.entries.delete(email);
      const horizon = now - this.windowMs;
      while (e.failures.length > 0 && (e.failures[0] as number) <= horizon) e.failures.shift();
    } else {
      e = { failures: [], lockedUntil: 0, inFlight: 0 };
      while (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest === undefined) break;
        this.entries.delete(oldest);
      }
    }
    this.entries.set(email, e);
    return e;
  }
}
