/**
 * The signed-in user's variables: `GET /api/vars` → {vars: [{name,type,value}]} in first-seen order;
 * `PUT /api/vars/:name {value, type?}` → {var, delivered, buffered}: stored, then sent to the key's
 * devices or left waiting in the outbox (clients/var-changes.ts); `DELETE /api/vars/:name` → 204 (404
 * when the key has no such variable): removed from the store and announced to the key's dashboards
 * as a `var_deleted` event. Devices are not told: a game that reports the variable again brings it back.
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { checkVarName } from '../../clients/var-changes.js';
import { MAX_VAR_TYPE, varTypeProblem, wireValue, type VarValue } from '../../model.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { channels } from '../../pubsub/pubsub.js';
import { readJson } from '../respond.js';
import type { PutVarBody, VarDelivery, VarsAnswer } from '../../wire.js';

export const varValueSchema = z.custom<VarValue>((v) => wireValue(v) !== null, { error: 'value must be a string, number or boolean' });
// Control characters are refused by the change itself (resolveVar), with the rule's own message.
export const varTypeSchema = z.string({ error: 'type must be a string' }).superRefine((type, ctx) => {
  if (varTypeProblem(type) === 'length') ctx.addIssue({ code: 'custom', message: type.length === 0 ? 'type must not be empty' : `type is longer than ${MAX_VAR_TYPE} characters` });
});

const putVarSchema = z.object({ value: varValueSchema, type: varTypeSchema.optional() }).strict();

/** The route's `:name`, percent-decoded, checked as the protocol checks names. */
function varNameParam(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new ObserverioError('bad_request', 'variable name is not valid percent-encoding');
  }
  const problem = checkVarName(name);
  if (problem) throw new ObserverioError('bad_request', problem);
  return name;
}

export const varRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/api/vars',
    route(ctx, 'get_vars', async (reply, info) => {
      const session = await requireSession(ctx, info);
      const vars = await ctx.store.getVars(session.apiKey);
      reply.json(200, { vars } satisfies VarsAnswer);
    }),
  );

  app.put(
    '/api/vars/:name',
    route(
      ctx,
      'put_var',
      async (reply, info) => {
        // uWS wants onData registered before the first await; the session is checked first anyway,
        // so a stranger learns nothing from how a body is judged.
        const bodyP = readJson(reply, info, ctx.config.http.maxBodyBytes, putVarSchema);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body: PutVarBody = await bodyP;
        const name = varNameParam(info.params[0] ?? '');
        const result = await ctx.clients.change(session.apiKey, { name, value: body.value, type: body.type });
        reply.json(200, result satisfies VarDelivery);
      },
      1,
    ),
  );

  app.del(
    '/api/vars/:name',
    route(
      ctx,
      'delete_var',
      async (reply, info) => {
        const session = await requireSession(ctx, info);
        const name = varNameParam(info.params[0] ?? '');
        if (!(await ctx.store.deleteVar(session.apiKey, name))) throw new ObserverioError('not_found', `no variable named ${JSON.stringify(name.slice(0, 64))}`);
        ctx.gateway.publish(channels.vars(session.apiKey), { type: 'var_deleted', apiKey: session.apiKey, name, source: 'dashboard' }, 'var_deleted');
        reply.json(204, null);
      },
      1,
    ),
  );
};
