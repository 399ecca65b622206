/**
 * `GET /api/logs?q=&level=&device=&from=&to=&limit=&kind=log|change` → {hits, total}: the signed-in user's logs,
 * newest first, always filtered by the session's API key (the tenant boundary).
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT } from '../../log-index/log-index.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { validate } from '../respond.js';
import type { LogSearchResult } from '../../wire.js';

const millis = (name: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, `${name} must be a whole number of milliseconds since the epoch`)
    .transform(Number);

const logQuerySchema = z
  .object({
    q: z.string().max(512, 'q is longer than 512 characters').optional(),
    level: z.string().max(32, 'level is longer than 32 characters').optional(),
    device: z.string().max(64, 'device is longer than 64 characters').optional(),
    from: millis('from').optional(),
    to: millis('to').optional(),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, `limit must be a whole number from 1 to ${MAX_SEARCH_LIMIT}`)
      .transform(Number)
      .refine((n) => n >= 1 && n <= MAX_SEARCH_LIMIT, `limit must be from 1 to ${MAX_SEARCH_LIMIT}`)
      .optional(),
    kind: z.enum(['log', 'change'], { error: 'kind must be log or change' }).optional(),
  })
  .strict();

/** The query string as one value per parameter; a repeated parameter is ambiguous, so it is refused. */
function queryParams(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (Object.hasOwn(out, k)) throw new ObserverioError('bad_request', `query parameter ${k.slice(0, 32)} is given more than once`);
    out[k] = v;
  }
  return out;
}

export const logRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/api/logs',
    route(ctx, 'search_logs', async (reply, info) => {
      const session = await requireSession(ctx, info);
      const p = validate(logQuerySchema, queryParams(info.query));
      if (p.from !== undefined && p.to !== undefined && p.from > p.to) throw new ObserverioError('bad_request', 'from must not be after to');
      const result = await ctx.logIndex.search({
        apiKey: session.apiKey,
        q: p.q ?? '',
        level: p.level || undefined,
        device: p.device || undefined,
        from: p.from,
        to: p.to,
        limit: p.limit ?? DEFAULT_SEARCH_LIMIT,
        ...(p.kind ? { kind: p.kind } : {}),
      });
      reply.json(200, { hits: result.hits, total: result.total } satisfies LogSearchResult);
    }),
  );
};
