/**
 * History of a key's changes (DESIGN.md §8): `GET /api/history?limit=&before=` newest first;
 * `POST /api/history/:id/revert {force?}` undoes one entry (what a later change touched again is left,
 * and listed as a conflict, unless forced); `POST /api/history/rollback {"to": id}` brings the key
 * back to the state right after that entry. Both are new entries.
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { readJson, readOptionalJson, validate } from '../respond.js';
import type { HistoryActionAnswer, HistoryAnswer } from '../../wire.js';
import { DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE } from '../../clients/variables.js';

// Entry ids are the store's (a Redis stream id `<ms>-<seq>`, or the memory store's equivalent).
const ID_RE = /^[0-9A-Za-z._:-]{1,64}$/;
const idSchema = z.string().regex(ID_RE, { message: 'must be a history entry id' });
const querySchema = z
  .object({
    limit: z.coerce.number({ error: 'limit must be a number' }).int().min(1).max(MAX_HISTORY_PAGE).optional(),
    before: idSchema.optional(),
  })
  .strict();
const revertSchema = z.object({ force: z.boolean().optional() }).strict();
const rollbackSchema = z.object({ to: idSchema }).strict();

function queryParams(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) {
    if (Object.hasOwn(out, k)) throw new ObserverioError('bad_request', `query parameter ${k.slice(0, 32)} is given more than once`);
    out[k] = v;
  }
  return out;
}

export const historyRoutes: RouteModule = (app, ctx) => {
  const v = () => ctx.clients.variables;

  app.get(
    '/api/history',
    route(ctx, 'get_history', async (reply, info) => {
      const session = await requireSession(ctx, info);
      const q = validate(querySchema, queryParams(info.query));
      reply.json(200, { entries: await v().listHistory(session.apiKey, q.limit ?? DEFAULT_HISTORY_PAGE, q.before) } satisfies HistoryAnswer);
    }),
  );

  app.post(
    '/api/history/rollback',
    route(ctx, 'rollback', async (reply, info) => {
      const bodyP = readJson(reply, info, ctx.config.http.maxBodyBytes, rollbackSchema);
      bodyP.catch(() => undefined);
      const session = await requireSession(ctx, info);
      const body = await bodyP;
      reply.json(200, (await v().rollback(session.apiKey, session.email, body.to)) satisfies HistoryActionAnswer);
    }),
  );

  app.post(
    '/api/history/:id/revert',
    route(
      ctx,
      'revert',
      async (reply, info) => {
        const bodyP = readOptionalJson(reply, info, ctx.config.http.maxBodyBytes, revertSchema);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        const id = validate(idSchema, info.params[0] ?? '');
        reply.json(200, (await v().revert(session.apiKey, session.email, id, body?.force ?? false)) satisfies HistoryActionAnswer);
      },
      1,
    ),
  );
};
