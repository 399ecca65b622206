/**
 * GET /metrics: the daemon's Prometheus metrics in the text exposition format, for a scraper. Open
 * like /healthz: it carries counts and durations, never API keys, variables or log text.
 */
import { route, type RouteModule } from './context.js';

export const metricsRoutes: RouteModule = (app, ctx) => {
  app.get(
    '/metrics',
    route(ctx, 'metrics', async (reply) => {
      const body = await ctx.metrics.render();
      reply.text(200, body, ctx.metrics.contentType);
    }),
  );
};
