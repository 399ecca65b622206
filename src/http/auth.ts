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

// The in-process limiter lives with the store that keeps it (the embedded one); Redis runs its rule
// in a script. Re-exported here, where the HTTP layer and its tests have always found it.
export { LoginLimiter, type LoginLimiterOptions } from '../store/login-limiter.js';
