/**
 * GET /healthz (the daemon is up, with each backend's last known state) and GET /readyz (200 only
 * while every configured backend answers right now).
 */
import type { RouteModule } from './context.js';
import { route } from './context.js';
import type { HealthAnswer, ReadyAnswer } from '../wire.js';

export const healthRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/healthz',
    route(ctx, 'healthz', (reply) => {
      const backends: HealthAnswer['backends'] = ctx.health.all();
      // Changes waiting in memory for the store are not lost yet, but would be if this node stopped.
      const queued = ctx.gateway.retryQueued();
      if (queued.vars > 0) backends['store-retry-queue'] = { ok: false, kind: 'gateway', detail: `${queued.vars} variable changes of ${queued.keys} keys wait in memory for the store` };
      const ok = Object.values(backends).every((b) => b.ok);
      reply.json(200, { status: ok ? 'ok' : 'degraded', node: ctx.nodeId, uptimeS: Math.round(process.uptime()), backends } satisfies HealthAnswer);
    }),
  );

  app.get(
    '/readyz',
    route(ctx, 'readyz', async (reply) => {
      const probes = { store: ctx.store, pubsub: ctx.pubsub, logs: ctx.logIndex };
      const entries = await Promise.all(
        Object.entries(probes).map(async ([name, b]) => {
          const h = await Promise.race([
            b.health(),
            new Promise<{ ok: false; kind: string; detail: string }>((r) => setTimeout(() => r({ ok: false, kind: b.kind, detail: 'health check timed out after 2 s' }), 2000).unref()),
          ]).catch((err: unknown) => ({ ok: false, kind: b.kind, detail: String(err) }));
          ctx.health.set(name, h);
          return [name, h] as const;
        }),
      );
      const ready = entries.every(([, h]) => h.ok);
      reply.json(ready ? 200 : 503, { ready, backends: Object.fromEntries(entries) } satisfies ReadyAnswer);
    }),
  );
};
