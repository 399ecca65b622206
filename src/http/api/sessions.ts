/**
 * Dashboard sign-in and sign-out: `POST /api/sessions {email,password}` → 200 {token, apiKey, email,
 * expiresAt} (401 alike for an unknown email and a wrong password, 429 while the email is locked out,
 * its failures counted on every node); `DELETE /api/sessions` with the bearer token → 204, and that
 * session's live WebSockets close on every node (session-revocations.ts).
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { emailKey } from '../../store/passwords.js';
import type { User } from '../../model.js';
import { rememberSession, requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { readJson } from '../respond.js';
import type { Credentials, SessionAnswer } from '../../wire.js';

// Looser than sign-up on purpose: a login must not reveal the password policy or which check failed.
const loginSchema = z
  .object({
    email: z.string({ error: 'email must be a string' }).trim().min(1, 'email is required').max(254, 'email is longer than 254 characters'),
    password: z.string({ error: 'password must be a string' }).min(1, 'password is required').max(256, 'password is longer than 256 characters'),
  })
  .strict();

export const sessionRoutes: RouteModule = (app, ctx) => {
  const limiter = ctx.loginLimiter;

  app.post(
    '/api/sessions',
    route(ctx, 'create_session', async (reply, info) => {
      const body: Credentials = await readJson(reply, info, ctx.config.http.maxBodyBytes, loginSchema);
      const key = emailKey(body.email);
      const waitMs = await limiter.begin(key);
      if (waitMs !== null) {
        const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
        reply.error('too_many_requests', `too many failed sign-ins for this email; retry in ${retryAfter} s`, { 'Retry-After': String(retryAfter) });
        return;
      }
      let user: User | null;
      try {
        user = await ctx.store.authenticate(body.email, body.password);
      } catch (err) {
        await limiter.abandon(key);
        throw err;
      }
      if (!user) {
        await limiter.fail(key);
        throw new ObserverioError('unauthorized', 'wrong email or password');
      }
      await limiter.succeed(key);
      const createdAt = Date.now();
      const session = await ctx.store.createSession(user, ctx.config.store.sessionTtlMs);
      rememberSession(ctx, session, createdAt);
      reply.json(200, { token: session.token, apiKey: session.apiKey, email: session.email, expiresAt: session.expiresAt } satisfies SessionAnswer);
    }),
  );

  app.del(
    '/api/sessions',
    route(ctx, 'delete_session', async (reply, info) => {
      const session = await requireSession(ctx, info);
      await ctx.store.deleteSession(session.token);
      await ctx.sessionRevocations.revoke(session.token);
      reply.json(204, null);
    }),
  );
};
