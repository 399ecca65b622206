/**
 * Strategies, named presets of variable values (DESIGN.md §8): `GET|POST /api/strategies`,
 * `GET|PUT|DELETE /api/strategies/:name` (`{name, vars: [{name, value, type?}], version?}`; a stale
 * `version` is a 409), `POST /api/strategies/:name/apply {target?}`. Every change is a history entry.
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { readJson, readOptionalJson } from '../respond.js';
import type { ApplyStrategyAnswer, StrategiesAnswer, StrategyAnswer } from '../../wire.js';
import { noQuery } from './vars.js';

// The strategy's own rules (src/variables/strategies.ts parseStrategy) name the variable at fault.
const anyBody = z.unknown();
const applySchema = z.object({ target: z.unknown().optional() }).strict();
const deleteSchema = z.object({ version: z.number().int().positive().optional() }).strict();

function nameParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ObserverioError('bad_request', 'strategy name is not valid percent-encoding');
  }
}

export const strategyRoutes: RouteModule = (app, ctx) => {
  const v = () => ctx.clients.variables;

  app.get(
    '/api/strategies',
    route(ctx, 'get_strategies', async (reply, info) => {
      const session = await requireSession(ctx, info);
      noQuery(info.query);
      reply.json(200, { strategies: await v().listStrategies(session.apiKey) } satisfies StrategiesAnswer);
    }),
  );

  app.post(
    '/api/strategies',
    route(ctx, 'create_strategy', async (reply, info) => {
      const bodyP = readJson(reply, info, ctx.config.http.maxBodyBytes, anyBody);
      bodyP.catch(() => undefined);
      const session = await requireSession(ctx, info);
      const body = await bodyP;
      noQuery(info.query);
      reply.json(201, (await v().createStrategy(session.apiKey, session.email, body)) satisfies StrategyAnswer);
    }),
  );

  app.get(
    '/api/strategies/:name',
    route(
      ctx,
      'get_strategy',
      async (reply, info) => {
        const session = await requireSession(ctx, info);
        noQuery(info.query);
        reply.json(200, (await v().getStrategy(session.apiKey, nameParam(info.params[0] ?? ''))) satisfies StrategyAnswer);
      },
      1,
    ),
  );

  app.put(
    '/api/strategies/:name',
    route(
      ctx,
      'put_strategy',
      async (reply, info) => {
        const bodyP = readJson(reply, info, ctx.config.http.maxBodyBytes, anyBody);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        noQuery(info.query);
        reply.json(200, (await v().updateStrategy(session.apiKey, session.email, nameParam(info.params[0] ?? ''), body)) satisfies StrategyAnswer);
      },
      1,
    ),
  );

  app.del(
    '/api/strategies/:name',
    route(
      ctx,
      'delete_strategy',
      async (reply, info) => {
        const bodyP = readOptionalJson(reply, info, ctx.config.http.maxBodyBytes, deleteSchema);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        noQuery(info.query);
        const entry = await v().deleteStrategy(session.apiKey, session.email, nameParam(info.params[0] ?? ''), body?.version);
        reply.json(200, { deleted: true, historyId: entry.id });
      },
      1,
    ),
  );

  app.post(
    '/api/strategies/:name/apply',
    route(
      ctx,
      'apply_strategy',
      async (reply, info) => {
        const bodyP = readOptionalJson(reply, info, ctx.config.http.maxBodyBytes, applySchema);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        noQuery(info.query);
        reply.json(200, (await v().applyStrategy(session.apiKey, session.email, nameParam(info.params[0] ?? ''), body?.target)) satisfies ApplyStrategyAnswer);
      },
      1,
    ),
  );
};
