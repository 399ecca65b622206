/**
 * The signed-in user's variables: `GET /api/vars` → {vars: [{name,type,value}]} in first-seen order
 * (`<apiKey>:vs`, the latest value any device reported); `PUT /api/vars/:name {value, type?, target?}`
 * → SetOverrideAnswer: an override for the target (every device when absent), committed with its
 * history entry and sent to the devices it reaches (clients/variables.ts); `DELETE
 * /api/vars/:name/override {target?}` clears one; `GET /api/overrides` lists them (DESIGN.md §8).
 * `DELETE /api/vars/:name` → 204 (404 when the key has no such variable): removed from `<apiKey>:vs`
 * and announced to the key's dashboards as `var_deleted`; a game that reports it again brings it back.
 */
import { z } from 'zod';
import { ObserverioError } from '../../errors.js';
import { checkVarName } from '../../clients/var-changes.js';
import { MAX_VAR_TYPE, varTypeProblem, wireValue, type VarValue } from '../../model.js';
import { requireSession } from '../auth.js';
import { route, type RouteModule } from '../context.js';
import { channels } from '../../pubsub/pubsub.js';
import { readJson, readOptionalJson } from '../respond.js';
import type { ClearOverrideAnswer, OverridesAnswer, SetOverrideAnswer, VarsAnswer } from '../../wire.js';

export const varValueSchema = z.custom<VarValue>((v) => wireValue(v) !== null, { error: 'value must be a string, number or boolean' });
// Control characters are refused by the change itself (resolveVar), with the rule's own message.
export const varTypeSchema = z.string({ error: 'type must be a string' }).superRefine((type, ctx) => {
  if (varTypeProblem(type) === 'length') ctx.addIssue({ code: 'custom', message: type.length === 0 ? 'type must not be empty' : `type is longer than ${MAX_VAR_TYPE} characters` });
});

// The target's own rules (src/variables/target.ts parseTarget) name its problems; zod only checks it is there.
export const putVarSchema = z.object({ value: varValueSchema, type: varTypeSchema.optional(), target: z.unknown().optional() }).strict();

type PutVarBody = z.infer<typeof putVarSchema>;

/** A JSON object of only these keys, or null: what a `.strict()` object schema lets through. */
export function onlyKeys(v: unknown, allowed: ReadonlySet<string>): Record<string, unknown> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!allowed.has(k)) return null;
  return o;
}

/** A `type` varTypeSchema takes: a string that is not empty and not too long (control characters are resolveVar's to refuse). */
export const acceptableVarType = (t: unknown): t is string => typeof t === 'string' && varTypeProblem(t) !== 'length';

const PUT_KEYS: ReadonlySet<string> = new Set(['value', 'type', 'target']);

/**
 * A PUT body putVarSchema accepts, as it would give it, without zod (its parse of every body was
 * 3–5% of the daemon's CPU in the bulk PUT profile); null for anything else, which the schema then
 * judges, so every refusal keeps its message (readJson's `accept`).
 */
export function acceptPutVar(v: unknown): PutVarBody | null {
  const o = onlyKeys(v, PUT_KEYS);
  if (!o || !('value' in o) || wireValue(o.value) === null) return null;
  const out: PutVarBody = { value: o.value as VarValue };
  if ('type' in o) {
    if (!acceptableVarType(o.type)) return null;
    out.type = o.type;
  }
  if ('target' in o) out.target = o.target;
  return out;
}
const clearSchema = z.object({ target: z.unknown().optional() }).strict();

/**
 * Refuses any query parameter: `?device=phone-1` once answered 200 and changed every device; a
 * target belongs in the body, and saying so beats guessing.
 */
export function noQuery(query: string): void {
  if (!query) return;
  const names = [...new Set([...new URLSearchParams(query).keys()])];
  if (names.length === 0) return;
  throw new ObserverioError('bad_request', `unknown query parameter${names.length > 1 ? 's' : ''} ${names.map((n) => n.slice(0, 32)).join(', ')}; give a target in the body: {"target": {"devices": [...]}} or {"target": {"labels": ...}}`);
}

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
        const bodyP = readJson(reply, info, ctx.config.http.maxBodyBytes, putVarSchema, acceptPutVar);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        noQuery(info.query);
        const name = varNameParam(info.params[0] ?? '');
        const result = await ctx.clients.variables.setVar(session.apiKey, session.email, { name, value: body.value, type: body.type, target: body.target });
        reply.json(200, result satisfies SetOverrideAnswer);
      },
      1,
    ),
  );

  app.del(
    '/api/vars/:name/override',
    route(
      ctx,
      'clear_override',
      async (reply, info) => {
        const bodyP = readOptionalJson(reply, info, ctx.config.http.maxBodyBytes, clearSchema);
        bodyP.catch(() => undefined);
        const session = await requireSession(ctx, info);
        const body = await bodyP;
        noQuery(info.query);
        const name = varNameParam(info.params[0] ?? '');
        const result = await ctx.clients.variables.clearVar(session.apiKey, session.email, name, body?.target);
        reply.json(200, result satisfies ClearOverrideAnswer);
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

  app.get(
    '/api/overrides',
    route(ctx, 'get_overrides', async (reply, info) => {
      const session = await requireSession(ctx, info);
      noQuery(info.query);
      reply.json(200, { overrides: await ctx.clients.variables.listOverrides(session.apiKey) } satisfies OverridesAnswer);
    }),
  );
};
